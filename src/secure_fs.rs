//! Files written and read as root: the metrics file, the pause file, the lock, and state under
//! /var/lib/failover-manager. Root writing into a directory that someone else can change is
//! how a symlink turns "write the metrics" into "overwrite /etc/shadow", so every directory on
//! the way must be root's alone (the rules of `security`), no name is followed when it is a
//! symlink, a new file is created exclusively under a fresh name, its mode is set on the open
//! descriptor (never filtered by the umask, never by path), and it replaces the old one by an
//! atomic rename, flushed to disk with its directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::security::{self, SecurityError};

/// The mode of a directory of our own (/run/failover-manager, /var/lib/failover-manager).
const DIR_MODE: u32 = 0o755;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A directory on the way, or the file itself, could be changed by someone else.
    #[error(transparent)]
    Unsafe(#[from] SecurityError),
    #[error("{what} {path}: is a symbolic link; refusing to follow it as root (fix: rm {path})")]
    Symlink { what: String, path: PathBuf },
    #[error("{what} {path}: not a regular file; refusing to use it (fix: rm {path})")]
    NotRegular { what: String, path: PathBuf },
    #[error("{what} {path}: over {max} bytes, far more than it ever holds")]
    TooLarge {
        what: String,
        path: PathBuf,
        max: u64,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FsError {
    /// The directory is on a read-only mount: under the shipped, hardened service
    /// (`ProtectSystem=strict`), one that was not allowed with `ReadWritePaths=`.
    pub fn is_read_only(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.raw_os_error() == Some(libc::EROFS))
    }
}

fn io_err(what: &str, path: &Path) -> impl Fn(std::io::Error) -> FsError {
    let (what, path) = (what.to_owned(), path.to_owned());
    move |source| FsError::Io {
        what: what.clone(),
        path: path.clone(),
        source,
    }
}

/// Fixes the umask at start: whatever the caller's (`umask 000`), nothing we create, and
/// nothing the check or a hook creates, is writable by others.
pub fn set_umask() {
    crate::sys::set_umask(0o022);
}

/// Refuses `dir` unless it is a directory that only root can change, through itself or any
/// directory above it.
pub fn check_dir(what: &str, dir: &Path) -> Result<(), FsError> {
    security::check(what, dir)?;
    let m = std::fs::metadata(dir).map_err(io_err(what, dir))?;
    if !m.is_dir() {
        return Err(io_err(what, dir)(std::io::Error::from_raw_os_error(
            libc::ENOTDIR,
        )));
    }
    Ok(())
}

/// Creates a directory of our own (and any missing above it) with mode 0755, whatever the
/// umask, then checks it: one left by someone else, or with a wider mode, is refused.
pub fn ensure_dir(what: &str, dir: &Path) -> Result<(), FsError> {
    // Whoever could change what exists could swap what we create under it: check that first.
    security::check(what, dir)?;
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .collect();
    for p in missing.into_iter().rev() {
        mkdir(p).map_err(io_err(what, p))?;
    }
    check_dir(what, dir)
}

/// mkdir with a narrow mode, then the real one on the descriptor: never wider than meant, even
/// for an instant, and not subject to the umask.
fn mkdir(p: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => {}
        // Made meanwhile by another run (or by someone else: the check afterwards tells).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)?;
    d.set_permissions(std::fs::Permissions::from_mode(DIR_MODE))
}

/// Replaces `path` with `contents`, atomically, with `mode`. Its directory must exist and be
/// root's alone. The temporary name starts with a dot and ends in `.tmp`, so a reader of the
/// directory (node_exporter's `*.prom`) never sees half a file.
pub fn write_atomic(what: &str, path: &Path, contents: &[u8], mode: u32) -> Result<(), FsError> {
    let (dir, name) = split(what, path)?;
    check_dir(&format!("{what} directory"), dir)?;
    let (tmp, mut file) = create_temp(dir, &name).map_err(io_err(what, dir))?;
    let result = file
        .write_all(contents)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io_err(what, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // The rename is durable only once the directory is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(what, dir))
}

fn split<'a>(what: &str, path: &'a Path) -> Result<(&'a Path, String), FsError> {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
            Ok((dir, name.to_string_lossy().into_owned()))
        }
        _ => Err(io_err(what, path)(std::io::Error::from(
            std::io::ErrorKind::InvalidInput,
        ))),
    }
}

/// A new file under a name no one else holds: O_EXCL fails on anything already there,
/// a planted symlink included, and O_NOFOLLOW says so explicitly.
fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let mut last = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
    for _ in 0..8 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "{}-{nanos:x}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join(format!(".{name}.{unique}.tmp"));
        match open_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn open_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens without following a symlink and without blocking on a FIFO, and refuses anything
/// but a regular file.
fn open_regular(what: &str, path: &Path, opts: &mut OpenOptions) -> Result<File, FsError> {
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => FsError::Symlink {
                what: what.to_owned(),
                path: path.to_owned(),
            },
            _ => io_err(what, path)(e),
        })?;
    let m = file.metadata().map_err(io_err(what, path))?;
    if !m.is_file() {
        return Err(FsError::NotRegular {
            what: what.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(file)
}

/// Reads a small file we wrote (state, the pause file): `Ok(None)` when there is none. A
/// symlink, a FIFO, a file someone else could have written, or one in a directory someone
/// else controls is refused: what it says would steer a root run.
pub fn read_small(what: &str, path: &Path, max: u64) -> Result<Option<Vec<u8>>, FsError> {
    let (dir, _) = split(what, path)?;
    let file = match open_regular(what, path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    check_dir(&format!("{what} directory"), dir)?;
    let m = file.metadata().map_err(io_err(what, path))?;
    security::check_metadata(what, path, &m)?;
    let mut buf = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(what, path))?;
    if buf.len() as u64 > max {
        return Err(FsError::TooLarge {
            what: what.to_owned(),
            path: path.to_owned(),
            max,
        });
    }
    Ok(Some(buf))
}

/// Removes a file we wrote; one that is not there is fine.
pub fn remove(what: &str, path: &Path) -> Result<(), FsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(what, path)(e)),
    }
}

/// Opens (creating it if missing) a file used in place, such as a lock: read-write, never
/// truncated, no symlink followed, `mode` set on the descriptor. Its directory must be
/// root's alone (see `ensure_dir`).
pub fn open_in_place(what: &str, path: &Path, mode: u32) -> Result<File, FsError> {
    let (dir, _) = split(what, path)?;
    check_dir(&format!("{what} directory"), dir)?;
    let file = open_regular(
        what,
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )?;
    // Also repairs one created under a wide umask by an older version.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(what, path))?;
    let m = file.metadata().map_err(io_err(what, path))?;
    security::check_metadata(what, path, &m)?;
    Ok(file)
}

/// A scratch directory for tests of files written as root: under /run, whose every directory
/// is root's alone (unlike /tmp, which everyone can write). Removed on drop.
///
/// Root only: a test that uses one carries `#[cfg_attr(fm_not_root, ignore = "needs root")]`
/// (build.rs sets the cfg in a build made without root), and panics if it runs anyway.
#[cfg(test)]
pub struct Scratch {
    pub path: PathBuf,
}

#[cfg(test)]
impl Scratch {
    /// Always `Some` (it panics instead): the `let Some(s) = .. else { return }` of its callers
    /// dates from when a test without root skipped itself.
    pub fn new(name: &str) -> Option<Scratch> {
        assert!(
            security::running_as_root(),
            "this test writes files as root and needs root (a build without root ignores it)"
        );
        // Unique in this process too: tests run in parallel threads, and two of them may
        // choose the same name (lock.rs and this file's tests both said "lock").
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = PathBuf::from(format!("/run/fm-unit-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let made = std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)));
        if let Err(e) = made {
            panic!("cannot create {}: {e}", path.display());
        }
        Some(Scratch { path })
    }

    /// A subdirectory owned by uid 65534 (nobody), as a non-root user's own directory is.
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let d = self.path.join(name);
        let _ = std::fs::create_dir(&d);
        let _ = std::os::unix::fs::chown(&d, Some(65534), Some(65534));
        d
    }
}

#[cfg(test)]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// build.rs decided which tests to ignore: the build must be the running user's (a build
    /// made without root and run as root would ignore tests that can run; the other way round,
    /// or under CI=true without root, every root test fails, and this says why).
    #[test]
    fn built_for_the_user_that_runs_them() {
        assert_eq!(
            cfg!(fm_not_root),
            !security::running_as_root(),
            "built {} root, running {} root: rebuild as this user (touch build.rs); under \
             CI=true the tests need root",
            if cfg!(fm_not_root) { "without" } else { "as" },
            if security::running_as_root() {
                "as"
            } else {
                "without"
            },
        );
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p)
            .map(|m| m.mode() & 0o7777)
            .unwrap_or(0)
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn writes_atomically_with_the_mode_on_the_descriptor() {
        let Some(s) = Scratch::new("write") else {
            return;
        };
        let path = s.path.join("state");
        let r1 = write_atomic("state file", &path, b"a 1\n", 0o644);
        let r2 = write_atomic("state file", &path, b"a 2\n", 0o640);
        assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"a 2\n");
        // The temp file is opened 0600: only fchmod gets it to the mode asked for.
        assert_eq!(mode(&path), 0o640);
        let entries = std::fs::read_dir(&s.path).map(|d| d.count()).unwrap_or(0);
        assert_eq!(entries, 1, "no temp file left behind");
        let back = read_small("state file", &path, 100);
        assert_eq!(back.ok().flatten().unwrap_or_default(), b"a 2\n");
        assert!(matches!(
            read_small("state file", &s.path.join("none"), 100),
            Ok(None)
        ));
        assert!(matches!(
            read_small("state file", &path, 2),
            Err(FsError::TooLarge { .. })
        ));
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_directory_a_user_owns_is_refused_and_the_symlinked_target_unchanged() {
        let Some(s) = Scratch::new("attack") else {
            return;
        };
        let shadow = s.path.join("shadow");
        let _ = std::fs::write(&shadow, "root:x:0:\n");
        let _ = std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640));
        let user = s.user_dir("user");
        // The user plants links at every name a writer might use, and at the target itself.
        let target = user.join("failover_manager.prom");
        let _ = std::os::unix::fs::symlink(&shadow, &target);
        let r = write_atomic("metrics file", &target, b"owned\n", 0o644);
        let e = r.map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(
            e.contains(&format!(
                "metrics file directory {}: owned by uid 65534; refusing to use it as root (fix: chown root {})",
                user.display(),
                user.display()
            )),
            "{e}"
        );
        let read = read_small("pause file", &target, 100).map_err(|e| e.to_string());
        assert!(
            read.as_ref().is_err_and(|e| e.contains("symbolic link")),
            "{read:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&shadow).unwrap_or_default(),
            "root:x:0:\n"
        );
        assert_eq!(mode(&shadow), 0o640);
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_planted_temp_name_is_never_followed() {
        let Some(s) = Scratch::new("planted") else {
            return;
        };
        let shadow = s.path.join("shadow");
        let _ = std::fs::write(&shadow, "secret\n");
        let tmp = s.path.join(".x.tmp");
        let _ = std::os::unix::fs::symlink(&shadow, &tmp);
        let r = open_new(&tmp);
        assert!(r.is_err(), "{r:?}");
        assert_eq!(
            std::fs::read_to_string(&shadow).unwrap_or_default(),
            "secret\n"
        );
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn reads_refuse_fifos_and_files_others_can_write() {
        let Some(s) = Scratch::new("read") else {
            return;
        };
        let fifo = s.path.join("paused");
        let _ = crate::sys::mkfifo(&fifo, 0o644);
        // A FIFO would block the open forever: refused at once instead.
        let r = read_small("pause file", &fifo, 100);
        assert!(matches!(r, Err(FsError::NotRegular { .. })), "{r:?}");
        let f = s.path.join("state");
        let _ = std::fs::write(&f, "x");
        let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666));
        let r = read_small("state file", &f, 100).map_err(|e| e.to_string());
        assert!(
            r.as_ref()
                .is_err_and(|e| e.contains("writable by every user (mode 0666)")),
            "{r:?}"
        );
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn own_directories_are_created_0755_and_checked() {
        let Some(s) = Scratch::new("dirs") else {
            return;
        };
        let d = s.path.join("a/b");
        assert!(ensure_dir("state directory", &d).is_ok());
        // mkdir asks for 0700: only the fchmod on the descriptor makes these 0755.
        assert_eq!(mode(&s.path.join("a")), 0o755);
        assert_eq!(mode(&d), 0o755);
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777));
        let e = ensure_dir("state directory", &d).map_err(|e| e.to_string());
        assert!(
            e.as_ref().is_err_and(|e| e.contains("(fix: chmod o-w")),
            "{e:?}"
        );
        let user = s.user_dir("user");
        let e = ensure_dir("lock directory", &user.join("sub")).map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.contains("is owned by uid 65534")),
            "{e:?}"
        );
        assert!(!user.join("sub").exists(), "nothing created under it");
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_lock_is_opened_in_place_with_its_mode_and_never_through_a_link() {
        let Some(s) = Scratch::new("lock") else {
            return;
        };
        let lock = s.path.join("lock");
        let _ = std::fs::write(&lock, "42\n");
        let _ = std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666));
        let f = open_in_place("lock file", &lock, 0o644);
        assert!(f.is_ok(), "{f:?}");
        assert_eq!(mode(&lock), 0o644);
        assert_eq!(std::fs::read_to_string(&lock).unwrap_or_default(), "42\n");
        let link = s.path.join("link");
        let _ = std::os::unix::fs::symlink(&lock, &link);
        let r = open_in_place("lock file", &link, 0o644);
        assert!(matches!(r, Err(FsError::Symlink { .. })), "{r:?}");
    }
}
