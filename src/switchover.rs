//! `failover-manager switchover SITE`: a planned move of the role with no overlap, in both
//! modes (the protocol of the etcdctl switchover script it replaced):
//!
//! 1. the key, from FROM to `switching:FROM->SITE`, only if it is still the revision read
//!    (two switchovers at once: one wins, the other changes nothing). That value names no site:
//!    FROM's hosts stop their units, nobody takes the key;
//! 2. wait until every host of FROM acknowledged that revision as a standby;
//! 3. the key to SITE (in automatic mode on a fresh lease, which SITE's hosts then renew), only
//!    if it is still the value of step 1;
//! 4. wait for SITE's hosts to acknowledge the new revision as primary.
//!
//! When FROM does not acknowledge in time, the key goes back to FROM (SITE never had the role).
//! When SITE does not acknowledge running it in time: if some of its hosts did, the role stays
//! (the application runs there); if none did, it goes back the same way (SITE stops, then FROM
//! starts), or stays neutral (every host a standby) when SITE does not confirm it stopped.
//! Refused up front: a site nobody ever acknowledged from, and a SITE whose hosts are not in
//! step with the key now (down, cut off, paused).

use std::time::{Duration, Instant};

use crate::domain::Role;
use crate::election::{Holder, SWITCHING};
use crate::status::View;

/// Why a switchover does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The key names no site to move from.
    NoHolder(Holder),
    /// Nobody of this site has ever acknowledged: nothing would tell when it has stopped or
    /// started.
    NeverAcknowledged(String),
    /// These hosts of the new site are not in step with the key now.
    NotInStep { site: String, hosts: Vec<String> },
}

/// What a switchover will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub from: String,
    pub to: String,
    /// The key's revision now: step 1 only happens while it still is.
    pub revision: i64,
    /// The hosts of FROM waited for in step 2, and of TO in step 4.
    pub from_hosts: Vec<String>,
    pub to_hosts: Vec<String>,
}

pub fn neutral(from: &str, to: &str) -> String {
    format!("{SWITCHING}{from}->{to}")
}

/// `None`: SITE holds the role already, nothing to do.
pub fn plan(view: &View, to: &str) -> Result<Option<Plan>, Refusal> {
    let from = match &view.holder {
        Holder::Site(s) if s == to => return Ok(None),
        Holder::Site(s) => s.clone(),
        other => return Err(Refusal::NoHolder(other.clone())),
    };
    let hosts = |site: &str| -> Vec<String> {
        view.rows
            .iter()
            .filter(|r| r.site == site)
            .map(|r| r.host.clone())
            .collect()
    };
    let (from_hosts, to_hosts) = (hosts(&from), hosts(to));
    if from_hosts.is_empty() {
        return Err(Refusal::NeverAcknowledged(from));
    }
    if to_hosts.is_empty() {
        return Err(Refusal::NeverAcknowledged(to.to_owned()));
    }
    let behind: Vec<String> = view
        .rows
        .iter()
        .filter(|r| r.site == to)
        .filter(|r| !r.ack.in_sync(view.revision, Role::Standby))
        .map(|r| r.host.clone())
        .collect();
    if !behind.is_empty() {
        return Err(Refusal::NotInStep {
            site: to.to_owned(),
            hosts: behind,
        });
    }
    Ok(Some(Plan {
        from,
        to: to.to_owned(),
        revision: view.revision,
        from_hosts,
        to_hosts,
    }))
}

/// The hosts that did not acknowledge within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub hosts: Vec<String>,
    pub timeout: Duration,
}

/// What a switchover says as it goes and how it ends, as values (`report::switchover_said`
/// words them; the plan gives the sites and hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// `--dry-run`.
    WouldMove,
    /// Step 1 found the key changed: nothing changed.
    ChangedMeanwhile,
    /// Step 1's write failed: nothing changed.
    CannotWrite(String),
    /// Step 1 done: FROM stops.
    Neutral {
        revision: i64,
    },
    /// FROM did not confirm it stopped; the key back at FROM (`Some(revision)`) or stuck at the
    /// neutral value (`None`).
    NotStopped {
        silent: Silent,
        back: Option<i64>,
    },
    /// Step 3 found the key changed after FROM stopped.
    MovedMeanwhile,
    /// Step 3's write failed.
    NotGiven(String),
    /// Step 3 done: TO starts.
    Given {
        revision: i64,
    },
    Done {
        revision: i64,
    },
    /// Some of TO's hosts run it, these did not confirm: the role stays.
    PartlyRunning(Silent),
    /// None of TO's hosts confirmed: going back (progress).
    GoingBack(Silent),
    /// The way back, and how it ended.
    Back {
        silent: Silent,
        end: BackEnd,
    },
}

/// How the way back ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackEnd {
    /// The key changed meanwhile: left as it is.
    Changed,
    /// The key could not be set to the neutral value.
    NotNeutral(String),
    /// TO did not confirm it stopped: the key stays neutral at `revision`.
    Stuck { revision: i64, hosts: Vec<String> },
    /// The key could not be given back to FROM.
    NotGiven(String),
    /// FROM holds it again at `revision`; `silent`: its hosts that did not confirm running it.
    Home { revision: i64, silent: Vec<String> },
}

/// The hosts of `site` among `hosts` that have not acknowledged `role` at `revision` yet.
pub fn waiting_for(
    view: &View,
    site: &str,
    hosts: &[String],
    revision: i64,
    role: Role,
) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| {
            !view
                .rows
                .iter()
                .any(|r| r.site == site && &r.host == *h && r.ack.in_sync(revision, role))
        })
        .cloned()
        .collect()
}

/// Polls `read` until `done` says nothing is left or `timeout` passes; what was left last.
pub fn wait<T>(
    timeout: Duration,
    mut read: impl FnMut() -> Option<T>,
    left: impl Fn(&T) -> Vec<String>,
) -> Result<(), Vec<String>> {
    let end = Instant::now() + timeout;
    let mut last = Vec::new();
    loop {
        if let Some(v) = read() {
            last = left(&v);
            if last.is_empty() {
                return Ok(());
            }
        }
        if Instant::now() >= end || !crate::interrupt::sleep(Duration::from_millis(200)) {
            return Err(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(entries: &[(&str, &str, i64)]) -> View {
        crate::status::view_of(entries)
    }

    #[test]
    fn plans_refusals_and_nothing_to_do() {
        let v = view(&[
            ("/k", "dc1", 10),
            ("/k/ack/dc1/a", "10 primary", 11),
            ("/k/ack/dc2/b", "10 standby", 12),
        ]);
        assert_eq!(
            plan(&v, "dc2"),
            Ok(Some(Plan {
                from: "dc1".into(),
                to: "dc2".into(),
                revision: 10,
                from_hosts: vec!["a".into()],
                to_hosts: vec!["b".into()],
            }))
        );
        assert_eq!(plan(&v, "dc1"), Ok(None));
        assert_eq!(
            plan(&v, "dc3"),
            Err(Refusal::NeverAcknowledged("dc3".into()))
        );
        // B cut off since: it acknowledged an older revision.
        let behind = view(&[
            ("/k", "dc1", 10),
            ("/k/ack/dc1/a", "10 primary", 11),
            ("/k/ack/dc2/b", "7 standby", 8),
        ]);
        assert_eq!(
            plan(&behind, "dc2"),
            Err(Refusal::NotInStep {
                site: "dc2".into(),
                hosts: vec!["b".into()]
            })
        );
        let nobody = view(&[("/k/ack/dc2/b", "7 standby", 8)]);
        assert_eq!(plan(&nobody, "dc2"), Err(Refusal::NoHolder(Holder::Nobody)));
    }

    #[test]
    fn who_is_still_awaited() {
        let v = view(&[
            ("/k", "switching:dc1->dc2", 20),
            ("/k/ack/dc1/a", "20 standby", 21),
            ("/k/ack/dc1/c", "10 primary", 11),
        ]);
        let hosts = vec!["a".to_owned(), "c".to_owned()];
        assert_eq!(waiting_for(&v, "dc1", &hosts, 20, Role::Standby), ["c"]);
        let left = wait(
            Duration::ZERO,
            || Some(&v),
            |v| waiting_for(v, "dc1", &hosts, 20, Role::Standby),
        );
        assert_eq!(left, Err(vec!["c".to_owned()]));
        assert_eq!(neutral("dc1", "dc2"), "switching:dc1->dc2");
    }
}
