//! The primary check: run the configured command, map its exit to a role. Anything but a
//! configured exit code is `Unknown`, and an unknown role is never acted on.

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::CheckConfig;
use crate::interrupt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
    Unknown,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Unknown => "unknown",
        })
    }
}

/// How the check process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    SpawnFailed(String),
    Interrupted,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => f.write_str("timed out"),
            Exit::SpawnFailed(e) => write!(f, "could not be started ({e})"),
            Exit::Interrupted => f.write_str("was interrupted"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub role: Role,
    #[serde(serialize_with = "ser_exit_code")]
    pub exit_code: Exit,
    #[serde(serialize_with = "crate::report::ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// The last lines the check printed (stdout and stderr interleaved).
    pub output: Vec<String>,
}

fn ser_exit_code<S: serde::Serializer>(e: &Exit, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Exit::Code(c) => s.serialize_i32(*c),
        _ => s.serialize_none(),
    }
}

impl CheckResult {
    /// "exited 0 in 12ms", for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} in {}",
            self.exit_code,
            crate::report::fmt_duration(self.duration)
        )
    }
}

/// Maps an exit to a role: pure, so the rule is tested apart from processes.
pub fn role_for(exit: &Exit, cfg: &CheckConfig) -> Role {
    match exit {
        Exit::Code(c) if cfg.primary_exit_codes.contains(c) => Role::Primary,
        Exit::Code(c) if cfg.standby_exit_codes.contains(c) => Role::Standby,
        _ => Role::Unknown,
    }
}

/// How much of the check's output is kept: enough for a message, bounded for a check gone mad.
const TAIL_BYTES: usize = 16 * 1024;
const TAIL_LINES: usize = 10;
/// After SIGTERM to the check's process group, how long before SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(500);

pub fn run(cfg: &CheckConfig) -> CheckResult {
    let started = Instant::now();
    let (exit, output) = run_command(&cfg.command, cfg.timeout);
    let duration = started.elapsed();
    let role = role_for(&exit, cfg);
    log::debug!("check {:?} {exit} after {duration:?}: {role}", cfg.command);
    CheckResult {
        role,
        exit_code: exit,
        duration,
        output,
    }
}

/// Runs argv in its own process group with stdout+stderr on one pipe whose tail is kept.
/// On timeout or interrupt the whole group is killed, so no process of the check outlives us.
fn run_command(argv: &[String], timeout: Duration) -> (Exit, Vec<String>) {
    let Some((program, args)) = argv.split_first() else {
        return (Exit::SpawnFailed("empty command".into()), Vec::new());
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return (Exit::SpawnFailed(format!("pipe: {e}")), Vec::new()),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return (Exit::SpawnFailed(format!("pipe: {e}")), Vec::new()),
    };
    let handle = {
        // The expression owns the pipe's write ends; dropping it at the end of this block
        // leaves them only in the child, so the reader sees EOF when the child's group is gone.
        let expr = duct::cmd(program, args)
            .stdin_null()
            .stdout_file(writer)
            .stderr_file(writer2)
            .unchecked()
            .before_spawn(|c| {
                c.process_group(0);
                Ok(())
            });
        expr.start()
    };
    let handle = match handle {
        Ok(h) => h,
        Err(e) => return (Exit::SpawnFailed(format!("{program}: {e}")), Vec::new()),
    };
    let pgid = handle.pids().first().copied();

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read_tail(reader));
    });

    let deadline = Instant::now() + timeout;
    let exit = loop {
        match handle.try_wait() {
            Ok(Some(out)) => break exit_of(&out.status),
            Ok(None) => {}
            Err(e) => break Exit::SpawnFailed(format!("wait: {e}")),
        }
        if interrupt::requested() {
            kill_group(pgid, &handle);
            break Exit::Interrupted;
        }
        if Instant::now() >= deadline {
            kill_group(pgid, &handle);
            break Exit::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever the check left running in its group (a backgrounded helper) goes with it.
    signal_group(pgid, libc::SIGKILL);
    // A process that escaped the group (setsid) may still hold the pipe: do not wait for it.
    let output = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    (exit, output)
}

fn exit_of(status: &std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::SpawnFailed(format!("unexpected status {status}")),
    }
}

fn signal_group(pgid: Option<u32>, sig: libc::c_int) {
    let Some(pgid) = pgid.and_then(|p| libc::pid_t::try_from(p).ok()) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    // The group is the check's own (process_group(0) at spawn), never ours.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// SIGTERM to the group, then SIGKILL if the leader has not gone after a short grace.
fn kill_group(pgid: Option<u32>, handle: &duct::Handle) {
    signal_group(pgid, libc::SIGTERM);
    let grace = Instant::now() + KILL_GRACE;
    while Instant::now() < grace {
        if matches!(handle.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_group(pgid, libc::SIGKILL);
    let _ = handle.wait();
}

/// Reads to EOF, keeping only the last TAIL_BYTES, and returns the last TAIL_LINES lines.
fn read_tail(mut r: impl Read) -> Vec<String> {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * TAIL_BYTES {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    last_lines(&tail, TAIL_LINES)
}

fn last_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(500).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(argv: &[&str], timeout_ms: u64) -> CheckConfig {
        CheckConfig {
            command: argv.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_millis(timeout_ms),
            primary_exit_codes: vec![0],
            standby_exit_codes: vec![1, 7],
        }
    }

    #[test]
    fn role_mapping() {
        let c = cfg(&["x"], 1000);
        assert_eq!(role_for(&Exit::Code(0), &c), Role::Primary);
        assert_eq!(role_for(&Exit::Code(1), &c), Role::Standby);
        assert_eq!(role_for(&Exit::Code(7), &c), Role::Standby);
        assert_eq!(role_for(&Exit::Code(2), &c), Role::Unknown);
        assert_eq!(role_for(&Exit::Code(255), &c), Role::Unknown);
        assert_eq!(role_for(&Exit::Signal(9), &c), Role::Unknown);
        assert_eq!(role_for(&Exit::TimedOut, &c), Role::Unknown);
        assert_eq!(role_for(&Exit::Interrupted, &c), Role::Unknown);
        assert_eq!(role_for(&Exit::SpawnFailed("x".into()), &c), Role::Unknown);
    }

    #[test]
    fn exit_codes_map_to_roles() {
        assert_eq!(run(&cfg(&["true"], 5000)).role, Role::Primary);
        assert_eq!(run(&cfg(&["false"], 5000)).role, Role::Standby);
        let r = run(&cfg(&["sh", "-c", "echo out; echo err >&2; exit 2"], 5000));
        assert_eq!(r.exit_code, Exit::Code(2));
        assert_eq!(r.role, Role::Unknown);
        assert_eq!(r.output, ["out", "err"]);
    }

    #[test]
    fn missing_program_is_unknown() {
        let r = run(&cfg(&["/nonexistent/amIthePrimary"], 5000));
        assert!(matches!(r.exit_code, Exit::SpawnFailed(_)), "{r:?}");
        assert_eq!(r.role, Role::Unknown);
    }

    #[test]
    fn signal_is_unknown() {
        let r = run(&cfg(&["sh", "-c", "kill -9 $$"], 5000));
        assert_eq!(r.exit_code, Exit::Signal(9));
        assert_eq!(r.role, Role::Unknown);
    }

    #[test]
    fn timeout_kills_the_whole_group_including_pipe_holding_grandchildren() {
        let marker = format!("fm-check-test-{}", std::process::id());
        // The grandchild holds the output pipe and ignores SIGTERM: only SIGKILL to the group ends it.
        let script = format!("(trap '' TERM; exec -a {marker} sleep 30) & sleep 30");
        let started = Instant::now();
        let r = run(&cfg(&["sh", "-c", &script], 300));
        let took = started.elapsed();
        assert_eq!(r.exit_code, Exit::TimedOut);
        assert_eq!(r.role, Role::Unknown);
        assert!(took < Duration::from_secs(3), "took {took:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !process_named(&marker),
            "a process of the check outlived it"
        );
    }

    #[test]
    fn background_leftovers_are_killed_after_a_normal_exit() {
        let marker = format!("fm-check-left-{}", std::process::id());
        let script = format!("(exec -a {marker} sleep 30) >/dev/null 2>&1 & exit 0");
        let r = run(&cfg(&["sh", "-c", &script], 5000));
        assert_eq!(r.role, Role::Primary);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !process_named(&marker),
            "a process of the check outlived it"
        );
    }

    #[test]
    fn megabytes_of_output_keep_only_the_tail() {
        let r = run(&cfg(
            &["sh", "-c", "yes line | head -n 500000; echo last; exit 1"],
            10000,
        ));
        assert_eq!(r.role, Role::Standby);
        assert_eq!(r.output.len(), TAIL_LINES);
        assert_eq!(r.output.last().map(String::as_str), Some("last"));
    }

    fn process_named(marker: &str) -> bool {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(marker))
                    .unwrap_or(false)
            })
    }
}
