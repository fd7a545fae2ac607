//! One page per incident, through the shipped units: failover-manager.service with
//! `OnFailure=failover-manager-alert@%n.service` (the drop-in docs/metrics-and-alerts.md gives) and the shipped
//! alert unit, whose pager is logger (tag failover-manager-page). The runs' exit status stays
//! what it was: failed runs are failed units.

use std::time::Duration;

use crate::sandbox::Sandbox;
use crate::test::Test;
use crate::unit::Unit;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units");
const ALERT: &str = "failover-manager-alert@failover-manager.service.service";

fn setup(t: &Test) -> Option<Sandbox> {
    let sb = t.setup()?;
    for f in [
        "failover-manager.service",
        "failover-manager-alert@.service",
    ] {
        let body = std::fs::read_to_string(format!("{UNITS}/{f}")).expect("shipped unit");
        sb.install_unit(f, &body);
    }
    sb.write(
        "/etc/systemd/system/failover-manager.service.d/alert.conf",
        "[Unit]\nOnFailure=failover-manager-alert@%n.service\n",
    );
    sb.daemon_reload();
    Some(sb)
}

/// One run of the shipped service, then the alert unit (if it was started) to its end; the
/// run's result as systemd has it.
fn run(sb: &Sandbox) -> String {
    let _ = sb.exec(&["systemctl", "start", "failover-manager.service"]);
    sb.wait_state(
        "failover-manager.service",
        "!activating",
        Duration::from_secs(20),
    );
    // OnFailure= (or the run itself, at an incident's end) queued the alert unit's job before
    // the run ended: no job left and the unit not running is the alert unit done.
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while !(sb.jobs().trim().is_empty() && sb.state(ALERT) != "activating") {
        assert!(
            std::time::Instant::now() < end,
            "the alert unit did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.result("failover-manager.service")
}

fn pages(sb: &Sandbox) -> Vec<String> {
    sb.ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-t",
        "failover-manager-page",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// How often the alert unit was started (each start is a line of systemd's about it).
fn alert_starts(sb: &Sandbox) -> usize {
    sb.ok(&["journalctl", "--no-pager", "-o", "cat", "-u", ALERT])
        .lines()
        .filter(|l| l.starts_with("Starting ") || l.contains("Starting failover-manager-alert@"))
        .count()
}

/// Three runs that fail: each listed by `systemctl --failed`, each starting the alert unit
/// (`OnFailure=`; systemd may merge two starts into one still running).
fn three_failed_runs(sb: &Sandbox) {
    for i in 0..3 {
        assert_eq!(run(sb), "exit-code", "run {i}");
        assert!(
            sb.systemctl(&["--failed", "--no-legend"])
                .contains("failover-manager.service"),
            "run {i}: not in systemctl --failed"
        );
    }
    assert!(
        alert_starts(sb) >= 2,
        "OnFailure= did not start the alert unit at each failure"
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn failing_runs_page_once_and_the_end_once() {
    let t = Test::new()
        .unit(Unit::fails_at_once("app.service"))
        // Long enough to see it die (a simple unit is active the instant it forks).
        .defaults("{ verify_timeout: 5s, settle: 300ms }")
        .primary();
    let Some(sb) = setup(&t) else { return };
    three_failed_runs(&sb);
    let p = pages(&sb);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("incident started") && p[0].contains("its runs fail (exit 1)"),
        "{p:?}"
    );
    // The end: the check says standby, app.service is to be stopped (it is): the run
    // succeeds, and starts the alert unit once more, which pages the end.
    sb.write("/run/fm-test/check-exit", "1");
    assert_eq!(run(&sb), "success");
    assert_eq!(run(&sb), "success");
    let p = pages(&sb);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[1].contains("incident ended"), "{p:?}");
    // A new incident is a new page.
    sb.write("/run/fm-test/check-exit", "0");
    assert_eq!(run(&sb), "exit-code");
    assert_eq!(run(&sb), "exit-code");
    let p = pages(&sb);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[2].contains("incident started"), "{p:?}");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_standby_whose_role_is_unknown_and_runs_nothing_is_failed_but_not_paged() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("replica.service").standby())
        .running(&["replica.service"])
        .check_exits(7);
    let Some(sb) = setup(&t) else { return };
    three_failed_runs(&sb);
    assert_eq!(pages(&sb), Vec::<String>::new());
    let incident = sb.read("/run/failover-manager/incident");
    assert!(incident.contains("\"pageable\":false"), "{incident}");
    // Its role comes back: the incident ends, and nobody hears of it.
    sb.write("/run/fm-test/check-exit", "1");
    assert_eq!(run(&sb), "success");
    assert_eq!(pages(&sb), Vec::<String>::new());
    // The same host running the application when its role becomes unknown (no fence_after:
    // nothing would stop it) is paged.
    sb.systemctl(&["start", "app.service"]);
    sb.write("/run/fm-test/check-exit", "7");
    assert_eq!(run(&sb), "exit-code");
    let p = pages(&sb);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("the role is unknown while a primary unit runs here"),
        "{p:?}"
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_primary_pages_when_it_fences_not_while_it_waits_to() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .config(
            "check:\n  command: [/bin/sh, -c, \"exit $(cat /run/fm-test/check-exit)\"]\n  \
             timeout: 5s\n  fence_after: 2s\ndefaults: { verify_timeout: 5s, settle: 0s }\n\
             units:\n  - app.service\n",
        )
        .primary();
    let Some(sb) = setup(&t) else { return };
    assert_eq!(run(&sb), "success");
    assert_eq!(sb.state("app.service"), "active");
    // Unknown: app.service runs, but fencing will stop it if this lasts: no page yet.
    sb.write("/run/fm-test/check-exit", "7");
    assert_eq!(run(&sb), "exit-code");
    assert_eq!(sb.state("app.service"), "active");
    assert_eq!(pages(&sb), Vec::<String>::new());
    // Fenced: the page, once, however many runs stay fenced.
    std::thread::sleep(Duration::from_millis(2200));
    for _ in 0..3 {
        assert_eq!(run(&sb), "exit-code");
    }
    assert_eq!(sb.state("app.service"), "inactive");
    let p = pages(&sb);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("incident started") && p[0].contains("fenced"),
        "{p:?}"
    );
    // The role back: the end.
    sb.write("/run/fm-test/check-exit", "0");
    assert_eq!(run(&sb), "success");
    let p = pages(&sb);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[1].contains("incident ended"), "{p:?}");
}
