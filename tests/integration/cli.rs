//! The command line against a real host: config errors, validate, the config path rules.

use crate::test::Test;
use crate::unit::Unit;

#[test]
fn invalid_config_exits_78_names_line_and_key_and_changes_nothing() {
    Test::new()
        .unit(Unit::simple("app.service"))
        .config("check:\n  command: [/bin/true]\nunits:\n  - name: app.service\n    timeot: 5s\n")
        .args(&["reconcile"])
        .status(78)
        .stdout("")
        .stderr(
            "error: /etc/failover-manager/config.yaml:5:5: units[0]: unknown field `timeot`, \
             expected one of `name`, `when`, `verify_timeout`, `settle`, `managed`\n",
        )
        .inactive("app.service")
        .starts("app.service", 0)
        .no_jobs()
        .run();
}

#[test]
fn validate_accepts_a_good_config_and_rejects_a_bad_one() {
    let ran = Test::new()
        .unit(Unit::simple("app.service"))
        .args(&["validate"])
        .status(0)
        .stdout("/etc/failover-manager/config.yaml: valid (1 units)\n")
        .run();
    if let Some(r) = ran {
        r.sandbox.write(
            crate::test::CONFIG,
            "check: {command: [x]}\nunits: [\"--now\"]\n",
        );
        r.then(&["validate"])
            .status(78)
            .stderr_has("config.yaml:2:")
            .stderr_has("looks like an option")
            .check();
    }
}

#[test]
fn config_path_flag_and_environment_variable() {
    let ran = Test::new()
        .unit(Unit::simple("app.service"))
        .primary()
        .env("FAILOVER_MANAGER_CONFIG", "/etc/other.yaml")
        .args(&["validate"])
        .status(78)
        .stderr_has("/etc/other.yaml: cannot read config")
        .run();
    if let Some(r) = ran {
        r.then(&["-c", "/etc/failover-manager/config.yaml", "validate"])
            .stdout_has("valid (1 units)")
            .check();
        r.then(&["-c", "/nonexistent.yaml"])
            .status(78)
            .stderr_has("/nonexistent.yaml: cannot read config")
            .check();
    }
}

#[test]
fn usage_errors_exit_2() {
    let ran = Test::new()
        .unit(Unit::simple("app.service"))
        .args(&["--bogus"])
        .status(2)
        .stderr_has("'--bogus'")
        .run();
    if let Some(r) = ran {
        r.then(&["diff", "--dry-run"])
            .status(2)
            .stderr_has("'--dry-run'")
            .check();
        r.then(&["reconcile", "--output", "yaml"])
            .status(2)
            .stderr_has("'yaml'")
            .check();
        r.then(&["--help"]).stdout_has("reconcile").check();
    }
}
