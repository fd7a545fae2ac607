//! Hostile input through the real binary. On the host, without a sandbox, where nothing gets as
//! far as asking systemd or running a program (`validate --config-only`, config files that
//! cannot be read, command lines clap refuses); in a sandbox for a unit type the grammar admits.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, TestRunner};

use crate::test::Test;
use crate::unit::Unit;

#[path = "../../src/config/inputs.rs"]
mod inputs;

const BIN: &str = env!("CARGO_BIN_EXE_failover-manager");

/// A directory of its own for each test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("fm-input-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a scratch directory");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary for at most 10 s (then kills it): exit status (None: killed or no exit) and
/// stdout + stderr. Output goes to a file, so a long message cannot fill a pipe.
fn run(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let out_path = scratch.path("output");
    let out = std::fs::File::create(&out_path).expect("cannot create the output file");
    let err = out.try_clone().expect("cannot duplicate the output file");
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("FAILOVER_MANAGER_CONFIG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("cannot run the binary");
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = std::fs::read(&out_path).unwrap_or_default();
    (status, String::from_utf8_lossy(&output).into_owned())
}

#[test]
fn bad_durations_and_metrics_paths_on_the_command_line_are_usage_errors() {
    let s = Scratch::new("args");
    // The config cannot be read: had clap accepted the option, the run would end with 78.
    for (args, why) in [
        (
            &["--lock-wait", "999999999999999s"][..],
            "is longer than 1h",
        ),
        (&["--lock-wait", "30"], "invalid duration"),
        (
            &["--metrics-file", "failover_manager.prom"],
            "is not an absolute path",
        ),
        (
            &["--metrics-file", "/var/lib/x/fm.txt"],
            "must end in .prom",
        ),
    ] {
        let mut argv = vec!["-c", "/nonexistent/config.yaml", "reconcile"];
        argv.extend_from_slice(args);
        let (status, out) = run(&s, &argv);
        assert_eq!(status, Some(2), "{argv:?}: {out}");
        assert!(out.contains(why), "{argv:?}: expected {why:?} in {out}");
    }
    let (status, out) = run(&s, &["reconcile", "--lock-wait", "1h", "--help"]);
    assert_eq!(status, Some(0), "{out}");
}

#[test]
fn a_config_path_that_is_not_a_regular_file_is_refused_at_once() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new("special");
    let fifo = s.path("config.yaml");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("a path without NUL");
    // SAFETY: a valid NUL-terminated path; mkfifo(3) only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let dir = s.0.display().to_string();
    for (path, kind) in [
        (fifo.display().to_string(), "FIFO (named pipe)"),
        (dir, "directory"),
        ("/dev/zero".to_string(), "character device"),
    ] {
        let (status, out) = run(&s, &["-c", &path, "validate", "--config-only"]);
        assert_eq!(status, Some(78), "{path}: {out}");
        let expected = format!("{path}: cannot read config: it is a {kind}, not a regular file");
        assert!(out.contains(&expected), "expected {expected:?} in {out}");
    }
}

#[test]
fn the_example_saved_with_a_byte_order_mark_is_valid() {
    let s = Scratch::new("bom");
    let file = s.path("config.yaml");
    // Without its leading comments: a mark before a key is what broke the parse.
    let body: Vec<&str> = inputs::EXAMPLE
        .lines()
        .skip_while(|l| l.is_empty() || l.starts_with('#'))
        .collect();
    assert!(body[0].starts_with("check:"));
    std::fs::write(&file, format!("\u{feff}{}\n", body.join("\n"))).expect("write");
    let path = file.display().to_string();
    let (status, out) = run(&s, &["-c", &path, "validate", "--config-only"]);
    assert_eq!(status, Some(0), "{out}");
}

/// The parser's property tests, on a sample, through the binary: exit 0 or 78, never a panic
/// (101), a hang or another status; a refusal names the file.
#[test]
fn random_and_mutated_configs_exit_0_or_78() {
    let s = Scratch::new("fuzz");
    let file = s.path("config.yaml");
    let path = file.display().to_string();
    let check = |text: &str| {
        std::fs::write(&file, text).expect("write");
        let (status, out) = run(&s, &["-c", &path, "validate", "--config-only"]);
        match status {
            Some(0) => assert!(out.ends_with("units)\n"), "{out}"),
            Some(78) => assert!(out.starts_with(&format!("error: {path}")), "{out}"),
            _ => panic!("exit {status:?} for {text:?}: {out}"),
        }
    };
    for (_, text) in inputs::hard(64 * 1024) {
        check(&text);
    }
    let mut runner = TestRunner::new(Config {
        cases: 100,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&inputs::any_text(), |text| {
        check(&text);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Slices pass the unit-name grammar, so they must work for real: stopping one (on the host
/// that must not run it) takes every unit in it down; starting one sets it up.
#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn a_slice_is_stopped_with_everything_in_it_and_started() {
    let slice = Unit {
        name: "app.slice".into(),
        body: "[Unit]\nDescription=test slice\n".into(),
        keys: Vec::new(),
    };
    let mut worker = Unit::simple("worker.service");
    worker.body.push_str("Slice=app.slice\n");
    let ran = Test::new()
        .unit(slice)
        .unit(worker)
        .config(
            "check:\n  command: [/bin/sh, -c, 'exit $(cat /run/fm-test/check-exit)']\n\
             defaults: {verify_timeout: 5s, settle: 0s}\n\
             units:\n  - name: app.slice\n    when: standby\n",
        )
        .running(&["worker.service"])
        .primary()
        .args(&["reconcile"])
        .status(0)
        .stdout_has("stopped app.slice")
        .inactive("app.slice")
        .inactive("worker.service")
        .no_jobs()
        .run();
    if let Some(r) = ran {
        r.sandbox.write("/run/fm-test/check-exit", "1");
        r.then(&["reconcile"])
            .stdout_has("started app.slice")
            .check();
        assert_eq!(r.sandbox.state("app.slice"), "active");
    }
}
