//! Executes a plan: one step at a time, each verified before the next. Starts behave like a
//! resource group (a failure stops the starts after it); stops always all run, and no start
//! runs after a failed stop, so the two roles' units never run at once.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::UnitConfig;
use crate::interrupt;
use crate::plan::{Action, Plan};
use crate::systemctl::{Manager, SystemctlError, UnitDetails, UnitState};

/// How many journal lines a failure report carries.
const JOURNAL_LINES: usize = 5;
/// Poll interval bounds: quick at first (most units start in milliseconds), then gentle.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(50);

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

/// Executes the plan's steps; `parallel` batches each phase (all stops, then all starts) into
/// one systemctl call verified together, for units that do not depend on each other.
pub fn apply(
    plan: &Plan,
    units: &[UnitConfig],
    parallel: bool,
    mgr: &dyn Manager,
) -> Vec<StepResult> {
    if parallel {
        apply_parallel(plan, units, mgr)
    } else {
        apply_ordered(plan, units, mgr)
    }
}

/// Why a start is not attempted after an earlier step failed.
fn blocker(results: &[StepResult]) -> Option<String> {
    results.iter().find(|r| r.failed()).map(|r| match r.action {
        Action::Stop => format!(
            "{} did not stop, and both roles must never run at once",
            r.name
        ),
        Action::Start => format!("{} failed before it", r.name),
    })
}

/// One step at a time, each a batch of one: verified (and settled) before the next begins.
fn apply_ordered(plan: &Plan, units: &[UnitConfig], mgr: &dyn Manager) -> Vec<StepResult> {
    let mut results: Vec<StepResult> = Vec::with_capacity(plan.steps.len());
    for &i in &plan.steps {
        let Some(action) = plan.units[i].action else {
            continue;
        };
        match (action, blocker(&results)) {
            (Action::Start, Some(reason)) => results.push(skipped(plan, i, action, reason)),
            // Stops always run: leaving a unit of the wrong role up is the worse outcome.
            _ => results.extend(batch(action, &[i], plan, units, mgr)),
        }
    }
    results
}

fn skipped(plan: &Plan, i: usize, action: Action, reason: String) -> StepResult {
    StepResult {
        unit: i,
        name: plan.units[i].name.clone(),
        action,
        outcome: Outcome::Skipped { reason },
    }
}

/// What one poll of a unit says about a job in flight.
#[derive(Debug, PartialEq)]
enum Progress {
    Reached,
    Pending,
    Failed(&'static str),
}

fn start_progress(d: &UnitDetails) -> Progress {
    if !d.load_state.is_empty() && d.load_state != "loaded" {
        return Progress::Failed("cannot be loaded");
    }
    match d.active_state {
        UnitState::Active | UnitState::Reloading | UnitState::Refreshing => Progress::Reached,
        UnitState::Activating => Progress::Pending,
        // Before the queued job runs (or while it waits for an After= dependency), the unit
        // still shows where it was: inactive, failed, or stopping.
        UnitState::Inactive | UnitState::Failed | UnitState::Deactivating if d.job_pending => {
            Progress::Pending
        }
        UnitState::Failed => Progress::Failed("failed"),
        UnitState::Inactive if d.condition_result == "no" => {
            Progress::Failed("was skipped: a Condition…= of the unit is not met")
        }
        UnitState::Inactive if d.result == "dependency" => {
            Progress::Failed("was not started: a dependency failed")
        }
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

fn settle_reason(what: &str, after_active: Duration, cfg: &UnitConfig) -> String {
    format!(
        "{what} {} after it became active (within its {} settle window)",
        crate::report::fmt_duration(after_active),
        crate::report::fmt_duration(cfg.settle)
    )
}

fn timeout_reason(d: &UnitDetails, cfg: &UnitConfig) -> String {
    let sub = if d.sub_state.is_empty() {
        String::new()
    } else {
        format!(" ({})", d.sub_state)
    };
    format!(
        "still {}{sub} after {} (verify_timeout)",
        d.active_state,
        crate::report::fmt_duration(cfg.verify_timeout),
    )
}

fn apply_parallel(plan: &Plan, units: &[UnitConfig], mgr: &dyn Manager) -> Vec<StepResult> {
    let (stops, starts): (Vec<usize>, Vec<usize>) = plan
        .steps
        .iter()
        .partition(|&&i| plan.units[i].action == Some(Action::Stop));
    let mut results = batch(Action::Stop, &stops, plan, units, mgr);
    match blocker(&results) {
        Some(reason) => results.extend(
            starts
                .iter()
                .map(|&i| skipped(plan, i, Action::Start, reason.clone())),
        ),
        None => results.extend(batch(Action::Start, &starts, plan, units, mgr)),
    }
    results
}

/// Where one unit of a batch is.
enum Phase {
    Waiting,
    /// Active since `active_at` (after the batch began); must stay so, and the same process
    /// (invocation), until `until`.
    Settling {
        active_at: Duration,
        until: Instant,
        invocation: String,
        restarts: String,
    },
    Finished(Outcome),
}

/// Queues one job per unit in a single call (none for a unit already on its way), then
/// verifies them all with one batched `systemctl show` per poll.
fn batch(
    action: Action,
    idxs: &[usize],
    plan: &Plan,
    units: &[UnitConfig],
    mgr: &dyn Manager,
) -> Vec<StepResult> {
    if idxs.is_empty() {
        return Vec::new();
    }
    let (verb, progress): (_, fn(&UnitDetails) -> Progress) = match action {
        Action::Start => (crate::systemctl::Verb::Start, start_progress),
        Action::Stop => (crate::systemctl::Verb::Stop, stop_progress),
    };
    let t0 = Instant::now();
    let since = SystemTime::now();
    let names: Vec<&str> = idxs.iter().map(|&i| units[i].name.as_str()).collect();
    let mut phases: Vec<Phase> = idxs.iter().map(|_| Phase::Waiting).collect();
    // The last state seen of each unit, for a report that needs no further systemctl call.
    let mut last: Vec<UnitState> = idxs
        .iter()
        .map(|&i| plan.units[i].observed.clone())
        .collect();
    let to_queue: Vec<usize> = (0..idxs.len())
        .filter(|&j| !plan.units[idxs[j]].underway)
        .collect();
    let queue_names: Vec<&str> = to_queue.iter().map(|&j| names[j]).collect();
    if interrupt::requested() {
        phases.iter_mut().for_each(|p| {
            *p = Phase::Finished(Outcome::Skipped {
                reason: "interrupted".into(),
            })
        });
    } else if queue_names.is_empty() {
        // Every unit is already on its way: only verification is left.
    } else if let Err(first) = mgr.enqueue_many(verb, &queue_names) {
        let what = match verb {
            crate::systemctl::Verb::Start => "could not be started",
            crate::systemctl::Verb::Stop => "could not be stopped",
        };
        // One bad unit fails the whole call: queue them one by one, so each gets its own error
        // and the good ones still go.
        let errors: Vec<Option<SystemctlError>> = if queue_names.len() == 1 {
            vec![Some(first)]
        } else {
            queue_names
                .iter()
                .map(|n| mgr.enqueue(verb, n).err())
                .collect()
        };
        for (&j, e) in to_queue.iter().zip(errors) {
            if let Some(e) = e {
                let cfg = &units[idxs[j]];
                phases[j] = Phase::Finished(failure(cfg, mgr, what, e.to_string(), t0, since));
            }
        }
    }
    let mut poll = POLL_MIN;
    loop {
        let pending: Vec<usize> = (0..idxs.len())
            .filter(|&j| !matches!(phases[j], Phase::Finished(_)))
            .collect();
        if pending.is_empty() {
            break;
        }
        let pending_names: Vec<&str> = pending.iter().map(|&j| names[j]).collect();
        let details = match mgr.details_many(&pending_names) {
            Ok(d) => d,
            Err(e) => {
                for &j in &pending {
                    let cfg = &units[idxs[j]];
                    phases[j] = Phase::Finished(failure(
                        cfg,
                        mgr,
                        "could not be verified",
                        e.to_string(),
                        t0,
                        since,
                    ));
                }
                break;
            }
        };
        let now = Instant::now();
        for (&j, d) in pending.iter().zip(details) {
            let cfg = &units[idxs[j]];
            last[j] = d.active_state.clone();
            let phase = std::mem::replace(&mut phases[j], Phase::Waiting);
            phases[j] = match phase {
                Phase::Waiting => match progress(&d) {
                    Progress::Reached if action == Action::Stop || cfg.settle.is_zero() => {
                        Phase::Finished(Outcome::Done {
                            elapsed: t0.elapsed(),
                        })
                    }
                    Progress::Reached => Phase::Settling {
                        active_at: t0.elapsed(),
                        until: now + cfg.settle,
                        invocation: d.invocation_id.clone(),
                        restarts: d.n_restarts.clone(),
                    },
                    Progress::Failed(what) => {
                        Phase::Finished(failure_with(cfg, mgr, what.to_owned(), d, t0, since))
                    }
                    Progress::Pending if now >= t0 + cfg.verify_timeout => {
                        let reason = timeout_reason(&d, cfg);
                        Phase::Finished(failure_with(cfg, mgr, reason, d, t0, since))
                    }
                    Progress::Pending => Phase::Waiting,
                },
                Phase::Settling {
                    active_at,
                    until,
                    invocation,
                    restarts,
                } => {
                    let after = t0.elapsed().saturating_sub(active_at);
                    // A crash and a quick Restart= can both fall between two polls: a new
                    // invocation (or restart count) gives it away.
                    let restarted = d.invocation_id != invocation || d.n_restarts != restarts;
                    if start_progress(&d) != Progress::Reached {
                        let what = format!("went {}", d.active_state);
                        let reason = settle_reason(&what, after, cfg);
                        Phase::Finished(failure_with(cfg, mgr, reason, d, t0, since))
                    } else if restarted {
                        let reason = settle_reason("was restarted", after, cfg);
                        Phase::Finished(failure_with(cfg, mgr, reason, d, t0, since))
                    } else if now >= until {
                        Phase::Finished(Outcome::Done { elapsed: active_at })
                    } else {
                        Phase::Settling {
                            active_at,
                            until,
                            invocation,
                            restarts,
                        }
                    }
                }
                finished @ Phase::Finished(_) => finished,
            };
        }
        if phases.iter().all(|p| matches!(p, Phase::Finished(_))) {
            break;
        }
        if !interrupt::sleep(poll) {
            // Stop at once: report what was last seen, without another call per unit.
            for (j, phase) in phases.iter_mut().enumerate() {
                if !matches!(phase, Phase::Finished(_)) {
                    *phase = Phase::Finished(Outcome::Failed {
                        reason: "interrupted before it was verified".into(),
                        state: last[j].clone(),
                        cause: String::new(),
                        journal: Vec::new(),
                        elapsed: t0.elapsed(),
                    });
                }
            }
        }
        poll = (poll * 2).min(POLL_MAX);
    }
    idxs.iter()
        .zip(phases)
        .map(|(&i, p)| StepResult {
            unit: i,
            name: plan.units[i].name.clone(),
            action,
            outcome: match p {
                Phase::Finished(o) => o,
                // Unreachable: the loop ends only when every unit is finished.
                _ => Outcome::Skipped {
                    reason: "not verified".into(),
                },
            },
        })
        .collect()
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

    impl Fake {
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
    }

    impl Manager for Fake {
        fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemctlError> {
            Ok(units.iter().map(|_| UnitState::Inactive).collect())
        }
        fn enqueue_many(&self, verb: Verb, units: &[&str]) -> Result<(), SystemctlError> {
            self.calls
                .borrow_mut()
                .push(format!("{} {}", verb.as_str(), units.join(" ")));
            for unit in units {
                self.queued.borrow_mut().insert(unit.to_string(), verb);
            }
            Ok(())
        }
        fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemctlError> {
            units.iter().map(|u| self.details(u)).collect()
        }
        fn property(&self, _: &str, _: &str) -> Result<String, SystemctlError> {
            Ok(String::new())
        }
        fn journal_tail(&self, unit: &str, _: Option<SystemTime>, _: usize) -> Vec<String> {
            vec![format!("{unit}: boom")]
        }
    }

    fn unit(name: &str, when: When) -> UnitConfig {
        UnitConfig {
            verify_timeout: Duration::from_millis(200),
            settle: Duration::from_millis(30),
            ..UnitConfig::for_test(name, when)
        }
    }

    fn run(units: &[UnitConfig], observed: &[UnitState], fake: &Fake) -> Vec<StepResult> {
        let p = plan(Role::Primary, units, observed);
        apply(&p, units, false, fake)
    }

    fn run_parallel(units: &[UnitConfig], observed: &[UnitState], fake: &Fake) -> Vec<StepResult> {
        let p = plan(Role::Primary, units, observed);
        apply(&p, units, true, fake)
    }

    #[test]
    fn parallel_batches_each_phase_into_one_call() {
        let units = [
            unit("a", When::Primary),
            unit("s1", When::Standby),
            unit("b", When::Primary),
            unit("s2", When::Standby),
        ];
        let fake = Fake::new(&[]);
        let observed = [
            UnitState::Inactive,
            UnitState::Active,
            UnitState::Inactive,
            UnitState::Active,
        ];
        let r = run_parallel(&units, &observed, &fake);
        assert!(r.iter().all(|s| !s.failed()), "{r:?}");
        assert_eq!(*fake.calls.borrow(), ["stop s2 s1", "start a b"]);
    }

    #[test]
    fn parallel_reports_each_failure_and_a_failed_stop_blocks_starts() {
        let units = [unit("a", When::Primary), unit("b", When::Primary)];
        let fake = Fake::new(&[("a", UnitState::Failed)]);
        let r = run_parallel(&units, &[UnitState::Inactive, UnitState::Inactive], &fake);
        assert!(r[0].failed() && !r[1].failed(), "independent units: {r:?}");
        let units = [unit("p", When::Primary), unit("s", When::Standby)];
        let fake = Fake::new(&[("s", UnitState::Deactivating)]);
        let r = run_parallel(&units, &[UnitState::Inactive, UnitState::Active], &fake);
        assert_eq!(*fake.calls.borrow(), ["stop s"]);
        assert!(
            matches!(&r[1].outcome, Outcome::Skipped { reason } if reason.contains("s did not stop"))
        );
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
            matches!(&r[0].outcome, Outcome::Failed { reason, .. } if reason.contains("still deactivating"))
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
            matches!(&r[0].outcome, Outcome::Failed { reason, .. } if reason.starts_with("still activating"))
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
