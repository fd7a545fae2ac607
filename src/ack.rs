//! The acknowledgement (`KEY/ack/SITE/HOST` = `REVISION ROLE AT FENCE [UNITS]`): after a run
//! that acted on the role the key gives this host, the run itself records in etcd how it left
//! the units, for a switchover or a promotion to wait on and for `status` to show.
//!
//! - `UNITS`: the units that did not reach their state (comma-separated); absent when all did,
//!   which is what a switchover and a promotion wait for.
//! - `AT`: this host's wall clock when written, in Unix seconds: for people ("how long ago"),
//!   never for a decision.
//! - `FENCE`: the most seconds this host can go on running its primary units after the last
//!   read that confirmed its role (fence_after, then stopping them, and 2% for the clock's
//!   rate); `-` when it does not fence itself. `promote` waits that long.
//!
//! Written only while the key still has the revision the run acted on, and only when the first
//! two fields or FENCE change, or the last write is `HEARTBEAT` old: a steady-state run writes
//! at most one key every `HEARTBEAT` (the last value written is remembered in /run, which a
//! reboot empties). Older versions wrote `REVISION ROLE` alone; readers take the first fields.

use std::path::Path;
use std::time::Duration;

use crate::domain::Role;
use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/run/failover-manager/ack";

/// How often a host in steady state writes its acknowledgement again: what lets `status` tell
/// a host that is up from one not heard from.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// What to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// `KEY/ack/SITE/HOST`.
    pub key: String,
    /// `REVISION ROLE AT FENCE`.
    pub value: String,
    /// The key's mod revision the run acted on: the write happens only while it still is.
    pub revision: i64,
    /// AT.
    pub at: u64,
}

/// What a run says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said<'a> {
    pub role: Role,
    /// The key's mod revision the run acted on.
    pub revision: i64,
    /// AT.
    pub at: u64,
    /// FENCE in seconds (`None`: it does not fence itself).
    pub fence: Option<u64>,
    /// The units that did not reach their state.
    pub pending: &'a [String],
}

/// The acknowledgement of a run that acted on `said.role`; `None` for an unknown role or a
/// host name that cannot be part of a key.
pub fn of(key: &str, site: &str, host: &str, said: &Said) -> Option<Ack> {
    if said.role == Role::Unknown || !crate::election::is_site_name(host) {
        return None;
    }
    let fence = said.fence.map_or_else(|| "-".to_owned(), |s| s.to_string());
    let mut value = format!("{} {} {} {fence}", said.revision, said.role, said.at);
    if !said.pending.is_empty() {
        value.push(' ');
        value.push_str(&said.pending.join(","));
    }
    Some(Ack {
        key: format!("{key}/ack/{site}/{host}"),
        value,
        revision: said.revision,
        at: said.at,
    })
}

/// The seconds `FENCE` says for this config: fence_after + stopping the primary units, plus 2%
/// for a clock that runs slow against etcd's (the same bound as automatic mode's lease TTL);
/// `None` without fence_after.
pub fn fence_seconds(config: &crate::config::Config) -> Option<u64> {
    let after = config.check.fence_after?;
    Some(
        crate::config::Budget::of(config, after, Duration::ZERO)
            .min_ttl()
            .as_secs(),
    )
}

/// The line kept in `PATH` for an acknowledgement written.
pub fn line(a: &Ack) -> String {
    format!("{} {}\n", a.key, a.value)
}

/// Whether `a` must be written, given the line kept for the last one (`None`: none kept): it
/// says something new, or the last one is a heartbeat old (or from a wall clock ahead of now).
pub fn due(kept: Option<&str>, a: &Ack) -> bool {
    let Some(kept) = kept else { return true };
    let old: Vec<&str> = kept.split_whitespace().collect();
    let now = line(a);
    let new: Vec<&str> = now.split_whitespace().collect();
    // KEY REVISION ROLE AT FENCE [UNITS]
    if old.len() < 5 || new.len() < 5 {
        return true;
    }
    let same = old[..3] == new[..3] && old[4..] == new[4..];
    let Ok(then) = old[3].parse::<u64>() else {
        return true;
    };
    !same || then > a.at || a.at - then >= HEARTBEAT.as_secs()
}

/// Whether `a` must be written, given what `path` kept.
pub fn due_at(path: &Path, a: &Ack) -> bool {
    match secure_fs::read_small("acknowledgement", path, 4096) {
        Ok(Some(b)) => due(std::str::from_utf8(&b).ok(), a),
        _ => true,
    }
}

pub fn remember(path: &Path, a: &Ack) -> Result<(), FsError> {
    if let Some(dir) = path.parent() {
        secure_fs::ensure_dir("runtime directory", dir)?;
    }
    secure_fs::write_atomic("acknowledgement", path, line(a).as_bytes(), 0o644)
}

/// This host's name, as the kernel has it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(
        key: &str,
        site: &str,
        host: &str,
        role: Role,
        revision: i64,
        at: u64,
        fence: Option<u64>,
    ) -> Option<Ack> {
        let said = Said {
            role,
            revision,
            at,
            fence,
            pending: &[],
        };
        super::of(key, site, host, &said)
    }

    #[test]
    fn the_value_the_switchover_waits_for() {
        assert_eq!(
            of("/fm/primary", "dc1", "a", Role::Standby, 42, 1000, Some(12)),
            Some(Ack {
                key: "/fm/primary/ack/dc1/a".into(),
                value: "42 standby 1000 12".into(),
                revision: 42,
                at: 1000,
            })
        );
        assert_eq!(
            of("/k", "dc2", "b-1.example", Role::Primary, 0, 7, None).map(|a| a.value),
            Some("0 primary 7 -".into())
        );
        assert_eq!(of("/k", "dc1", "a", Role::Unknown, 4, 1, None), None);
        assert_eq!(of("/k", "dc1", "", Role::Primary, 4, 1, None), None);
        assert_eq!(of("/k", "dc1", "a/b", Role::Primary, 4, 1, None), None);
        let pending = ["app.service".to_owned(), "web.service".to_owned()];
        let said = Said {
            role: Role::Primary,
            revision: 42,
            at: 1000,
            fence: Some(5),
            pending: &pending,
        };
        let a = super::of("/k", "dc1", "a", &said).expect("an ack");
        assert_eq!(a.value, "42 primary 1000 5 app.service,web.service");
        let kept = line(&a);
        let synced = of("/k", "dc1", "a", Role::Primary, 42, 1001, Some(5)).expect("an ack");
        assert!(due(Some(&kept), &synced), "the units reached their state");
    }

    #[test]
    fn written_when_it_says_something_new_or_a_heartbeat_later() {
        let at = |t: u64, rev: i64, role: Role, fence: Option<u64>| {
            of("/k", "dc1", "a", role, rev, t, fence).expect("an ack")
        };
        let first = at(1000, 7, Role::Primary, Some(12));
        let kept = line(&first);
        assert!(due(None, &first));
        assert!(!due(Some(&kept), &at(1000, 7, Role::Primary, Some(12))));
        assert!(!due(Some(&kept), &at(1029, 7, Role::Primary, Some(12))));
        assert!(
            due(Some(&kept), &at(1030, 7, Role::Primary, Some(12))),
            "heartbeat"
        );
        assert!(
            due(Some(&kept), &at(1001, 8, Role::Primary, Some(12))),
            "revision"
        );
        assert!(
            due(Some(&kept), &at(1001, 7, Role::Standby, Some(12))),
            "role"
        );
        assert!(due(Some(&kept), &at(1001, 7, Role::Primary, None)), "fence");
        assert!(
            due(Some(&kept), &at(999, 7, Role::Primary, Some(12))),
            "clock stepped back"
        );
        assert!(
            due(Some("/k/ack/dc1/a 7 primary\n"), &first),
            "an older version's line"
        );
        assert!(due(Some("garbage"), &first));
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn remembered_once_written_as_root() {
        let Some(s) = secure_fs::Scratch::new("ack") else {
            return;
        };
        let path = s.path.join("run").join("ack");
        let a = of("/k", "dc1", "a", Role::Primary, 7, 100, None).expect("an ack");
        assert!(due_at(&path, &a));
        assert!(remember(&path, &a).is_ok());
        assert!(!due_at(&path, &a));
        let b = of("/k", "dc1", "a", Role::Standby, 9, 100, None).expect("an ack");
        assert!(due_at(&path, &b));
    }
}
