//! The connection to systemd under faults: dbus-daemon down, systemd's private socket gone,
//! systemd re-executing itself (a systemd package upgrade runs `daemon-reexec`) or reloading
//! in the middle of a takeover, and a caller that is not root.

use std::process::Stdio;
use std::time::Duration;

use crate::sandbox::BIN;
use crate::test::Test;
use crate::unit::Unit;

/// `Type=notify`, ready after `secs`: long enough for something to happen meanwhile.
fn ready_after(name: &str, secs: &str) -> Unit {
    Unit {
        name: name.into(),
        body: format!(
            "[Service]\nType=notify\nNotifyAccess=all\n\
             ExecStartPre=/bin/sh -c 'echo start >> /run/fm-test/%n.starts'\n\
             ExecStart=/bin/sh -c 'sleep {secs}; systemd-notify --ready; exec sleep infinity'\n"
        ),
        keys: vec![],
    }
}

fn takeover() -> Test {
    Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::oneshot("web.service"))
        .unit(Unit::simple("replica.service").standby())
        .running(&["replica.service"])
        .primary()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn with_dbus_daemon_down_root_still_takes_over_through_systemds_private_socket() {
    takeover()
        .before(&["systemctl", "stop", "dbus.socket", "dbus.service"])
        .status(0)
        .stdout_has("stopped replica.service")
        .stdout_has("started app.service")
        .stdout_has("started web.service")
        .stderr("")
        .active("app.service")
        .active("web.service")
        .inactive("replica.service")
        .state("dbus.service", "inactive")
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn without_the_private_socket_the_system_bus_is_used() {
    let t = takeover();
    let Some(sb) = t.setup() else { return };
    let out = sb.exec(&[
        "unshare",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs none /run/systemd && exec /usr/bin/failover-manager -vv reconcile",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("dbus connect system bus in "), "{err}");
    assert_eq!(sb.state("app.service"), "active");
    assert_eq!(sb.state("replica.service"), "inactive");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn daemon_reexec_in_the_middle_of_a_takeover_still_verifies_every_unit() {
    // Three units of 1 s each, started in order with a settle window: systemd re-executes
    // (dropping every D-Bus connection) while the first starts, reloads during the second,
    // and re-executes again while the third settles.
    let t = Test::new()
        .unit(ready_after("a.service", "1").key("settle: 500ms"))
        .unit(ready_after("b.service", "1").key("settle: 500ms"))
        .unit(ready_after("c.service", "1").key("settle: 500ms"))
        .defaults("{ verify_timeout: 20s, settle: 0s }")
        .primary();
    let Some(sb) = t.setup() else { return };
    let run = sb
        .command(&[BIN, "-vv", "reconcile"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let long = Duration::from_secs(10);
    assert!(sb.wait_state("a.service", "activating", long));
    sb.systemctl(&["daemon-reexec"]);
    assert!(sb.wait_state("b.service", "activating", long));
    sb.systemctl(&["daemon-reload"]);
    assert!(sb.wait_state("c.service", "active", long));
    sb.systemctl(&["daemon-reexec"]);
    let out = run.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    for u in ["a.service", "b.service", "c.service"] {
        assert!(
            stdout.contains(&format!("started {u} (active after ")),
            "{u}: {stdout}"
        );
        assert_eq!(sb.state(u), "active", "{u}");
        assert_eq!(sb.starts(u), 1, "{u} was started once: {err}");
    }
    assert!(err.contains("dbus connection lost"), "{err}");
    assert_eq!(sb.jobs().trim(), "");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn not_root_reads_through_the_system_bus_and_changes_nothing() {
    let t = takeover();
    let Some(sb) = t.setup() else { return };
    let nobody = |args: &[&str]| {
        let mut argv = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
        ];
        argv.extend_from_slice(args);
        sb.exec(&argv)
    };
    let out = nobody(&["diff"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "drift: {stdout}");
    assert!(
        stdout.contains("+ app.service      primary  want running  is inactive"),
        "{stdout}"
    );
    let out = nobody(&["reconcile", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("would start app.service"), "{stdout}");
    // A real run needs root (the lock is root's), and changes nothing.
    let out = nobody(&["reconcile"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sb.state("replica.service"), "active");
    assert_eq!(sb.state("app.service"), "inactive");
    assert_eq!(sb.jobs().trim(), "");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn an_alias_is_read_and_verified_as_its_unit() {
    // ListUnitsByNames answers for an alias under its unit's own name: still one answer per
    // name asked, in order, and the job's end is matched by its id.
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .config(
            "check: {command: [/bin/true]}\ndefaults: {verify_timeout: 5s, settle: 300ms}\n\
             units: [db.service, app-alias.service]\n",
        )
        .unit(Unit::simple("db.service"));
    let Some(sb) = t.setup() else { return };
    sb.ok(&[
        "ln",
        "-s",
        "app.service",
        "/usr/local/lib/systemd/system/app-alias.service",
    ]);
    sb.daemon_reload();
    let out = sb.exec(&[BIN, "reconcile"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    assert!(
        stdout.contains("started app-alias.service (active after "),
        "{stdout}"
    );
    assert_eq!(sb.state("app.service"), "active");
    let out = sb.exec(&[BIN, "diff"]);
    assert_eq!(out.status.code(), Some(0), "in sync");
}
