//! Hooks: commands run after a transition is verified, or after it failed — keepalived's
//! notify_master/notify_backup, but only once the units are known to be where they should be.
//! A hook never undoes a transition; its failure only makes the run exit 1.

use crate::config::Hooks;
use crate::domain::{Action, Outcome, Role, StepResult};
use crate::plan::Plan;
use crate::process::{self, Exit, Finished};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Promote,
    Demote,
    Failure,
}

impl Event {
    pub fn key(self) -> &'static str {
        match self {
            Event::Promote => "on_promote",
            Event::Demote => "on_demote",
            Event::Failure => "on_failure",
        }
    }
}

/// Which hooks a run calls, in order: failure if any step failed; promote/demote when something
/// was changed and the units' states before the run said the host held the other role; a host
/// that fenced itself (and stopped something) was demoted and needs a human: demote, then
/// failure; else none.
pub fn events(plan: &Plan, results: &[StepResult]) -> Vec<Event> {
    if results.iter().any(StepResult::failed) {
        return vec![Event::Failure];
    }
    if results.is_empty() {
        return vec![];
    }
    if plan.fenced {
        return vec![Event::Demote, Event::Failure];
    }
    // Only a change of role: restarting a crashed unit on the primary is no promotion.
    match (plan.observed_role, plan.role) {
        (Some(Role::Standby), Role::Primary) => vec![Event::Promote],
        (Some(Role::Primary), Role::Standby) => vec![Event::Demote],
        _ => vec![],
    }
}

/// What a hook is told, in its environment.
pub fn environment(event: Event, plan: &Plan, results: &[StepResult]) -> Vec<(String, String)> {
    let names = |f: &dyn Fn(&StepResult) -> bool| {
        results
            .iter()
            .filter(|r| f(r))
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let done = |a: Action| move |r: &StepResult| r.action == a && !r.failed();
    let vars = [
        (
            "FAILOVER_MANAGER_EVENT",
            event.key().trim_start_matches("on_").to_owned(),
        ),
        ("FAILOVER_MANAGER_ROLE", plan.role.to_string()),
        (
            "FAILOVER_MANAGER_PREVIOUS_ROLE",
            plan.observed_role
                .map_or_else(String::new, |r| r.to_string()),
        ),
        (
            "FAILOVER_MANAGER_FENCED",
            if plan.fenced { "1" } else { "" }.to_owned(),
        ),
        ("FAILOVER_MANAGER_STARTED", names(&done(Action::Start))),
        ("FAILOVER_MANAGER_STOPPED", names(&done(Action::Stop))),
        (
            "FAILOVER_MANAGER_FAILED",
            names(&|r| matches!(r.outcome, Outcome::Failed { .. })),
        ),
        (
            "FAILOVER_MANAGER_SKIPPED",
            names(&|r| matches!(r.outcome, Outcome::Skipped { .. })),
        ),
        // Why, for a script: `app.service=timeout other.service=earlier_start_failed`.
        ("FAILOVER_MANAGER_REASONS", reasons(results)),
    ];
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `unit=reason_code` for every step that failed or was skipped, space-separated.
fn reasons(results: &[StepResult]) -> String {
    results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Done { .. } => None,
            Outcome::Failed { reason, .. } => Some(format!("{}={}", r.name, reason.code())),
            Outcome::Skipped { reason } => Some(format!("{}={}", r.name, reason.code())),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the hook for `event`, if one is configured. `Err` carries the message for a hook that
/// did not exit 0.
pub fn run(
    hooks: &Hooks,
    event: Event,
    env: &[(String, String)],
    time: &dyn crate::interrupt::Time,
) -> Result<(), String> {
    let hook = match event {
        Event::Promote => &hooks.on_promote,
        Event::Demote => &hooks.on_demote,
        Event::Failure => &hooks.on_failure,
    };
    let Some(hook) = hook else { return Ok(()) };
    let Finished {
        exit,
        output,
        duration,
    } = process::run(&hook.command, hook.timeout, env, time);
    log::info!(
        "hook {} {exit} in {}",
        event.key(),
        crate::report::fmt_duration(duration)
    );
    if exit == Exit::Code(0) {
        return Ok(());
    }
    let mut msg = format!(
        "hook {} {exit} after {} (the transition stands)",
        event.key(),
        crate::report::fmt_duration(duration)
    );
    for l in output {
        msg.push_str(&format!("\n  {} | {l}", event.key()));
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UnitConfig;
    use crate::domain::{UnitState, When};
    use crate::plan::plan;
    use std::time::Duration;

    fn units() -> Vec<UnitConfig> {
        [("app", When::Primary), ("replica", When::Standby)]
            .iter()
            .map(|(n, w)| UnitConfig::for_test(&format!("{n}.service"), *w))
            .collect()
    }

    fn step(unit: usize, name: &str, action: Action, ok: bool) -> StepResult {
        StepResult {
            unit,
            name: name.into(),
            action,
            outcome: if ok {
                Outcome::Done {
                    elapsed: Duration::ZERO,
                }
            } else {
                Outcome::Failed {
                    reason: crate::domain::FailReason::Crashed,
                    state: UnitState::Failed,
                    cause: String::new(),
                    journal: vec![],
                    elapsed: Duration::ZERO,
                }
            },
        }
    }

    #[test]
    fn which_hooks_run() {
        let takeover = plan(
            Role::Primary,
            &units(),
            &[UnitState::Inactive, UnitState::Active],
        );
        let ok = [
            step(1, "replica.service", Action::Stop, true),
            step(0, "app.service", Action::Start, true),
        ];
        assert_eq!(events(&takeover, &ok), [Event::Promote]);
        assert_eq!(events(&takeover, &[]), [], "nothing done, nothing to say");
        let bad = [
            step(1, "replica.service", Action::Stop, true),
            step(0, "app.service", Action::Start, false),
        ];
        assert_eq!(events(&takeover, &bad), [Event::Failure]);
        let handback = plan(
            Role::Standby,
            &units(),
            &[UnitState::Active, UnitState::Inactive],
        );
        assert_eq!(events(&handback, &ok), [Event::Demote]);
        // A host that fenced itself was demoted, and needs a human.
        let fenced = crate::plan::fenced(&units(), &[UnitState::Active, UnitState::Inactive]);
        let stopped = [step(0, "app.service", Action::Stop, true)];
        assert_eq!(events(&fenced, &stopped), [Event::Demote, Event::Failure]);
        assert_eq!(events(&fenced, &[]), [], "already fenced: nothing new");
        let env = environment(Event::Demote, &fenced, &stopped);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FAILOVER_MANAGER_FENCED"), Some("1"));
        assert_eq!(get("FAILOVER_MANAGER_ROLE"), Some("unknown"));
        let env = environment(Event::Promote, &takeover, &ok);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FAILOVER_MANAGER_EVENT"), Some("promote"));
        assert_eq!(get("FAILOVER_MANAGER_ROLE"), Some("primary"));
        assert_eq!(get("FAILOVER_MANAGER_PREVIOUS_ROLE"), Some("standby"));
        assert_eq!(get("FAILOVER_MANAGER_STARTED"), Some("app.service"));
        assert_eq!(get("FAILOVER_MANAGER_STOPPED"), Some("replica.service"));
        assert_eq!(get("FAILOVER_MANAGER_FAILED"), Some(""));
        assert_eq!(get("FAILOVER_MANAGER_REASONS"), Some(""));
        let env = environment(Event::Failure, &takeover, &bad);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("FAILOVER_MANAGER_FAILED"), Some("app.service"));
        assert_eq!(get("FAILOVER_MANAGER_REASONS"), Some("app.service=crashed"));
        assert_eq!(get("FAILOVER_MANAGER_STARTED"), Some(""));
    }

    #[test]
    fn a_failing_hook_reports_its_exit_and_output() {
        let hooks = Hooks {
            on_failure: Some(crate::config::Hook {
                command: vec!["sh".into(), "-c".into(), "echo \"$FM_T\"; exit 4".into()],
                timeout: Duration::from_secs(5),
            }),
            ..Hooks::default()
        };
        let r = run(
            &hooks,
            Event::Failure,
            &[("FM_T".into(), "pager down".into())],
            &crate::interrupt::Real,
        );
        let msg = r.err().unwrap_or_default();
        assert!(msg.starts_with("hook on_failure exited 4 after "), "{msg}");
        assert!(
            msg.ends_with("(the transition stands)\n  on_failure | pager down"),
            "{msg}"
        );
        assert_eq!(
            run(&hooks, Event::Promote, &[], &crate::interrupt::Real),
            Ok(()),
            "no on_promote configured"
        );
    }
}
