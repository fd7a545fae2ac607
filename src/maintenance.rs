//! Maintenance mode for one host (Pacemaker's maintenance-mode): while a pause file exists,
//! reconcile changes nothing, so an operator can work on a unit without the timer fighting
//! them. The file lives under /var/lib so it survives a reboot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/var/lib/failover-manager/paused";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub by: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl Pause {
    pub fn now(reason: &str) -> Pause {
        Pause {
            by: who(),
            reason: reason.to_owned(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "paused by {} since {}: {}",
            self.by, self.since, self.reason
        )
    }
}

/// Far more than a pause file holds (who, why, since when).
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] FsError),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PauseError + '_ {
    move |source| PauseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The operator behind the command: the sudo user if any, else the login name, else the uid
/// (also who a promotion records).
pub fn who() -> String {
    ["SUDO_USER", "LOGNAME", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("uid {}", crate::sys::uid()))
}

/// `Ok(None)` when not paused. A pause file that cannot be parsed still pauses: it was put
/// there on purpose, and acting would be the surprise. One that someone other than root could
/// have put there (a symlink, a FIFO, a directory that is not root's) is an error instead.
pub fn read(path: &Path) -> Result<Option<Pause>, PauseError> {
    let Some(bytes) = secure_fs::read_small("pause file", path, MAX_BYTES)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(serde_json::from_str(&text).unwrap_or_else(|e| {
        Pause {
            by: "unknown".into(),
            reason: format!("unreadable pause file ({e})"),
            since: "unknown".into(),
        }
    })))
}

/// Written whole or not at all (`secure_fs`), so a crash never leaves half a pause file.
pub fn write(path: &Path, pause: &Pause) -> Result<(), PauseError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    secure_fs::ensure_dir("pause directory", dir)?;
    let body = serde_json::to_string_pretty(pause).unwrap_or_default() + "\n";
    secure_fs::write_atomic("pause file", path, body.as_bytes(), 0o644)?;
    Ok(())
}

/// Returns whether there was a pause to remove.
pub fn remove(path: &Path) -> Result<bool, PauseError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn write_read_remove_round_trip() {
        let Some(s) = crate::secure_fs::Scratch::new("pause") else {
            return;
        };
        let path = s.path.join("lib/paused");
        let p = Pause::now("replacing a disk");
        let written = write(&path, &p);
        let back = read(&path);
        let removed = remove(&path);
        let removed_again = remove(&path);
        let after = read(&path);
        std::fs::write(&path, "garbage").ok();
        let garbage = read(&path);
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(back.ok().flatten(), Some(p));
        assert!(matches!(removed, Ok(true)));
        assert!(matches!(removed_again, Ok(false)));
        assert!(matches!(after, Ok(None)));
        let g = garbage.ok().flatten();
        assert!(g.is_some_and(|g| g.reason.starts_with("unreadable pause file")));
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_pause_file_that_is_a_symlink_is_refused_not_followed() {
        let Some(s) = crate::secure_fs::Scratch::new("pause-link") else {
            return;
        };
        let standin = s.path.join("shadow");
        let _ = std::fs::write(&standin, "root:x:0:\n");
        let path = s.path.join("paused");
        let _ = std::os::unix::fs::symlink(&standin, &path);
        let r = read(&path).map_err(|e| e.to_string());
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("is a symbolic link; refusing to follow it as root")),
            "{r:?}"
        );
        // Writing replaces the link itself; the file it pointed to is untouched.
        let w = write(&path, &Pause::now("disk"));
        assert!(w.is_ok(), "{w:?}");
        assert_eq!(
            std::fs::read_to_string(&standin).unwrap_or_default(),
            "root:x:0:\n"
        );
        assert!(matches!(read(&path), Ok(Some(_))));
    }
}
