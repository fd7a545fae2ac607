//! Executes a plan: one step at a time, each verified before the next. Starts behave like a
//! resource group (a failure stops the starts after it); stops always all run, and no start
//! runs after a failed stop, so the two roles' units never run at once.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::UnitConfig;
use crate::interrupt;
use crate::plan::{Action, Plan};
use crate::systemctl::{Manager, UnitDetails, UnitState};

/// How many journal lines a failure report carries.
const JOURNAL_LINES: usize = 5;
/// Poll interval bounds: quick at first (most units start in milliseconds), then gentle.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Reached the desired state (and, for a start, stayed active through its settle window).
    Done {
        #[serde(serialize_with = "crate::report::ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Failed {
        reason: String,
        state: UnitState,
        cause: String,
        journal: Vec<String>,
        #[serde(serialize_with = "crate::report::ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    /// Index into the plan's units.
    #[serde(skip)]
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

pub fn apply(plan: &Plan, units: &[UnitConfig], mgr: &dyn Manager) -> Vec<StepResult> {
    let mut results: Vec<StepResult> = Vec::with_capacity(plan.steps.len());
    for &i in &plan.steps {
        let unit = &plan.units[i];
        let Some(action) = unit.action else { continue };
        let cfg = &units[i];
        let blocker = results.iter().find(|r| r.failed()).map(|r| match r.action {
            Action::Stop => format!(
                "{} did not stop, and both roles must never run at once",
                r.name
            ),
            Action::Start => format!("{} failed before it", r.name),
        });
        let outcome = if interrupt::requested() {
            Outcome::Skipped {
                reason: "interrupted".into(),
            }
        } else {
            match (action, blocker) {
                (Action::Start, Some(reason)) => Outcome::Skipped { reason },
                (Action::Start, None) => start(cfg, mgr),
                // Stops always run: leaving a unit of the wrong role up is the worse outcome.
                (Action::Stop, _) => stop(cfg, mgr),
            }
        };
        log::debug!("{action:?} {}: {outcome:?}", unit.name);
        results.push(StepResult {
            unit: i,
            name: unit.name.clone(),
            action,
            outcome,
        });
    }
    results
}

/// What one poll of a unit says about a job in flight.
#[derive(Debug, PartialEq)]
enum Progress {
    Reached,
    Pending,
    Failed(&'static str),
}

fn start_progress(d: &UnitDetails) -> Progress {
    match d.active_state {
        UnitState::Active | UnitState::Reloading | UnitState::Refreshing => Progress::Reached,
        UnitState::Activating => Progress::Pending,
        UnitState::Failed => Progress::Failed("failed"),
        // Before the queued job runs (or while it waits for an After= dependency).
        UnitState::Inactive | UnitState::Deactivating if d.job_pending => Progress::Pending,
        UnitState::Inactive => Progress::Failed("exited (a oneshot needs RemainAfterExit=yes)"),
        UnitState::Deactivating => Progress::Failed("is stopping again"),
        UnitState::Maintenance | UnitState::Other(_) => Progress::Pending,
    }
}

fn stop_progress(d: &UnitDetails) -> Progress {
    match d.active_state {
        // A unit that exits non-zero on SIGTERM ends `failed`: it is stopped all the same.
        UnitState::Inactive | UnitState::Failed => Progress::Reached,
        _ => Progress::Pending,
    }
}

fn start(cfg: &UnitConfig, mgr: &dyn Manager) -> Outcome {
    let t0 = Instant::now();
    let since = SystemTime::now();
    if let Err(e) = mgr.enqueue(crate::systemctl::Verb::Start, &cfg.name) {
        return failure(cfg, mgr, "could not be started", e.to_string(), t0, since);
    }
    let deadline = t0 + cfg.verify_timeout;
    if let Err(o) = wait_for(cfg, mgr, deadline, t0, since, start_progress, "to start") {
        return o;
    }
    // A Type=simple unit is `active` the moment it forks: it must stay up for `settle`.
    let active_at = t0.elapsed();
    let settle_end = Instant::now() + cfg.settle;
    let mut poll = POLL_MIN;
    while Instant::now() < settle_end {
        if !interrupt::sleep(poll.min(settle_end.saturating_duration_since(Instant::now()))) {
            return interrupted(cfg, mgr, t0, since);
        }
        poll = (poll * 2).min(POLL_MAX);
        match mgr.details(&cfg.name) {
            Ok(d) if start_progress(&d) == Progress::Reached => {}
            Ok(d) => {
                let reason = format!(
                    "went {} {} after it became active (within its {} settle window)",
                    d.active_state,
                    crate::report::fmt_duration(t0.elapsed().saturating_sub(active_at)),
                    crate::report::fmt_duration(cfg.settle)
                );
                return failure_with(cfg, mgr, reason, d, t0, since);
            }
            Err(e) => return failure(cfg, mgr, "could not be verified", e.to_string(), t0, since),
        }
    }
    Outcome::Done { elapsed: active_at }
}

fn stop(cfg: &UnitConfig, mgr: &dyn Manager) -> Outcome {
    let t0 = Instant::now();
    let since = SystemTime::now();
    if let Err(e) = mgr.enqueue(crate::systemctl::Verb::Stop, &cfg.name) {
        return failure(cfg, mgr, "could not be stopped", e.to_string(), t0, since);
    }
    match wait_for(
        cfg,
        mgr,
        t0 + cfg.verify_timeout,
        t0,
        since,
        stop_progress,
        "to stop",
    ) {
        Ok(()) => Outcome::Done {
            elapsed: t0.elapsed(),
        },
        Err(o) => o,
    }
}

/// Polls until `progress` says reached (Ok), failed, or the deadline passes (Err outcome).
fn wait_for(
    cfg: &UnitConfig,
    mgr: &dyn Manager,
    deadline: Instant,
    t0: Instant,
    since: SystemTime,
    progress: fn(&UnitDetails) -> Progress,
    goal: &str,
) -> Result<(), Outcome> {
    let mut poll = POLL_MIN;
    loop {
        let d = match mgr.details(&cfg.name) {
            Ok(d) => d,
            Err(e) => {
                return Err(failure(
                    cfg,
                    mgr,
                    "could not be verified",
                    e.to_string(),
                    t0,
                    since,
                ));
            }
        };
        match progress(&d) {
            Progress::Reached => return Ok(()),
            Progress::Failed(what) => {
                return Err(failure_with(cfg, mgr, what.to_owned(), d, t0, since));
            }
            Progress::Pending if Instant::now() >= deadline => {
                let reason = format!(
                    "did not finish {goal} within {} (still {})",
                    crate::report::fmt_duration(cfg.verify_timeout),
                    d.active_state
                );
                return Err(failure_with(cfg, mgr, reason, d, t0, since));
            }
            Progress::Pending => {}
        }
        let nap = poll.min(deadline.saturating_duration_since(Instant::now()));
        if !interrupt::sleep(nap) {
            return Err(interrupted(cfg, mgr, t0, since));
        }
        poll = (poll * 2).min(POLL_MAX);
    }
}

fn interrupted(cfg: &UnitConfig, mgr: &dyn Manager, t0: Instant, since: SystemTime) -> Outcome {
    let reason = "interrupted before it was verified".to_owned();
    match mgr.details(&cfg.name) {
        Ok(d) => failure_with(cfg, mgr, reason, d, t0, since),
        Err(e) => failure(cfg, mgr, &reason, e.to_string(), t0, since),
    }
}

fn failure(
    cfg: &UnitConfig,
    mgr: &dyn Manager,
    reason: &str,
    cause: String,
    t0: Instant,
    since: SystemTime,
) -> Outcome {
    Outcome::Failed {
        reason: reason.to_owned(),
        state: UnitState::Other("unknown".into()),
        cause,
        journal: mgr.journal_tail(&cfg.name, Some(since), JOURNAL_LINES),
        elapsed: t0.elapsed(),
    }
}

fn failure_with(
    cfg: &UnitConfig,
    mgr: &dyn Manager,
    reason: String,
    d: UnitDetails,
    t0: Instant,
    since: SystemTime,
) -> Outcome {
    Outcome::Failed {
        reason,
        cause: d.cause(),
        state: d.active_state,
        journal: mgr.journal_tail(&cfg.name, Some(since), JOURNAL_LINES),
        elapsed: t0.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Role;
    use crate::config::When;
    use crate::plan::plan;
    use crate::systemctl::{SystemctlError, Verb};
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A scripted systemd: each unit answers a fixed state after its job is queued.
    struct Fake {
        after: HashMap<String, UnitState>,
        calls: RefCell<Vec<String>>,
        queued: RefCell<HashMap<String, Verb>>,
    }

    impl Fake {
        fn new(after: &[(&str, UnitState)]) -> Fake {
            Fake {
                after: after
                    .iter()
                    .map(|(n, s)| (n.to_string(), s.clone()))
                    .collect(),
                calls: RefCell::new(Vec::new()),
                queued: RefCell::new(HashMap::new()),
            }
        }
    }

    impl Manager for Fake {
        fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemctlError> {
            Ok(units.iter().map(|_| UnitState::Inactive).collect())
        }
        fn enqueue(&self, verb: Verb, unit: &str) -> Result<(), SystemctlError> {
            self.calls
                .borrow_mut()
                .push(format!("{} {unit}", verb.as_str()));
            self.queued.borrow_mut().insert(unit.to_owned(), verb);
            Ok(())
        }
        fn details(&self, unit: &str) -> Result<UnitDetails, SystemctlError> {
            let verb = self.queued.borrow().get(unit).copied();
            let default = match verb {
                Some(Verb::Stop) => UnitState::Inactive,
                _ => UnitState::Active,
            };
            Ok(UnitDetails {
                load_state: "loaded".into(),
                active_state: self.after.get(unit).cloned().unwrap_or(default),
                ..UnitDetails::default()
            })
        }
        fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemctlError> {
            units.iter().map(|u| self.details(u)).collect()
        }
        fn journal_tail(&self, unit: &str, _: Option<SystemTime>, _: usize) -> Vec<String> {
            vec![format!("{unit}: boom")]
        }
    }

    fn unit(name: &str, when: When) -> UnitConfig {
        UnitConfig {
            name: name.into(),
            when,
            verify_timeout: Duration::from_millis(200),
            settle: Duration::from_millis(30),
            managed: true,
        }
    }

    fn run(units: &[UnitConfig], observed: &[UnitState], fake: &Fake) -> Vec<StepResult> {
        let p = plan(Role::Primary, units, observed);
        apply(&p, units, fake)
    }

    #[test]
    fn all_steps_run_in_plan_order_when_all_succeed() {
        let units = [
            unit("a", When::Primary),
            unit("s", When::Standby),
            unit("b", When::Primary),
        ];
        let fake = Fake::new(&[]);
        let r = run(
            &units,
            &[UnitState::Inactive, UnitState::Active, UnitState::Inactive],
            &fake,
        );
        assert!(r.iter().all(|s| !s.failed()), "{r:?}");
        assert_eq!(*fake.calls.borrow(), ["stop s", "start a", "start b"]);
    }

    #[test]
    fn a_failed_start_skips_the_starts_after_it() {
        let units = [
            unit("a", When::Primary),
            unit("b", When::Primary),
            unit("c", When::Primary),
        ];
        let fake = Fake::new(&[("a", UnitState::Failed)]);
        let r = run(
            &units,
            &[
                UnitState::Inactive,
                UnitState::Inactive,
                UnitState::Inactive,
            ],
            &fake,
        );
        assert_eq!(*fake.calls.borrow(), ["start a"]);
        match &r[0].outcome {
            Outcome::Failed {
                reason, journal, ..
            } => {
                assert_eq!(reason, "failed");
                assert_eq!(journal, &["a: boom"]);
            }
            o => panic!("{o:?}"),
        }
        assert!(
            matches!(&r[1].outcome, Outcome::Skipped { reason } if reason == "a failed before it")
        );
        assert!(matches!(&r[2].outcome, Outcome::Skipped { .. }));
    }

    #[test]
    fn a_failed_stop_lets_other_stops_run_but_blocks_all_starts() {
        let units = [
            unit("p", When::Primary),
            unit("s1", When::Standby),
            unit("s2", When::Standby),
        ];
        // s2 is stopped first (reverse order) and hangs in deactivating.
        let fake = Fake::new(&[("s2", UnitState::Deactivating)]);
        let r = run(
            &units,
            &[UnitState::Inactive, UnitState::Active, UnitState::Active],
            &fake,
        );
        assert_eq!(*fake.calls.borrow(), ["stop s2", "stop s1"]);
        assert!(
            matches!(&r[0].outcome, Outcome::Failed { reason, .. } if reason.contains("did not finish to stop"))
        );
        assert!(!r[1].failed());
        assert!(
            matches!(&r[2].outcome, Outcome::Skipped { reason } if reason.contains("s2 did not stop"))
        );
    }

    #[test]
    fn activating_past_the_timeout_fails() {
        let units = [unit("a", When::Primary)];
        let fake = Fake::new(&[("a", UnitState::Activating)]);
        let t = Instant::now();
        let r = run(&units, &[UnitState::Inactive], &fake);
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(
            matches!(&r[0].outcome, Outcome::Failed { reason, .. } if reason.contains("still activating"))
        );
    }

    #[test]
    fn progress_rules() {
        let d = |s: UnitState, job: bool| UnitDetails {
            load_state: "loaded".into(),
            active_state: s,
            job_pending: job,
            ..UnitDetails::default()
        };
        assert_eq!(
            start_progress(&d(UnitState::Inactive, true)),
            Progress::Pending
        );
        assert!(matches!(
            start_progress(&d(UnitState::Inactive, false)),
            Progress::Failed(_)
        ));
        assert_eq!(
            start_progress(&d(UnitState::Activating, false)),
            Progress::Pending
        );
        assert_eq!(
            start_progress(&d(UnitState::Active, true)),
            Progress::Reached
        );
        assert_eq!(
            stop_progress(&d(UnitState::Failed, false)),
            Progress::Reached
        );
        assert_eq!(
            stop_progress(&d(UnitState::Deactivating, false)),
            Progress::Pending
        );
        assert_eq!(
            stop_progress(&d(UnitState::Active, true)),
            Progress::Pending
        );
    }
}
