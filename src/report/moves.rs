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
