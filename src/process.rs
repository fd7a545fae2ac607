//! Runs a configured command (the check, a hook) safely: argv only, its own process group,
//! a timeout, bounded output, and no process of it left behind.

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::interrupt::Time;
use crate::sys::{ProcessGroup, Signal, signal_group};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub exit: Exit,
    /// The last lines it printed (stdout and stderr interleaved).
    pub output: Vec<String>,
    pub duration: Duration,
}

/// How much of the check's output is kept: enough for a message, bounded for a check gone mad.
const TAIL_BYTES: usize = 16 * 1024;
const TAIL_LINES: usize = 10;
/// After SIGTERM to the check's process group, how long before SIGKILL.
const KILL_GRACE: Duration = Duration::from_millis(500);

pub fn run(
    argv: &[String],
    timeout: Duration,
    env: &[(String, String)],
    time: &dyn Time,
) -> Finished {
    let started = time.now();
    let (exit, output) = run_command(argv, timeout, env, time);
    Finished {
        exit,
        output,
        duration: time.now().saturating_duration_since(started),
    }
}

/// Runs argv in its own process group with stdout+stderr on one pipe whose tail is kept.
/// On timeout or interrupt the whole group is killed, so no process of the check outlives us.
fn run_command(
    argv: &[String],
    timeout: Duration,
    env: &[(String, String)],
    time: &dyn Time,
) -> (Exit, Vec<String>) {
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
        let mut expr = duct::cmd(program, args).stdin_null();
        for (k, v) in env {
            expr = expr.env(k, v);
        }
        let expr = expr
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

    let deadline = time.now() + timeout;
    let exit = loop {
        // Blocks until the child exits or the slice ends: no latency added to a quick check,
        // and an interrupt is still noticed within the slice.
        let slice = deadline
            .saturating_duration_since(time.now())
            .min(Duration::from_millis(20));
        match handle.wait_timeout(slice) {
            Ok(Some(out)) => break exit_of(&out.status),
            Ok(None) => {}
            Err(e) => break Exit::SpawnFailed(format!("wait: {e}")),
        }
        if time.interrupted() {
            kill_group(pgid, &handle);
            break Exit::Interrupted;
        }
        if time.now() >= deadline {
            kill_group(pgid, &handle);
            break Exit::TimedOut;
        }
    };
    // Whatever the check left running in its group (a backgrounded helper) goes with it.
    if let Some(group) = pgid.and_then(ProcessGroup::led_by) {
        signal_group(group, Signal::Kill);
    }
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

/// SIGTERM to the group, then SIGKILL if the leader has not gone after a short grace.
fn kill_group(pgid: Option<u32>, handle: &duct::Handle) {
    // The check's own group (process_group(0) at spawn), never ours.
    let group = pgid.and_then(ProcessGroup::led_by);
    let signal = |s| group.into_iter().for_each(|g| signal_group(g, s));
    signal(Signal::Term);
    let grace = Instant::now() + KILL_GRACE;
    while Instant::now() < grace {
        if matches!(handle.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(Signal::Kill);
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

    fn run_sh(script: &str, timeout_ms: u64) -> Finished {
        let argv = ["sh".to_string(), "-c".to_string(), script.to_string()];
        run(
            &argv,
            Duration::from_millis(timeout_ms),
            &[],
            &crate::interrupt::Real,
        )
    }

    #[test]
    fn environment_reaches_the_command() {
        let argv = [
            "sh".to_string(),
            "-c".to_string(),
            "echo \"$FM_X\"".to_string(),
        ];
        let f = run(
            &argv,
            Duration::from_secs(5),
            &[("FM_X".into(), "hello".into())],
            &crate::interrupt::Real,
        );
        assert_eq!(f.exit, Exit::Code(0));
        assert_eq!(f.output, ["hello"]);
    }

    #[test]
    fn timeout_kills_the_whole_group_including_pipe_holding_grandchildren() {
        let marker = format!("fm-check-test-{}", std::process::id());
        // The grandchild holds the output pipe and ignores SIGTERM: only SIGKILL to the group ends it.
        let script = format!("(trap '' TERM; exec -a {marker} sleep 30) & sleep 30");
        let started = Instant::now();
        let r = run_sh(&script, 300);
        let took = started.elapsed();
        assert_eq!(r.exit, Exit::TimedOut);
        assert!(took < Duration::from_secs(3), "took {took:?}");
        assert!(gone(&marker), "a process of the check outlived it");
    }

    #[test]
    fn background_leftovers_are_killed_after_a_normal_exit() {
        let marker = format!("fm-check-left-{}", std::process::id());
        let script = format!("(exec -a {marker} sleep 30) >/dev/null 2>&1 & exit 0");
        let r = run_sh(&script, 5000);
        assert_eq!(r.exit, Exit::Code(0));
        assert!(gone(&marker), "a process of the check outlived it");
    }

    #[test]
    fn megabytes_of_output_keep_only_the_tail() {
        let r = run_sh("yes line | head -n 500000; echo last; exit 1", 10000);
        assert_eq!(r.exit, Exit::Code(1));
        assert_eq!(r.output.len(), TAIL_LINES);
        assert_eq!(r.output.last().map(String::as_str), Some("last"));
    }

    /// Whether no process is named `marker` within 2 s: the group was sent SIGKILL, which the
    /// kernel delivers at once but not synchronously.
    fn gone(marker: &str) -> bool {
        let end = Instant::now() + Duration::from_secs(2);
        while process_named(marker) {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
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
