//! What the repo ships (units/, examples/) works on a real systemd.

use std::time::Duration;

use crate::sandbox::Sandbox;
use crate::test::Test;
use crate::unit::Unit;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units");

fn install_shipped(sb: &Sandbox) {
    for f in [
        "failover-manager.service",
        "failover-manager.timer",
        "failover-manager.path",
        "failover-manager-alert@.service",
    ] {
        let body = std::fs::read_to_string(format!("{UNITS}/{f}")).expect("shipped unit");
        sb.install_unit(f, &body);
    }
    sb.daemon_reload();
}

/// `systemd-analyze verify` passes and says nothing about our units.
fn verify_clean(sb: &Sandbox, paths: &[&str]) {
    let mut argv = vec!["systemd-analyze", "verify", "--man=no"];
    argv.extend_from_slice(paths);
    let out = sb.exec(&argv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("failover-manager"))
        .collect();
    assert!(ours.is_empty(), "warnings about our units:\n{err}");
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let t = Test::new().unit(Unit::simple("app.service"));
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    verify_clean(
        &sb,
        &[
            "/usr/local/lib/systemd/system/failover-manager.service",
            "/usr/local/lib/systemd/system/failover-manager.timer",
            "/usr/local/lib/systemd/system/failover-manager.path",
        ],
    );
    // A template is verified through an instance of it.
    let alert = sb.read("/usr/local/lib/systemd/system/failover-manager-alert@.service");
    sb.write("/run/fm-test/failover-manager-alert@x.service", &alert);
    verify_clean(&sb, &["/run/fm-test/failover-manager-alert@x.service"]);
}

#[test]
fn shipped_timer_fires_the_service_which_reconciles() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("replica.service").standby())
        .running(&["replica.service"])
        .primary();
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    sb.systemctl(&["start", "failover-manager.timer"]);
    assert!(
        sb.wait_state("app.service", "active", Duration::from_secs(10)),
        "the timer did not reconcile"
    );
    assert_eq!(sb.state("replica.service"), "inactive");
    // The service ran to success, and the journal has its change lines.
    sb.wait_state(
        "failover-manager.service",
        "!activating",
        Duration::from_secs(5),
    );
    let result = sb.systemctl(&[
        "show",
        "-p",
        "Result",
        "--value",
        "failover-manager.service",
    ]);
    assert_eq!(result.trim(), "success");
    let log = sb.ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-u",
        "failover-manager.service",
    ]);
    assert!(
        log.contains("standby\u{2192}primary: started app.service"),
        "{log}"
    );
    // And it is scheduled again, about a minute later.
    let next = sb.systemctl(&[
        "show",
        "-p",
        "NextElapseUSecMonotonic",
        "--value",
        "failover-manager.timer",
    ]);
    assert!(
        !next.trim().is_empty() && next.trim() != "infinity",
        "timer not rescheduled: {next}"
    );
}

/// Runs the shipped service once and waits for it to finish; returns its journal as JSON lines.
fn run_service(sb: &Sandbox) -> Vec<serde_json::Value> {
    let _ = sb.exec(&["systemctl", "start", "failover-manager.service"]);
    sb.wait_state(
        "failover-manager.service",
        "!activating",
        Duration::from_secs(10),
    );
    let log = sb.ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "json",
        "_SYSTEMD_UNIT=failover-manager.service",
    ]);
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn priority_of(entries: &[serde_json::Value], needle: &str) -> Option<String> {
    entries
        .iter()
        .find(|e| e["MESSAGE"].as_str().is_some_and(|m| m.contains(needle)))
        .and_then(|e| e["PRIORITY"].as_str().map(str::to_owned))
}

#[test]
fn journal_gets_syslog_priorities_and_a_failure_reaches_on_failure() {
    let t = Test::new()
        .unit(Unit::simple("db.service"))
        .unit(Unit::fails_at_once("app.service"))
        .unit(Unit::simple("web.service"))
        .defaults("{ verify_timeout: 5s, settle: 300ms }")
        .primary();
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    sb.write(
        "/etc/systemd/system/failover-manager.service.d/alert.conf",
        "[Unit]\nOnFailure=failover-manager-alert@%n.service\n",
    );
    sb.daemon_reload();
    let entries = run_service(&sb);
    assert_eq!(sb.state("failover-manager.service"), "failed");
    // The change line (stdout) is info; the failure (stderr, "<3>" prefix) is err, without
    // the prefix left in the message.
    assert_eq!(
        priority_of(&entries, "started db.service").as_deref(),
        Some("6")
    );
    assert_eq!(
        priority_of(&entries, "app.service did not start").as_deref(),
        Some("3")
    );
    assert_eq!(
        priority_of(&entries, "did not start web.service").as_deref(),
        Some("3")
    );
    assert!(
        !entries
            .iter()
            .any(|e| e["MESSAGE"].as_str().is_some_and(|m| m.starts_with('<'))),
        "a priority prefix leaked into a message"
    );
    let errs = sb.ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-p",
        "err",
        "-u",
        "failover-manager.service",
    ]);
    assert!(errs.contains("app.service did not start"), "{errs}");
    assert!(!errs.contains("started db.service"), "{errs}");
    // OnFailure= started the shipped alert example, which relayed the errors at crit.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let mut alert = String::new();
    while std::time::Instant::now() < end {
        alert = sb.ok(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-t",
            "failover-manager-alert",
        ]);
        if alert.contains("app.service did not start") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        alert.contains("app.service did not start"),
        "alert saw: {alert}"
    );
}

#[test]
fn exit_75_from_a_skipped_minute_is_a_success_for_systemd() {
    let t = Test::new().unit(Unit::simple("app.service")).primary();
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    sb.write(
        "/etc/systemd/system/failover-manager.service.d/wait.conf",
        "[Service]\nExecStart=\nExecStart=/usr/bin/failover-manager reconcile --lock-wait 200ms\n",
    );
    sb.daemon_reload();
    sb.ok(&["mkdir", "-p", "/run/failover-manager"]);
    let mut holder = sb
        .command(&["flock", "/run/failover-manager/lock", "sleep", "30"])
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    let entries = run_service(&sb);
    let _ = holder.kill();
    let _ = holder.wait();
    let result = sb.systemctl(&[
        "show",
        "-p",
        "Result,ExecMainStatus",
        "failover-manager.service",
    ]);
    let msgs: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["MESSAGE"].as_str())
        .collect();
    assert!(result.contains("Result=success"), "{result} {msgs:?}");
    assert_ne!(sb.state("failover-manager.service"), "failed");
    assert!(priority_of(&entries, "another failover-manager run").is_some());
    assert_eq!(sb.starts("app.service"), 0);
}

#[test]
fn make_demo_shows_a_takeover_and_a_hand_back() {
    if !crate::sandbox::available() {
        return;
    }
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/demo.sh");
    let out = std::process::Command::new(demo)
        .arg(env!("CARGO_BIN_EXE_failover-manager"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "+ shop-db.service       primary  want running  is inactive",
        "standby\u{2192}primary: stopped replica-sync.service",
        "standby\u{2192}primary: started shop-db.service",
        "standby\u{2192}primary: started shop-web.service",
        "role unknown: the primary check exited 2",
        "primary\u{2192}standby: stopped shop-web.service",
        "primary\u{2192}standby: started replica-sync.service",
    ] {
        assert!(text.contains(line), "demo output lacks {line:?}:\n{text}");
    }
    assert!(text.matches("\nin sync\n").count() >= 2, "{text}");
}
