//! Safe under faults: hysteresis, one run at a time, signals, maintenance, hooks, script
//! security, and what `validate` learns from the host.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sandbox::BIN;
use crate::test::fixtures::host;
use crate::test::{CONFIG, Test};
use crate::unit::Unit;

/// A check that answers primary, standby, primary, … and logs every call.
const FLAPPING: &str = "echo call >> /run/fm-test/calls; \
    if [ -e /run/fm-test/flip ]; then rm /run/fm-test/flip; exit 1; else touch /run/fm-test/flip; exit 0; fi";

fn with_confirm(t: Test, check: &str, confirm: u32) -> Test {
    let yaml = format!(
        "check:\n  command: [/bin/sh, -c, {check:?}]\n  confirm: {confirm}\n  confirm_interval: 100ms\n\
         defaults: {{ verify_timeout: 5s, settle: 0s }}\nunits:\n  - app.service\n  - name: replica.service\n    when: standby\n"
    );
    t.config(&yaml)
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_flapping_check_never_moves_a_unit_with_confirm_3() {
    let ran = with_confirm(host(), FLAPPING, 3)
        .status(0)
        .stdout("")
        .stderr("")
        .run();
    if let Some(r) = ran {
        for _ in 0..4 {
            r.then(&["reconcile", "-v"])
                .stderr_has("not acting until 3 results in a row agree")
                .check();
        }
        assert_eq!(r.sandbox.state("replica.service"), "active");
        assert_eq!(r.sandbox.state("app.service"), "inactive");
        assert_eq!(r.sandbox.starts("app.service"), 0);
        assert_eq!(r.sandbox.starts("replica.service"), 1);
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn confirm_acts_after_n_agreeing_results_and_steady_state_costs_one_check() {
    let check = "echo call >> /run/fm-test/calls; exit 0";
    let ran = with_confirm(host(), check, 3)
        .status(0)
        .stdout_has("started app.service")
        .active("app.service")
        .inactive("replica.service")
        .run();
    if let Some(r) = ran {
        assert_eq!(r.sandbox.read("/run/fm-test/calls").lines().count(), 3);
        r.then(&["reconcile"]).check();
        assert_eq!(
            r.sandbox.read("/run/fm-test/calls").lines().count(),
            4,
            "one check in steady state"
        );
    }
}

/// The JSON of one run, without what differs between any two runs (the check's duration).
fn json_of(out: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(out).expect("valid JSON");
    v["check"]["duration_ms"] = serde_json::Value::Null;
    v
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn confirm_that_ends_unknown_reports_the_role_unknown_and_no_action() {
    // Primary first, then a check that cannot tell (exit 9).
    let check = "if [ -e /run/fm-test/once ]; then exit 9; fi; touch /run/fm-test/once; exit 0";
    let ran = with_confirm(host(), check, 2)
        .args(&["reconcile", "--output", "json"])
        .status(3)
        .any_stdout()
        .stderr_has("role unknown: the primary check exited 9")
        .active("replica.service")
        .inactive("app.service")
        .run();
    let Some(r) = ran else { return };
    let mut confirmed = json_of(&r.stdout);
    assert_eq!(
        confirmed["confirmation"],
        serde_json::json!({"required": 2, "roles": ["primary", "unknown"]}),
        "{}",
        r.stdout
    );
    assert_eq!(confirmed["role"], "unknown", "{}", r.stdout);
    assert_eq!(confirmed["check"]["exit_code"], 9);
    for u in confirmed["units"].as_array().into_iter().flatten() {
        assert_eq!(u["desired"], serde_json::Value::Null, "{u}");
        assert_eq!(u["action"], serde_json::Value::Null, "{u}");
        assert_eq!(u["outcome"], serde_json::Value::Null, "{u}");
    }
    // The same as any other run whose check cannot tell, but for the confirmation.
    let out = r
        .then(&["reconcile", "--output", "json"])
        .status(3)
        .any_stdout()
        .stderr_has("role unknown: the primary check exited 9")
        .check();
    confirmed["confirmation"] = serde_json::Value::Null;
    assert_eq!(confirmed, json_of(&out));
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn twenty_concurrent_runs_start_each_unit_exactly_once() {
    let t = host().unit(Unit::oneshot("web.service")).primary();
    let Some(sb) = t.setup() else { return };
    let children: Vec<_> = (0..20)
        .map(|_| {
            sb.command(&[BIN, "reconcile"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut changes = 0;
    for c in children {
        let out = c.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        changes += String::from_utf8_lossy(&out.stdout).lines().count();
    }
    assert_eq!(sb.starts("app.service"), 1);
    assert_eq!(sb.starts("web.service"), 1);
    assert_eq!(sb.state("replica.service"), "inactive");
    assert_eq!(
        changes, 3,
        "one run made the three changes, the others found nothing to do"
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_run_that_cannot_get_the_lock_exits_75_naming_the_holder() {
    let Some(sb) = host().primary().setup() else {
        return;
    };
    let mut holder = sb
        .command(&["sh", "-c", "mkdir -p /run/failover-manager; echo $$ > /run/failover-manager/lock; exec flock /run/failover-manager/lock sh -c 'touch /run/fm-test/lock-held; exec sleep 30'"])
        .spawn()
        .expect("spawn");
    sb.wait_for_file("/run/fm-test/lock-held", Duration::from_secs(10));
    let pid = sb.read("/run/failover-manager/lock").trim().to_owned();
    let out = sb.exec(&[BIN, "reconcile", "--lock-wait", "300ms"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!(
            "another failover-manager run (pid {pid}) holds /run/failover-manager/lock"
        )),
        "{err}"
    );
    assert_eq!(sb.starts("app.service"), 0);
    // A dry run neither waits for nor takes the lock.
    let out = sb.exec(&[BIN, "reconcile", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_lock_held_for_longer_than_any_run_is_reported_as_stuck() {
    let Some(sb) = host().primary().setup() else {
        return;
    };
    let mut holder = sb
        .command(&["sh", "-c", "mkdir -p /run/failover-manager; echo $$ > /run/failover-manager/lock; touch -d '2 hours ago' /run/failover-manager/lock; exec flock /run/failover-manager/lock sh -c 'touch /run/fm-test/lock-held; exec sleep 30'"])
        .spawn()
        .expect("spawn");
    sb.wait_for_file("/run/fm-test/lock-held", Duration::from_secs(10));
    let out = sb.exec(&[BIN, "reconcile", "--lock-wait", "200ms"]);
    let _ = holder.kill();
    let _ = holder.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has held /run/failover-manager/lock for 2h"),
        "{err}"
    );
    assert!(err.contains("is it stopped (Ctrl-Z) or hung?"), "{err}");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn sigterm_mid_verify_stops_waiting_at_once_and_reports() {
    let t = Test::new()
        .unit(Unit::simple("db.service"))
        .unit(Unit::never_ready("app.service").key("verify_timeout: 60s"))
        .unit(Unit::simple("web.service"))
        .primary();
    let Some(sb) = t.setup() else { return };
    let run = sb
        .command(&[BIN, "reconcile"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Activating: its start job was queued, so the run is past queueing it and waits for it
    // (or is about to, and sees the signal first: the same outcome).
    assert!(sb.wait_state("app.service", "activating", Duration::from_secs(10)));
    let signalled = Instant::now();
    sb.ok(&[
        "pkill",
        "-TERM",
        "-f",
        "^/usr/bin/failover-manager reconcile",
    ]);
    let out = run.wait_with_output().expect("wait");
    let took = signalled.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{err}");
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    assert!(stdout.contains("started db.service"), "{stdout}");
    assert!(
        err.contains("app.service did not start: interrupted before it was verified"),
        "{err}"
    );
    assert!(err.contains("did not start web.service: "), "{err}");
    assert_eq!(sb.starts("web.service"), 0);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn sigterm_during_a_hanging_check_kills_it_and_changes_nothing() {
    let t = host()
        .check_command(&[
            "/bin/sh",
            "-c",
            "touch /run/fm-test/check-started; sleep 300 & exec sleep 301",
        ])
        .check_timeout("60s");
    let Some(sb) = t.setup() else { return };
    let run = sb
        .command(&[BIN, "reconcile"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    sb.wait_for_file("/run/fm-test/check-started", Duration::from_secs(10));
    let signalled = Instant::now();
    sb.ok(&[
        "pkill",
        "-INT",
        "-f",
        "^/usr/bin/failover-manager reconcile",
    ]);
    let out = run.wait_with_output().expect("wait");
    assert!(signalled.elapsed() < Duration::from_secs(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted while running the check; nothing was changed"),
        "{err}"
    );
    let left = sb.exec(&["pgrep", "-f", "sleep 30[01]"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "check processes survived"
    );
    assert_eq!(sb.state("replica.service"), "active");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn pause_stops_reconcile_acting_diff_still_shows_drift_and_resume_acts() {
    let ran = host()
        .primary()
        .args(&["pause", "--reason", "replacing a disk"])
        .env("SUDO_USER", "alice")
        .status(0)
        .stdout_has("paused by alice since ")
        .run();
    let Some(r) = ran else { return };
    assert!(
        r.sandbox
            .read("/var/lib/failover-manager/paused")
            .contains("replacing a disk")
    );
    // Paused: silent, no change.
    r.then(&["reconcile"]).check();
    let (status, _, err) = r.again(&["reconcile", "-v"]);
    assert_eq!(status, 0);
    assert_eq!(
        err.matches("paused by alice").count(),
        1,
        "said once per run: {err}"
    );
    assert!(
        err.contains("changing nothing (role primary, 2 changes pending)"),
        "{err}"
    );
    // A check that cannot tell pages nobody during maintenance.
    r.sandbox.write("/run/fm-test/check-exit", "2");
    r.then(&["reconcile"]).check();
    r.sandbox.write("/run/fm-test/check-exit", "0");
    let out = r
        .then(&["diff"])
        .status(1)
        .stdout_has(": replacing a disk: reconcile changes nothing\n")
        .stdout_has("+ app.service")
        .check();
    assert!(out.starts_with("paused by alice since "), "{out}");
    assert_eq!(r.sandbox.state("app.service"), "inactive");
    assert_eq!(r.sandbox.state("replica.service"), "active");
    let out = r
        .then(&["resume"])
        .stdout_has("resumed (was paused by alice")
        .check();
    assert!(out.starts_with("resumed (was paused by alice"), "{out}");
    r.then(&["reconcile"])
        .stdout_has("started app.service")
        .check();
    r.then(&["resume"]).stdout("not paused\n").check();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn an_unmanaged_unit_is_shown_but_left_alone() {
    let ran = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("batch.service").key("managed: false"))
        .primary()
        .status(0)
        .stdout_has("started app.service")
        .inactive("batch.service")
        .starts("batch.service", 0)
        .run();
    if let Some(r) = ran {
        r.then(&["diff"])
            .status(1)
            .stdout_has("! batch.service  primary  want running  is inactive  (managed: false)")
            .check();
    }
}

fn hooked(t: Test, hooks: &str) -> Test {
    let yaml = format!(
        "check:\n  command: [/bin/sh, -c, \"exit $(cat /run/fm-test/check-exit)\"]\n{hooks}\
         defaults: {{ verify_timeout: 5s, settle: 500ms }}\nunits:\n  - app.service\n  - name: replica.service\n    when: standby\n"
    );
    t.config(&yaml)
}

const ENV_DUMP: &str =
    "env | grep ^FAILOVER_MANAGER_ | sort > /run/fm-test/hook-$FAILOVER_MANAGER_EVENT";

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn on_promote_runs_after_verification_with_what_changed() {
    let hooks = format!(
        "hooks:\n  on_promote: {{command: [/bin/sh, -c, {ENV_DUMP:?}]}}\n  on_demote: {{command: [/bin/sh, -c, {ENV_DUMP:?}]}}\n"
    );
    let ran = hooked(host(), &hooks)
        .primary()
        .stdout_has("standby\u{2192}primary: started app.service")
        .active("app.service")
        .run();
    let Some(r) = ran else { return };
    assert_eq!(
        r.sandbox.read("/run/fm-test/hook-promote"),
        "FAILOVER_MANAGER_EPOCH=\nFAILOVER_MANAGER_EVENT=promote\nFAILOVER_MANAGER_FAILED=\nFAILOVER_MANAGER_FENCED=\nFAILOVER_MANAGER_PREVIOUS_ROLE=standby\n\
         FAILOVER_MANAGER_REASONS=\nFAILOVER_MANAGER_ROLE=primary\nFAILOVER_MANAGER_SKIPPED=\nFAILOVER_MANAGER_STARTED=app.service\n\
         FAILOVER_MANAGER_STOPPED=replica.service\n"
    );
    // Steady state: no hook.
    let _ = std::fs::remove_file(r.sandbox.path("/run/fm-test/hook-promote"));
    r.then(&["reconcile"]).check();
    assert_eq!(r.sandbox.read("/run/fm-test/hook-promote"), "");
    r.sandbox.write("/run/fm-test/check-exit", "1");
    r.then(&["reconcile"])
        .stdout_has("primary\u{2192}standby: stopped app.service")
        .check();
    assert!(
        r.sandbox
            .read("/run/fm-test/hook-demote")
            .contains("FAILOVER_MANAGER_STOPPED=app.service\n")
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_failing_hook_exits_1_but_never_undoes_the_transition() {
    let hooks =
        "hooks:\n  on_promote: {command: [/bin/sh, -c, \"echo pager unreachable; exit 2\"]}\n";
    hooked(host(), hooks)
        .primary()
        .status(1)
        .stdout_has("started app.service")
        .stderr_has("hook on_promote exited 2 after ")
        .stderr_has("(the transition stands)")
        .stderr_has("on_promote | pager unreachable")
        .active("app.service")
        .inactive("replica.service")
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_hook_that_hangs_is_killed_at_its_timeout() {
    let hooks = "hooks:\n  on_promote: {command: [/bin/sleep, \"300\"], timeout: 500ms}\n";
    hooked(host(), hooks)
        .primary()
        .status(1)
        .stdout_has("started app.service")
        .stderr_has("hook on_promote timed out after ")
        .active("app.service")
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn on_failure_runs_when_a_unit_fails() {
    let hooks = format!("hooks:\n  on_failure: {{command: [/bin/sh, -c, {ENV_DUMP:?}]}}\n");
    let t = hooked(
        Test::new()
            .unit(Unit::fails_at_once("app.service"))
            .unit(Unit::simple("replica.service").standby()),
        &hooks,
    );
    let Some(r) = t
        .primary()
        .status(1)
        .stderr_has("app.service did not start")
        .run()
    else {
        return;
    };
    let env = r.sandbox.read("/run/fm-test/hook-failure");
    assert!(
        env.contains("FAILOVER_MANAGER_FAILED=app.service\n"),
        "{env}"
    );
    // A program that exits at once: a crash (or a death within the settle window, when
    // systemd was read while it still ran), never a timeout.
    assert!(
        env.contains("FAILOVER_MANAGER_REASONS=app.service=crashed\n")
            || env.contains("FAILOVER_MANAGER_REASONS=app.service=not_settled\n"),
        "{env}"
    );
    assert!(env.contains("FAILOVER_MANAGER_ROLE=primary\n"), "{env}");
}

/// Root refuses what a non-root user could change: exit 78, naming path and problem.
fn insecure(setup: &[&[&str]], message: &str) {
    insecure_check(&["/usr/local/lib/fm/check"], setup, message);
}

/// Like `insecure`, with the check command `argv` (the script is /usr/local/lib/fm/check).
fn insecure_check(argv: &[&str], setup: &[&[&str]], message: &str) {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .check_command(argv)
        .primary();
    let Some(sb) = t.setup() else { return };
    sb.write("/usr/local/lib/fm/check", "#!/bin/sh\nexit 0\n");
    sb.ok(&["chmod", "0755", "/usr/local/lib/fm/check"]);
    for argv in setup {
        sb.ok(argv);
    }
    for cmd in [&["reconcile"][..], &["validate"][..], &["diff"][..]] {
        let mut argv = vec![BIN];
        argv.extend_from_slice(cmd);
        let out = sb.exec(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{cmd:?}: {err}");
        assert!(
            err.contains(message),
            "{cmd:?}: expected {message:?} in {err}"
        );
    }
    assert_eq!(sb.starts("app.service"), 0);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn script_security_config_owned_by_a_user() {
    insecure(
        &[&["chown", "1000", CONFIG]],
        "config file /etc/failover-manager/config.yaml: owned by uid 1000; refusing to use it as root (fix: chown root /etc/failover-manager/config.yaml)",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn script_security_check_writable_by_everyone() {
    insecure(
        &[&["chmod", "0757", "/usr/local/lib/fm/check"]],
        "check command /usr/local/lib/fm/check: writable by every user (mode 0757)",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn script_security_directory_above_writable_by_a_group() {
    insecure(
        &[
            &["chgrp", "100", "/usr/local/lib/fm"],
            &["chmod", "0775", "/usr/local/lib/fm"],
        ],
        "check command /usr/local/lib/fm/check: its directory /usr/local/lib/fm is writable by group 100 (mode 0775)",
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn script_security_a_script_run_by_an_interpreter_is_checked_too() {
    // The program is /bin/sh (root's); the code it runs is the script, which a user owns.
    insecure_check(
        &["/bin/sh", "/usr/local/lib/fm/check"],
        &[&["chown", "65534", "/usr/local/lib/fm/check"]],
        "check command argument /usr/local/lib/fm/check: owned by uid 65534; refusing to use it as root (fix: chown root /usr/local/lib/fm/check)",
    );
}

/// Modes of what reconcile and pause create, and the umask the check runs with.
fn modes_after_umask_000(sb: &crate::sandbox::Sandbox) -> Vec<String> {
    for cmd in [
        "reconcile --metrics-file /var/lib/fm-metrics/failover_manager.prom",
        "pause --reason test",
    ] {
        let out = sb.exec(&["sh", "-c", &format!("umask 000; exec {BIN} {cmd}")]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {out:?}");
    }
    let paths = [
        "/run/failover-manager",
        "/run/failover-manager/lock",
        "/var/lib/failover-manager",
        "/var/lib/failover-manager/paused",
        "/var/lib/fm-metrics/failover_manager.prom",
    ];
    let mut modes: Vec<String> = paths
        .iter()
        .map(|p| sb.ok(&["stat", "-c", "%n %a", p]).trim().to_owned())
        .collect();
    modes.push(format!(
        "check umask {}",
        sb.read("/run/fm-test/umask").trim()
    ));
    modes
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_callers_umask_000_makes_nothing_writable_by_others() {
    let t = host().primary().check_command(&[
        "/bin/sh",
        "-c",
        "umask > /run/fm-test/umask; exit $(cat /run/fm-test/check-exit)",
    ]);
    let Some(sb) = t.setup() else { return };
    sb.ok(&["mkdir", "-p", "/var/lib/fm-metrics"]);
    assert_eq!(
        modes_after_umask_000(&sb),
        [
            "/run/failover-manager 755",
            "/run/failover-manager/lock 644",
            "/var/lib/failover-manager 755",
            "/var/lib/failover-manager/paused 644",
            "/var/lib/fm-metrics/failover_manager.prom 644",
            "check umask 0022",
        ]
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_pause_file_planted_as_a_symlink_is_refused_and_its_target_untouched() {
    let Some(sb) = host().primary().setup() else {
        return;
    };
    sb.write("/etc/shadow-standin", "root:secret:0:\n");
    sb.ok(&["mkdir", "-p", "/var/lib/failover-manager"]);
    sb.ok(&[
        "ln",
        "-s",
        "/etc/shadow-standin",
        "/var/lib/failover-manager/paused",
    ]);
    let out = sb.exec(&[BIN, "reconcile"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pause file /var/lib/failover-manager/paused: is a symbolic link; refusing to follow it as root"),
        "{err}"
    );
    assert_eq!(sb.starts("app.service"), 0);
    let out = sb.exec(&[BIN, "pause", "--reason", "disk"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(sb.read("/etc/shadow-standin"), "root:secret:0:\n");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn validate_learns_the_host() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("web.service"))
        .primary();
    let Some(sb) = t.setup() else { return };
    let validate = || {
        let out = sb.exec(&[BIN, "validate"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert_eq!(
        validate(),
        (
            Some(0),
            "/etc/failover-manager/config.yaml: valid (2 units)\n".into()
        )
    );
    // Enabled at boot: a warning with the fix, exit 1.
    sb.install_unit(
        "web.service",
        "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n",
    );
    sb.daemon_reload();
    sb.systemctl(&["enable", "web.service"]);
    let (code, out) = validate();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("warning: web.service: is enabled at boot, so it starts on the standby at every reboot (fix: systemctl disable web.service)"), "{out}");
    // Masked and missing units, a missing check command: errors, exit 78.
    sb.systemctl(&["mask", "app.service"]);
    sb.write(CONFIG, "check: {command: [/usr/local/bin/amIthePrimary]}\nunits: [app.service, web.service, ghost.service]\n");
    let (code, out) = validate();
    assert_eq!(code, Some(78), "{out}");
    assert!(
        out.contains("error: check command \"/usr/local/bin/amIthePrimary\": not found")
            || out.contains("error: check command /usr/local/bin/amIthePrimary:"),
        "{out}"
    );
    assert!(
        out.contains(
            "error: app.service: is masked, so it can never start (systemctl unmask app.service)"
        ),
        "{out}"
    );
    assert!(
        out.contains("error: ghost.service: no such unit on this host"),
        "{out}"
    );
    // --config-only asks systemd nothing.
    let out = sb.exec(&[BIN, "validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn validate_warns_when_the_service_timeout_is_shorter_than_a_run_can_take() {
    let t = Test::new()
        .unit(Unit::simple("app.service").key("verify_timeout: 10m"))
        .unit(Unit::simple("web.service").key("verify_timeout: 10m"))
        .primary();
    let Some(sb) = t.setup() else { return };
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/units/failover-manager.service"
    );
    sb.install_unit(
        "failover-manager.service",
        &std::fs::read_to_string(shipped).expect("shipped unit"),
    );
    sb.daemon_reload();
    let out = sb.exec(&[BIN, "validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failover-manager.service has TimeoutStartSec=15min, but a run with this config may take up to 20m 35s"),
        "{err}"
    );
}
