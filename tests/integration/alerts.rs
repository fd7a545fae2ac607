//! The shipped Prometheus alerting rules (examples/prometheus/alerts.yml) load, and each fires on
//! a series that should page and stays quiet on one that should not (alerts_test.yml), checked by
//! Prometheus's own promtool.

use std::path::Path;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus");

/// promtool comes with Debian's prometheus package (installed by tests/setup.sh). Without it
/// on PATH the build ignores these tests (build.rs: `cfg(fm_no_promtool)`, never under
/// CI=true); one that runs must run.
fn promtool_ok(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(Path::new(DIR))
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (make setup installs it): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
#[cfg_attr(fm_no_promtool, ignore = "needs promtool (make setup)")]
fn alert_rules_are_valid_prometheus_rules() {
    let out = promtool_ok(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
}

#[test]
#[cfg_attr(fm_no_promtool, ignore = "needs promtool (make setup)")]
fn every_alert_fires_on_its_fault_and_not_otherwise() {
    let out = promtool_ok(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    // Every rule has a test: a rule without one is a rule nobody has seen fire.
    let rules = std::fs::read_to_string(Path::new(DIR).join("alerts.yml")).unwrap_or_default();
    let tests = std::fs::read_to_string(Path::new(DIR).join("alerts_test.yml")).unwrap_or_default();
    for name in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let fires = format!("alertname: {name}\n        exp_alerts:\n          - exp_labels");
        let quiet = format!("alertname: {name}\n        exp_alerts: []");
        assert!(tests.contains(&fires), "no test where {name} fires");
        assert!(tests.contains(&quiet), "no test where {name} stays quiet");
    }
}
