//! A throwaway systemd 252 as PID 1 of fresh namespaces (see `tests/sandbox.sh`), owned by a
//! value: dropping it (also while a failed test unwinds) stops systemd and removes its cgroup.
//! If the test process dies outright, the launcher's parent-death signal takes it down.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sandbox.sh");
/// Where the binary under test is installed inside the sandbox (the shipped unit's ExecStart).
pub const BIN: &str = "/usr/bin/failover-manager";

pub struct Sandbox {
    pub pid: u32,
    cgroup: String,
    launcher: Child,
}

/// Where every sandbox test starts (`Sandbox::boot` calls it too). Such a test carries
/// `#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]`: a build
/// made without root (build.rs) lists it as ignored. One that runs must run: without root this
/// panics (`--include-ignored`, a build made as root, or `CI=true`, where nothing is ignored),
/// so a test is never counted as passed having done nothing. Always true when it returns: its
/// callers' checks date from when a test skipped itself.
pub fn available() -> bool {
    assert!(
        running_as_root(),
        "this test boots a real systemd sandbox and needs root{}",
        if cfg!(fm_not_root) {
            " (it is ignored in a build without root: run it as root)"
        } else {
            ": run it as root (a build as another user marks it ignored, except under CI=true)"
        }
    );
    true
}

fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The build decided which tests to ignore (build.rs): it must have been made by the user that
/// runs it. A build made as another user, then run as root, would ignore tests that can run; one
/// made as root (or under CI=true) and run without root fails every sandbox test (this says why).
#[test]
fn built_for_the_user_that_runs_them() {
    let root = running_as_root();
    assert_eq!(
        cfg!(fm_not_root),
        !root,
        "built {} root, running {} root: rebuild as this user (touch build.rs){}",
        if cfg!(fm_not_root) {
            "without"
        } else {
            "as (or under CI=true for)"
        },
        if root { "as" } else { "without" },
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            "; under CI=true the tests need root"
        } else {
            ""
        }
    );
}

impl Sandbox {
    pub fn boot() -> Sandbox {
        available(); // without root: a panic that says so, not a script failing somewhere
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
        let mut launcher = Command::new(SCRIPT)
            .args(["run", &name])
            // Its launcher dies with this process; one started as this process died ends too.
            .env("SANDBOX_CALLER", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run tests/sandbox.sh");
        let mut line = String::new();
        if let Some(out) = launcher.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let cgroup = line.trim().to_owned();
        assert!(!cgroup.is_empty(), "sandbox.sh run printed no cgroup");
        let ready = Command::new(SCRIPT)
            .args(["wait", &cgroup])
            .output()
            .expect("cannot run tests/sandbox.sh wait");
        let pid: u32 = String::from_utf8_lossy(&ready.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        let sb = Sandbox {
            pid,
            cgroup,
            launcher,
        };
        assert!(
            pid != 0,
            "sandbox did not boot: {}",
            String::from_utf8_lossy(&ready.stderr)
        );
        // The binary under test goes where the shipped unit expects it (an overlay write).
        let bin = env!("CARGO_BIN_EXE_failover-manager");
        std::fs::copy(bin, sb.path(BIN)).expect("cannot copy the binary into the sandbox");
        sb.write("/run/fm-test/.keep", "");
        sb
    }

    /// A path inside the sandbox, reachable from the host through /proc/PID/root.
    pub fn path(&self, inside: &str) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.pid)).join(inside.trim_start_matches('/'))
    }

    pub fn write(&self, inside: &str, contents: &str) {
        let p = self.path(inside);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).expect("mkdir in sandbox");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {inside}: {e}"));
    }

    pub fn read(&self, inside: &str) -> String {
        std::fs::read_to_string(self.path(inside)).unwrap_or_default()
    }

    /// Runs argv inside every namespace of the sandbox, with a clean environment.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .args(["-t", &self.pid.to_string(), "-a", "--"])
            .args(argv)
            .stdin(Stdio::null());
        c
    }

    pub fn exec(&self, argv: &[&str]) -> Output {
        self.command(argv).output().expect("nsenter")
    }

    /// stdout of a command inside; panics with its stderr if it fails.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        self.ok(&argv)
    }

    pub fn state(&self, unit: &str) -> String {
        let out = self.exec(&["systemctl", "is-active", "--", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// How `unit` last ended, as systemd has it (`Result=`: success, exit-code, ...).
    pub fn result(&self, unit: &str) -> String {
        self.systemctl(&["show", "-p", "Result", "--value", unit])
            .trim()
            .to_owned()
    }

    /// Queued and running jobs: proof that a command changed nothing (or something).
    pub fn jobs(&self) -> String {
        self.systemctl(&["list-jobs", "--no-legend", "--no-pager"])
    }

    /// The number of times systemd has started the unit (`NRestarts` does not count manual
    /// starts; the counting units append a line on every start instead).
    pub fn starts(&self, unit: &str) -> usize {
        self.read(&format!("/run/fm-test/{unit}.starts"))
            .lines()
            .count()
    }

    /// Polls until `unit`'s state is `state` (or, with `!state`, is anything but `state`);
    /// returns whether it got there within `timeout`.
    pub fn wait_state(&self, unit: &str, state: &str, timeout: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        let reached = |s: String| match state.strip_prefix('!') {
            Some(not) => s != not,
            None => s == state,
        };
        loop {
            if reached(self.state(unit)) {
                return true;
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Polls until `inside` exists, and panics if it does not within `timeout`: the handshake
    /// with a helper that creates it once it is ready (holds a lock, has started), instead of a
    /// guess at how long that takes.
    pub fn wait_for_file(&self, inside: &str, timeout: std::time::Duration) {
        let end = std::time::Instant::now() + timeout;
        while !self.path(inside).exists() {
            assert!(
                std::time::Instant::now() < end,
                "{inside} did not appear within {timeout:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn install_unit(&self, name: &str, body: &str) {
        // Where `make install` puts units (PREFIX=/usr/local), leaving /etc free for mask/enable.
        self.write(&format!("/usr/local/lib/systemd/system/{name}"), body);
    }

    /// Joins this sandbox to `other` with a veth pair: `ifname`/`addr` (CIDR) here,
    /// `other_ifname`/`other_addr` there, both up. The pair lives only in the two sandboxes'
    /// network namespaces and disappears with them. Cut it with `ip link set IF down` inside.
    pub fn link(
        &self,
        ifname: &str,
        addr: &str,
        other: &Sandbox,
        other_ifname: &str,
        other_addr: &str,
    ) {
        let out = Command::new(SCRIPT)
            .args([
                "link",
                &self.pid.to_string(),
                ifname,
                addr,
                &other.pid.to_string(),
                other_ifname,
                other_addr,
            ])
            .output()
            .expect("cannot run tests/sandbox.sh link");
        assert!(
            out.status.success(),
            "sandbox.sh link failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn daemon_reload(&self) {
        self.systemctl(&["daemon-reload"]);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let status = Command::new(SCRIPT)
            .args(["down", &self.pid.to_string(), &self.cgroup])
            .status();
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
        if !matches!(status, Ok(s) if s.success()) && !std::thread::panicking() {
            panic!("sandbox teardown failed for {}", self.cgroup);
        }
    }
}
