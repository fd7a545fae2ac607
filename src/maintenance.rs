//! Maintenance mode for one host (Pacemaker's maintenance-mode): while a pause file exists,
//! reconcile changes nothing, so an operator can work on a unit without the timer fighting
//! them. The file lives under /var/lib so it survives a reboot.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PauseError + '_ {
    move |source| PauseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The operator behind the command: the sudo user if any, else the login name, else the uid.
fn who() -> String {
    ["SUDO_USER", "LOGNAME", "USER"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| {
            // SAFETY: getuid(2) has no preconditions and cannot fail.
            format!("uid {}", unsafe { libc::getuid() })
        })
}

/// `Ok(None)` when not paused. A pause file that cannot be parsed still pauses: it was put
/// there on purpose, and acting would be the surprise.
pub fn read(path: &Path) -> Result<Option<Pause>, PauseError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).unwrap_or_else(|e| {
            Pause {
                by: "unknown".into(),
                reason: format!("unreadable pause file ({e})"),
                since: "unknown".into(),
            }
        }))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Written to a temporary file and renamed, so a crash never leaves half a pause file.
pub fn write(path: &Path, pause: &Pause) -> Result<(), PauseError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = dir.join(".paused.tmp");
    let body = serde_json::to_string_pretty(pause).unwrap_or_default();
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(body.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
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
    fn write_read_remove_round_trip() {
        let dir = std::env::temp_dir().join(format!("fm-pause-test-{}", std::process::id()));
        let path = dir.join("paused");
        let p = Pause::now("replacing a disk");
        let written = write(&path, &p);
        let back = read(&path);
        let removed = remove(&path);
        let removed_again = remove(&path);
        let after = read(&path);
        std::fs::write(&path, "garbage").ok();
        let garbage = read(&path);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(back.ok().flatten(), Some(p));
        assert!(matches!(removed, Ok(true)));
        assert!(matches!(removed_again, Ok(false)));
        assert!(matches!(after, Ok(None)));
        let g = garbage.ok().flatten();
        assert!(g.is_some_and(|g| g.reason.starts_with("unreadable pause file")));
    }
}
