//! What the etcd key says, in words: the election's reason for this host (`election::Why`) as
//! a phrase and as a code, and what a neutral value says is under way. Separate because three
//! kinds of words share it: a run's (the check's summary), the JSON's (`reason`, `reason_code`)
//! and the fleet `status`'s (the key's value).

use crate::election::Why;

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

/// What a neutral value says is under way.
pub(super) fn moving(value: &str) -> &'static str {
    if value.starts_with(crate::election::PROMOTING) {
        "a promotion is under way"
    } else {
        "a switchover is under way"
    }
}
