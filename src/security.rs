//! Script security, after keepalived's enable_script_security and sshd's StrictModes: run as
//! root, we refuse a config file, an executable, or a file an executable is given to read,
//! that someone other than root could change — through the file itself or through any
//! directory on the way to it, including the directories that hold a symlink on that way.

use std::ffi::OsString;
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

/// Where resolving a path went, as the kernel resolves it.
#[derive(Debug, PartialEq)]
pub struct Walk {
    /// Every real (symlink-free) path it passed through, in order: each directory, including
    /// those holding a symlink on the way, and last the file itself when it exists.
    pub visited: Vec<PathBuf>,
    /// The file itself, when every component exists.
    pub found: Option<PathBuf>,
}

/// Like the kernel's lookup (but by hand, so no symlink directory is skipped): component by
/// component, splicing in each symlink's target. Stops at the first missing component.
pub fn walk(path: &Path) -> std::io::Result<Walk> {
    let mut cur = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir()?
    };
    let mut visited: Vec<PathBuf> = cur.ancestors().map(Path::to_path_buf).collect();
    visited.reverse();
    // A stack: the next component to resolve is last.
    let mut todo: Vec<OsString> = components(path);
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.to_str() {
            Some("/") => cur = PathBuf::from("/"),
            Some(".") => {}
            Some("..") => {
                cur.pop();
            }
            _ => {
                let next = cur.join(&c);
                let m = match std::fs::symlink_metadata(&next) {
                    Ok(m) => m,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        return Ok(Walk {
                            visited,
                            found: None,
                        });
                    }
                    Err(e) => return Err(e),
                };
                if m.file_type().is_symlink() {
                    links += 1;
                    if links > 40 {
                        return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    todo.extend(components(&std::fs::read_link(&next)?));
                } else {
                    cur = next;
                    visited.push(cur.clone());
                }
            }
        }
    }
    Ok(Walk {
        found: Some(cur),
        visited,
    })
}

/// A path's components as a stack (the first one last).
fn components(path: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = path
        .components()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    v.reverse();
    v
}

/// The ownership rules applied to one path's metadata; `path` names it in the error.
pub fn check_metadata(what: &str, path: &Path, m: &std::fs::Metadata) -> Result<(), SecurityError> {
    match problem(m.uid(), m.gid(), m.mode()) {
        None => Ok(()),
        Some((problem, fix)) => Err(SecurityError::Unsafe {
            what: what.to_owned(),
            path: path.to_owned(),
            problem,
            fix: format!("{fix} {}", path.display()),
        }),
    }
}

/// Checks `path`, the file it resolves to, and every directory on the way to it.
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
    let walk = walk(path).map_err(stat_err(path))?;
    let file = walk.found.as_ref();
    let mut chain = walk.visited.clone();
    chain.sort();
    chain.dedup();
    // Report the deepest offender: the file itself before the directories above it.
    chain.sort_by_key(|p| (Some(p) != file, std::cmp::Reverse(p.components().count())));
    for p in &chain {
        let m = std::fs::symlink_metadata(p).map_err(stat_err(p))?;
        if let Some((problem, fix)) = problem(m.uid(), m.gid(), m.mode()) {
            return Err(SecurityError::Unsafe {
                what: what.to_owned(),
                path: path.to_owned(),
                problem: if Some(p) == file {
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

/// The paths a config makes us trust: the config file, the check's and every hook's program,
/// and every file named in their arguments (an interpreter's script, a flag file a check
/// reads): root runs or believes them all.
pub fn check_config(config: &crate::config::Config) -> Result<(), SecurityError> {
    check("config file", &config.path)?;
    let etcd = config.check.etcd();
    let programs = config
        .check
        .command()
        .map(|c| ("check command", c))
        .into_iter()
        .chain(
            etcd.and_then(|e| e.before_acquire.as_deref())
                .map(|c| ("before_acquire command", c)),
        )
        .chain(
            config
                .hooks
                .all()
                .map(|(_, h)| ("hook command", h.command.as_slice())),
        );
    if let Some(e) = etcd {
        // Who can change what root trusts (the CA) or reads a secret from could steer it.
        for (what, file) in [
            ("etcd CA file", &e.ca_file),
            ("etcd certificate file", &e.cert_file),
        ] {
            if let Some(f) = file {
                check(what, &f.0)?;
            }
        }
        for (what, file) in [
            ("etcd credentials file", &e.credentials_file),
            ("etcd key file", &e.key_file),
        ] {
            if let Some(f) = file {
                check(what, &f.0)?;
                secret(what, &f.0)?;
            }
        }
    }
    for (what, argv) in programs {
        // A program not in PATH cannot be run at all: the run reports that (role unknown).
        if let Some(path) = argv.first().and_then(|p| resolve(p)) {
            check(what, &path)?;
        }
        for file in argv.iter().skip(1).filter_map(|a| file_argument(a)) {
            check(&format!("{what} argument"), file)?;
        }
    }
    Ok(())
}

/// An argument that names an existing file (a path with a `/`, or a symlink, even dangling).
/// A directory is not: it is where a command works, not code or data it runs or believes.
fn file_argument(arg: &str) -> Option<&Path> {
    let p = Path::new(arg);
    let exists = arg.contains('/') && std::fs::symlink_metadata(p).is_ok();
    let dir = std::fs::metadata(p).is_ok_and(|m| m.is_dir());
    (exists && !dir).then_some(p)
}

/// A secret (a password, a private key): readable by root alone. A missing one is the run's to
/// report.
pub fn secret(what: &str, path: &Path) -> Result<(), SecurityError> {
    let Ok(m) = std::fs::metadata(path) else {
        return Ok(());
    };
    match secret_problem(m.mode()) {
        None => Ok(()),
        Some(problem) => Err(SecurityError::Unsafe {
            what: what.to_owned(),
            path: path.to_owned(),
            problem,
            fix: format!("chmod 600 {}", path.display()),
        }),
    }
}

fn secret_problem(mode: u32) -> Option<String> {
    (mode & 0o077 != 0)
        .then(|| format!("readable by others than root (mode {:04o})", mode & 0o7777))
}

pub fn running_as_root() -> bool {
    crate::sys::euid() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_root_s_alone() {
        assert_eq!(secret_problem(0o100600), None);
        assert_eq!(secret_problem(0o100400), None);
        assert_eq!(
            secret_problem(0o100640).as_deref(),
            Some("readable by others than root (mode 0640)")
        );
        assert!(secret_problem(0o100604).is_some());
    }

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
    #[cfg_attr(fm_not_root, ignore = "needs root: checks files as root")]
    fn system_programs_pass_and_unsafe_files_are_named() {
        assert!(
            running_as_root(),
            "needs root: the checks differ for other users"
        );
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

    /// A config in a scratch directory whose check is `argv`, checked as `run` does.
    fn check_argv(s: &crate::secure_fs::Scratch, argv: &[&str]) -> Result<(), String> {
        let path = s.path.join("config.yaml");
        let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
        let text = format!(
            "check: {{command: [{}]}}\nhooks: {{on_failure: {{command: [/bin/true]}}}}\nunits: [a]\n",
            argv.join(", ")
        );
        let _ = std::fs::write(&path, &text);
        let config = crate::config::parse(&path, &text).map_err(|e| e.to_string())?;
        check_config(&config).map_err(|e| e.to_string())
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_script_given_to_an_interpreter_is_checked_like_the_program() {
        use std::os::unix::fs::PermissionsExt;
        let Some(s) = crate::secure_fs::Scratch::new("sec-args") else {
            return;
        };
        let script = s.path.join("check.sh");
        let _ = std::fs::write(&script, "exit 0\n");
        let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644));
        let sh = |arg: &Path| check_argv(&s, &["/bin/sh", &arg.to_string_lossy()]);
        assert_eq!(sh(&script), Ok(()));
        let _ = std::os::unix::fs::chown(&script, Some(65534), None);
        let e = sh(&script).err().unwrap_or_default();
        assert!(
            e.contains(&format!(
                "check command argument {}: owned by uid 65534; refusing to use it as root (fix: chown root {})",
                script.display(),
                script.display()
            )),
            "{e}"
        );
        // The same through a relative path, as the check would open it from our directory.
        let cwd = std::env::current_dir().unwrap_or_default();
        let up = "../".repeat(cwd.components().count().saturating_sub(1));
        let relative = PathBuf::from(up).join(script.strip_prefix("/").unwrap_or(&script));
        assert!(relative.is_relative() && relative.exists());
        assert!(sh(&relative).is_err(), "{}", relative.display());
        // A flag file a check reads, in a directory a user can write.
        let user = s.user_dir("flags");
        let flag = user.join("primary-site");
        let _ = std::fs::write(&flag, "dc1\n");
        let e = check_argv(&s, &["/bin/grep", "-q", "dc1", &flag.to_string_lossy()])
            .err()
            .unwrap_or_default();
        assert!(
            e.contains(&format!(
                "its directory {} is owned by uid 65534",
                user.display()
            )),
            "{e}"
        );
        // Not files: a directory (even /tmp), a word, an inline script, a missing path.
        assert_eq!(
            check_argv(
                &s,
                &[
                    "/bin/sh",
                    "-c",
                    "exit $(cat /run/none/x)",
                    "/tmp",
                    "/run/none/x"
                ]
            ),
            Ok(())
        );
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn every_directory_of_a_symlink_chain_is_checked() {
        let Some(s) = crate::secure_fs::Scratch::new("sec-links") else {
            return;
        };
        // a/link1 -> user/link2 -> b/check: only the middle link's directory is unsafe.
        let (a, b) = (s.path.join("a"), s.path.join("b"));
        let _ = std::fs::create_dir(&a);
        let _ = std::fs::create_dir(&b);
        let user = s.user_dir("user");
        let _ = std::fs::write(b.join("check"), "#!/bin/sh\n");
        let _ = std::os::unix::fs::symlink(b.join("check"), user.join("link2"));
        let _ = std::os::unix::fs::symlink(user.join("link2"), a.join("link1"));
        let e = check("check command", &a.join("link1")).map_err(|e| e.to_string());
        let e = e.err().unwrap_or_default();
        assert!(
            e.contains(&format!(
                "its directory {} is owned by uid 65534",
                user.display()
            )),
            "{e}"
        );
        // The walk sees every directory, and resolves as the kernel does.
        let w = walk(&a.join("link1"));
        let w = w.unwrap_or(Walk {
            visited: vec![],
            found: None,
        });
        assert_eq!(w.found, Some(b.join("check")));
        assert!(w.visited.contains(&a) && w.visited.contains(&user));
        // A missing file: what exists on the way still counts.
        let w = walk(&user.join("nope/x"))
            .ok()
            .map(|w| (w.found, w.visited.contains(&user)));
        assert_eq!(w, Some((None, true)));
    }
}
