//! Script security, after keepalived's enable_script_security and sshd's StrictModes: run as
//! root, we refuse a config file or an executable that someone other than root could change —
//! through the file itself or through any directory above it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{what} {path}: {problem}; refusing to use it as root (fix: {fix})")]
    Unsafe {
        what: String,
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("{what} {path}: {source}")]
    Stat {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What is wrong with one path's ownership and mode, if anything (pure, for tests).
pub fn problem(uid: u32, gid: u32, mode: u32) -> Option<(String, String)> {
    if uid != 0 {
        return Some((format!("owned by uid {uid}"), "chown root".into()));
    }
    if mode & 0o002 != 0 {
        return Some((
            format!("writable by every user (mode {:04o})", mode & 0o7777),
            "chmod o-w".into(),
        ));
    }
    if mode & 0o020 != 0 && gid != 0 {
        return Some((
            format!("writable by group {gid} (mode {:04o})", mode & 0o7777),
            "chmod g-w".into(),
        ));
    }
    None
}

/// Finds a bare program name in PATH, as exec would.
pub fn resolve(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Checks `path`, the file it resolves to, and every directory above either.
pub fn check(what: &str, path: &Path) -> Result<(), SecurityError> {
    let stat_err = |p: &Path| {
        let p = p.to_owned();
        move |source| SecurityError::Stat {
            what: what.to_owned(),
            path: p,
            source,
        }
    };
    // A missing file is the runtime's to report (a check that cannot start means role
    // unknown); but whoever could create it must be root, so its directories are checked.
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let real = std::fs::canonicalize(existing).map_err(stat_err(existing))?;
    let mut chain: Vec<PathBuf> = real.ancestors().map(Path::to_path_buf).collect();
    // The directory that holds a symlink matters too: whoever can write it can swap the link.
    if let Some(parent) = existing.parent().filter(|p| !p.as_os_str().is_empty()) {
        let parent = std::fs::canonicalize(parent).map_err(stat_err(parent))?;
        chain.extend(parent.ancestors().map(Path::to_path_buf));
    }
    chain.sort();
    chain.dedup();
    // Report the deepest offender: the file itself before the directories above it.
    chain.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in chain {
        let m = std::fs::metadata(&p).map_err(stat_err(&p))?;
        if let Some((problem, fix)) = problem(m.uid(), m.gid(), m.mode()) {
            return Err(SecurityError::Unsafe {
                what: what.to_owned(),
                path: if p == real {
                    path.to_owned()
                } else {
                    p.clone()
                },
                problem: if p == real {
                    problem
                } else {
                    format!("its directory {} is {problem}", p.display())
                },
                fix: format!("{fix} {}", p.display()),
            });
        }
    }
    Ok(())
}

/// The paths a config makes us trust: the config file, the check's and every hook's program.
pub fn check_config(config: &crate::config::Config) -> Result<(), SecurityError> {
    check("config file", &config.path)?;
    let programs = std::iter::once(("check command", &config.check.command)).chain(
        config
            .hooks
            .all()
            .map(|(_, h)| ("hook command", &h.command)),
    );
    for (what, argv) in programs {
        // A program not in PATH cannot be run at all: the run reports that (role unknown).
        if let Some(path) = argv.first().and_then(|p| resolve(p)) {
            check(what, &path)?;
        }
    }
    Ok(())
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_and_mode_rules() {
        assert_eq!(problem(0, 0, 0o100755), None);
        assert_eq!(problem(0, 0, 0o100775), None, "root's group may write");
        assert_eq!(problem(0, 0, 0o041755), None);
        assert!(
            problem(0, 0, 0o041777).is_some_and(|(p, _)| p.contains("every user")),
            "sticky does not help"
        );
        assert!(
            problem(1000, 0, 0o100644)
                .is_some_and(|(p, f)| p == "owned by uid 1000" && f == "chown root")
        );
        assert!(
            problem(0, 0, 0o100646).is_some_and(|(p, _)| p == "writable by every user (mode 0646)")
        );
        assert!(
            problem(0, 50, 0o100664)
                .is_some_and(|(p, f)| p == "writable by group 50 (mode 0664)" && f == "chmod g-w")
        );
        assert_eq!(problem(0, 50, 0o100644), None);
    }

    #[test]
    fn system_programs_pass_and_unsafe_files_are_named() {
        if !running_as_root() {
            return;
        }
        assert!(check("check command", Path::new("/bin/sh")).is_ok());
        // Not installed yet: its (safe) directories are checked, the run reports it missing.
        assert!(
            check(
                "check command",
                Path::new("/usr/lib/fm-not-installed/check")
            )
            .is_ok()
        );
        let dir = std::env::temp_dir().join(format!("fm-sec-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let f = dir.join("check");
        let _ = std::fs::write(&f, "#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o757));
        let r = check("check command", &f).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        let e = r.err().unwrap_or_default();
        assert!(e.contains("writable by every user (mode 0757)"), "{e}");
        assert!(e.contains("fix: chmod o-w"), "{e}");
    }
}
