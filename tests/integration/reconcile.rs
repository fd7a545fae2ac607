use std::time::Duration;

use crate::test::Test;
use crate::unit::Unit;

fn site() -> Test {
    Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::oneshot("web.service"))
        .unit(Unit::simple("replica.service").standby())
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn standby_to_primary_stops_standby_units_first_then_starts_and_verifies() {
    let ran = site()
        .running(&["replica.service"])
        .primary()
        .status(0)
        .stdout_has("standby\u{2192}primary: stopped replica.service (inactive after ")
        .stdout_has("standby\u{2192}primary: started app.service (active after ")
        .stdout_has("standby\u{2192}primary: started web.service (active after ")
        .stderr("")
        .active("app.service")
        .active("web.service")
        .inactive("replica.service")
        .starts("app.service", 1)
        .no_jobs()
        .run();
    if let Some(r) = ran {
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", r.stdout);
        assert!(
            lines[0].contains("stopped replica"),
            "stops come first: {}",
            r.stdout
        );
        assert!(
            lines[1].contains("app") && lines[2].contains("web"),
            "config order"
        );
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn primary_to_standby_stops_primary_units_and_starts_the_standby_one() {
    let ran = site()
        .running(&["app.service", "web.service"])
        .standby()
        .status(0)
        .stdout_has("primary\u{2192}standby: stopped web.service")
        .stdout_has("primary\u{2192}standby: stopped app.service")
        .stdout_has("primary\u{2192}standby: started replica.service")
        .inactive("app.service")
        .inactive("web.service")
        .active("replica.service")
        .run();
    if let Some(r) = ran {
        let web = r.stdout.find("stopped web").unwrap_or(usize::MAX);
        let app = r.stdout.find("stopped app").unwrap_or(0);
        assert!(web < app, "stops run in reverse config order: {}", r.stdout);
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_stop_that_hangs_blocks_every_start_so_both_roles_never_run() {
    let ran = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::ignores_term("replica.service").standby().key("verify_timeout: 1s"))
        .running(&["replica.service"])
        .primary()
        .status(1)
        .stderr_has("replica.service did not stop: still deactivating (stop-sigterm) after 1.0s (verify_timeout)")
        .stderr_has("did not start app.service: replica.service did not stop, and both roles must never run at once")
        .state("replica.service", "deactivating")
        .inactive("app.service")
        .starts("app.service", 0)
        .run();
    // The next run finds the replica still deactivating: not stopped yet, so still no start.
    if let Some(r) = ran {
        r.then(&["reconcile"])
            .status(1)
            .stderr_has("replica.service did not stop: still deactivating")
            .stderr_has("did not start app.service: replica.service did not stop")
            .check();
        assert_eq!(r.sandbox.state("app.service"), "inactive");
        assert_eq!(r.sandbox.starts("app.service"), 0);
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn steady_state_prints_nothing_and_exits_0() {
    let ran = site()
        .primary()
        .stdout_has("primary: started app.service")
        .stdout_has("primary: started web.service")
        .run();
    if let Some(r) = ran {
        r.then(&["reconcile"]).check();
        // The default command is reconcile.
        r.then(&[]).check();
        assert_eq!(r.sandbox.starts("app.service"), 1, "no second start");
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn unknown_role_changes_nothing_and_exits_3() {
    site()
        .running(&["app.service"])
        .check_exits(2)
        .status(3)
        .stdout("")
        .stderr_has("role unknown: the primary check exited 2 in ")
        .stderr_has("nothing was started or stopped")
        .active("app.service")
        .inactive("web.service")
        .inactive("replica.service")
        .starts("app.service", 1)
        .starts("replica.service", 0)
        .no_jobs()
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn check_that_hangs_is_killed_with_its_children_and_changes_nothing() {
    let ran = site()
        .running(&["app.service"])
        .check_command(&["/bin/sh", "-c", "sleep 300 & exec sleep 301"])
        .check_timeout("1s")
        .status(3)
        .stderr_has("role unknown: the primary check timed out in 1.")
        .active("app.service")
        .no_jobs()
        .run();
    if let Some(r) = ran {
        let left = r.sandbox.exec(&["pgrep", "-f", "sleep 30[01]"]);
        assert!(
            String::from_utf8_lossy(&left.stdout).trim().is_empty(),
            "check processes outlived the run"
        );
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn settle_window_catches_a_unit_that_dies_after_a_second() {
    Test::new()
        .unit(Unit::dies_after_1s("flaky.service").key("settle: 3s"))
        .unit(Unit::simple("after.service"))
        .primary()
        .status(1)
        .stderr_has("flaky.service did not start: went ")
        .stderr_has("after it became active (within its 3.0s settle window)")
        .stderr_has("exit status 3")
        .stderr_has("flaky.service | lost connection to database")
        .stderr_has("did not start after.service: flaky.service failed before it")
        .state("flaky.service", "failed")
        .inactive("after.service")
        .starts("after.service", 0)
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_failed_start_stops_the_group_and_exits_1() {
    Test::new()
        .unit(Unit::simple("db.service"))
        .unit(Unit::fails_at_once("app.service"))
        .unit(Unit::simple("web.service"))
        .defaults("{ verify_timeout: 5s, settle: 500ms }")
        .primary()
        .status(1)
        .stdout_has("started db.service")
        .stderr_has("app.service did not start: ")
        .stderr_has("result exit-code, exit status 1")
        .stderr_has("app.service | cannot open /etc/app.conf")
        .stderr_has("did not start web.service: app.service failed before it")
        .active("db.service")
        .state("app.service", "failed")
        .inactive("web.service")
        .starts("web.service", 0)
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_unit_stuck_activating_times_out() {
    let ran = Test::new()
        .unit(Unit::never_ready("slow.service").key("verify_timeout: 1s"))
        .primary()
        .status(1)
        .stderr_has(
            "slow.service did not start: still activating (start) after 1.0s (verify_timeout)",
        )
        .unit(Unit::simple("after.service"))
        .state("slow.service", "activating")
        .starts("after.service", 0)
        .run();
    // Still stuck on the next run: still a failure, and what comes after it still waits.
    if let Some(r) = ran {
        r.then(&["reconcile"])
            .status(1)
            .stderr_has("slow.service did not start: still activating")
            .check();
        assert_eq!(r.sandbox.starts("slow.service"), 1, "no second start job");
        assert_eq!(r.sandbox.starts("after.service"), 0);
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_failed_unit_restarts_even_while_its_start_waits_for_a_dependency() {
    let dep = Unit {
        name: "dep.service".into(),
        body: "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 1\n".into(),
        keys: vec![],
    };
    let app = Unit {
        name: "app.service".into(),
        body: "[Unit]\nWants=dep.service\nAfter=dep.service\n[Service]\n\
               ExecStartPre=/bin/test -e /run/fm-test/ok\nExecStart=/bin/sleep infinity\n"
            .into(),
        keys: vec![],
    };
    let t = Test::new().unit(app).primary();
    let Some(sb) = t.setup() else { return };
    sb.install_unit("dep.service", &dep.body);
    sb.daemon_reload();
    // First start fails: app.service is `failed`, and dep.service is up.
    let _ = sb.exec(&["systemctl", "start", "app.service"]);
    assert_eq!(sb.state("app.service"), "failed");
    sb.systemctl(&["stop", "dep.service"]);
    sb.write("/run/fm-test/ok", "");
    // Now its start job waits a second for dep.service, while the unit still says `failed`.
    let out = sb.exec(&[crate::sandbox::BIN, "reconcile"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("started app.service (active after 1."));
    assert_eq!(sb.state("app.service"), "active");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn dry_run_prints_the_plan_and_creates_no_job() {
    site()
        .running(&["replica.service"])
        .primary()
        .args(&["reconcile", "--dry-run"])
        .status(0)
        .stdout(
            "standby\u{2192}primary: would stop replica.service (is active, wanted stopped)\n\
             standby\u{2192}primary: would start app.service (is inactive, wanted running)\n\
             standby\u{2192}primary: would start web.service (is inactive, wanted running)\n",
        )
        .active("replica.service")
        .inactive("app.service")
        .starts("app.service", 0)
        .starts("replica.service", 1)
        .no_jobs()
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn diff_shows_drift_creates_no_job_and_is_clean_after_reconcile() {
    let ran = site()
        .running(&["replica.service"])
        .primary()
        .args(&["diff"])
        .status(1)
        .stdout_has("role: primary (check exited 0 in ")
        .active("replica.service")
        .inactive("app.service")
        .no_jobs()
        .run();
    if let Some(r) = ran {
        let body: Vec<&str> = r.stdout.lines().skip(1).collect();
        assert_eq!(
            body,
            [
                "+ app.service      primary  want running  is inactive",
                "+ web.service      primary  want running  is inactive",
                "- replica.service  standby  want stopped  is active",
                "3 of 3 units differ",
            ]
        );
        r.then(&["reconcile"]).any_stdout().check();
        let out = r
            .then(&["diff"])
            .stdout_has("\n  app.service      primary  want running  is active\n")
            .check();
        assert!(out.ends_with("in sync\n"), "{out}");
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn json_output_reports_every_unit_and_outcome() {
    let ran = site()
        .running(&["replica.service"])
        .primary()
        .args(&["reconcile", "--output", "json"])
        .status(0)
        .any_stdout()
        .run();
    if let Some(r) = ran {
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
        assert_eq!(v["role"], "primary");
        assert_eq!(v["previous_role"], "standby");
        assert_eq!(v["check"]["exit_code"], 0);
        assert_eq!(v["units"][0]["name"], "app.service");
        assert_eq!(v["units"][0]["action"], "start");
        assert_eq!(v["units"][0]["outcome"]["status"], "done");
        assert_eq!(v["units"][2]["action"], "stop");
        assert_eq!(v["units"][2]["outcome"]["status"], "done");
        assert!(
            r.eventually(Duration::from_secs(1), |s| s.state("app.service")
                == "active")
        );
    }
}

/// Succeeds once, logging a line that names the attempt; every later start fails silently.
fn succeeds_once() -> Unit {
    Unit {
        name: "app.service".into(),
        body: "[Service]\nExecStart=/bin/sh -c 'if [ -e /run/fm-test/ran ]; then exit 1; fi; \
               touch /run/fm-test/ran; echo \"earlier run $(cat /run/fm-test/attempt)\"'\n"
            .into(),
        keys: vec![],
    }
}

/// Seconds (Unix time) of the journal lines of `unit` that contain `needle`.
fn logged_at(sb: &crate::sandbox::Sandbox, unit: &str, needle: &str) -> Vec<u64> {
    sb.ok(&["journalctl", "--no-pager", "-o", "short-unix", "-u", unit])
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split('.').next()?.parse().ok())
        .collect()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_failure_shows_only_journal_lines_logged_since_its_step_began() {
    // A settle window, so that a start that dies at once is never taken for a success.
    let t = Test::new()
        .unit(succeeds_once())
        .defaults("{ verify_timeout: 5s, settle: 500ms }")
        .primary();
    let Some(sb) = t.setup() else { return };
    // The old bug: lines from the same second as the step, before it, got in. So the earlier
    // run must log in the second the step begins in; retried on the rare second boundary.
    for attempt in 1..=5 {
        sb.write("/run/fm-test/attempt", &attempt.to_string());
        let _ = sb.exec(&["rm", "-f", "/run/fm-test/ran"]);
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_millis() > 300)
            .unwrap_or(false)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        sb.systemctl(&["start", "app.service"]);
        assert!(sb.wait_state("app.service", "inactive", Duration::from_secs(5)));
        let out = sb.exec(&[crate::sandbox::BIN, "reconcile"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let earlier = logged_at(&sb, "app.service", &format!("earlier run {attempt}"));
        let started = logged_at(&sb, "app.service", "Started ");
        // The step began after the earlier line and before its own start was logged.
        if earlier.last() != started.last() {
            eprintln!("attempt {attempt} crossed a second boundary; again");
            continue;
        }
        // Not empty: the step's own start is there (what comes after may still be on its
        // way to the journal when the failure is reported).
        assert!(
            err.contains("app.service | Started app.service."),
            "the excerpt has the step's own lines: {err}"
        );
        assert!(!err.contains("earlier run"), "{err}");
        return;
    }
    panic!("no attempt ran the earlier line and the step within one second");
}
