//! The fencing token: the etcd revision at which this host's site took the primary role
//! (`election`), kept in /run/failover-manager/epoch while this host is primary, so that an
//! application can stamp its writes with it and a store can refuse a stale writer's (a lower
//! epoch) after the role has moved on. Hooks get it as FAILOVER_MANAGER_EPOCH.

use std::path::Path;

use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/run/failover-manager/epoch";

/// Writes `epoch` (a decimal number and a newline) unless the file says so already; `None`
/// removes it.
pub fn store(path: &Path, epoch: Option<i64>) -> Result<(), FsError> {
    let current = secure_fs::read_small("fencing token", path, 64)?;
    match epoch {
        Some(e) => {
            let text = format!("{e}\n");
            if current.as_deref() == Some(text.as_bytes()) {
                return Ok(());
            }
            if let Some(dir) = path.parent() {
                secure_fs::ensure_dir("runtime directory", dir)?;
            }
            secure_fs::write_atomic("fencing token", path, text.as_bytes(), 0o644)
        }
        None if current.is_some() => secure_fs::remove("fencing token", path),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn written_once_replaced_when_it_moves_removed_on_standby_as_root() {
        let Some(s) = secure_fs::Scratch::new("epoch") else {
            return;
        };
        let path = s.path.join("run").join("epoch");
        assert!(store(&path, None).is_ok(), "nothing to remove");
        assert!(store(&path, Some(42)).is_ok());
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("42\n"));
        assert!(store(&path, Some(42)).is_ok());
        assert!(store(&path, Some(57)).is_ok());
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("57\n"));
        assert!(store(&path, None).is_ok());
        assert!(!path.exists());
    }
}
