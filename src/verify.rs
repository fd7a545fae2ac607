//! Verification of one start or stop, as a pure state machine: `advance(phase, observation,
//! step, now) -> phase`. Observations are what systemd said (the job ended, the unit's state
//! was read, systemd could not be reached) or that the run was interrupted; the caller (apply)
//! does the talking and the waiting, this module only decides. No clock is read here.
//!
//! A job that ended `done` is not a unit that runs: a simple service whose ExecStart fails
//! comes back done and then fails, a oneshot without RemainAfterExit comes back done and
//! inactive. So the job's end only makes the caller look at the unit, and the unit's state
//! decides; the job's result makes the message more precise.

use std::time::{Duration, Instant};

use crate::domain::{Action, Class, Desired, FailReason, SettleBreak, UnitState};
use crate::systemd::UnitDetails;

/// What is being verified, and its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub action: Action,
    /// How long a started unit must stay active, in the same invocation.
    pub settle: Duration,
    pub verify_timeout: Duration,
    /// When the step began (its job was queued).
    pub started: Instant,
}

impl Step {
    fn deadline(&self) -> Instant {
        self.started + self.verify_timeout
    }

    /// Whether a read of the unit must include its identity (InvocationID, NRestarts): only a
    /// start with a settle window compares it.
    pub fn wants_identity(&self) -> bool {
        self.action == Action::Start && !self.settle.is_zero()
    }
}

/// Our job for the unit, as far as we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Queued by us; its end not seen yet.
    Queued,
    /// Our job ended with this result (`done`, `failed`, `canceled`, `dependency`, …).
    Ended(String),
    /// No job of ours: the unit was already on its way when the run looked.
    NotOurs,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Not there yet. `seen` is the last state read (for a timeout's message).
    Waiting {
        job: Job,
        seen: Option<Seen>,
    },
    /// Active since `active_at`; must stay so, in the same invocation, until `until`.
    Settling {
        active_at: Instant,
        until: Instant,
        invocation: String,
        restarts: String,
    },
    /// Reached at `at` (for a start with a settle window: when it became active).
    Done {
        at: Instant,
    },
    Failed(Failure),
}

impl Phase {
    pub fn queued() -> Phase {
        Phase::Waiting {
            job: Job::Queued,
            seen: None,
        }
    }

    pub fn underway() -> Phase {
        Phase::Waiting {
            job: Job::NotOurs,
            seen: None,
        }
    }

    pub fn finished(&self) -> bool {
        matches!(self, Phase::Done { .. } | Phase::Failed(_))
    }

    /// The latest instant at which the caller must read the unit again even if nothing is
    /// heard: the verify timeout while waiting, the end of the settle window while settling.
    pub fn deadline(&self, step: &Step) -> Option<Instant> {
        match self {
            Phase::Waiting { .. } => Some(step.deadline()),
            Phase::Settling { until, .. } => Some(*until),
            Phase::Done { .. } | Phase::Failed(_) => None,
        }
    }
}

/// The last state read of a unit still on its way.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub state: UnitState,
    pub sub: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation<'a> {
    /// Our job ended (systemd's JobRemoved signal) with this result.
    JobEnded(&'a str),
    /// A read of the unit (state, sub-state, load state, pending job; identity if asked).
    State(&'a UnitDetails),
    /// systemd could not be asked (connection lost, e.g. by `daemon-reexec`), with why.
    Unreachable(&'a str),
    /// SIGTERM/SIGINT: stop waiting now.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// As far as the reads during the wait tell (`reason` says it fully).
    pub reason: FailReason,
    /// The last state seen ("unknown" when none was).
    pub state: UnitState,
    /// Our job's result, when it ended and said more than `done`.
    pub job: Option<String>,
}

/// What a read of a unit says about a start in flight.
#[derive(Debug, PartialEq)]
enum Progress {
    Reached,
    Pending,
    Failed(FailReason),
}

fn start_progress(d: &UnitDetails) -> Progress {
    if !d.load_state.is_empty() && d.load_state != "loaded" {
        return Progress::Failed(FailReason::CannotLoad);
    }
    match d.active_state.class() {
        Class::Running => Progress::Reached,
        Class::OnItsWay(Desired::Running) | Class::NotActionable => Progress::Pending,
        // Before the queued job runs (or while it waits for an After= dependency), the unit
        // still shows where it was: inactive, failed, or stopping.
        Class::Stopped | Class::OnItsWay(Desired::Stopped) if d.job_pending => Progress::Pending,
        Class::OnItsWay(Desired::Stopped) => Progress::Failed(FailReason::StoppingAgain),
        Class::Stopped if d.active_state == UnitState::Failed => {
            Progress::Failed(FailReason::Crashed)
        }
        Class::Stopped => Progress::Failed(FailReason::Exited),
    }
}

fn stop_progress(d: &UnitDetails) -> Progress {
    // A unit that exits non-zero on SIGTERM ends `failed`: it is stopped all the same.
    match d.active_state.class() {
        Class::Stopped => Progress::Reached,
        _ => Progress::Pending,
    }
}

fn job_result(job: &Job) -> Option<String> {
    match job {
        Job::Ended(r) if r != "done" => Some(r.clone()),
        _ => None,
    }
}

/// The next phase of one step, given what was just observed at `now`.
pub fn advance(phase: Phase, obs: Observation, step: &Step, now: Instant) -> Phase {
    match (phase, obs) {
        (done @ (Phase::Done { .. } | Phase::Failed(_)), _) => done,
        (Phase::Waiting { seen, .. }, Observation::JobEnded(r)) => Phase::Waiting {
            job: Job::Ended(r.to_owned()),
            seen,
        },
        (settling @ Phase::Settling { .. }, Observation::JobEnded(_)) => settling,
        (Phase::Waiting { job, .. }, Observation::State(d)) => waiting(job, d, step, now),
        (
            Phase::Settling {
                active_at,
                until,
                invocation,
                restarts,
            },
            Observation::State(d),
        ) => {
            let after = now.saturating_duration_since(active_at);
            let fail = |how: SettleBreak| {
                Phase::Failed(Failure {
                    reason: FailReason::NotSettled {
                        how,
                        after,
                        window: step.settle,
                    },
                    state: d.active_state.clone(),
                    job: None,
                })
            };
            // A crash and a quick Restart= can both fall between two reads: a new invocation
            // (or restart count) gives it away.
            if start_progress(d) != Progress::Reached {
                fail(SettleBreak::Went(d.active_state.clone()))
            } else if d.invocation_id != invocation || d.n_restarts != restarts {
                fail(SettleBreak::Restarted)
            } else if now >= until {
                Phase::Done { at: active_at }
            } else {
                Phase::Settling {
                    active_at,
                    until,
                    invocation,
                    restarts,
                }
            }
        }
        (phase, Observation::Unreachable(why)) => {
            // Keep trying until the step's own limits have passed: a daemon-reexec drops the
            // connection while the unit goes on starting.
            let give_up = match &phase {
                Phase::Settling { until, .. } => (*until).max(step.deadline()),
                _ => step.deadline(),
            };
            if now < give_up {
                return phase;
            }
            let (state, job) = match &phase {
                Phase::Waiting { job, seen } => (
                    seen.as_ref()
                        .map_or_else(UnitState::unknown, |s| s.state.clone()),
                    job_result(job),
                ),
                _ => (UnitState::Active, None),
            };
            Phase::Failed(Failure {
                reason: FailReason::Unverifiable(why.to_owned()),
                state,
                job,
            })
        }
        (phase, Observation::Interrupted) => {
            let (state, job) = match &phase {
                Phase::Waiting { job, seen } => (
                    seen.as_ref()
                        .map_or_else(UnitState::unknown, |s| s.state.clone()),
                    job_result(job),
                ),
                _ => (UnitState::Active, None),
            };
            Phase::Failed(Failure {
                reason: FailReason::Interrupted,
                state,
                job,
            })
        }
    }
}

fn waiting(job: Job, d: &UnitDetails, step: &Step, now: Instant) -> Phase {
    let progress = match step.action {
        Action::Start => start_progress(d),
        Action::Stop => stop_progress(d),
    };
    match progress {
        Progress::Reached if step.action == Action::Stop || step.settle.is_zero() => {
            Phase::Done { at: now }
        }
        Progress::Reached => Phase::Settling {
            active_at: now,
            until: now + step.settle,
            invocation: d.invocation_id.clone(),
            restarts: d.n_restarts.clone(),
        },
        Progress::Failed(reason) => Phase::Failed(Failure {
            reason,
            state: d.active_state.clone(),
            job: job_result(&job),
        }),
        Progress::Pending if now >= step.deadline() => Phase::Failed(Failure {
            reason: FailReason::Timeout {
                sub: d.sub_state.clone(),
                job: job_result(&job),
                limit: step.verify_timeout,
            },
            state: d.active_state.clone(),
            job: job_result(&job),
        }),
        Progress::Pending => Phase::Waiting {
            job,
            seen: Some(Seen {
                state: d.active_state.clone(),
                sub: d.sub_state.clone(),
            }),
        },
    }
}

impl Failure {
    /// Why the step failed. `details` is a fuller read of the unit taken after the failure
    /// (its Result=, ConditionResult=), when there was one: a start that crashed or exited for
    /// a reason systemd names (our job's result, a dependency, a condition) says that one.
    pub fn reason(&self, details: Option<&UnitDetails>) -> FailReason {
        let result = details.map_or("", |d| d.result.as_str());
        let condition = details.map_or("", |d| d.condition_result.as_str());
        let job = self.job.as_deref();
        match &self.reason {
            FailReason::Crashed | FailReason::Exited
                if job == Some("dependency") || result == "dependency" =>
            {
                FailReason::DependencyFailed
            }
            FailReason::Exited if condition == "no" => FailReason::ConditionNotMet,
            FailReason::Crashed | FailReason::Exited
                if job.is_some_and(|r| !matches!(r, "failed" | "skipped")) =>
            {
                FailReason::JobFailed(job.unwrap_or_default().to_owned())
            }
            other => other.clone(),
        }
    }

    /// Whether a report should carry the unit's details and journal (an interrupted run
    /// stops at once and asks systemd nothing more).
    pub fn wants_details(&self) -> bool {
        !matches!(
            self.reason,
            FailReason::Interrupted | FailReason::Unverifiable(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    impl Failure {
        /// The reason as the report says it.
        fn words(&self, _: &Step, details: Option<&UnitDetails>) -> String {
            self.reason(details).words(&self.state)
        }
    }

    fn step(action: Action, settle_ms: u64, t0: Instant) -> Step {
        Step {
            action,
            settle: MS * settle_ms as u32,
            verify_timeout: MS * 1000,
            started: t0,
        }
    }

    fn unit(state: UnitState, sub: &str, job: bool, invocation: &str) -> UnitDetails {
        UnitDetails {
            load_state: "loaded".into(),
            active_state: state,
            sub_state: sub.into(),
            job_pending: job,
            invocation_id: invocation.into(),
            n_restarts: "0".into(),
            ..UnitDetails::default()
        }
    }

    fn active(invocation: &str) -> UnitDetails {
        unit(UnitState::Active, "running", false, invocation)
    }

    /// Runs a table of (milliseconds after the start, observation) and returns every phase.
    fn drive(s: &Step, obs: &[(u64, Observation)]) -> Vec<Phase> {
        let mut phase = Phase::queued();
        let mut out = Vec::new();
        for (ms, o) in obs {
            phase = advance(phase, o.clone(), s, s.started + MS * *ms as u32);
            out.push(phase.clone());
        }
        out
    }

    fn last(s: &Step, obs: &[(u64, Observation)]) -> Phase {
        drive(s, obs).pop().unwrap_or_else(Phase::queued)
    }

    fn failed(p: &Phase) -> &Failure {
        match p {
            Phase::Failed(f) => f,
            other => panic!("not failed: {other:?}"),
        }
    }

    #[test]
    fn start_without_settle_is_done_when_active_after_its_job() {
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let queued = unit(UnitState::Inactive, "dead", true, "");
        let p = drive(
            &s,
            &[
                (1, Observation::State(&queued)),
                (5, Observation::JobEnded("done")),
                (6, Observation::State(&active("a"))),
            ],
        );
        assert!(matches!(p[0], Phase::Waiting { .. }), "queued is pending");
        assert_eq!(p[2], Phase::Done { at: t0 + MS * 6 });
    }

    #[test]
    fn a_done_job_is_not_a_running_unit() {
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        // A simple service whose ExecStart fails: done, then failed.
        let dead = unit(UnitState::Failed, "failed", false, "a");
        let p = last(
            &s,
            &[
                (2, Observation::JobEnded("done")),
                (3, Observation::State(&dead)),
            ],
        );
        assert_eq!(failed(&p).reason, FailReason::Crashed);
        assert_eq!(failed(&p).words(&s, None), "failed");
        // A oneshot without RemainAfterExit: done, and inactive.
        let gone = unit(UnitState::Inactive, "dead", false, "");
        let p = last(
            &s,
            &[
                (2, Observation::JobEnded("done")),
                (3, Observation::State(&gone)),
            ],
        );
        assert_eq!(
            failed(&p).words(&s, None),
            "exited (a oneshot needs RemainAfterExit=yes)"
        );
        let skipped = UnitDetails {
            condition_result: "no".into(),
            ..gone.clone()
        };
        assert_eq!(
            failed(&p).words(&s, Some(&skipped)),
            "was skipped: a Condition…= of the unit is not met"
        );
    }

    #[test]
    fn job_results_say_why() {
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let gone = unit(UnitState::Inactive, "dead", false, "");
        for (result, reason) in [
            ("dependency", "was not started: a dependency failed"),
            (
                "canceled",
                "its job was canceled (another start or stop replaced it)",
            ),
            ("assert", "an Assert…= of the unit failed"),
            ("something-new", "its job ended something-new"),
        ] {
            let p = last(
                &s,
                &[
                    (2, Observation::JobEnded(result)),
                    (3, Observation::State(&gone)),
                ],
            );
            assert_eq!(failed(&p).job.as_deref(), Some(result));
            assert_eq!(failed(&p).words(&s, None), reason, "{result}");
        }
    }

    #[test]
    fn a_job_that_failed_but_whose_unit_restarts_is_still_waited_for() {
        // Restart=on-failure: the start job fails, the unit goes back to activating
        // (auto-restart) and comes up within verify_timeout: that is reached.
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let restarting = unit(UnitState::Activating, "auto-restart", false, "a");
        let p = drive(
            &s,
            &[
                (2, Observation::JobEnded("failed")),
                (3, Observation::State(&restarting)),
                (300, Observation::State(&active("b"))),
            ],
        );
        assert!(matches!(p[1], Phase::Waiting { .. }));
        assert_eq!(p[2], Phase::Done { at: t0 + MS * 300 });
    }

    #[test]
    fn settle_window_passes_only_in_the_same_invocation() {
        let t0 = Instant::now();
        let s = step(Action::Start, 500, t0);
        let p = drive(
            &s,
            &[
                (2, Observation::JobEnded("done")),
                (3, Observation::State(&active("a"))),
                (200, Observation::State(&active("a"))),
                (503, Observation::State(&active("a"))),
            ],
        );
        assert!(matches!(&p[1], Phase::Settling { invocation, .. } if invocation == "a"));
        assert!(matches!(p[2], Phase::Settling { .. }), "window not over");
        assert_eq!(
            p[3],
            Phase::Done { at: t0 + MS * 3 },
            "elapsed: until active"
        );
    }

    #[test]
    fn a_crash_inside_the_settle_window_fails() {
        let t0 = Instant::now();
        let s = step(Action::Start, 3000, t0);
        let crashed = UnitDetails {
            result: "exit-code".into(),
            exec_main_status: "3".into(),
            ..unit(UnitState::Failed, "failed", false, "a")
        };
        let p = last(
            &s,
            &[
                (10, Observation::State(&active("a"))),
                (1010, Observation::State(&crashed)),
            ],
        );
        let f = failed(&p);
        assert_eq!(f.state, UnitState::Failed);
        assert_eq!(
            f.words(&s, Some(&crashed)),
            "went failed 1.0s after it became active (within its 3.0s settle window)"
        );
    }

    #[test]
    fn a_restart_between_two_observations_fails_the_settle() {
        // Crashed and restarted by Restart= between two reads: active both times, but a new
        // invocation.
        let t0 = Instant::now();
        let s = step(Action::Start, 2000, t0);
        let p = last(
            &s,
            &[
                (5, Observation::State(&active("a"))),
                (400, Observation::State(&active("b"))),
            ],
        );
        assert_eq!(
            failed(&p).words(&s, None),
            "was restarted 395ms after it became active (within its 2.0s settle window)"
        );
        // The same with a restart counter that moved (and, oddly, the same invocation).
        let restarted = UnitDetails {
            n_restarts: "1".into(),
            ..active("a")
        };
        let p = last(
            &s,
            &[
                (5, Observation::State(&active("a"))),
                (400, Observation::State(&restarted)),
            ],
        );
        assert!(matches!(
            &failed(&p).reason,
            FailReason::NotSettled {
                how: SettleBreak::Restarted,
                ..
            }
        ));
    }

    #[test]
    fn waiting_past_verify_timeout_fails_with_the_state_seen() {
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let stuck = unit(UnitState::Activating, "start", false, "");
        let p = drive(
            &s,
            &[
                (500, Observation::State(&stuck)),
                (1000, Observation::State(&stuck)),
            ],
        );
        assert!(matches!(p[0], Phase::Waiting { .. }));
        assert_eq!(
            failed(&p[1]).words(&s, None),
            "still activating (start) after 1.0s (verify_timeout)"
        );
        let s = step(Action::Stop, 0, t0);
        let stopping = unit(UnitState::Deactivating, "stop-sigterm", true, "");
        let p = last(&s, &[(1001, Observation::State(&stopping))]);
        assert_eq!(
            failed(&p).words(&s, None),
            "still deactivating (stop-sigterm) after 1.0s (verify_timeout)"
        );
    }

    #[test]
    fn stops_are_reached_inactive_or_failed() {
        let t0 = Instant::now();
        let s = step(Action::Stop, 2000, t0);
        for st in [UnitState::Inactive, UnitState::Failed] {
            let d = unit(st, "dead", false, "");
            let p = last(
                &s,
                &[
                    (1, Observation::JobEnded("done")),
                    (2, Observation::State(&d)),
                ],
            );
            assert_eq!(p, Phase::Done { at: t0 + MS * 2 }, "no settle for a stop");
        }
        let still = unit(UnitState::Active, "running", false, "a");
        let p = last(&s, &[(2, Observation::State(&still))]);
        assert!(matches!(p, Phase::Waiting { .. }));
    }

    #[test]
    fn start_rules_by_state() {
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let at = |d: &UnitDetails| advance(Phase::queued(), Observation::State(d), &s, t0);
        let waits = |p: Phase| matches!(p, Phase::Waiting { .. });
        // A failed unit whose start job waits for a dependency still says `failed`.
        assert!(waits(at(&unit(UnitState::Failed, "failed", true, ""))));
        assert!(waits(at(&unit(UnitState::Deactivating, "stop", true, ""))));
        assert!(waits(at(&unit(UnitState::Maintenance, "", false, ""))));
        assert!(waits(at(&unit(
            UnitState::Other("new".into()),
            "",
            false,
            ""
        ))));
        let p = at(&unit(UnitState::Deactivating, "stop", false, ""));
        assert_eq!(failed(&p).words(&s, None), "is stopping again");
        let masked = UnitDetails {
            load_state: "masked".into(),
            ..unit(UnitState::Inactive, "dead", false, "")
        };
        assert_eq!(failed(&at(&masked)).words(&s, None), "cannot be loaded");
        let reloading = unit(UnitState::Reloading, "reload", false, "");
        assert!(matches!(at(&reloading), Phase::Done { .. }));
    }

    #[test]
    fn unreachable_is_retried_until_the_step_limits() {
        // daemon-reexec: the connection drops, the unit goes on starting.
        let t0 = Instant::now();
        let s = step(Action::Start, 0, t0);
        let p = drive(
            &s,
            &[
                (
                    1,
                    Observation::State(&unit(UnitState::Inactive, "dead", true, "")),
                ),
                (50, Observation::Unreachable("Connection reset by peer")),
                (120, Observation::State(&active("a"))),
            ],
        );
        assert!(matches!(p[1], Phase::Waiting { .. }), "not given up yet");
        assert_eq!(p[2], Phase::Done { at: t0 + MS * 120 });
        let p = last(
            &s,
            &[
                (
                    1,
                    Observation::State(&unit(UnitState::Activating, "start", false, "")),
                ),
                (1000, Observation::Unreachable("No such file or directory")),
            ],
        );
        let f = failed(&p);
        assert_eq!(f.state, UnitState::Activating);
        assert_eq!(
            f.words(&s, None),
            "could not be verified: No such file or directory"
        );
        assert!(!f.wants_details());
        // While settling, the window's end counts too.
        let s = step(Action::Start, 3000, t0);
        let p = last(
            &s,
            &[
                (1, Observation::State(&active("a"))),
                (1500, Observation::Unreachable("gone")),
            ],
        );
        assert!(matches!(p, Phase::Settling { .. }));
    }

    #[test]
    fn interrupts_stop_every_phase_at_once_with_the_last_state() {
        let t0 = Instant::now();
        let s = step(Action::Start, 3000, t0);
        let stuck = unit(UnitState::Activating, "start", false, "");
        let p = last(
            &s,
            &[
                (1, Observation::State(&stuck)),
                (2, Observation::Interrupted),
            ],
        );
        let f = failed(&p);
        assert_eq!(f.state, UnitState::Activating);
        assert_eq!(f.words(&s, None), "interrupted before it was verified");
        let p = last(&s, &[(1, Observation::Interrupted)]);
        assert_eq!(failed(&p).state, UnitState::Other("unknown".into()));
        let p = last(
            &s,
            &[
                (1, Observation::State(&active("a"))),
                (2, Observation::Interrupted),
            ],
        );
        assert_eq!(failed(&p).reason, FailReason::Interrupted);
    }

    #[test]
    fn finished_phases_stay_finished_and_deadlines_follow_the_phase() {
        let t0 = Instant::now();
        let s = step(Action::Start, 500, t0);
        let done = Phase::Done { at: t0 };
        assert_eq!(
            advance(done.clone(), Observation::Interrupted, &s, t0),
            done
        );
        assert_eq!(done.deadline(&s), None);
        assert_eq!(Phase::queued().deadline(&s), Some(t0 + MS * 1000));
        let settling = advance(Phase::queued(), Observation::State(&active("a")), &s, t0);
        assert_eq!(settling.deadline(&s), Some(t0 + MS * 500));
        assert!(s.wants_identity());
        assert!(!step(Action::Start, 0, t0).wants_identity());
        assert!(!step(Action::Stop, 500, t0).wants_identity());
    }
}
