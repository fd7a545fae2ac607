//! The words of the domain, as values: roles, desired and observed unit states and the one
//! rule that classifies a state, actions, and why a step failed or was skipped. Imports
//! nothing else of the crate; every module that decides uses these. A failure and a skip are
//! one vocabulary each: the value, its stable code (JSON, metrics, hooks) and its words, all
//! here; `report` makes every other word.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the check says this host is. Anything but a configured exit code is `Unknown`, and an
/// unknown role is never acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
    Unknown,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Unknown => "unknown",
        })
    }
}

/// Which role a unit belongs to: it runs on the host holding that role and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Primary,
    Standby,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Primary => "primary",
            When::Standby => "standby",
        }
    }
}

/// What a role wants of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Running,
    Stopped,
}

/// A step: one systemd job (`StartUnit`/`StopUnit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Stop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }

    /// The action that brings a unit to `d`.
    pub fn towards(d: Desired) -> Action {
        match d {
            Desired::Running => Action::Start,
            Desired::Stopped => Action::Stop,
        }
    }
}

/// A unit's ActiveState, as `systemctl is-active` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Maintenance,
    Refreshing,
    /// Anything this version does not know; never guessed into one of the above.
    Other(String),
}

/// The one classification of a unit state that every decision uses: the planner, the
/// verification, the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Up: active, or busy with a reload while staying up.
    Running,
    /// Down: inactive, or `failed` (a crash is not running).
    Stopped,
    /// On its way there: `activating` to running, `deactivating` to stopped.
    OnItsWay(Desired),
    /// systemd is busy with the unit (`maintenance`) or says something we do not know:
    /// reported, never acted on.
    NotActionable,
}

impl UnitState {
    pub fn parse(s: &str) -> UnitState {
        match s.trim() {
            "active" => UnitState::Active,
            "reloading" => UnitState::Reloading,
            "inactive" => UnitState::Inactive,
            "failed" => UnitState::Failed,
            "activating" => UnitState::Activating,
            "deactivating" => UnitState::Deactivating,
            "maintenance" => UnitState::Maintenance,
            "refreshing" => UnitState::Refreshing,
            other => UnitState::Other(other.to_owned()),
        }
    }

    /// What a report says when no state was read.
    pub fn unknown() -> UnitState {
        UnitState::Other("unknown".into())
    }

    pub fn as_str(&self) -> &str {
        match self {
            UnitState::Active => "active",
            UnitState::Reloading => "reloading",
            UnitState::Inactive => "inactive",
            UnitState::Failed => "failed",
            UnitState::Activating => "activating",
            UnitState::Deactivating => "deactivating",
            UnitState::Maintenance => "maintenance",
            UnitState::Refreshing => "refreshing",
            UnitState::Other(s) => s,
        }
    }

    pub fn class(&self) -> Class {
        match self {
            UnitState::Active | UnitState::Reloading | UnitState::Refreshing => Class::Running,
            UnitState::Inactive | UnitState::Failed => Class::Stopped,
            UnitState::Activating => Class::OnItsWay(Desired::Running),
            UnitState::Deactivating => Class::OnItsWay(Desired::Stopped),
            UnitState::Maintenance | UnitState::Other(_) => Class::NotActionable,
        }
    }

    /// Where the unit is heading: a unit on its way counts as being there already (no
    /// second job is queued for it).
    pub fn heading(&self) -> Option<Desired> {
        match self.class() {
            Class::Running => Some(Desired::Running),
            Class::Stopped => Some(Desired::Stopped),
            Class::OnItsWay(d) => Some(d),
            Class::NotActionable => None,
        }
    }

    /// Where the unit has arrived: a unit on its way is not there yet.
    pub fn settled(&self) -> Option<Desired> {
        match self.class() {
            Class::Running => Some(Desired::Running),
            Class::Stopped => Some(Desired::Stopped),
            Class::OnItsWay(_) | Class::NotActionable => None,
        }
    }

    /// Up right now (a unit still `activating` is not).
    pub fn is_running(&self) -> bool {
        self.class() == Class::Running
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UnitState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a started unit broke its settle window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleBreak {
    /// Left the active state for this one.
    Went(UnitState),
    /// A new invocation (or restart count): it crashed and was restarted between two reads.
    Restarted,
}

/// Why a step failed. `report` says it in words; the JSON carries both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// Its job could not be queued (systemd refused: masked, not found, not root, …).
    CannotQueue(Action),
    /// The unit's file cannot be loaded (not found, bad setting, masked).
    CannotLoad,
    /// A start ended `failed`.
    Crashed,
    /// A start ended inactive with no job left (a oneshot without RemainAfterExit=yes).
    Exited,
    /// A start was skipped by systemd: a Condition…= is not met.
    ConditionNotMet,
    /// A start did not run: a dependency failed.
    DependencyFailed,
    /// The job ended with this result (`canceled`, `timeout`, `assert`, …).
    JobFailed(String),
    /// A start found the unit stopping again.
    StoppingAgain,
    /// Not there within `verify_timeout` (`limit`); `sub` is the sub-state last read, `job`
    /// what our job ended with, if it ended other than `done`.
    Timeout {
        sub: String,
        job: Option<String>,
        limit: Duration,
    },
    /// Left the active state, or was restarted, `after` becoming active, within `window`.
    NotSettled {
        how: SettleBreak,
        after: Duration,
        window: Duration,
    },
    /// systemd could not be asked until the step's limits passed.
    Unverifiable(String),
    /// SIGTERM/SIGINT before it was verified.
    Interrupted,
}

/// Why a step was not attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// An earlier start (this unit) failed: starts are a resource group.
    EarlierStartFailed(String),
    /// This unit did not stop, and both roles must never run at once.
    StopFailed(String),
    /// SIGTERM/SIGINT before its job was queued.
    Interrupted,
    /// The loop ended without deciding it (never expected).
    NotVerified,
}

impl FailReason {
    /// A stable, machine-readable name (`reason_code` in the JSON, the metrics, the hooks).
    pub fn code(&self) -> &'static str {
        match self {
            FailReason::CannotQueue(_) => "cannot_queue",
            FailReason::CannotLoad => "cannot_load",
            FailReason::DependencyFailed => "dependency_failed",
            FailReason::ConditionNotMet => "condition_not_met",
            FailReason::JobFailed(_) => "job_failed",
            FailReason::Crashed => "crashed",
            FailReason::Exited => "exited",
            FailReason::StoppingAgain => "stopping_again",
            FailReason::Timeout { .. } => "timeout",
            FailReason::NotSettled { .. } => "not_settled",
            FailReason::Unverifiable(_) => "unverifiable",
            FailReason::Interrupted => "interrupted",
        }
    }

    /// In one line; `state` is the last state seen.
    pub fn words(&self, state: &UnitState) -> String {
        match self {
            FailReason::CannotQueue(Action::Start) => "could not be started".into(),
            FailReason::CannotQueue(Action::Stop) => "could not be stopped".into(),
            FailReason::CannotLoad => "cannot be loaded".into(),
            FailReason::DependencyFailed => job_text("dependency"),
            FailReason::ConditionNotMet => {
                "was skipped: a Condition…= of the unit is not met".into()
            }
            FailReason::JobFailed(result) => job_text(result),
            FailReason::Crashed => "failed".into(),
            FailReason::Exited => "exited (a oneshot needs RemainAfterExit=yes)".into(),
            FailReason::StoppingAgain => "is stopping again".into(),
            FailReason::Timeout { sub, job, limit } => {
                let sub = if sub.is_empty() {
                    String::new()
                } else {
                    format!(" ({sub})")
                };
                let job = job
                    .as_deref()
                    .map(|r| format!("; {}", job_text(r)))
                    .unwrap_or_default();
                format!(
                    "still {state}{sub} after {} (verify_timeout{job})",
                    fmt_duration(*limit)
                )
            }
            FailReason::NotSettled { how, after, window } => {
                let what = match how {
                    SettleBreak::Went(s) => format!("went {s}"),
                    SettleBreak::Restarted => "was restarted".into(),
                };
                format!(
                    "{what} {} after it became active (within its {} settle window)",
                    fmt_duration(*after),
                    fmt_duration(*window)
                )
            }
            FailReason::Unverifiable(e) => format!("could not be verified: {e}"),
            FailReason::Interrupted => "interrupted before it was verified".into(),
        }
    }
}

impl SkipReason {
    /// A stable, machine-readable name (`reason_code` in the JSON).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::EarlierStartFailed(_) => "earlier_start_failed",
            SkipReason::StopFailed(_) => "stop_failed",
            SkipReason::Interrupted => "interrupted",
            SkipReason::NotVerified => "not_verified",
        }
    }

    /// In one line.
    pub fn words(&self) -> String {
        match self {
            SkipReason::EarlierStartFailed(unit) => format!("{unit} failed before it"),
            SkipReason::StopFailed(unit) => {
                format!("{unit} did not stop, and both roles must never run at once")
            }
            SkipReason::Interrupted => "interrupted".into(),
            SkipReason::NotVerified => "not verified".into(),
        }
    }
}

/// What systemd's job results mean, in the words of `systemctl start`'s own messages.
fn job_text(result: &str) -> String {
    match result {
        "canceled" => "its job was canceled (another start or stop replaced it)".into(),
        "timeout" => "its job timed out (JobTimeoutSec=)".into(),
        "dependency" => "was not started: a dependency failed".into(),
        "assert" => "an Assert…= of the unit failed".into(),
        "unsupported" => "is not supported on this system".into(),
        "collected" => "its queued job was garbage-collected".into(),
        "once" => "was started once already and cannot be started again".into(),
        "invalid" => "its job was invalid".into(),
        other => format!("its job ended {other}"),
    }
}

/// "120ms", "1.2s", "1m 5s": short enough for a one-line message.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Reached the desired state (and, for a start, stayed active through its settle window).
    Done {
        elapsed: Duration,
    },
    Failed {
        reason: FailReason,
        /// The last state seen (`unknown` when none was).
        state: UnitState,
        /// systemd's own words for why ("result exit-code, exit status 1"), or its refusal.
        cause: String,
        journal: Vec<String>,
        elapsed: Duration,
    },
    Skipped {
        reason: SkipReason,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// Index into the plan's units.
    pub unit: usize,
    pub name: String,
    pub action: Action,
    pub outcome: Outcome,
}

impl StepResult {
    pub fn failed(&self) -> bool {
        !matches!(self.outcome, Outcome::Done { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state, against a table written out by hand.
    #[test]
    fn one_classification_of_every_state() {
        use Class::*;
        use Desired::{Running as R, Stopped as S};
        for (state, class, heading, settled, running) in [
            ("active", Running, Some(R), Some(R), true),
            ("reloading", Running, Some(R), Some(R), true),
            ("refreshing", Running, Some(R), Some(R), true),
            ("inactive", Stopped, Some(S), Some(S), false),
            ("failed", Stopped, Some(S), Some(S), false),
            ("activating", OnItsWay(R), Some(R), None, false),
            ("deactivating", OnItsWay(S), Some(S), None, false),
            ("maintenance", NotActionable, None, None, false),
            ("bogus", NotActionable, None, None, false),
        ] {
            let s = UnitState::parse(state);
            assert_eq!(s.as_str(), state);
            assert_eq!(s.class(), class, "{state}");
            assert_eq!(s.heading(), heading, "{state}");
            assert_eq!(s.settled(), settled, "{state}");
            assert_eq!(s.is_running(), running, "{state}");
        }
    }

    /// The crate's modules and the modules each one's non-test code names (`crate::x`).
    fn use_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph = std::collections::BTreeMap::new();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                let module = entry.file_name().to_string_lossy().into_owned();
                for sub in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    files.push((module.clone(), sub.path()));
                }
            } else if let Some(stem) = path.file_stem() {
                files.push((stem.to_string_lossy().into_owned(), path.clone()));
            }
        }
        for (module, path) in files {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let code = text.split("\nmod tests").next().unwrap_or_default();
            let deps: &mut std::collections::BTreeSet<String> =
                graph.entry(module.clone()).or_default();
            for part in code.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
        graph
    }

    /// The domain imports nothing else of the crate, and no module imports one that imports
    /// it back: every change to the layout keeps the `use crate::` graph acyclic.
    #[test]
    fn the_domain_imports_nothing_and_the_use_graph_has_no_cycle() {
        let mut graph = use_graph();
        assert!(graph.len() > 10, "{graph:?}");
        assert_eq!(graph.get("domain").map(|d| d.len()), Some(0), "{graph:?}");
        // Peel off modules that import nothing left; a cycle is what cannot be peeled.
        while !graph.is_empty() {
            let leaves: Vec<String> = graph
                .iter()
                .filter(|(_, deps)| deps.iter().all(|d| !graph.contains_key(d)))
                .map(|(m, _)| m.clone())
                .collect();
            assert!(!leaves.is_empty(), "an import cycle among {graph:?}");
            for m in leaves {
                graph.remove(&m);
            }
        }
    }
}
