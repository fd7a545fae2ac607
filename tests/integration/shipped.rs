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

/// `systemd-analyze security`'s overall exposure for `unit` (0 = locked down, 10 = unsafe), from
/// its last line: "→ Overall exposure level for UNIT: 1.8 OK 🙂".
fn exposure(sb: &Sandbox, unit: &str) -> f64 {
    let out = sb.ok(&["systemd-analyze", "security", "--no-pager", unit]);
    let prefix = format!("Overall exposure level for {unit}: ");
    out.lines()
        .find_map(|l| l.split_once(&prefix))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level for {unit} in:\n{out}"))
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn shipped_units_pass_systemd_analyze_verify_and_the_service_is_hardened() {
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
    // docs/hardening.md: 9.6 (UNSAFE) without the sandbox.
    let level = exposure(&sb, "failover-manager.service");
    assert!(
        level <= 2.5,
        "systemd-analyze security: failover-manager.service exposure {level} > 2.5"
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
    assert_eq!(sb.result("failover-manager.service"), "success");
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
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
    // OnFailure= started the shipped alert unit, which paged the incident's start at crit.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let mut alert = String::new();
    while std::time::Instant::now() < end {
        alert = sb.ok(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-t",
            "failover-manager-page",
        ]);
        if alert.contains("incident started") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        alert.contains("incident started") && alert.contains("its runs fail (exit 1)"),
        "alert saw: {alert}"
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
        .command(&[
            "flock",
            "/run/failover-manager/lock",
            "sh",
            "-c",
            "touch /run/fm-test/lock-held; exec sleep 30",
        ])
        .spawn()
        .expect("spawn");
    sb.wait_for_file("/run/fm-test/lock-held", Duration::from_secs(10));
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

/// What a real primary check runs: netlink (`ip`), NSS (`getent`), systemd (`systemctl`). Any of
/// them failing in the sandbox makes the role unknown (exit 2), so nothing would be started.
const CHECK: &str = "#!/bin/sh
set -eu
ip -o addr show >/dev/null || exit 2
getent ahosts localhost >/dev/null || exit 2
case $(systemctl is-active app.service) in active | inactive | failed) ;; *) exit 2 ;; esac
exit \"$(cat /run/fm-test/check-exit)\"
";

/// An on_promote hook: writes where the unit lets hooks write (/run/failover-manager), and tries
/// two places it does not.
const HOOK: &str = "#!/bin/sh
set -eu
echo \"$FAILOVER_MANAGER_EVENT $FAILOVER_MANAGER_STARTED\" >/run/failover-manager/hook-ran
touch /run/fm-test/hook-escaped 2>/dev/null || true
touch /etc/hook-escaped 2>/dev/null || true
";

const METRICS_DIR: &str = "/var/lib/fm-metrics";
const DROP_IN: &str = "/etc/systemd/system/failover-manager.service.d/metrics.conf";

fn install_program(sb: &Sandbox, path: &str, body: &str) {
    sb.write(path, body);
    sb.ok(&["chmod", "755", path]);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn hardened_service_checks_starts_locks_runs_hooks_honours_pause_and_writes_metrics() {
    let config = format!(
        "check: {{command: [/usr/local/lib/fm-test/check], timeout: 10s}}\n\
         defaults: {{verify_timeout: 5s, settle: 0s}}\n\
         hooks:\n  on_promote: {{command: [/usr/local/lib/fm-test/hook]}}\n\
         metrics_file: {METRICS_DIR}/failover_manager.prom\n\
         units:\n  - app.service\n"
    );
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .config(&config)
        .primary();
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    install_program(&sb, "/usr/local/lib/fm-test/check", CHECK);
    install_program(&sb, "/usr/local/lib/fm-test/hook", HOOK);
    sb.ok(&["mkdir", "-m", "755", "-p", METRICS_DIR]);
    // docs/metrics-and-alerts.md's drop-in for a metrics_file.
    sb.write(
        DROP_IN,
        &format!("[Service]\nReadWritePaths={METRICS_DIR}\n"),
    );
    sb.daemon_reload();
    // keepalived's notify script (or an operator) wrote the role file before any run.
    sb.ok(&["mkdir", "-p", "/run/failover-manager"]);
    sb.write("/run/failover-manager/role", "primary\n");

    // Primary: the check ran its programs, app.service was started, the hook ran.
    let entries = run_service(&sb);
    let msgs: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["MESSAGE"].as_str())
        .collect();
    assert_eq!(
        sb.result("failover-manager.service"),
        "success",
        "{msgs:#?}"
    );
    assert_eq!(sb.state("app.service"), "active", "{msgs:#?}");
    assert!(sb.path("/run/failover-manager/lock").is_file());
    assert_eq!(
        sb.read("/run/failover-manager/hook-ran"),
        "promote app.service\n"
    );
    // The sandbox is really there: the hook could not write outside its directories.
    assert!(!sb.path("/run/fm-test/hook-escaped").exists());
    assert!(!sb.path("/etc/hook-escaped").exists());
    // The run's directory outlives the run, with what others wrote in it.
    assert_eq!(sb.read("/run/failover-manager/role"), "primary\n");
    let prom = format!("{METRICS_DIR}/failover_manager.prom");
    let metrics = sb.read(&prom);
    assert!(
        metrics.contains("failover_manager_role{role=\"primary\"} 1\n"),
        "{metrics}"
    );

    // Paused (by hand, outside the unit): a standby answer changes nothing.
    sb.ok(&[crate::sandbox::BIN, "pause", "--reason", "drill"]);
    sb.write("/run/fm-test/check-exit", "1");
    run_service(&sb);
    assert_eq!(sb.result("failover-manager.service"), "success");
    assert_eq!(sb.state("app.service"), "active");
    assert!(
        sb.read(&prom).contains("failover_manager_paused 1\n"),
        "{}",
        sb.read(&prom)
    );

    // Without the drop-in the metrics directory is read-only to the run: it still acts (stops
    // app.service), and fails, naming the file.
    sb.ok(&[crate::sandbox::BIN, "resume"]);
    sb.ok(&["rm", DROP_IN]);
    sb.daemon_reload();
    let entries = run_service(&sb);
    assert_eq!(sb.state("app.service"), "inactive");
    assert_eq!(sb.result("failover-manager.service"), "exit-code");
    assert!(
        entries.iter().any(|e| e["MESSAGE"]
            .as_str()
            .is_some_and(|m| m.contains(&prom) && m.contains("Read-only file system"))),
        "{:#?}",
        entries
            .iter()
            .filter_map(|e| e["MESSAGE"].as_str())
            .collect::<Vec<_>>()
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
