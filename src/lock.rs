//! One run at a time: the timer and an operator's hand run can overlap, and two runs acting on
//! the same units would start them twice. An flock on a file under /run, held for the run.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::interrupt;

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
        std::fs::create_dir_all(dir).map_err(open_err)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(open_err)?;
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
    fn second_holder_waits_then_names_the_first() {
        let dir = std::env::temp_dir().join(format!("fm-lock-test-{}", std::process::id()));
        let path = dir.join("lock");
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
        let _ = std::fs::remove_dir_all(&dir);
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
}
