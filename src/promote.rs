//! `failover-manager promote SITE`: the role to SITE after an unplanned loss of the site that
//! holds it, in manual mode, without running the application on two sites. The old site's
//! hosts cannot be asked; what bounds them is their own fencing: each stops its primary units
//! within FENCE seconds of the last read that confirmed its role (`ack`).
//!
//! 1. The key, from FROM to `promoting:FROM->SITE` (only if still at the revision read), with
//!    `KEY/promotion` saying who and when. Every read of the key after that write names no
//!    site: a host of FROM that still reaches etcd stops its units at its next run; one that
//!    does not has confirmed its role for the last time before it, and fences itself.
//! 2. A lease of the longest FENCE among FROM's hosts, granted after step 1 answered, and
//!    recorded in `KEY/promotion`: etcd counts it down on its own clock, so any host can see
//!    how long is left, an interrupted `promote` resumes, and no wall clock is trusted.
//! 3. When the lease has expired, or every host of FROM acknowledged the neutral value as a
//!    standby (their units stopped), the key to SITE, only if it still holds step 1's value,
//!    and `KEY/promotion` says it is done.
//!
//! `--force` skips step 2's wait, and says so in the record.

use std::time::Duration;

use crate::domain::Role;
use crate::election::{Holder, PROMOTING};
use crate::status::{Fence, View};

pub use crate::election::PROMOTION as RECORD;

/// Why a promotion does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody of this site has ever acknowledged: nothing says it can run the application.
    NeverAcknowledged(String),
    /// A switchover is moving the key (its neutral value).
    Switchover(String),
    /// A promotion to another site is under way.
    Elsewhere { to: String },
    /// These hosts of the old site do not say how soon they stop on their own (no
    /// `check.fence_after`, or an older version's acknowledgement): nothing bounds the wait.
    Unbounded { hosts: Vec<String> },
}

/// What a promotion does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The site the key names now (`None`: no key, or a value that names none).
    pub from: Option<String>,
    pub to: String,
    /// The key's revision now.
    pub revision: i64,
    /// The neutral value is already there (an earlier `promote` was interrupted).
    pub resume: bool,
    /// The hosts (`SITE/HOST`) that may still run the primary units, and whose stop is waited
    /// for: FROM's (every other site's, when the key names none).
    pub hosts: Vec<String>,
    /// The longest FENCE among them (or this host's own, if longer).
    pub wait: Duration,
}

pub fn neutral(from: Option<&str>, to: &str) -> String {
    format!("{PROMOTING}{}->{to}", from.unwrap_or(""))
}

/// `None`: SITE holds the role already. `own`: this host's FENCE in seconds (a floor, since
/// hosts of the old site that never acknowledged say nothing).
pub fn plan(view: &View, to: &str, own: Option<u64>, force: bool) -> Result<Option<Plan>, Refusal> {
    let (from, resume) = match &view.holder {
        Holder::Site(s) if s == to => return Ok(None),
        Holder::Site(s) => (Some(s.clone()), false),
        Holder::Switching(v) if v.starts_with(PROMOTING) => {
            let (f, t) = v[PROMOTING.len()..].split_once("->").unwrap_or(("", ""));
            if t != to {
                return Err(Refusal::Elsewhere { to: t.to_owned() });
            }
            ((!f.is_empty()).then(|| f.to_owned()), true)
        }
        Holder::Switching(v) => return Err(Refusal::Switchover(v.clone())),
        Holder::Nobody | Holder::Garbage(_) => (None, false),
    };
    if !view.rows.iter().any(|r| r.site == to) {
        return Err(Refusal::NeverAcknowledged(to.to_owned()));
    }
    let old: Vec<_> = view
        .rows
        .iter()
        .filter(|r| match &from {
            Some(f) => &r.site == f,
            None => r.site != to,
        })
        .collect();
    let mut wait = own.unwrap_or(0);
    let mut unbounded = Vec::new();
    for r in &old {
        match r.fence {
            Fence::Within(s) => wait = wait.max(s),
            Fence::Never | Fence::Unknown => unbounded.push(format!("{}/{}", r.site, r.host)),
        }
    }
    if own.is_none() && old.is_empty() {
        unbounded.push(format!(
            "{} (no host acknowledged)",
            from.as_deref().unwrap_or("-")
        ));
    }
    if !unbounded.is_empty() && !force {
        return Err(Refusal::Unbounded { hosts: unbounded });
    }
    Ok(Some(Plan {
        from,
        to: to.to_owned(),
        revision: view.revision,
        resume,
        hosts: old
            .iter()
            .map(|r| format!("{}/{}", r.site, r.host))
            .collect(),
        wait: Duration::from_secs(wait),
    }))
}

/// Whether every host waited for acknowledged the neutral value (at `revision`) as a standby:
/// they all stopped, there is nothing left to wait for.
pub fn all_stopped(view: &View, plan: &Plan, revision: i64) -> bool {
    // Nobody to hear from: only the countdown can tell.
    !plan.hosts.is_empty()
        && plan.hosts.iter().all(|h| {
            view.rows.iter().any(|r| {
                format!("{}/{}", r.site, r.host) == *h && r.ack.in_sync(revision, Role::Standby)
            })
        })
}

/// What a promotion says as it goes and how it ends, as values (`report::promote_said` words
/// them; the plan gives the sites and the wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// `--dry-run`.
    WouldPromote,
    /// The neutral value is there already, at `revision`: an earlier promotion by `by`.
    Resuming {
        revision: i64,
        by: String,
    },
    /// Step 1 found the key changed: nothing changed.
    ChangedMeanwhile,
    /// Step 1's write failed.
    CannotWrite(String),
    /// `--force`: no wait (a warning).
    Forced,
    /// Step 1 done, at `revision`: the wait begins.
    Neutral {
        revision: i64,
    },
    /// The key no longer holds the neutral value: not moved.
    MovedMeanwhile,
    /// The countdown could not be started.
    NoCountdown(String),
    /// The wait is over.
    Safe(Safe),
    /// `--no-wait`: this many seconds are left.
    NotYet {
        seconds: i64,
    },
    /// The wait ended without moving the key.
    Stopped(Stop),
    /// Step 3's write failed.
    NotGiven(String),
    /// Step 3 done, at `revision`: SITE starts (`hosts`).
    Given {
        revision: i64,
        hosts: Vec<String>,
    },
    Done {
        revision: i64,
    },
    /// These hosts of SITE did not confirm running it within `timeout`.
    NotRunning {
        hosts: Vec<String>,
        timeout: Duration,
    },
}

/// Why the wait is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// Every host of the old site acknowledged the neutral value as a standby.
    Stopped,
    /// The countdown's lease is gone: the whole wait passed.
    Passed,
}

/// How the wait for the old site ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Safe(Safe),
    /// `--no-wait`: this many seconds are left.
    Left(i64),
    Stopped(Stop),
}

/// Why the wait ended without moving the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    KeyChanged,
    Interrupted,
    /// `--no-wait` and the countdown could not be read.
    Unreadable(String),
}

/// `KEY/promotion`: `to=SITE from=SITE by=USER@HOST at=TIME state=STATE [lease=ID] …`, words
/// for people that a later `promote` reads back (the lease).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub to: String,
    pub from: String,
    pub by: String,
    pub at: String,
    /// `waiting`, `done` or `forced`.
    pub state: String,
    /// The countdown's lease (0: none granted yet).
    pub lease: i64,
    /// The wait (seconds).
    pub wait: u64,
}

impl Record {
    pub fn render(&self) -> String {
        let mut s = format!(
            "to={} from={} by={} at={} state={} wait={}s",
            self.to,
            if self.from.is_empty() {
                "-"
            } else {
                &self.from
            },
            self.by,
            self.at,
            self.state,
            self.wait
        );
        if self.lease != 0 {
            s.push_str(&format!(" lease={:x}", self.lease));
        }
        s
    }

    pub fn parse(text: &str) -> Option<Record> {
        let mut r = Record::default();
        for field in text.split(' ') {
            let (k, v) = field.split_once('=')?;
            match k {
                "to" => r.to = v.to_owned(),
                "from" => {
                    r.from = if v == "-" {
                        String::new()
                    } else {
                        v.to_owned()
                    }
                }
                "by" => r.by = v.to_owned(),
                "at" => r.at = v.to_owned(),
                "state" => r.state = v.to_owned(),
                "lease" => r.lease = i64::from_str_radix(v, 16).ok()?,
                "wait" => r.wait = v.strip_suffix('s')?.parse().ok()?,
                _ => {}
            }
        }
        (!r.to.is_empty()).then_some(r)
    }
}

/// Who promotes, as the record says it (`by=`): the operator at this host, one word.
pub fn by(operator: &str, host: &str) -> String {
    let host = if host.is_empty() { "?" } else { host };
    format!("{operator}@{host}").replace(char::is_whitespace, "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(entries: &[(&str, &str, i64)]) -> View {
        crate::status::view_of(entries)
    }

    #[test]
    fn waits_for_the_slowest_host_of_the_old_site_to_fence_itself() {
        let v = view(&[
            ("/k", "dc1", 10),
            ("/k/ack/dc1/a", "10 primary 1000 12", 11),
            ("/k/ack/dc1/c", "10 primary 1000 31", 12),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        assert_eq!(
            plan(&v, "dc2", Some(20), false),
            Ok(Some(Plan {
                from: Some("dc1".into()),
                to: "dc2".into(),
                revision: 10,
                resume: false,
                hosts: vec!["dc1/a".into(), "dc1/c".into()],
                wait: Duration::from_secs(31),
            }))
        );
        // This host's own bound is a floor: a host of dc1 that never acknowledged says nothing.
        assert_eq!(
            plan(&v, "dc2", Some(45), false).map(|p| p.map(|p| p.wait)),
            Ok(Some(Duration::from_secs(45)))
        );
        assert_eq!(plan(&v, "dc1", Some(20), false), Ok(None));
    }

    #[test]
    fn refusals() {
        let v = view(&[
            ("/k", "dc1", 10),
            ("/k/ack/dc1/a", "10 primary 1000 -", 11),
            ("/k/ack/dc1/old", "9 primary", 9),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        assert_eq!(
            plan(&v, "dc3", Some(20), false),
            Err(Refusal::NeverAcknowledged("dc3".into()))
        );
        assert_eq!(
            plan(&v, "dc2", Some(20), false),
            Err(Refusal::Unbounded {
                hosts: vec!["dc1/a".into(), "dc1/old".into()]
            })
        );
        assert!(matches!(plan(&v, "dc2", Some(20), true), Ok(Some(_))));
        let switching = view(&[
            ("/k", "switching:dc1->dc2", 20),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        assert_eq!(
            plan(&switching, "dc2", Some(20), false),
            Err(Refusal::Switchover("switching:dc1->dc2".into()))
        );
        let elsewhere = view(&[
            ("/k", "promoting:dc1->dc3", 20),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        assert_eq!(
            plan(&elsewhere, "dc2", Some(20), false),
            Err(Refusal::Elsewhere { to: "dc3".into() })
        );
        // No key and no acknowledgement of anyone else: only this host's own bound.
        let nobody = view(&[("/k/ack/dc2/b", "10 standby 1000 12", 13)]);
        assert_eq!(
            plan(&nobody, "dc2", None, false),
            Err(Refusal::Unbounded {
                hosts: vec!["- (no host acknowledged)".into()]
            })
        );
        assert_eq!(
            plan(&nobody, "dc2", Some(9), false).map(|p| p.map(|p| p.wait)),
            Ok(Some(Duration::from_secs(9)))
        );
    }

    #[test]
    fn resumes_its_own_promotion_and_ends_early_when_the_old_site_stopped() {
        let v = view(&[
            ("/k", "promoting:dc1->dc2", 20),
            ("/k/ack/dc1/a", "20 standby 1000 12", 21),
            ("/k/ack/dc1/c", "10 primary 1000 12", 11),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        let p = plan(&v, "dc2", Some(5), false)
            .ok()
            .flatten()
            .expect("a plan");
        assert!(p.resume);
        assert_eq!(p.from.as_deref(), Some("dc1"));
        assert!(!all_stopped(&v, &p, 20), "dc1/c has not stopped");
        let both = view(&[
            ("/k", "promoting:dc1->dc2", 20),
            ("/k/ack/dc1/a", "20 standby 1000 12", 21),
            ("/k/ack/dc1/c", "20 standby 1000 12", 22),
            ("/k/ack/dc2/b", "10 standby 1000 12", 13),
        ]);
        assert!(all_stopped(&both, &p, 20));
        assert_eq!(neutral(Some("dc1"), "dc2"), "promoting:dc1->dc2");
        assert_eq!(neutral(None, "dc2"), "promoting:->dc2");
    }

    #[test]
    fn the_record_reads_back() {
        let r = Record {
            to: "dc2".into(),
            from: "dc1".into(),
            by: "ops@w".into(),
            at: "2026-12-05T03:00:00Z".into(),
            state: "waiting".into(),
            lease: 0x694d8a2b1c3f,
            wait: 31,
        };
        let text = r.render();
        assert_eq!(
            text,
            "to=dc2 from=dc1 by=ops@w at=2026-12-05T03:00:00Z state=waiting wait=31s lease=694d8a2b1c3f"
        );
        assert_eq!(Record::parse(&text), Some(r));
        assert_eq!(Record::parse("garbage"), None);
        assert_eq!(
            by("uid 0", ""),
            "uid_0@?",
            "one word: the record is split at spaces"
        );
        assert_eq!(Record::parse("to=dc2 lease=zz"), None);
    }
}
