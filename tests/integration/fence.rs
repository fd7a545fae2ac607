//! Self-fencing (`check.fence_after`): a primary that cannot confirm its role for long enough
//! stops its primary units and says so; it never starts anything while the role is unknown.

use std::time::Duration;

use crate::test::{Ran, Test};
use crate::unit::Unit;

const RECORD: &str = "/var/lib/failover-manager/last-confirmed";
const CHECK_EXIT: &str = "/run/fm-test/check-exit";
/// Every hook appends its event and what it was told, so a test can count them.
const HOOK: &str =
    "echo \"$FAILOVER_MANAGER_EVENT stopped=$FAILOVER_MANAGER_STOPPED\" >> /run/fm-test/hooks";

fn fencing(fence_after: &str) -> Test {
    let yaml = format!(
        "check:\n  command: [/bin/sh, -c, \"exit $(cat {CHECK_EXIT})\"]\n  timeout: 5s\n  \
         fence_after: {fence_after}\n\
         hooks:\n  on_promote: {{command: [/bin/sh, -c, {HOOK:?}]}}\n  \
         on_demote: {{command: [/bin/sh, -c, {HOOK:?}]}}\n  \
         on_failure: {{command: [/bin/sh, -c, {HOOK:?}]}}\n\
         defaults: {{ verify_timeout: 5s, settle: 0s }}\n\
         units:\n  - app.service\n  - web.service\n  - name: replica.service\n    when: standby\n"
    );
    Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("web.service"))
        .unit(Unit::simple("replica.service").standby())
        .config(&yaml)
}

fn set_check(r: &Ran, code: i32) {
    r.sandbox.write(CHECK_EXIT, &code.to_string());
}

/// Makes the record `by` older, as if that long had passed since it was written: its boot-clock
/// reading (what fencing counts on) and its wall-clock one go back by `by`, on the same boot.
/// What the binary does with an old record is the point of these tests, not the waiting: the
/// arithmetic on the clock is fence.rs's unit tests'.
fn age_record(r: &Ran, by: Duration) {
    fn back(v: &mut serde_json::Value, by: Duration) -> usize {
        match v {
            serde_json::Value::Object(m) => m
                .iter_mut()
                .map(|(k, v)| match (k.as_str(), v.as_u64()) {
                    ("boottime_ms", Some(ms)) => {
                        let ms = ms.checked_sub(by.as_millis() as u64);
                        *v = ms.expect("the machine has been up for longer").into();
                        1
                    }
                    ("unix", Some(s)) => {
                        *v = s.saturating_sub(by.as_secs()).into();
                        0
                    }
                    _ => back(v, by),
                })
                .sum(),
            _ => 0,
        }
    }
    let text = r.sandbox.read(RECORD);
    let mut record: serde_json::Value = serde_json::from_str(&text).expect("the record is JSON");
    assert_eq!(back(&mut record, by), 1, "one boot-clock reading in {text}");
    r.sandbox.write(RECORD, &format!("{record}\n"));
}

fn hooks(r: &Ran) -> Vec<String> {
    r.sandbox
        .read("/run/fm-test/hooks")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_primary_that_cannot_confirm_its_role_fences_itself_after_fence_after() {
    let Some(r) = fencing("3s")
        .primary()
        .status(0)
        .stdout_has("primary: started app.service")
        .stdout_has("primary: started web.service")
        .stderr("")
        .active("app.service")
        .run()
    else {
        return;
    };
    let record = r.sandbox.read(RECORD);
    assert!(record.contains("\"role\":\"primary\""), "{record}");

    // Unknown, but not for long: nothing changes, the run says when it would fence.
    set_check(&r, 2);
    r.then(&["reconcile"])
        .status(3)
        .stderr_has("role unknown: the primary check exited 2")
        .stderr_has("fences this host in ")
        .check();
    assert_eq!(r.sandbox.state("app.service"), "active");
    assert_eq!(
        r.sandbox.read(RECORD),
        record,
        "an unknown run keeps the record"
    );

    // The same, as JSON and as a diff.
    let json = r
        .then(&["reconcile", "--dry-run", "--output", "json"])
        .status(3)
        .any_stdout()
        .stderr_has("fences this host in ")
        .check();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["fence"]["fenced"], false, "{json}");
    assert_eq!(v["fence"]["after_ms"], 3000, "{json}");
    assert_eq!(v["fence"]["last_confirmed"]["role"], "primary", "{json}");
    assert!(
        v["fence"]["fences_in_ms"]
            .as_u64()
            .is_some_and(|ms| ms <= 3000),
        "{json}"
    );
    r.then(&["diff"])
        .status(3)
        .stdout_has("role unknown for ")
        .stdout_has("last confirmed primary at ")
        .check();

    // Long enough: the primary units stop, the standby's are not started, exit 1, loudly.
    age_record(&r, Duration::from_millis(3200));
    r.then(&["reconcile"])
        .status(1)
        .stderr_has("fenced: role unknown for ")
        .stderr_has("last confirmed primary at ")
        .stdout_has("fenced: stopped app.service")
        .stdout_has("fenced: stopped web.service")
        .check();
    assert_eq!(r.sandbox.state("app.service"), "inactive");
    assert_eq!(r.sandbox.state("web.service"), "inactive");
    assert_eq!(
        r.sandbox.state("replica.service"),
        "inactive",
        "nothing starts"
    );
    assert_eq!(r.sandbox.starts("replica.service"), 0);
    assert_eq!(
        hooks(&r),
        [
            "demote stopped=web.service app.service",
            "failure stopped=web.service app.service"
        ]
    );
    let json = r
        .then(&["diff", "--output", "json"])
        .status(3)
        .any_stdout()
        .check();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["fence"]["fenced"], true, "{json}");

    // Still unknown: still fenced and failing, but nothing more to do and no hook again.
    r.then(&["reconcile"])
        .status(1)
        .stderr_has("fenced: role unknown for ")
        .check();
    assert_eq!(hooks(&r).len(), 2);

    // The check answers again: the primary units start, and the record is a definite one.
    set_check(&r, 0);
    r.then(&["reconcile"])
        .stdout_has("primary: started app.service")
        .check();
    assert_eq!(r.sandbox.state("app.service"), "active");
    assert_ne!(r.sandbox.read(RECORD), record, "a new confirmation");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn with_no_record_the_wait_starts_at_the_first_unknown_run() {
    // First boot, or a restore without /var/lib: nothing remembers a definite answer. The
    // app runs (started by hand) and the check cannot tell.
    let Some(r) = fencing("2s")
        .running(&["app.service"])
        .check_exits(2)
        .status(3)
        .stderr_has("role unknown: the primary check exited 2")
        .stderr_has("never confirmed")
        .active("app.service")
        .run()
    else {
        return;
    };
    let record = r.sandbox.read(RECORD);
    assert!(record.contains("unknown_since"), "{record}");
    age_record(&r, Duration::from_millis(2200));
    r.then(&["reconcile"])
        .status(1)
        .stderr_has("fenced: role unknown for ")
        .stderr_has("never confirmed")
        .stdout_has("fenced: stopped app.service")
        .check();
    assert_eq!(r.sandbox.state("app.service"), "inactive");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_paused_host_and_a_dry_run_never_fence() {
    let Some(r) = fencing("1s")
        .running(&["app.service"])
        .check_exits(2)
        .before(&[
            "/usr/bin/failover-manager",
            "pause",
            "--reason",
            "etcd upgrade",
        ])
        .status(0)
        .active("app.service")
        .run()
    else {
        return;
    };
    age_record(&r, Duration::from_millis(1200));
    r.then(&["reconcile"]).check();
    assert_eq!(r.sandbox.state("app.service"), "active");
    r.then(&["resume"])
        .stdout_has("resumed (was paused by ")
        .check();
    r.then(&["reconcile", "--dry-run"])
        .status(1)
        .stdout_has("would stop app.service")
        .stderr_has("fenced: role unknown for ")
        .check();
    assert_eq!(
        r.sandbox.state("app.service"),
        "active",
        "a dry run changes nothing"
    );
}
