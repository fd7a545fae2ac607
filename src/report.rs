//! Rendering: every text and JSON output is a pure function of the plan and its results.
//!
//! This file holds a run's words: the transition, a unit's decision, the check's summary, the
//! notes, the dead man's switch, where fencing stands, `--dry-run`, the change lines and
//! `diff`. The `--output json` shapes are in [`json`](mod@json); what the etcd key says, which
//! the run's words, the JSON and `status` share, is in [`etcd`]; the fleet's `status` in
//! [`status`]; a page's line in [`page`](mod@page). What the rest of the crate uses of them is
//! re-exported here, so its `crate::report::` paths are unchanged.

use crate::check::{Answer, CheckResult};
use crate::domain::{Action, Desired, Outcome, Role, StepResult};
use crate::fence::{self, View};
use crate::plan::{Plan, UnitPlan};

mod etcd;
mod json;
mod moves;
mod page;
mod status;

pub use etcd::{etcd_code, etcd_why};
pub use json::{Confirmation, Json, json};
pub use moves::{
    cannot_read, nothing_to_do, promote_refusal, promote_said, switchover_refusal, switchover_said,
};
pub use page::page;
pub use status::{status_json, status_text};

pub use crate::domain::fmt_duration;

/// "standby→primary" when the units say the host held the other role, else just the role
/// ("fenced" for a host that fences itself).
pub fn transition(plan: &Plan) -> String {
    if plan.fenced {
        return "fenced".into();
    }
    match plan.observed_role {
        Some(prev) if prev != plan.role && plan.role != Role::Unknown => {
            format!("{prev}\u{2192}{}", plan.role)
        }
        _ => plan.role.to_string(),
    }
}

/// What the planner decided for one unit, for `-v`.
pub fn decision(u: &UnitPlan) -> String {
    format!(
        "{}: runs on the {}, wanted {}, is {}: {}",
        u.name,
        u.when.as_str(),
        match u.desired {
            Some(Desired::Running) => "running",
            Some(Desired::Stopped) => "stopped",
            None => "nothing (role unknown)",
        },
        u.observed,
        match (u.action, u.managed) {
            (Some(a), _) => format!("will {}", a.as_str()),
            (None, false) => "not managed (managed: false)".into(),
            (None, true) => "nothing to do".into(),
        }
    )
}

/// "exited 0 in 12ms", or what etcd said, for messages.
pub fn check_summary(check: &CheckResult) -> String {
    match &check.answer {
        Answer::Exit(exit) => format!("{exit} in {}", fmt_duration(check.duration)),
        Answer::Etcd(a) => format!(
            "etcd key {} {} in {}{}",
            a.key,
            etcd_why(a),
            fmt_duration(check.duration),
            if a.endpoint.is_empty() {
                String::new()
            } else {
                format!(" (via {})", a.endpoint)
            }
        ),
    }
}

/// A run's note (`note::Note`): its lines and the level each is logged at.
pub fn note(n: &crate::note::Note) -> Vec<(log::Level, String)> {
    use crate::note::Note;
    use log::Level::{Debug, Error, Info, Warn};
    let one = |level, line: String| vec![(level, line)];
    match n {
        Note::Interrupted { confirming: false } => one(
            Error,
            "interrupted while running the check; nothing was changed".into(),
        ),
        Note::Interrupted { confirming: true } => one(
            Error,
            "interrupted while confirming the role; nothing was changed".into(),
        ),
        Note::RoleUnknown(check) => unknown_role(check)
            .into_iter()
            .map(|l| (Error, l))
            .collect(),
        Note::Fence(v) => fence_status(v).map(|l| (Error, l)).into_iter().collect(),
        Note::NotActionable { unit, state } => one(
            Warn,
            format!("{unit}: is {state}, not a state to act on; leaving it for the next run"),
        ),
        Note::Switch(outcome, spec) => {
            use crate::deadline::Outcome;
            let level = match outcome {
                Outcome::Armed { .. } => Debug,
                Outcome::Disarmed => Info,
                Outcome::TooLate { .. } | Outcome::Failed(_) => Warn,
                Outcome::ArmedLate => Error,
            };
            one(level, switch(outcome, spec))
        }
        Note::RecordNotKept(e) => one(
            Error,
            format!("cannot keep the time of the last confirmed role: {e}"),
        ),
        Note::LeaseNotReleased(e) => one(
            Warn,
            format!("cannot give the lease back: {e}; it lapses on its own"),
        ),
        Note::NotAcknowledged { key, value, error } => {
            one(Warn, format!("cannot acknowledge {key} = {value}: {error}"))
        }
        Note::EpochNotKept(e) => one(Warn, format!("cannot keep the fencing token: {e}")),
        Note::NotRearmed(why) => one(
            Warn,
            format!(
                "the units took long to start and the dead man's switch could not be armed \
                 again ({why}): it stops them unless the next run confirms the role in time"
            ),
        ),
    }
}

/// What a run did with the dead man's switch, in one line.
pub fn switch(o: &crate::deadline::Outcome, spec: &crate::deadline::Spec) -> String {
    use crate::deadline::Outcome;
    match o {
        Outcome::Armed { fires_after } => format!(
            "dead man's switch {} armed: stops the primary units in {} unless a run confirms again",
            spec.timer,
            fmt_duration(*fires_after)
        ),
        Outcome::Disarmed => format!(
            "dead man's switch {} stopped: this host is a standby",
            spec.timer
        ),
        Outcome::TooLate { since } => format!(
            "the check's answer is {} old, too old to arm the dead man's switch by; not acting as \
             primary this run",
            since.map_or_else(|| "from another boot, so too".to_owned(), fmt_duration)
        ),
        Outcome::Failed(e) => format!(
            "cannot arm the dead man's switch {}: {e}; not acting as primary this run",
            spec.timer
        ),
        Outcome::ArmedLate => format!(
            "systemd re-armed the dead man's switch {} more than a quarter of fence_after after \
             the role was confirmed, so it may fire too late: fencing now",
            spec.timer
        ),
    }
}

fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Where fencing stands, when there is something to say: the role is unknown. One line, for
/// reconcile's error log and for `diff`.
pub fn fence_status(v: &View) -> Option<String> {
    let last = match &v.last_confirmed {
        Some(c) => format!("last confirmed {} at {}", c.role, rfc3339(c.at())),
        None => "never confirmed that this host remembers".to_owned(),
    };
    let after = fmt_duration(v.after);
    match v.status {
        fence::Status::Off | fence::Status::Confirmed => None,
        fence::Status::Waiting {
            unknown_for,
            remaining,
        } => Some(format!(
            "role unknown for {}, {last}: fences this host in {} (check.fence_after {after})",
            fmt_duration(unknown_for),
            fmt_duration(remaining)
        )),
        fence::Status::Fence { unknown_for } => Some(format!(
            "fenced: role unknown for {}, {last} (check.fence_after {after}); this host's \
             primary units are stopped until the check answers again",
            fmt_duration(unknown_for)
        )),
    }
}

fn want(u: &UnitPlan) -> &'static str {
    match u.desired {
        Some(Desired::Running) => "running",
        Some(Desired::Stopped) => "stopped",
        None => "?",
    }
}

/// `--dry-run`: what reconcile would do, in the order it would do it.
pub fn dry_run(plan: &Plan) -> String {
    if plan.is_empty() {
        let drift = plan.units.iter().filter(|u| !u.in_sync()).count();
        let mut s = format!(
            "{}: nothing to do ({} units in sync)",
            plan.role,
            plan.units.len() - drift
        );
        if drift > 0 {
            s.push_str(&format!(", {drift} in a state not acted on"));
        }
        return s + "\n";
    }
    let mut out = String::new();
    for &i in &plan.steps {
        let u = &plan.units[i];
        let (verb, ing) = match u.action {
            Some(Action::Start) => ("start", "starting"),
            Some(Action::Stop) => ("stop", "stopping"),
            None => continue,
        };
        let t = transition(plan);
        if u.underway {
            out.push_str(&format!(
                "{t}: would wait for {} to finish {ing} (is {})\n",
                u.name, u.observed
            ));
        } else {
            out.push_str(&format!(
                "{t}: would {verb} {} (is {}, wanted {})\n",
                u.name,
                u.observed,
                want(u)
            ));
        }
    }
    out
}

/// The one line per change that reconcile prints, and the error messages for failures.
/// Returns (stdout lines, stderr lines).
pub fn changes(plan: &Plan, results: &[StepResult]) -> (Vec<String>, Vec<String>) {
    let t = transition(plan);
    let mut out = Vec::new();
    let mut err = Vec::new();
    for r in results {
        let (done, verb, state) = match r.action {
            Action::Start => ("started", "start", "active"),
            Action::Stop => ("stopped", "stop", "inactive"),
        };
        let ing = match r.action {
            Action::Start => "starting",
            Action::Stop => "stopping",
        };
        match &r.outcome {
            Outcome::Done { elapsed } if plan.units.get(r.unit).is_some_and(|u| u.underway) => out
                .push(format!(
                    "{t}: {} finished {ing} ({state} after {})",
                    r.name,
                    fmt_duration(*elapsed)
                )),
            Outcome::Done { elapsed } => out.push(format!(
                "{t}: {done} {} ({state} after {})",
                r.name,
                fmt_duration(*elapsed)
            )),
            Outcome::Failed {
                reason,
                state,
                cause,
                journal,
                elapsed,
            } => {
                let reason = reason.words(state);
                let cause = if cause.is_empty() {
                    String::new()
                } else {
                    format!("; {cause}")
                };
                err.push(format!(
                    "{t}: {} did not {verb}: {reason}{cause} ({} after {verb})",
                    r.name,
                    fmt_duration(*elapsed)
                ));
                for line in journal {
                    err.push(format!("  {} | {line}", r.name));
                }
            }
            Outcome::Skipped { reason } => {
                err.push(format!(
                    "{t}: did not {verb} {}: {}",
                    r.name,
                    reason.words()
                ));
            }
        }
    }
    (out, err)
}

/// Why nothing was done when the role is unknown: the check's exit and its last output lines.
pub fn unknown_role(check: &CheckResult) -> Vec<String> {
    let mut lines = vec![format!(
        "role unknown: the primary check {}; nothing was started or stopped",
        check_summary(check)
    )];
    for l in &check.output {
        lines.push(format!("  check | {l}"));
    }
    lines
}

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

/// `diff`: desired against observed per unit, marked like a diff so drift jumps out:
/// `+` must start, `-` must stop, `!` wrong but not acted on, ` ` in sync.
pub fn diff(plan: &Plan, check: &CheckResult, style: Style) -> String {
    let mut out = format!("role: {} (check {})\n", plan.role, check_summary(check));
    let width = plan.units.iter().map(|u| u.name.len()).max().unwrap_or(0);
    for u in &plan.units {
        let (mark, color) = match (u.action, u.in_sync()) {
            (Some(Action::Start), _) => ('+', "32"),
            (Some(Action::Stop), _) => ('-', "31"),
            (None, false) => ('!', "33"),
            (None, true) => (' ', ""),
        };
        let line = format!(
            "{mark} {:width$}  {:<7}  want {:<7}  is {}{}",
            u.name,
            u.when.as_str(),
            want(u),
            u.observed,
            if u.managed { "" } else { "  (managed: false)" }
        );
        if color.is_empty() {
            out.push_str(line.trim_end());
        } else {
            out.push_str(&style.paint(color, line.trim_end()));
        }
        out.push('\n');
    }
    let drift = plan.units.iter().filter(|u| !u.in_sync()).count();
    out.push_str(&match (plan.role, drift) {
        (Role::Unknown, _) => "role unknown: nothing can be compared\n".to_owned(),
        (_, 0) => "in sync\n".to_owned(),
        (_, n) => format!("{n} of {} units differ\n", plan.units.len()),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Exit;
    use crate::config::UnitConfig;
    use crate::domain::UnitState;
    use crate::domain::When;
    use crate::plan::plan;
    use std::time::Duration;

    fn units() -> Vec<UnitConfig> {
        ["app.service", "web.service", "replica.service"]
            .iter()
            .zip([When::Primary, When::Primary, When::Standby])
            .map(|(n, w)| UnitConfig::for_test(n, w))
            .collect()
    }

    pub(super) fn check(role: Role, code: i32) -> CheckResult {
        CheckResult {
            role,
            answer: Answer::Exit(Exit::Code(code)),
            duration: Duration::from_millis(12),
            output: vec![],
            sent: crate::clock::at("boot", 0),
        }
    }

    pub(super) fn takeover() -> Plan {
        plan(
            Role::Primary,
            &units(),
            &[UnitState::Inactive, UnitState::Active, UnitState::Active],
        )
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_millis(7)), "7ms");
        assert_eq!(fmt_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(fmt_duration(Duration::from_secs(65)), "1m 5s");
    }

    #[test]
    fn dry_run_lists_steps_in_execution_order() {
        assert_eq!(
            dry_run(&takeover()),
            "primary: would stop replica.service (is active, wanted stopped)\n\
             primary: would start app.service (is inactive, wanted running)\n"
        );
        let p = plan(
            Role::Standby,
            &units(),
            &[UnitState::Inactive, UnitState::Inactive, UnitState::Active],
        );
        assert_eq!(dry_run(&p), "standby: nothing to do (3 units in sync)\n");
    }

    #[test]
    fn units_on_their_way_are_waited_for() {
        let p = plan(
            Role::Primary,
            &units(),
            &[
                UnitState::Activating,
                UnitState::Active,
                UnitState::Deactivating,
            ],
        );
        assert_eq!(
            dry_run(&p),
            "primary: would wait for replica.service to finish stopping (is deactivating)\n\
             primary: would wait for app.service to finish starting (is activating)\n"
        );
        let results = vec![StepResult {
            unit: 0,
            name: "app.service".into(),
            action: Action::Start,
            outcome: Outcome::Done {
                elapsed: Duration::from_millis(40),
            },
        }];
        assert_eq!(
            changes(&p, &results).0,
            ["primary: app.service finished starting (active after 40ms)"]
        );
    }

    #[test]
    fn diff_marks_drift() {
        let d = diff(
            &takeover(),
            &check(Role::Primary, 0),
            Style { color: false },
        );
        assert_eq!(
            d,
            "role: primary (check exited 0 in 12ms)\n\
             + app.service      primary  want running  is inactive\n  \
             web.service      primary  want running  is active\n\
             - replica.service  standby  want stopped  is active\n\
             2 of 3 units differ\n"
        );
        let colored = diff(&takeover(), &check(Role::Primary, 0), Style { color: true });
        assert!(colored.contains("\x1b[32m+ app.service"));
        assert!(colored.contains("\x1b[31m- replica.service"));
        let unknown = plan(
            Role::Unknown,
            &units(),
            &[UnitState::Active, UnitState::Active, UnitState::Active],
        );
        let d = diff(&unknown, &check(Role::Unknown, 2), Style { color: false });
        assert!(d.contains("want ?"), "{d}");
        assert!(
            d.ends_with("role unknown: nothing can be compared\n"),
            "{d}"
        );
    }

    #[test]
    fn change_lines_and_failures() {
        let p = plan(
            Role::Primary,
            &units(),
            &[UnitState::Inactive, UnitState::Inactive, UnitState::Active],
        );
        let results = vec![
            StepResult {
                unit: 0,
                name: "app.service".into(),
                action: Action::Start,
                outcome: Outcome::Done {
                    elapsed: Duration::from_millis(1200),
                },
            },
            StepResult {
                unit: 1,
                name: "web.service".into(),
                action: Action::Start,
                outcome: Outcome::Failed {
                    reason: crate::domain::FailReason::Crashed,
                    state: UnitState::Failed,
                    cause: "result exit-code, exit status 1".into(),
                    journal: vec!["web: cannot bind".into()],
                    elapsed: Duration::from_millis(300),
                },
            },
        ];
        let (out, err) = changes(&p, &results);
        assert_eq!(
            out,
            ["standby\u{2192}primary: started app.service (active after 1.2s)"]
        );
        assert_eq!(
            err,
            [
                "standby\u{2192}primary: web.service did not start: failed; result exit-code, exit status 1 (300ms after start)",
                "  web.service | web: cannot bind"
            ]
        );
    }

    pub(super) fn waiting() -> View {
        View {
            after: Duration::from_secs(120),
            status: fence::Status::Waiting {
                unknown_for: Duration::from_secs(70),
                remaining: Duration::from_secs(50),
            },
            last_confirmed: Some(fence::Confirmed::new(
                Role::Primary,
                crate::clock::at("boot", 0),
                std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )),
            previous: Some(Role::Primary),
        }
    }

    #[test]
    fn fence_status_says_how_long_and_when() {
        assert_eq!(
            fence_status(&waiting()).as_deref(),
            Some(
                "role unknown for 1m 10s, last confirmed primary at 2023-11-14T22:13:20Z: \
                 fences this host in 50.0s (check.fence_after 2m 0s)"
            )
        );
        let fenced = View {
            status: fence::Status::Fence {
                unknown_for: Duration::from_secs(130),
            },
            last_confirmed: None,
            ..waiting()
        };
        assert_eq!(
            fence_status(&fenced).as_deref(),
            Some(
                "fenced: role unknown for 2m 10s, never confirmed that this host remembers \
                 (check.fence_after 2m 0s); this host's primary units are stopped until the \
                 check answers again"
            )
        );
        let confirmed = View {
            status: fence::Status::Confirmed,
            ..waiting()
        };
        assert_eq!(
            fence_status(&confirmed),
            None,
            "quiet while the check answers"
        );
    }

    #[test]
    fn unknown_role_message_carries_check_output() {
        let mut c = check(Role::Unknown, 2);
        c.output = vec!["dns lookup failed".into()];
        assert_eq!(
            unknown_role(&c),
            [
                "role unknown: the primary check exited 2 in 12ms; nothing was started or stopped",
                "  check | dns lookup failed"
            ]
        );
    }
}
