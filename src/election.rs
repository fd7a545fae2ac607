//! Who holds the primary role in etcd, and what a run does about it: the pure half of the
//! witness (`witness` makes the requests). The key names the primary site.
//!
//! - Manual mode: the key is moved by a person or a switchover; a run only reads it.
//! - Automatic mode: the key is held on a lease. A host of the holding site renews the lease
//!   and is primary only if, read again after the renewal, the key is the same one on the same
//!   lease. When nobody holds it (the lease expired or was released), a host of a candidate
//!   site takes it with a fresh lease, in one transaction that creates it only if it is still
//!   absent. Nobody takes it back while it is held: no automatic failback.
//!
//! The epoch (the fencing token) is the key's mod revision: the revision of the write that
//! gave the role to its site. Renewals do not write the key, so it stays the same for as long
//! as the site holds the role, and every later holder's is larger.

use crate::domain::Role;
use crate::etcd::{Created, Kv};

/// A switchover's neutral value (`switching:A->B`): names no site, so every host is a standby.
pub const SWITCHING: &str = "switching:";
/// A promotion's neutral value (`promoting:A->B`), the same to every host.
pub const PROMOTING: &str = "promoting:";
/// The last promotion's record, below the key: `KEY/promotion` (see `promote`).
pub const PROMOTION: &str = "promotion";

/// This host, as the election sees it.
#[derive(Debug, Clone, Copy)]
pub struct Me<'a> {
    pub site: &'a str,
    /// Automatic mode (a lease TTL is set).
    pub automatic: bool,
    /// This site may take the role when nobody holds it.
    pub candidate: bool,
    /// This run renews a lease its site holds: a reconcile (paused too), never a dry run or
    /// `diff`, which act on nothing and so must not keep the role alive.
    pub renew: bool,
    /// This run may take the key: a reconcile that is not paused.
    pub take: bool,
    /// The shortest lease TTL (seconds) this host's config is safe with (0: any).
    pub min_ttl: i64,
}

/// What the key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Nobody,
    Site(String),
    /// A switchover's or a promotion's neutral value.
    Switching(String),
    /// Neither a site name nor a switchover's value (at most 40 characters of it, escaped).
    Garbage(String),
}

/// A site name as `site:` accepts it.
pub fn is_site_name(s: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    !s.is_empty() && s.len() <= 63 && s.chars().all(plain)
}

pub fn holder(kv: Option<&Kv>) -> Holder {
    let Some(kv) = kv else {
        return Holder::Nobody;
    };
    match std::str::from_utf8(&kv.value) {
        Ok(v) if is_site_name(v) => Holder::Site(v.to_owned()),
        Ok(v) if (v.starts_with(SWITCHING) || v.starts_with(PROMOTING)) && v.len() <= 200 => {
            Holder::Switching(v.to_owned())
        }
        _ => Holder::Garbage(
            String::from_utf8_lossy(&kv.value)
                .chars()
                .take(40)
                .collect::<String>()
                .escape_debug()
                .to_string(),
        ),
    }
}

/// Why the role is what it is: a value; `report` says it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The key names this site (automatic mode: and its lease was just renewed).
    Holds,
    /// This run took the key.
    Took,
    /// The key names another site.
    HeldBy(String),
    /// A switchover is under way.
    Switching(String),
    /// No key: no site is primary.
    NoKey,
    /// No key, and this run would take it (a dry run, `diff`, a paused host).
    WouldTake,
    /// No key, and this site never takes the role on its own.
    NotCandidate,
    /// No key, and `before_acquire` said no.
    GateRefused(String),
    /// The key holds neither a site nor a switchover.
    Garbage(String),
    /// Automatic mode: the key names this site but holds no lease.
    NoLease,
    /// Automatic mode: the renewal found the lease gone.
    LeaseExpired,
    /// Automatic mode: the key changed between the reads around the renewal.
    Moved,
    /// Automatic mode: the lease was granted for `granted` seconds, shorter than this host's
    /// config is safe with (`needed`): it was taken under another config.
    LeaseTooShort { granted: i64, needed: i64 },
    /// etcd could not be asked or answered nonsense.
    Etcd(String),
}

/// The answer of the election for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub role: Role,
    pub why: Why,
    /// The fencing token, when this site holds the role.
    pub epoch: Option<i64>,
    /// The lease the key is held on (automatic mode).
    pub lease: Option<i64>,
}

impl Verdict {
    fn of(role: Role, why: Why) -> Verdict {
        Verdict {
            role,
            why,
            epoch: None,
            lease: None,
        }
    }

    pub fn unknown(why: Why) -> Verdict {
        Verdict::of(Role::Unknown, why)
    }

    pub fn standby(why: Why) -> Verdict {
        Verdict::of(Role::Standby, why)
    }
}

/// What to do after reading the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done(Verdict),
    /// Renew this lease, then read the key again (`after_renewal`).
    Renew {
        lease: i64,
    },
    /// Nobody holds it: ask `before_acquire`, then take it (`after_take`).
    Take,
}

/// What the first read of the key means for this host.
pub fn after_read(me: &Me, kv: Option<&Kv>) -> Step {
    let done = |role, why| Step::Done(Verdict::of(role, why));
    match holder(kv) {
        Holder::Garbage(v) => done(Role::Unknown, Why::Garbage(v)),
        Holder::Switching(v) => done(Role::Standby, Why::Switching(v)),
        Holder::Site(s) if s != me.site => done(Role::Standby, Why::HeldBy(s)),
        Holder::Site(_) => {
            let Some(kv) = kv else {
                return done(Role::Unknown, Why::NoKey);
            };
            match (me.automatic, kv.lease) {
                (false, _) => Step::Done(Verdict {
                    role: Role::Primary,
                    why: Why::Holds,
                    epoch: Some(kv.mod_revision),
                    lease: (kv.lease != 0).then_some(kv.lease),
                }),
                (true, 0) => done(Role::Unknown, Why::NoLease),
                (true, lease) if me.renew => Step::Renew { lease },
                // Read only (a dry run, `diff`): what the key says, not renewed.
                (true, lease) => Step::Done(Verdict {
                    role: Role::Primary,
                    why: Why::Holds,
                    epoch: Some(kv.mod_revision),
                    lease: Some(lease),
                }),
            }
        }
        Holder::Nobody if !me.automatic => done(Role::Standby, Why::NoKey),
        Holder::Nobody if !me.candidate => done(Role::Standby, Why::NotCandidate),
        Holder::Nobody if !me.take => done(Role::Standby, Why::WouldTake),
        Holder::Nobody => Step::Take,
    }
}

/// After renewing the lease the first read found (`before`): primary only if the lease is
/// alive and the key read again is the same write on the same lease.
pub fn after_renewal(me: &Me, before: &Kv, ttl_left: i64, after: Option<&Kv>) -> Verdict {
    if ttl_left <= 0 {
        return Verdict::unknown(Why::LeaseExpired);
    }
    // A renewal answers with the TTL the lease was granted with.
    if ttl_left < me.min_ttl {
        return Verdict::unknown(Why::LeaseTooShort {
            granted: ttl_left,
            needed: me.min_ttl,
        });
    }
    match after {
        Some(a) if a.mod_revision == before.mod_revision && a.lease == before.lease => Verdict {
            role: Role::Primary,
            why: Why::Holds,
            epoch: Some(a.mod_revision),
            lease: Some(a.lease),
        },
        // Moved elsewhere meanwhile: what it says now, but never a second renewal in one run.
        other => match after_read(
            &Me {
                renew: true,
                take: false,
                ..*me
            },
            other,
        ) {
            Step::Done(v) => v,
            Step::Renew { .. } | Step::Take => Verdict::unknown(Why::Moved),
        },
    }
}

/// After the create-if-absent transaction with `lease`.
pub fn after_take(me: &Me, lease: i64, created: &Created) -> Step {
    if created.succeeded {
        return Step::Done(Verdict {
            role: Role::Primary,
            why: Why::Took,
            epoch: Some(created.revision),
            lease: Some(lease),
        });
    }
    match &created.existing {
        // A retry of ours that had gone through on another endpoint.
        Some(kv) if kv.lease == lease && holder(Some(kv)) == Holder::Site(me.site.to_owned()) => {
            Step::Done(Verdict {
                role: Role::Primary,
                why: Why::Took,
                epoch: Some(kv.mod_revision),
                lease: Some(lease),
            })
        }
        // Someone was quicker: what the key says now (another host of this site renews next).
        existing => after_read(
            &Me {
                renew: true,
                take: false,
                ..*me
            },
            existing.as_ref(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &str, mod_revision: i64, lease: i64) -> Kv {
        Kv {
            value: value.as_bytes().to_vec(),
            create_revision: mod_revision,
            mod_revision,
            lease,
        }
    }

    const MANUAL: Me = Me {
        site: "dc1",
        automatic: false,
        candidate: true,
        renew: true,
        take: true,
        min_ttl: 0,
    };
    const AUTO: Me = Me {
        automatic: true,
        ..MANUAL
    };

    fn done(role: Role, why: Why) -> Step {
        Step::Done(Verdict::of(role, why))
    }

    #[test]
    fn manual_mode_reads_the_key_and_never_writes() {
        let cases: &[(Option<Kv>, Step)] = &[
            (
                Some(kv("dc1", 7, 0)),
                Step::Done(Verdict {
                    role: Role::Primary,
                    why: Why::Holds,
                    epoch: Some(7),
                    lease: None,
                }),
            ),
            (
                Some(kv("dc2", 7, 0)),
                done(Role::Standby, Why::HeldBy("dc2".into())),
            ),
            (None, done(Role::Standby, Why::NoKey)),
            (
                Some(kv("switching:dc1->dc2", 8, 0)),
                done(Role::Standby, Why::Switching("switching:dc1->dc2".into())),
            ),
            (
                Some(kv("dc 1", 8, 0)),
                done(Role::Unknown, Why::Garbage("dc 1".into())),
            ),
            (
                Some(kv("\"dc1\"\n", 8, 0)),
                done(Role::Unknown, Why::Garbage("\\\"dc1\\\"\\n".into())),
            ),
            (
                Some(kv("", 8, 0)),
                done(Role::Unknown, Why::Garbage(String::new())),
            ),
        ];
        for (k, want) in cases {
            assert_eq!(&after_read(&MANUAL, k.as_ref()), want, "{k:?}");
        }
    }

    #[test]
    fn automatic_mode_renews_takes_or_stands_by() {
        assert_eq!(
            after_read(&AUTO, Some(&kv("dc1", 7, 42))),
            Step::Renew { lease: 42 }
        );
        assert_eq!(
            after_read(&AUTO, Some(&kv("dc1", 7, 0))),
            done(Role::Unknown, Why::NoLease)
        );
        assert_eq!(
            after_read(&AUTO, Some(&kv("dc2", 7, 42))),
            done(Role::Standby, Why::HeldBy("dc2".into()))
        );
        assert_eq!(after_read(&AUTO, None), Step::Take);
        let never = Me {
            candidate: false,
            ..AUTO
        };
        assert_eq!(
            after_read(&never, None),
            done(Role::Standby, Why::NotCandidate)
        );
        let paused = Me {
            take: false,
            ..AUTO
        };
        assert_eq!(
            after_read(&paused, None),
            done(Role::Standby, Why::WouldTake)
        );
        // A paused host still renews what it holds (its switch stays armed)...
        assert_eq!(
            after_read(&paused, Some(&kv("dc1", 7, 42))),
            Step::Renew { lease: 42 }
        );
        // ...a dry run or `diff` only reads: it acts on nothing, so it must not keep the
        // role alive for a host whose runs have stopped.
        let dry = Me {
            renew: false,
            take: false,
            ..AUTO
        };
        assert_eq!(
            after_read(&dry, Some(&kv("dc1", 7, 42))),
            Step::Done(Verdict {
                role: Role::Primary,
                why: Why::Holds,
                epoch: Some(7),
                lease: Some(42)
            })
        );
        assert_eq!(after_read(&dry, None), done(Role::Standby, Why::WouldTake));
    }

    #[test]
    fn a_renewal_counts_only_if_the_key_stayed_the_same_write_on_the_same_lease() {
        let before = kv("dc1", 7, 42);
        assert_eq!(
            after_renewal(&AUTO, &before, 30, Some(&before)),
            Verdict {
                role: Role::Primary,
                why: Why::Holds,
                epoch: Some(7),
                lease: Some(42)
            }
        );
        assert_eq!(
            after_renewal(&AUTO, &before, 0, Some(&before)),
            Verdict::unknown(Why::LeaseExpired)
        );
        // A switchover moved it meanwhile.
        assert_eq!(
            after_renewal(&AUTO, &before, 30, Some(&kv("dc2", 9, 50))).role,
            Role::Standby
        );
        // Re-written for this site on another lease: not the key that was renewed.
        assert_eq!(
            after_renewal(&AUTO, &before, 30, Some(&kv("dc1", 9, 50))),
            Verdict::unknown(Why::Moved)
        );
        // Granted under a config with a shorter lease than this one is safe with.
        let strict = Me {
            min_ttl: 31,
            ..AUTO
        };
        assert_eq!(
            after_renewal(&strict, &before, 30, Some(&before)),
            Verdict::unknown(Why::LeaseTooShort {
                granted: 30,
                needed: 31
            })
        );
        // Gone (expired between the two reads): nobody takes it in this run.
        assert_eq!(
            after_renewal(&AUTO, &before, 30, None),
            Verdict::of(Role::Standby, Why::WouldTake)
        );
    }

    #[test]
    fn taking_the_key_wins_once() {
        let won = Created {
            succeeded: true,
            revision: 12,
            existing: None,
        };
        assert_eq!(
            after_take(&AUTO, 42, &won),
            Step::Done(Verdict {
                role: Role::Primary,
                why: Why::Took,
                epoch: Some(12),
                lease: Some(42)
            })
        );
        let ours_already = Created {
            succeeded: false,
            revision: 13,
            existing: Some(kv("dc1", 12, 42)),
        };
        assert!(matches!(
            after_take(&AUTO, 42, &ours_already),
            Step::Done(Verdict {
                role: Role::Primary,
                epoch: Some(12),
                ..
            })
        ));
        let other_site = Created {
            succeeded: false,
            revision: 13,
            existing: Some(kv("dc2", 12, 7)),
        };
        assert_eq!(
            after_take(&AUTO, 42, &other_site),
            done(Role::Standby, Why::HeldBy("dc2".into()))
        );
        // Another host of this site was quicker: renew its lease, like any later run.
        let same_site = Created {
            succeeded: false,
            revision: 13,
            existing: Some(kv("dc1", 12, 7)),
        };
        assert_eq!(after_take(&AUTO, 42, &same_site), Step::Renew { lease: 7 });
    }
}
