//! The command line against a real host: config errors, validate, the config path rules.

use std::process::Stdio;

use crate::sandbox;
use crate::test::{Test, fixtures};
use crate::unit::Unit;

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
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

/// `failover-manager diff | head`: stdout's reader is gone (here before a word is written, its
/// end of the pipe closed before the run). Each command ends as it would have with a reader,
/// and says nothing about the pipe.
#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_reader_that_has_gone_changes_neither_the_status_nor_what_is_done() {
    let Some(r) = fixtures::host()
        .primary()
        .args(&["diff"])
        .status(1)
        .any_stdout()
        .run()
    else {
        return;
    };
    let without_reader = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut argv = vec![sandbox::BIN];
        argv.extend(args);
        let out = r
            .sandbox
            .command(&argv)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("nsenter");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    let quiet = |code| (Some(code), String::new());
    assert_eq!(without_reader(&["diff"]), quiet(1), "drift");
    // Acts, and exits as it converged, though it could not say what it did.
    assert_eq!(without_reader(&["reconcile"]), quiet(0), "reconcile");
    assert_eq!(r.sandbox.state("app.service"), "active");
    assert_eq!(r.sandbox.state("replica.service"), "inactive");
    for args in [
        &["diff"][..],
        &["diff", "--output", "json"],
        &["reconcile", "--dry-run"],
        &["validate"],
    ] {
        assert_eq!(without_reader(args), quiet(0), "{args:?}");
    }
}
