//! What the repo ships (units/, examples/) works on a real systemd.

use std::time::Duration;

use crate::sandbox::Sandbox;
use crate::test::Test;
use crate::unit::Unit;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units");

fn install_shipped(sb: &Sandbox) {
    for f in ["failover-manager.service", "failover-manager.timer"] {
        let body = std::fs::read_to_string(format!("{UNITS}/{f}")).expect("shipped unit");
        sb.install_unit(f, &body);
    }
    sb.daemon_reload();
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let t = Test::new().unit(Unit::simple("app.service"));
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    let out = sb.exec(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        "/usr/local/lib/systemd/system/failover-manager.service",
        "/usr/local/lib/systemd/system/failover-manager.timer",
    ]);
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
fn shipped_timer_fires_the_service_which_reconciles() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("replica.service").standby())
        .running(&["replica.service"])
        .primary();
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    sb.systemctl(&["start", "failover-manager.timer"]);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while sb.state("app.service") != "active" && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sb.state("app.service"),
        "active",
        "the timer did not reconcile"
    );
    assert_eq!(sb.state("replica.service"), "inactive");
    // The service ran to success, and the journal has its change lines.
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while sb.state("failover-manager.service") == "activating" && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
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
