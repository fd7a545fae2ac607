//! Real faults, injected for real: a check that hangs, crashes, floods or is missing; units
//! that fail, hang or refuse to stop, are masked or do not exist; systemd unreachable; broken
//! config files. Each says what happened and changes nothing it should not.

use crate::test::fixtures::host;
use crate::test::{CONFIG, Test};
use crate::unit::Unit;

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn check_binary_missing_is_unknown() {
    host()
        .check_command(&["/usr/local/bin/amIthePrimary"])
        .args(&["reconcile"])
        .status(3)
        .stderr_has("role unknown: the primary check could not be started")
        .stderr_has("/usr/local/bin/amIthePrimary")
        .active("replica.service")
        .inactive("app.service")
        .no_jobs()
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn check_killed_by_a_signal_is_unknown() {
    host()
        .check_command(&["/bin/sh", "-c", "echo about to die; kill -KILL $$"])
        .status(3)
        .stderr_has("role unknown: the primary check killed by signal 9")
        .stderr_has("check | about to die")
        .active("replica.service")
        .inactive("app.service")
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn check_printing_megabytes_still_decides_and_shows_only_its_tail() {
    let ran = host()
        .check_command(&[
            "/bin/sh",
            "-c",
            "yes 'noise noise noise' | head -c 20000000; echo; echo the end; exit 7",
        ])
        .status(3)
        .stderr_has("role unknown: the primary check exited 7")
        .stderr_has("check | the end")
        .active("replica.service")
        .run();
    if let Some(r) = ran {
        assert!(
            r.stderr.len() < 10_000,
            "stderr is {} bytes",
            r.stderr.len()
        );
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn masked_unit_fails_with_systemds_reason() {
    let t = Test::new().unit(Unit::simple("app.service")).primary();
    let Some(sb) = t.setup() else { return };
    sb.systemctl(&["mask", "app.service"]);
    let out = sb.exec(&[crate::sandbox::BIN, "reconcile"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("app.service did not start: could not be started"),
        "{err}"
    );
    assert!(err.contains("masked"), "{err}");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn unit_that_does_not_exist_fails_with_systemds_reason() {
    Test::new()
        .unit(Unit::simple("app.service"))
        .config("check: {command: [/bin/true]}\nunits: [app.service, ghost.service]\n")
        .status(1)
        .stdout_has("started app.service")
        .stderr_has("ghost.service did not start: could not be started")
        .stderr_has("ghost.service not found")
        .active("app.service")
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn systemd_unreachable_is_a_failure_that_says_so() {
    let t = host().primary();
    let Some(sb) = t.setup() else { return };
    // A private mount namespace in which /run/systemd and /run/dbus are empty: neither
    // systemd's private socket nor the system bus.
    let hidden = "mount -t tmpfs none /run/systemd && mount -t tmpfs none /run/dbus && exec";
    let out = sb.exec(&[
        "unshare",
        "--mount",
        "sh",
        "-c",
        &format!("{hidden} /usr/bin/failover-manager reconcile"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach systemd: /run/systemd/private: No such file or directory"),
        "{err}"
    );
    assert!(err.contains("; system bus: "), "{err}");
    assert_eq!(sb.state("replica.service"), "active");
    assert_eq!(sb.state("app.service"), "inactive");
    // The check ran: `--output json` still says what it found, and that the units were not seen.
    for command in ["reconcile", "diff"] {
        let out = sb.exec(&[
            "unshare",
            "--mount",
            "sh",
            "-c",
            &format!("{hidden} /usr/bin/failover-manager {command} --output json"),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
        assert_eq!(v["command"], command);
        assert_eq!(v["role"], "primary", "{stdout}");
        assert_eq!(v["check"]["exit_code"], 0);
        assert_eq!(v["previous_role"], serde_json::Value::Null);
        assert_eq!(v["in_sync"], false);
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("cannot reach systemd: ")),
            "{stdout}"
        );
        assert_eq!(v["units"][0]["name"], "app.service");
        assert_eq!(v["units"][0]["desired"], "running");
        for u in v["units"].as_array().into_iter().flatten() {
            assert_eq!(u["observed"], "unknown", "{u}");
            assert_eq!(u["action"], serde_json::Value::Null, "{u}");
            assert_eq!(u["outcome"], serde_json::Value::Null, "{u}");
        }
    }
}

/// Each broken config: exit 78, a message naming the file, nothing started or stopped.
fn broken_config(write: impl Fn(&crate::sandbox::Sandbox), message: &str) {
    let t = host().primary();
    let Some(sb) = t.setup() else { return };
    write(&sb);
    let out = sb.exec(&[crate::sandbox::BIN, "reconcile"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.starts_with(&format!("error: {CONFIG}")), "{err}");
    assert!(err.contains(message), "expected {message:?} in {err}");
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert_eq!(sb.state("replica.service"), "active");
    assert_eq!(sb.state("app.service"), "inactive");
    assert_eq!(sb.starts("app.service"), 0);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn config_unreadable() {
    broken_config(
        |sb| {
            let p = sb.path(CONFIG);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::create_dir(&p);
        },
        "cannot read config: it is a directory, not a regular file",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn config_truncated() {
    broken_config(
        |sb| sb.write(CONFIG, "check:\n  command: [\"/bin/tr"),
        "config.yaml:2:",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn config_binary_garbage() {
    broken_config(
        |sb| {
            let junk: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect();
            let _ = std::fs::write(sb.path(CONFIG), junk);
        },
        "not UTF-8 text",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn config_of_ten_megabytes() {
    broken_config(
        |sb| sb.write(CONFIG, &"# padding\n".repeat(1_000_000)),
        "config is 10000000 bytes; refusing anything over 1048576 bytes",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_unit_that_crashes_and_restarts_quickly_is_caught_in_its_settle_window() {
    let looping = Unit {
        name: "loop.service".into(),
        body: "[Service]\nRestart=always\nRestartSec=50ms\n\
               ExecStart=/bin/sh -c 'echo crashing; sleep 0.3; exit 1'\n"
            .into(),
        keys: vec!["settle: 2s".into()],
    };
    Test::new()
        .unit(looping)
        .primary()
        .status(1)
        .stderr_has("loop.service did not start: ")
        .stderr_has("after it became active (within its 2.0s settle window)")
        .stderr_has("loop.service | crashing")
        .run();
}
