//! The acknowledgement (`KEY/ack/SITE/HOST` = `REVISION ROLE`): after a run that left this
//! host's units in sync with the role the key gives it, the run itself records so in etcd, for
//! a switchover to wait on and for people to read. Written only when the key still has the
//! revision the run acted on, and only when it changes: a steady-state run writes nothing (the
//! last value written is remembered in /run, which a reboot empties).

use std::path::Path;

use crate::domain::Role;
use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/run/failover-manager/ack";

/// What to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// `KEY/ack/SITE/HOST`.
    pub key: String,
    /// `REVISION ROLE`: the key's mod revision (0: no key) and the role it gave this host.
    pub value: String,
    /// The key's mod revision the run acted on: the write happens only while it still is.
    pub revision: i64,
}

/// The acknowledgement of a run whose units are in sync with `role`; `None` for an unknown
/// role or a host name that cannot be part of a key.
pub fn of(key: &str, site: &str, host: &str, role: Role, revision: i64) -> Option<Ack> {
    if role == Role::Unknown || !crate::election::is_site_name(host) {
        return None;
    }
    Some(Ack {
        key: format!("{key}/ack/{site}/{host}"),
        value: format!("{revision} {role}"),
        revision,
    })
}

/// The line kept in `PATH` for an acknowledgement written.
pub fn line(a: &Ack) -> String {
    format!("{} {}\n", a.key, a.value)
}

/// Whether `a` was the last acknowledgement written from this host.
pub fn written(path: &Path, a: &Ack) -> bool {
    matches!(
        secure_fs::read_small("acknowledgement", path, 4096),
        Ok(Some(b)) if b == line(a).as_bytes()
    )
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

    #[test]
    fn the_value_the_switchover_waits_for() {
        assert_eq!(
            of("/fm/primary", "dc1", "a", Role::Standby, 42),
            Some(Ack {
                key: "/fm/primary/ack/dc1/a".into(),
                value: "42 standby".into(),
                revision: 42
            })
        );
        assert_eq!(
            of("/k", "dc2", "b-1.example", Role::Primary, 0).map(|a| a.value),
            Some("0 primary".into())
        );
        assert_eq!(of("/k", "dc1", "a", Role::Unknown, 4), None);
        assert_eq!(of("/k", "dc1", "", Role::Primary, 4), None);
        assert_eq!(of("/k", "dc1", "a/b", Role::Primary, 4), None);
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn remembered_once_written_as_root() {
        let Some(s) = secure_fs::Scratch::new("ack") else {
            return;
        };
        let path = s.path.join("run").join("ack");
        let a = of("/k", "dc1", "a", Role::Primary, 7).expect("an ack");
        assert!(!written(&path, &a));
        assert!(remember(&path, &a).is_ok());
        assert!(written(&path, &a));
        let b = of("/k", "dc1", "a", Role::Standby, 9).expect("an ack");
        assert!(!written(&path, &b));
    }
}
