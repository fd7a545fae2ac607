//! Rendering: every text and JSON output is a pure function of the plan and its results.

use std::time::Duration;

use serde::Serialize;

use crate::check::{Answer, CheckResult};
use crate::domain::{Action, Desired, Outcome, Role, StepResult, UnitState, When};
use crate::election::Why;
use crate::fence::{self, View};
use crate::plan::{Plan, UnitPlan};

pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

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

/// What the etcd key means for this host, after "etcd key KEY".
pub fn etcd_why(a: &crate::witness::Answer) -> String {
    let v = &a.verdict;
    let token = || {
        let mut t = Vec::new();
        if let Some(e) = v.epoch {
            t.push(format!("epoch {e}"));
        }
        if let Some(l) = v.lease {
            t.push(format!("lease {l:x}"));
        }
        if let Some(ttl) = a.ttl_left {
            t.push(format!("{ttl}s left"));
        }
        if t.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.join(", "))
        }
    };
    match &v.why {
        Why::Holds => format!("names this site{}", token()),
        Why::Took => format!("was free: this host took the role for its site{}", token()),
        Why::HeldBy(site) => format!("names {site}"),
        Why::Switching(value) => format!("holds {value:?}: {}", moving(value)),
        Why::NoKey => "does not exist: no site is primary".into(),
        Why::WouldTake => "does not exist: a run would take the role for this site".into(),
        Why::NotCandidate => {
            "does not exist, and this site never takes the role on its own (candidate: false)"
                .into()
        }
        Why::GateRefused(why) => format!("does not exist, but before_acquire said no: {why}"),
        Why::Garbage(value) => format!("holds \"{value}\", which names no site"),
        Why::NoLease => "names this site but holds no lease (automatic mode: was it put by hand \
                         without --lease?)"
            .into(),
        Why::LeaseExpired => {
            "names this site, but its lease had expired when this host renewed it".into()
        }
        Why::Moved => "changed while this host renewed its lease".into(),
        Why::LeaseTooShort { granted, needed } => format!(
            "names this site on a lease of {granted}s, shorter than this config is safe with \
             ({needed}s, see check.etcd.lease_ttl): released, to be taken again on a lease of its own"
        ),
        Why::Etcd(e) => format!("could not be read: {e}"),
    }
}

/// The election's reason as a code, for scripts.
pub fn etcd_code(w: &Why) -> &'static str {
    match w {
        Why::Holds => "holds",
        Why::Took => "took",
        Why::HeldBy(_) => "held_by_other_site",
        Why::Switching(_) => "switching",
        Why::NoKey => "no_key",
        Why::WouldTake => "would_take",
        Why::NotCandidate => "not_candidate",
        Why::GateRefused(_) => "before_acquire_refused",
        Why::Garbage(_) => "not_a_site",
        Why::NoLease => "no_lease",
        Why::LeaseExpired => "lease_expired",
        Why::Moved => "moved",
        Why::LeaseTooShort { .. } => "lease_too_short",
        Why::Etcd(_) => "etcd_error",
    }
}

/// What a run did with the dead man's switch, in one line.
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

/// The check as the JSON shows it.
#[derive(Debug, Serialize)]
pub struct JsonCheck<'a> {
    pub role: Role,
    /// Null when the check did not exit (timeout, signal, spawn failure).
    pub exit_code: Option<i32>,
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    pub output: &'a [String],
    /// What etcd said (`check.etcd`); left out for a check command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<JsonEtcd<'a>>,
}

#[derive(Debug, Serialize)]
pub struct JsonEtcd<'a> {
    pub key: &'a str,
    pub endpoint: &'a str,
    pub reason: String,
    pub reason_code: &'static str,
    /// The fencing token while this site holds the role.
    pub epoch: Option<i64>,
    pub lease: Option<i64>,
    pub ttl_left_s: Option<i64>,
}

fn json_check(c: &CheckResult) -> JsonCheck<'_> {
    JsonCheck {
        role: c.role,
        exit_code: c.exit_code(),
        duration: c.duration,
        output: &c.output,
        etcd: c.etcd().map(|a| JsonEtcd {
            key: &a.key,
            endpoint: &a.endpoint,
            reason: etcd_why(a),
            reason_code: etcd_code(&a.verdict.why),
            epoch: a.verdict.epoch,
            lease: a.verdict.lease,
            ttl_left_s: a.ttl_left,
        }),
    }
}

/// One step's outcome as the JSON shows it: `reason` in words as ever, `reason_code` for
/// scripts.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum JsonOutcome<'a> {
    Done {
        #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Failed {
        reason: String,
        reason_code: &'static str,
        state: &'a UnitState,
        cause: &'a str,
        journal: &'a [String],
        #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Skipped {
        reason: String,
        reason_code: &'static str,
    },
}

fn json_outcome(o: &Outcome) -> JsonOutcome<'_> {
    match o {
        Outcome::Done { elapsed } => JsonOutcome::Done { elapsed: *elapsed },
        Outcome::Failed {
            reason,
            state,
            cause,
            journal,
            elapsed,
        } => JsonOutcome::Failed {
            reason: reason.words(state),
            reason_code: reason.code(),
            state,
            cause,
            journal,
            elapsed: *elapsed,
        },
        Outcome::Skipped { reason } => JsonOutcome::Skipped {
            reason: reason.words(),
            reason_code: reason.code(),
        },
    }
}

/// The schema scripts parse (`--output json`). Add fields; never rename or remove them.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub version: u32,
    pub command: &'static str,
    pub role: Role,
    pub previous_role: Option<Role>,
    pub check: JsonCheck<'a>,
    pub dry_run: bool,
    /// Maintenance mode: who paused, why and since when; null when not paused.
    pub paused: Option<&'a crate::maintenance::Pause>,
    pub in_sync: bool,
    pub units: Vec<JsonUnit<'a>>,
    /// The checks run again before acting (`check.confirm`); null when none was.
    pub confirmation: Option<&'a Confirmation>,
    /// Why the units' states are not known (systemd unreachable); null when they are.
    pub error: Option<&'a str>,
    /// Self-fencing (`check.fence_after`); null when it is off.
    pub fence: Option<JsonFence>,
}

#[derive(Debug, Serialize)]
pub struct JsonFence {
    #[serde(serialize_with = "ser_ms", rename = "after_ms")]
    pub after: Duration,
    /// This run fenced the host (or found it fenced): its primary units are stopped.
    pub fenced: bool,
    /// How long the check has not given a definite answer; 0 when this run's did.
    #[serde(serialize_with = "ser_ms", rename = "unknown_for_ms")]
    pub unknown_for: Duration,
    /// How long until the host fences itself if the role stays unknown; null unless waiting.
    #[serde(serialize_with = "ser_opt_ms", rename = "fences_in_ms")]
    pub fences_in: Option<Duration>,
    /// The last definite answer this host remembers; null when it remembers none.
    pub last_confirmed: Option<JsonConfirmed>,
}

#[derive(Debug, Serialize)]
pub struct JsonConfirmed {
    pub role: Role,
    /// RFC 3339, UTC.
    pub at: String,
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_ms(d, s),
        None => s.serialize_none(),
    }
}

fn json_fence(v: &View) -> JsonFence {
    JsonFence {
        after: v.after,
        fenced: v.fenced(),
        unknown_for: v.unknown_for(),
        fences_in: match v.status {
            fence::Status::Waiting { remaining, .. } => Some(remaining),
            _ => None,
        },
        last_confirmed: v.last_confirmed.as_ref().map(|c| JsonConfirmed {
            role: c.role,
            at: rfc3339(c.at()),
        }),
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

/// Every answer the check gave in one run when a change had to be confirmed, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confirmation {
    pub required: u32,
    pub roles: Vec<Role>,
}

#[derive(Debug, Serialize)]
pub struct JsonUnit<'a> {
    pub name: &'a str,
    pub when: When,
    pub desired: Option<Desired>,
    pub observed: &'a UnitState,
    pub action: Option<Action>,
    /// The unit was already on its way: the action is verified, no job is queued.
    pub underway: bool,
    pub managed: bool,
    /// Null when nothing was done (no action, dry run, or `diff`).
    pub outcome: Option<JsonOutcome<'a>>,
}

/// What a run knew, for `--output json`.
pub struct Json<'a> {
    pub command: &'static str,
    pub check: &'a CheckResult,
    pub plan: &'a Plan,
    pub results: &'a [StepResult],
    pub dry_run: bool,
    pub paused: Option<&'a crate::maintenance::Pause>,
    pub confirmation: Option<&'a Confirmation>,
    pub error: Option<&'a str>,
    pub fence: Option<&'a View>,
}

pub fn json(j: &Json) -> String {
    let plan = j.plan;
    let report = JsonReport {
        version: 1,
        command: j.command,
        role: plan.role,
        previous_role: plan.observed_role,
        check: json_check(j.check),
        dry_run: j.dry_run,
        paused: j.paused,
        in_sync: plan.in_sync(),
        units: plan
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| JsonUnit {
                name: &u.name,
                when: u.when,
                desired: u.desired,
                observed: &u.observed,
                action: u.action,
                underway: u.underway,
                managed: u.managed,
                outcome: j
                    .results
                    .iter()
                    .find(|r| r.unit == i)
                    .map(|r| json_outcome(&r.outcome)),
            })
            .collect(),
        confirmation: j.confirmation,
        error: j.error,
        fence: j.fence.map(json_fence),
    };
    // Serialising plain structs of strings and numbers cannot fail; fall back rather than panic.
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
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

// ---- status ---------------------------------------------------------------------------------

/// What a neutral value says is under way.
fn moving(value: &str) -> &'static str {
    if value.starts_with(crate::election::PROMOTING) {
        "a promotion is under way"
    } else {
        "a switchover is under way"
    }
}

fn holder_text(h: &crate::election::Holder) -> String {
    use crate::election::Holder;
    match h {
        Holder::Site(s) => s.clone(),
        Holder::Nobody => "(no key: no site holds the role)".into(),
        Holder::Switching(v) => format!("{v:?} ({})", moving(v)),
        Holder::Garbage(v) => format!("\"{v}\" (names no site)"),
    }
}

fn flag_text(f: &crate::status::Flag) -> String {
    use crate::status::Flag;
    match f {
        Flag::PrimaryOnSites(sites) => format!(
            "hosts of {} all say they run the primary units",
            sites.join(" and ")
        ),
        Flag::NoHolder => "no site holds the role: the application runs nowhere".into(),
        Flag::HolderNotRunning(site) => {
            format!(
                "no host of {site} has acknowledged running the primary units at the key's revision"
            )
        }
        Flag::Behind { host, acked } => format!(
            "{host} acknowledged revision {acked} last: behind the key (down, cut off, paused, or a stop or start that failed)"
        ),
        Flag::Unreadable { host } => format!("{host}: its acknowledgement is not one"),
        Flag::OutOfSync { host, units } => format!(
            "{host}: {} did not reach {} state (see journalctl -u failover-manager there)",
            units.join(", "),
            if units.len() == 1 { "its" } else { "their" }
        ),
        Flag::Silent { host, seconds } => format!(
            "{host} not heard from for {} (down, cut off from etcd, its timer stopped, or its clock off)",
            ago(*seconds)
        ),
    }
}

/// Seconds as "42s", "3m12s", "2h5m": how long ago, for a table.
fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn flag_code(f: &crate::status::Flag) -> &'static str {
    use crate::status::Flag;
    match f {
        Flag::PrimaryOnSites(_) => "primary_on_two_sites",
        Flag::NoHolder => "no_holder",
        Flag::HolderNotRunning(_) => "holder_not_running",
        Flag::Behind { .. } => "behind",
        Flag::Unreadable { .. } => "unreadable",
        Flag::OutOfSync { .. } => "not_in_sync",
        Flag::Silent { .. } => "not_heard_from",
    }
}

/// `status` for people: the key, one row per host, then what to look at.
pub fn status_text(key: &str, v: &crate::status::View, ttl: Option<i64>, style: Style) -> String {
    use crate::status::Acked;
    let mut out = format!("{key}: {}", holder_text(&v.holder));
    if v.revision > 0 {
        out.push_str(&format!(" (revision {}", v.revision));
        if let Some(l) = v.lease {
            out.push_str(&format!(", lease {l:x}"));
            if let Some(t) = ttl {
                out.push_str(&format!(": {t}s left"));
            }
        }
        out.push(')');
    }
    out.push('\n');
    if let Some(p) = &v.promotion {
        out.push_str(&format!("last promotion: {p}\n"));
    }
    let rows: Vec<[String; 5]> = v
        .rows
        .iter()
        .map(|r| {
            let (role, rev) = match &r.ack {
                Acked::Role {
                    revision,
                    role,
                    pending,
                } if pending.is_empty() => (role.to_string(), revision.to_string()),
                Acked::Role { revision, role, .. } => {
                    (format!("{role} (not in sync)"), revision.to_string())
                }
                Acked::Garbage(g) => (format!("? \"{g}\""), "-".into()),
            };
            let when = match (r.at, v.now) {
                (Some(at), Some(now)) => format!("{} ago", ago(now.saturating_sub(at))),
                _ => "-".into(),
            };
            [r.site.clone(), r.host.clone(), role, rev, when]
        })
        .collect();
    let head = ["SITE", "HOST", "ROLE", "ACKNOWLEDGED", "WHEN"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&head))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2), width(3)];
    for r in std::iter::once(&head).chain(&rows) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        ));
    }
    if v.rows.is_empty() {
        out.push_str("(no host has acknowledged anything yet)\n");
    }
    for f in &v.flags {
        let line = format!("! {}", flag_text(f));
        let code = if matches!(f, crate::status::Flag::PrimaryOnSites(_)) {
            "1;31"
        } else {
            "1"
        };
        out.push_str(&style.paint(code, &line));
        out.push('\n');
    }
    out
}

/// `status --output json`.
pub fn status_json(
    key: &str,
    v: Option<&crate::status::View>,
    ttl: Option<i64>,
    error: Option<&str>,
) -> String {
    use crate::status::Acked;
    let value = match v {
        None => serde_json::json!({ "version": 1, "key": key, "healthy": false, "error": error }),
        Some(v) => serde_json::json!({
            "version": 1,
            "key": key,
            "healthy": v.healthy(),
            "holder": match &v.holder {
                crate::election::Holder::Site(s) => Some(s.as_str()),
                _ => None,
            },
            "value": holder_text(&v.holder),
            "revision": v.revision,
            "lease": v.lease,
            "ttl_left_s": ttl,
            "promotion": v.promotion,
            "hosts": v.rows.iter().map(|r| match &r.ack {
                Acked::Role { revision, role, pending } => serde_json::json!({
                    "site": r.site, "host": r.host, "role": role, "revision": revision,
                    "in_sync": pending.is_empty(), "units_not_in_state": pending,
                    "behind": *revision < v.revision,
                    "at": r.at,
                    "ago_s": r.at.zip(v.now).map(|(at, now)| now.saturating_sub(at)),
                    "fence_s": match r.fence {
                        crate::status::Fence::Within(s) => serde_json::json!(s),
                        crate::status::Fence::Never => serde_json::json!("never"),
                        crate::status::Fence::Unknown => serde_json::Value::Null,
                    },
                }),
                Acked::Garbage(g) => serde_json::json!({
                    "site": r.site, "host": r.host, "role": null, "revision": null, "unreadable": g,
                }),
            }).collect::<Vec<_>>(),
            "flags": v.flags.iter().map(|f| serde_json::json!({
                "code": flag_code(f), "text": flag_text(f),
            })).collect::<Vec<_>>(),
        }),
    };
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A page (`incident::page`): one line, the host and what a person should know first.
pub fn page(p: &crate::incident::Page, host: &str, now: std::time::SystemTime) -> String {
    use crate::incident::{Kind, Page};
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string()
    };
    match p {
        Page::Started(i) => {
            let what = match i.kind {
                Kind::Failed => "its runs fail",
                Kind::RoleUnknown => "the role is unknown while a primary unit runs here",
                Kind::Fenced => "fenced: the role was unknown too long, the primary units stopped",
            };
            format!(
                "failover-manager: incident started on {host} at {}: {what} (exit {}); \
                 journalctl -u failover-manager.service -p err on {host} says why",
                at(i.since),
                i.exit
            )
        }
        Page::Ended(i) => {
            let lasted = match i.ended {
                Some(_) => format!(
                    ", after {}",
                    humantime::format_duration(crate::incident::lasted(i, now))
                ),
                None => String::new(),
            };
            format!(
                "failover-manager: incident ended on {host}: its runs need nobody now \
                 (the incident of {}{lasted})",
                at(i.since)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Exit;
    use crate::config::UnitConfig;
    use crate::domain::UnitState;
    use crate::domain::When;
    use crate::plan::plan;

    fn units() -> Vec<UnitConfig> {
        ["app.service", "web.service", "replica.service"]
            .iter()
            .zip([When::Primary, When::Primary, When::Standby])
            .map(|(n, w)| UnitConfig::for_test(n, w))
            .collect()
    }

    fn check(role: Role, code: i32) -> CheckResult {
        CheckResult {
            role,
            answer: Answer::Exit(Exit::Code(code)),
            duration: Duration::from_millis(12),
            output: vec![],
            sent: crate::clock::at("boot", 0),
        }
    }

    fn takeover() -> Plan {
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

    #[test]
    fn json_is_stable_and_complete() {
        let p = takeover();
        let results = vec![StepResult {
            unit: 2,
            name: "replica.service".into(),
            action: Action::Stop,
            outcome: Outcome::Done {
                elapsed: Duration::from_millis(5),
            },
        }];
        let j = json(&Json {
            command: "reconcile",
            check: &check(Role::Primary, 0),
            plan: &p,
            results: &results,
            dry_run: false,
            paused: None,
            confirmation: None,
            error: None,
            fence: None,
        });
        let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(v["version"], 1);
        assert_eq!(v["role"], "primary");
        assert_eq!(v["check"]["exit_code"], 0);
        assert_eq!(v["check"]["duration_ms"], 12);
        assert_eq!(v["units"][0]["name"], "app.service");
        assert_eq!(v["units"][0]["desired"], "running");
        assert_eq!(v["units"][0]["observed"], "inactive");
        assert_eq!(v["units"][0]["action"], "start");
        assert_eq!(v["units"][0]["outcome"], serde_json::Value::Null);
        assert_eq!(v["units"][2]["outcome"]["status"], "done");
        assert_eq!(v["units"][2]["outcome"]["elapsed_ms"], 5);
        assert_eq!(v["units"][1]["action"], serde_json::Value::Null);
        assert_eq!(v["units"][1]["managed"], true);
        assert_eq!(v["paused"], serde_json::Value::Null);
        assert_eq!(v["confirmation"], serde_json::Value::Null);
        assert_eq!(v["error"], serde_json::Value::Null);
        let confirmed = Confirmation {
            required: 2,
            roles: vec![Role::Primary, Role::Unknown],
        };
        let j = json(&Json {
            command: "reconcile",
            check: &check(Role::Unknown, 9),
            plan: &p,
            results: &[],
            dry_run: false,
            paused: None,
            confirmation: Some(&confirmed),
            error: Some("systemd unreachable"),
            fence: Some(&waiting()),
        });
        let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(
            v["confirmation"],
            serde_json::json!({"required": 2, "roles": ["primary", "unknown"]})
        );
        assert_eq!(v["error"], "systemd unreachable");
        assert_eq!(
            v["fence"],
            serde_json::json!({
                "after_ms": 120_000, "fenced": false, "unknown_for_ms": 70_000,
                "fences_in_ms": 50_000,
                "last_confirmed": {"role": "primary", "at": "2023-11-14T22:13:20Z"}
            })
        );
    }

    fn waiting() -> View {
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
