//! The shipped Prometheus alerting rules (examples/prometheus/alerts.yml) load, and each fires on
//! a series that should page and stays quiet on one that should not (alerts_test.yml), checked by
//! Prometheus's own promtool.

use std::path::Path;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus");

/// promtool comes with Debian's prometheus package (installed by tests/setup.sh). Under CI it
/// must be there; elsewhere the test is skipped, loudly.
fn promtool() -> Option<&'static str> {
    if Command::new("promtool").arg("--version").output().is_ok() {
        return Some("promtool");
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but promtool is missing (apt-get install prometheus, or make setup)"
    );
    eprintln!("\n*** SKIPPED: promtool not installed (make setup) ***\n");
    None
}

fn promtool_ok(args: &[&str]) -> String {
    let Some(p) = promtool() else {
        return String::new();
    };
    let out = Command::new(p)
        .args(args)
        .current_dir(Path::new(DIR))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_are_valid_prometheus_rules() {
    let out = promtool_ok(&["check", "rules", "alerts.yml"]);
    if !out.is_empty() {
        assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    }
}

#[test]
fn every_alert_fires_on_its_fault_and_not_otherwise() {
    let out = promtool_ok(&["test", "rules", "alerts_test.yml"]);
    if !out.is_empty() {
        assert!(out.contains("SUCCESS"), "{out}");
    }
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
