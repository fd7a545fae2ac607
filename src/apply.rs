//! Executes a plan: one step at a time, each verified before the next. Starts behave like a
//! resource group (a failure stops the starts after it); stops always all run, and no start
//! runs after a failed stop, so the two roles' units never run at once.
//!
//! This is the imperative shell around `verify`: it queues jobs, waits for what systemd says
//! (a job's end, a unit's change), reads the units that something happened to, and feeds it
//! all to each step's state machine until every step is decided.

use std::time::{Duration, Instant, SystemTime};

use crate::config::UnitConfig;
use crate::domain::{Action, FailReason, Outcome, SkipReason, StepResult, UnitState};
use crate::interrupt::Time;
use crate::plan::Plan;
use crate::systemd::{Event, Manager};
use crate::verify::{self, Job, Observation, Phase, Step};

/// How many journal lines a failure report carries.
const JOURNAL_LINES: usize = 5;
/// A unit still on its way is read again at least this often even when systemd says nothing
/// (a safety net: its job's end and its changes are signalled).
const REREAD: Duration = Duration::from_secs(1);
/// After systemd could not be asked, how soon to ask again.
const RETRY: Duration = Duration::from_millis(50);

/// Executes the plan's steps; `parallel` batches each phase (all stops, then all starts): its
/// jobs queued at once and verified together, for units that do not depend on each other.
pub fn apply(
    plan: &Plan,
    units: &[UnitConfig],
    parallel: bool,
    mgr: &dyn Manager,
    time: &dyn Time,
) -> Vec<StepResult> {
    if parallel {
        apply_parallel(plan, units, mgr, time)
    } else {
        apply_ordered(plan, units, mgr, time)
    }
}

/// Why a start is not attempted after an earlier step failed.
fn blocker(results: &[StepResult]) -> Option<SkipReason> {
    results.iter().find(|r| r.failed()).map(|r| match r.action {
        Action::Stop => SkipReason::StopFailed(r.name.clone()),
        Action::Start => SkipReason::EarlierStartFailed(r.name.clone()),
    })
}

/// One step at a time, each a batch of one: verified (and settled) before the next begins.
fn apply_ordered(
    plan: &Plan,
    units: &[UnitConfig],
    mgr: &dyn Manager,
    time: &dyn Time,
) -> Vec<StepResult> {
    let mut results: Vec<StepResult> = Vec::with_capacity(plan.steps.len());
    for &i in &plan.steps {
        let Some(action) = plan.units[i].action else {
            continue;
        };
        match (action, blocker(&results)) {
            (Action::Start, Some(reason)) => results.push(skipped(plan, i, action, reason)),
            // Stops always run: leaving a unit of the wrong role up is the worse outcome.
            _ => results.extend(batch(action, &[i], plan, units, mgr, time)),
        }
    }
    results
}

fn skipped(plan: &Plan, i: usize, action: Action, reason: SkipReason) -> StepResult {
    StepResult {
        unit: i,
        name: plan.units[i].name.clone(),
        action,
        outcome: Outcome::Skipped { reason },
    }
}

fn apply_parallel(
    plan: &Plan,
    units: &[UnitConfig],
    mgr: &dyn Manager,
    time: &dyn Time,
) -> Vec<StepResult> {
    let (stops, starts): (Vec<usize>, Vec<usize>) = plan
        .steps
        .iter()
        .partition(|&&i| plan.units[i].action == Some(Action::Stop));
    let mut results = batch(Action::Stop, &stops, plan, units, mgr, time);
    match blocker(&results) {
        Some(reason) => results.extend(
            starts
                .iter()
                .map(|&i| skipped(plan, i, Action::Start, reason.clone())),
        ),
        None => results.extend(batch(Action::Start, &starts, plan, units, mgr, time)),
    }
    results
}

/// Queues one job per unit (none for a unit already on its way), then verifies them all
/// together: each unit is read again when systemd signals its job's end or a change, at its
/// deadlines, and at least every REREAD.
fn batch(
    action: Action,
    idxs: &[usize],
    plan: &Plan,
    units: &[UnitConfig],
    mgr: &dyn Manager,
    time: &dyn Time,
) -> Vec<StepResult> {
    if idxs.is_empty() {
        return Vec::new();
    }
    let t0 = time.now();
    let since = time.wall();
    let mut b = Batch::new(action, idxs, plan, units, t0, time);
    b.queue(mgr, since);
    loop {
        let pending = b.pending();
        if pending.is_empty() {
            break;
        }
        if time.interrupted() {
            // Stop at once: report what was last seen, without another question to systemd.
            b.observe_all(&pending, &Observation::Interrupted);
            break;
        }
        if b.read(mgr, &pending) {
            continue;
        }
        let wait_names: Vec<&str> = pending.iter().map(|&j| b.names[j]).collect();
        match mgr.wait(&wait_names, b.next_wake(&pending)) {
            Ok(events) => events.iter().for_each(|e| b.heard(e, &pending)),
            Err(e) => b.observe_all(&pending, &Observation::Unreachable(&e.to_string())),
        }
    }
    (0..idxs.len())
        .map(|j| StepResult {
            unit: idxs[j],
            name: plan.units[idxs[j]].name.clone(),
            action,
            outcome: match b.outcomes[j].take() {
                Some(o) => o,
                None => outcome(&b.phases[j], b.names[j], mgr, t0, since, time),
            },
        })
        .collect()
}

/// The steps of one batch, each with its state machine and what the loop knows of it.
struct Batch<'a> {
    time: &'a dyn Time,
    action: Action,
    names: Vec<&'a str>,
    steps: Vec<Step>,
    phases: Vec<Phase>,
    /// Set for a step decided without verification (its job could not be queued).
    outcomes: Vec<Option<Outcome>>,
    /// Our job for each unit.
    jobs: Vec<Option<u32>>,
    /// Something happened to the unit since it was last read.
    dirty: Vec<bool>,
    /// Read it again then even if nothing is heard.
    next_read: Vec<Instant>,
}

impl<'a> Batch<'a> {
    fn new(
        action: Action,
        idxs: &[usize],
        plan: &Plan,
        units: &'a [UnitConfig],
        t0: Instant,
        time: &'a dyn Time,
    ) -> Batch<'a> {
        let n = idxs.len();
        Batch {
            time,
            action,
            names: idxs.iter().map(|&i| units[i].name.as_str()).collect(),
            steps: idxs
                .iter()
                .map(|&i| Step {
                    action,
                    settle: units[i].settle,
                    verify_timeout: units[i].verify_timeout,
                    started: t0,
                })
                .collect(),
            phases: idxs
                .iter()
                .map(|&i| match plan.units[i].underway {
                    true => Phase::underway(),
                    false => Phase::queued(),
                })
                .collect(),
            outcomes: vec![None; n],
            jobs: vec![None; n],
            // A unit already on its way is read at once; a queued job's end is signalled, and
            // its unit read then (or after REREAD, should the signal be lost).
            dirty: idxs.iter().map(|&i| plan.units[i].underway).collect(),
            next_read: vec![t0 + REREAD; n],
        }
    }

    /// Queues a job for each unit not already on its way.
    fn queue(&mut self, mgr: &dyn Manager, since: SystemTime) {
        for j in 0..self.names.len() {
            if matches!(
                self.phases[j],
                Phase::Waiting {
                    job: Job::NotOurs,
                    ..
                }
            ) {
                continue;
            }
            if self.time.interrupted() {
                self.outcomes[j] = Some(Outcome::Skipped {
                    reason: SkipReason::Interrupted,
                });
                continue;
            }
            match mgr.queue(self.action, self.names[j]) {
                Ok(id) => self.jobs[j] = Some(id),
                Err(e) => {
                    self.outcomes[j] = Some(Outcome::Failed {
                        reason: FailReason::CannotQueue(self.action),
                        state: UnitState::unknown(),
                        cause: e.to_string(),
                        journal: mgr.journal_tail(self.names[j], Some(since), JOURNAL_LINES),
                        elapsed: self
                            .time
                            .now()
                            .saturating_duration_since(self.steps[j].started),
                    });
                }
            }
        }
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&j| self.outcomes[j].is_none() && !self.phases[j].finished())
            .collect()
    }

    fn observe(&mut self, j: usize, obs: &Observation, now: Instant) {
        let p = std::mem::replace(&mut self.phases[j], Phase::queued());
        self.phases[j] = verify::advance(p, obs.clone(), &self.steps[j], now);
    }

    fn observe_all(&mut self, pending: &[usize], obs: &Observation) {
        let now = self.time.now();
        for &j in pending {
            self.observe(j, obs, now);
            self.next_read[j] = now + RETRY;
        }
    }

    /// Reads every pending unit that is due (something happened to it, or a deadline or its
    /// REREAD came) in one call; false when none was.
    fn read(&mut self, mgr: &dyn Manager, pending: &[usize]) -> bool {
        let now = self.time.now();
        let due: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&j| {
                self.dirty[j]
                    || match &self.phases[j] {
                        // Settling: a change is signalled; it is read at the window's end.
                        Phase::Settling { until, .. } => now >= *until,
                        p => {
                            now >= self.next_read[j]
                                || p.deadline(&self.steps[j]).is_some_and(|d| now >= d)
                        }
                    }
            })
            .collect();
        if due.is_empty() {
            return false;
        }
        let names: Vec<&str> = due.iter().map(|&j| self.names[j]).collect();
        let identity: Vec<bool> = due
            .iter()
            .map(|&j| self.steps[j].wants_identity())
            .collect();
        match mgr.observe(&names, &identity) {
            Ok(details) => {
                let now = self.time.now();
                for (&j, d) in due.iter().zip(&details) {
                    self.observe(j, &Observation::State(d), now);
                    self.next_read[j] = now + REREAD;
                }
            }
            Err(e) => self.observe_all(&due, &Observation::Unreachable(&e.to_string())),
        }
        due.iter().for_each(|&j| self.dirty[j] = false);
        true
    }

    /// When the loop must look again if systemd says nothing.
    fn next_wake(&self, pending: &[usize]) -> Instant {
        pending
            .iter()
            .map(|&j| match &self.phases[j] {
                Phase::Settling { until, .. } => *until,
                p => p
                    .deadline(&self.steps[j])
                    .map_or(self.next_read[j], |d| d.min(self.next_read[j])),
            })
            .min()
            .unwrap_or_else(|| self.time.now())
    }

    /// What systemd said: our job ended, a unit changed, or the connection was made again.
    fn heard(&mut self, e: &Event, pending: &[usize]) {
        let now = self.time.now();
        for &j in pending {
            match e {
                Event::JobRemoved { job, unit, result } => {
                    if self.jobs[j] == Some(*job) {
                        self.observe(j, &Observation::JobEnded(result), now);
                        self.dirty[j] = true;
                    } else if unit == self.names[j] {
                        self.dirty[j] = true;
                    }
                }
                Event::Changed { unit } => self.dirty[j] |= unit == self.names[j],
                Event::Reconnected => self.dirty[j] = true,
            }
        }
    }
}

/// The report of one verified step: a failure carries systemd's cause and the unit's journal.
fn outcome(
    phase: &Phase,
    name: &str,
    mgr: &dyn Manager,
    t0: Instant,
    since: SystemTime,
    time: &dyn Time,
) -> Outcome {
    match phase {
        Phase::Done { at } => Outcome::Done {
            elapsed: at.saturating_duration_since(t0),
        },
        Phase::Failed(f) if f.wants_details() => {
            let details = mgr.details_many(&[name]).ok().and_then(|mut d| d.pop());
            Outcome::Failed {
                reason: f.reason(details.as_ref()),
                state: f.state.clone(),
                cause: details.as_ref().map(|d| d.cause()).unwrap_or_default(),
                journal: mgr.journal_tail(name, Some(since), JOURNAL_LINES),
                elapsed: time.now().saturating_duration_since(t0),
            }
        }
        Phase::Failed(f) => Outcome::Failed {
            reason: f.reason(None),
            state: f.state.clone(),
            cause: String::new(),
            journal: Vec::new(),
            elapsed: time.now().saturating_duration_since(t0),
        },
        // Unreachable: the loop ends only when every unit is decided.
        Phase::Waiting { .. } | Phase::Settling { .. } => Outcome::Skipped {
            reason: SkipReason::NotVerified,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::domain::When;
    use crate::plan::plan;
    use crate::systemd::fake::{Fake, loaded};

    fn unit(name: &str, when: When) -> UnitConfig {
        UnitConfig {
            verify_timeout: Duration::from_millis(200),
            settle: Duration::from_millis(30),
            ..UnitConfig::for_test(name, when)
        }
    }

    fn run(units: &[UnitConfig], observed: &[UnitState], fake: &Fake) -> Vec<StepResult> {
        let p = plan(Role::Primary, units, observed);
        apply(&p, units, false, fake, &crate::interrupt::Real)
    }

    fn run_parallel(units: &[UnitConfig], observed: &[UnitState], fake: &Fake) -> Vec<StepResult> {
        let p = plan(Role::Primary, units, observed);
        apply(&p, units, true, fake, &crate::interrupt::Real)
    }

    #[test]
    fn parallel_queues_each_phase_before_verifying_it() {
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
        // Every job of a phase is queued, then the phase is verified together.
        let calls = fake.calls.borrow().clone();
        assert_eq!(
            calls[..6],
            [
                "stop s2",
                "stop s1",
                "read s2 s1",
                "start a",
                "start b",
                "read a b"
            ]
        );
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
        assert_eq!(fake.calls("st"), ["stop s"]);
        assert!(
            matches!(&r[1].outcome, Outcome::Skipped { reason: SkipReason::StopFailed(u) } if u == "s")
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
        // One step at a time: each verified (read, and read again at the end of its settle
        // window) before the next job is queued.
        assert_eq!(
            *fake.calls.borrow(),
            [
                "stop s", "read s", "start a", "read a", "read a", "start b", "read b", "read b"
            ]
        );
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
        assert_eq!(fake.calls("st"), ["start a"]);
        match &r[0].outcome {
            Outcome::Failed {
                reason, journal, ..
            } => {
                assert_eq!(reason, &FailReason::Crashed);
                assert_eq!(journal, &["a: boom"]);
            }
            o => panic!("{o:?}"),
        }
        assert!(
            matches!(&r[1].outcome, Outcome::Skipped { reason: SkipReason::EarlierStartFailed(u) } if u == "a")
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
        assert_eq!(fake.calls("st"), ["stop s2", "stop s1"]);
        assert!(matches!(
            &r[0].outcome,
            Outcome::Failed {
                reason: FailReason::Timeout { .. },
                state: UnitState::Deactivating,
                ..
            }
        ));
        assert!(!r[1].failed());
        assert!(
            matches!(&r[2].outcome, Outcome::Skipped { reason: SkipReason::StopFailed(u) } if u == "s2")
        );
    }

    #[test]
    fn activating_past_the_timeout_fails() {
        let units = [unit("a", When::Primary)];
        let fake = Fake::new(&[("a", UnitState::Activating)]);
        let t = Instant::now();
        let r = run(&units, &[UnitState::Inactive], &fake);
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(matches!(
            &r[0].outcome,
            Outcome::Failed {
                reason: FailReason::Timeout { .. },
                state: UnitState::Activating,
                ..
            }
        ));
    }

    #[test]
    fn a_restart_inside_the_settle_window_fails_the_group() {
        let units = [unit("a", When::Primary), unit("b", When::Primary)];
        // Active at both reads, but restarted in between: a new invocation.
        let fake = Fake::new(&[]).script(
            "a",
            &[
                loaded(UnitState::Active, "first"),
                loaded(UnitState::Active, "second"),
            ],
        );
        let r = run(&units, &[UnitState::Inactive, UnitState::Inactive], &fake);
        match &r[0].outcome {
            Outcome::Failed {
                reason: FailReason::NotSettled { how, window, .. },
                ..
            } => {
                assert_eq!(how, &crate::domain::SettleBreak::Restarted);
                assert_eq!(*window, Duration::from_millis(30));
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(fake.calls("st"), ["start a"], "b is held back");
    }

    #[test]
    fn a_lost_connection_is_read_again_not_a_failure() {
        // daemon-reexec: two reads fail as the connection drops; the unit went on starting.
        let units = [unit("a", When::Primary)];
        let fake = Fake::new(&[]);
        fake.lost_reads.set(2);
        let r = run(&units, &[UnitState::Inactive], &fake);
        assert!(!r[0].failed(), "{r:?}");
        assert!(fake.calls("read").len() >= 3);
        // Lost for longer than verify_timeout: a failure that says why.
        let fake = Fake::new(&[]);
        fake.lost_reads.set(usize::MAX);
        let r = run(&units, &[UnitState::Inactive], &fake);
        assert!(
            matches!(&r[0].outcome, Outcome::Failed { reason: FailReason::Unverifiable(e), .. }
                if e == "systemd did not answer ListUnitsByNames: Connection reset by peer"),
            "{r:?}"
        );
    }

    #[test]
    fn a_refused_job_fails_with_systemds_words_and_no_wait() {
        let units = [unit("a", When::Primary), unit("b", When::Primary)];
        let fake = Fake {
            refuse: Some("Unit a is masked."),
            ..Fake::new(&[])
        };
        let r = run(&units, &[UnitState::Inactive, UnitState::Inactive], &fake);
        match &r[0].outcome {
            Outcome::Failed { reason, cause, .. } => {
                assert_eq!(reason, &FailReason::CannotQueue(Action::Start));
                assert_eq!(cause, "start a: Unit a is masked.");
            }
            o => panic!("{o:?}"),
        }
        assert!(fake.calls("read").is_empty(), "nothing to verify");
        assert!(matches!(&r[1].outcome, Outcome::Skipped { .. }));
    }

    #[test]
    fn a_unit_already_on_its_way_is_verified_without_a_job() {
        let units = [unit("a", When::Primary)];
        let fake = Fake::new(&[]).script(
            "a",
            &[
                loaded(UnitState::Activating, ""),
                loaded(UnitState::Active, "i1"),
            ],
        );
        let r = run(&units, &[UnitState::Activating], &fake);
        assert!(!r[0].failed(), "{r:?}");
        assert!(fake.calls("st").is_empty(), "no second job");
    }

    /// SIGTERM once `after` questions have been asked of it: the clock is the real one.
    struct SigtermAfter {
        asked: std::cell::Cell<usize>,
        after: usize,
    }

    impl Time for SigtermAfter {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn wall(&self) -> SystemTime {
            SystemTime::now()
        }
        fn interrupted(&self) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.asked.get() > self.after
        }
        fn sleep(&self, _: Duration) -> bool {
            !self.interrupted()
        }
    }

    #[test]
    fn an_interrupt_during_a_verification_ends_it_at_once_with_what_was_seen() {
        let units = [
            UnitConfig {
                verify_timeout: Duration::from_secs(60),
                ..unit("a", When::Primary)
            },
            unit("b", When::Primary),
        ];
        // a starts and never gets there; SIGTERM comes while its start is being verified:
        // asked when queueing, then at each round of the loop (its job's end is heard, then
        // the unit read: activating).
        let fake = Fake::new(&[]).script("a", &[loaded(UnitState::Activating, "i1")]);
        let time = SigtermAfter {
            asked: std::cell::Cell::new(0),
            after: 3,
        };
        let t = Instant::now();
        let p = plan(
            Role::Primary,
            &units,
            &[UnitState::Inactive, UnitState::Inactive],
        );
        let r = apply(&p, &units, false, &fake, &time);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(fake.calls("st"), ["start a"], "nothing queued after it");
        match &r[0].outcome {
            Outcome::Failed {
                reason,
                state,
                journal,
                ..
            } => {
                assert_eq!(reason, &FailReason::Interrupted);
                assert_eq!(state, &UnitState::Activating, "the last state seen");
                assert!(journal.is_empty(), "systemd is asked nothing more");
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(&r[1].outcome, Outcome::Skipped { .. }), "{r:?}");
    }
}
