//! The words of moving the role (`switchover`, `promote`): why one does not start. Separate
//! because they speak of the fleet's key and sites, for the person at the command, not of one
//! host's run.

use crate::promote;
use crate::switchover;

/// SITE holds the role already.
pub fn nothing_to_do(site: &str) -> String {
    format!("{site} holds the role already: nothing to do")
}

/// Why a switchover does not start (the key is at `revision`).
pub fn switchover_refusal(key: &str, r: &switchover::Refusal, revision: i64) -> String {
    use switchover::Refusal;
    match r {
        Refusal::NoHolder(h) => {
            format!("{key} names no site to move the role from ({h:?}); nothing changed")
        }
        Refusal::NeverAcknowledged(site) => format!(
            "no host of {site} has ever acknowledged its role under {key}/ack/{site}/: nothing \
             would tell when it has stopped or started; nothing changed"
        ),
        Refusal::NotInStep { site, hosts } => format!(
            "{} of {site} not in step with {key} (revision {revision}): down, cut off or \
             paused? nothing changed",
            hosts.join(", ")
        ),
    }
}

/// etcd could not be read before anything was done.
pub fn cannot_read(key: &str, error: &str) -> String {
    format!("cannot read {key}: {error}; nothing changed")
}

/// A switchover's step or end (`switchover::Said`), in words.
pub fn switchover_said(key: &str, plan: &switchover::Plan, said: &switchover::Said) -> String {
    use switchover::{BackEnd, Said};
    let (from, to) = (&plan.from, &plan.to);
    let neutral = switchover::neutral(from, to);
    let back = switchover::neutral(to, from);
    let within = |s: &switchover::Silent| {
        format!(
            "within {} (no acknowledgement from: {})",
            humantime::format_duration(s.timeout),
            s.hosts.join(", ")
        )
    };
    let not_running =
        |s: &switchover::Silent| format!("{to} did not confirm its units running {}", within(s));
    match said {
        Said::WouldMove => format!(
            "would move {key} from {from} (revision {}) to {to}, waiting for {} of {from} to \
             stop, then {} of {to} to start",
            plan.revision,
            plan.from_hosts.join(", "),
            plan.to_hosts.join(", ")
        ),
        Said::ChangedMeanwhile => {
            format!("{key} changed meanwhile (another switchover?); nothing changed")
        }
        Said::CannotWrite(e) => format!("cannot write {key}: {e}; nothing changed"),
        Said::Neutral { revision } => format!(
            "{key} = {neutral} (revision {revision}); waiting for {from} to stop: {}",
            plan.from_hosts.join(", ")
        ),
        Said::NotStopped {
            silent,
            back: Some(revision),
        } => format!(
            "{from} did not confirm its units stopped {}; {key} = {from} again (revision \
             {revision}): {to} never had the role",
            within(silent)
        ),
        Said::NotStopped { silent, back: None } => format!(
            "{from} did not confirm its units stopped {}, and {key} could not be set back \
             (changed meanwhile, or etcd unreachable): it may still hold {neutral}, which names \
             no site (every host a standby)",
            within(silent)
        ),
        Said::MovedMeanwhile => {
            format!("{key} changed after {from} stopped: it no longer holds {neutral}; not moved")
        }
        Said::NotGiven(e) => format!(
            "cannot give the role to {to}: {e}; {key} may still hold {neutral}, which names no \
             site (every host a standby): run the switchover again"
        ),
        Said::Given { revision } => format!(
            "{key} = {to} (revision {revision}); waiting for {to} to start: {}",
            plan.to_hosts.join(", ")
        ),
        Said::Done { revision } => format!("done: {to} holds the role (revision {revision})"),
        Said::PartlyRunning(silent) => format!(
            "{key} = {to}, but {} of its hosts did not confirm their units running {}; the \
             others run them, so the role stays: see `failover-manager status`",
            silent.hosts.len(),
            within(silent)
        ),
        Said::GoingBack(silent) => {
            format!("{}; moving the role back to {from}", not_running(silent))
        }
        Said::Back { silent, end } => {
            let why = not_running(silent);
            match end {
                BackEnd::Changed => format!("{why}, and {key} changed meanwhile: left as it is"),
                BackEnd::NotNeutral(e) => format!(
                    "{why}, and {key} could not be moved back: {e}; it holds {to} or {back} \
                     (every host a standby)"
                ),
                BackEnd::Stuck { revision, hosts } => format!(
                    "{why}; {key} = {back} (revision {revision}): every host a standby, and the \
                     application runs nowhere, because {to} did not confirm its units stopped \
                     (no acknowledgement from: {}): see `failover-manager status`, then \
                     `failover-manager switchover` to either site",
                    hosts.join(", ")
                ),
                BackEnd::NotGiven(e) => format!(
                    "{why}; cannot give the role back to {from}: {e}; {key} = {back} (every host \
                     a standby): `failover-manager switchover {from}`"
                ),
                BackEnd::Home { revision, silent } if silent.is_empty() => format!(
                    "{why}; {key} = {from} again (revision {revision}) and it runs the application"
                ),
                BackEnd::Home { revision, silent } => format!(
                    "{why}; {key} = {from} again (revision {revision}), but it did not confirm \
                     its units running either (no acknowledgement from: {}): see \
                     `failover-manager status`",
                    silent.join(", ")
                ),
            }
        }
    }
}

/// A promotion's step or end (`promote::Said`), in words.
pub fn promote_said(key: &str, plan: &promote::Plan, said: &promote::Said) -> String {
    use promote::{Safe, Said, Stop};
    let to = &plan.to;
    let from = plan.from.as_deref().unwrap_or("no site");
    let marker = promote::neutral(plan.from.as_deref(), to);
    let wait = humantime::format_duration(plan.wait);
    match said {
        Said::WouldPromote => format!(
            "would set {key} = {marker} (revision {}), wait {wait} for {} to fence {} (less if \
             they all acknowledge they stopped), then give the role to {to}",
            plan.revision,
            if plan.hosts.is_empty() {
                from.to_owned()
            } else {
                plan.hosts.join(", ")
            },
            if plan.hosts.len() == 1 {
                "itself"
            } else {
                "themselves"
            },
        ),
        Said::Resuming { revision, by } => format!(
            "{key} = {marker} already (revision {revision}): resuming the promotion {by} started"
        ),
        Said::ChangedMeanwhile => {
            format!("{key} changed meanwhile (a switchover, another promote?); nothing changed")
        }
        Said::CannotWrite(e) => format!(
            "cannot write {key}: {e}; it may hold {marker} (every host a standby) or still \
             {from}: run promote again"
        ),
        Said::Forced => format!(
            "--force: giving the role to {to} without waiting for {from} to fence itself: the \
             application may run on both sites until it does (up to {wait})"
        ),
        Said::Neutral { revision } => format!(
            "{key} = {marker} (revision {revision}): {from} stops where it still reaches etcd; \
             waiting up to {wait} for the rest of it to fence itself"
        ),
        Said::MovedMeanwhile => {
            format!("{key} changed meanwhile: it no longer holds {marker}; not moved")
        }
        Said::NoCountdown(e) => format!(
            "cannot start the countdown: {e}; {key} = {marker} (every host a standby): run \
             promote again"
        ),
        Said::Safe(Safe::Stopped) => format!(
            "every host of {} acknowledged it stopped",
            plan.from.as_deref().unwrap_or("the old site")
        ),
        Said::Safe(Safe::Passed) => format!("{wait} passed: the old site has fenced itself"),
        Said::NotYet { seconds } => format!(
            "not safe yet: {from} may run the primary units for {seconds} s more; {key} = \
             {marker} (every host a standby) and the countdown goes on in etcd: run \
             `failover-manager promote {to}` again then"
        ),
        Said::Stopped(stop) => {
            let why = match stop {
                Stop::KeyChanged => "the key changed meanwhile".to_owned(),
                Stop::Interrupted => "interrupted".to_owned(),
                Stop::Unreadable(e) => format!("cannot read the countdown: {e}"),
            };
            format!(
                "{why}; {key} = {marker} (every host a standby) unless it changed: run promote \
                 again to finish"
            )
        }
        Said::NotGiven(e) => format!(
            "cannot give the role to {to}: {e}; {key} may still hold {marker} (every host a \
             standby): run promote again"
        ),
        Said::Given { revision, hosts } => format!(
            "{key} = {to} (revision {revision}), recorded in {key}/{}; waiting for {to} to \
             start: {}",
            promote::RECORD,
            hosts.join(", ")
        ),
        Said::Done { revision } => format!("done: {to} holds the role (revision {revision})"),
        Said::NotRunning { hosts, timeout } => format!(
            "{key} = {to}, but {to} did not confirm its units running within {} (no \
             acknowledgement from: {}): see `failover-manager status`",
            humantime::format_duration(*timeout),
            hosts.join(", ")
        ),
    }
}

/// Why a promotion does not start.
pub fn promote_refusal(key: &str, r: &promote::Refusal) -> String {
    use promote::Refusal;
    match r {
        Refusal::NeverAcknowledged(site) => format!(
            "no host of {site} has ever acknowledged its role under {key}/ack/{site}/: nothing \
             says it can run the application; nothing changed"
        ),
        Refusal::Switchover(v) => {
            format!("{key} = {v}: a switchover is under way; nothing changed")
        }
        Refusal::Elsewhere { to } => format!(
            "a promotion to {to} is under way ({key} names no site meanwhile); nothing changed"
        ),
        Refusal::Unbounded { hosts } => format!(
            "nothing bounds how long {} may still run the primary units (no check.fence_after, \
             or no acknowledgement saying it): promotion can never be proven safe; nothing \
             changed (--force gives the role now, at the risk of running the application on two \
             sites)",
            hosts.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_nothing_changed() {
        let s = [
            switchover::Refusal::NoHolder(crate::election::Holder::Nobody),
            switchover::Refusal::NeverAcknowledged("dc3".into()),
            switchover::Refusal::NotInStep {
                site: "dc2".into(),
                hosts: vec!["b".into(), "c".into()],
            },
        ];
        for r in &s {
            assert!(
                switchover_refusal("/k", r, 7).contains("nothing changed"),
                "{r:?}"
            );
        }
        assert_eq!(
            switchover_refusal("/k", &s[2], 7),
            "b, c of dc2 not in step with /k (revision 7): down, cut off or paused? nothing changed"
        );
        let p = [
            promote::Refusal::NeverAcknowledged("dc3".into()),
            promote::Refusal::Switchover("switching:dc1->dc2".into()),
            promote::Refusal::Elsewhere { to: "dc3".into() },
            promote::Refusal::Unbounded {
                hosts: vec!["dc1/a".into()],
            },
        ];
        for r in &p {
            assert!(
                promote_refusal("/k", r).contains("nothing changed"),
                "{r:?}"
            );
        }
        assert_eq!(
            nothing_to_do("dc1"),
            "dc1 holds the role already: nothing to do"
        );
    }
}
