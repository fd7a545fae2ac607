//! One run at a time: the timer and an operator's hand run can overlap, and two runs acting on
//! the same units would start them twice. An flock on a file under /run, held for the run.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::interrupt;
use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/run/failover-manager/lock";

/// Holds the lock until dropped (closing the file releases the flock).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the lock: {0}")]
    File(#[from] FsError),
    #[error(
        "another failover-manager run ({holder}) holds {path}; gave up after waiting {}",
        humantime::format_duration(*.waited)
    )]
    Busy {
        path: PathBuf,
        holder: String,
        waited: Duration,
    },
    #[error(
        "another failover-manager run ({holder}) has held {path} for {}, longer than any run \
         with this config can take: is it stopped (Ctrl-Z) or hung? Every run is skipped until \
         it ends",
        humantime::format_duration(*.held_for)
    )]
    Stuck {
        path: PathBuf,
        holder: String,
        held_for: Duration,
    },
    #[error("interrupted while waiting for the lock {path}")]
    Interrupted { path: PathBuf },
}

/// Waits up to `wait` for the lock. A holder that has had it for longer than `stuck_after`
/// (when given) is reported as stuck rather than busy: a skipped minute is fine, a lock that
/// is never released silently skips them all.
pub fn acquire(
    path: &Path,
    wait: Duration,
    stuck_after: Option<Duration>,
) -> Result<Lock, LockError> {
    let open_err = |source| LockError::Open {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        secure_fs::ensure_dir("lock directory", dir)?;
    }
    // Readable by all: whoever waits, root or not, can see who holds it.
    let mut file = secure_fs::open_in_place("lock file", path, 0o644)?;
    let started = Instant::now();
    let mut logged = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        if !logged {
            log::info!("waiting for {} ({})", path.display(), holder(&mut file));
            logged = true;
        }
        if started.elapsed() >= wait {
            // Each run writes its PID on taking the lock: the file's age is how long it is held.
            let held_for = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if let (Some(held_for), Some(limit)) = (held_for, stuck_after)
                && held_for > limit
            {
                return Err(LockError::Stuck {
                    path: path.to_owned(),
                    holder: holder(&mut file),
                    held_for: Duration::from_secs(held_for.as_secs()),
                });
            }
            return Err(LockError::Busy {
                path: path.to_owned(),
                holder: holder(&mut file),
                waited: wait,
            });
        }
        if !interrupt::sleep(Duration::from_millis(50)) {
            return Err(LockError::Interrupted {
                path: path.to_owned(),
            });
        }
    }
    // Record who holds it, so a run that gives up can name the holder.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Lock { _file: file })
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    match s.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "pid unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn second_holder_waits_then_names_the_first() {
        let Some(s) = crate::secure_fs::Scratch::new("lock") else {
            return;
        };
        let path = s.path.join("run/lock");
        let first = acquire(&path, Duration::ZERO, None);
        assert!(first.is_ok(), "{first:?}");
        let t = Instant::now();
        let second = acquire(
            &path,
            Duration::from_millis(200),
            Some(Duration::from_secs(60)),
        );
        let waited = t.elapsed();
        let stuck = acquire(&path, Duration::ZERO, Some(Duration::ZERO));
        drop(first);
        let third = acquire(&path, Duration::ZERO, None);
        match second {
            Err(LockError::Busy { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        assert!(waited >= Duration::from_millis(200));
        assert!(matches!(stuck, Err(LockError::Stuck { .. })), "{stuck:?}");
        assert!(third.is_ok(), "released on drop: {third:?}");
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn the_lock_is_never_opened_through_a_symlink_and_is_0644() {
        use std::os::unix::fs::PermissionsExt;
        let Some(s) = crate::secure_fs::Scratch::new("lock-link") else {
            return;
        };
        let standin = s.path.join("shadow");
        let _ = std::fs::write(&standin, "root:x:0:\n");
        let _ = std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o600));
        let _ = std::fs::create_dir(s.path.join("run"));
        let path = s.path.join("run/lock");
        let _ = std::os::unix::fs::symlink(&standin, &path);
        let r = acquire(&path, Duration::ZERO, None);
        assert!(
            matches!(r, Err(LockError::File(FsError::Symlink { .. }))),
            "{r:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&standin).unwrap_or_default(),
            "root:x:0:\n"
        );
        let _ = std::fs::remove_file(&path);
        let held = acquire(&path, Duration::ZERO, None);
        assert!(held.is_ok(), "{held:?}");
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o644));
    }
}
