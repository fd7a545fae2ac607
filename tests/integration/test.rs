//! A fluent builder for real-systemd tests, after just's `Test`: describe the host (units,
//! config, the check's answer, what already runs), the command, and what must hold after.
//!
//! Strict by default, as just's builder is: a run must exit 0 and print nothing on stdout or
//! stderr unless the test says otherwise (`status`, `stdout`, `stdout_has`, `any_stdout`, …),
//! so a test cannot pass by forgetting to look.

use std::process::Output;
use std::time::Duration;

use crate::sandbox::{self, Sandbox};
use crate::unit::Unit;

pub const CONFIG: &str = "/etc/failover-manager/config.yaml";
const CHECK_EXIT: &str = "/run/fm-test/check-exit";

/// What a stream must hold: exactly a text (empty unless set), these parts, or anything.
#[derive(Clone, Debug)]
enum Expect {
    Exactly(String),
    Has(Vec<String>),
    Any,
}

impl Expect {
    fn has(&mut self, part: &str) {
        match self {
            Expect::Has(parts) => parts.push(part.to_owned()),
            _ => *self = Expect::Has(vec![part.to_owned()]),
        }
    }

    #[track_caller]
    fn check(&self, stream: &str, got: &str, ctx: &str) {
        match self {
            Expect::Exactly(want) => assert_eq!(got, want, "{stream}{ctx}"),
            Expect::Has(parts) => {
                for p in parts {
                    assert!(got.contains(p.as_str()), "{stream} lacks {p:?}{ctx}");
                }
            }
            Expect::Any => {}
        }
    }
}

#[must_use = "a Test checks nothing until `run()`"]
pub struct Test {
    units: Vec<Unit>,
    config: Option<String>,
    check: Vec<String>,
    check_exit: Option<i32>,
    check_timeout: String,
    defaults: String,
    running: Vec<String>,
    before: Vec<Vec<String>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    status: i32,
    stdout: Expect,
    stderr: Expect,
    states: Vec<(String, String)>,
    starts: Vec<(String, usize)>,
    no_jobs: bool,
}

/// What a run left behind, for assertions the builder does not cover.
pub struct Ran {
    pub sandbox: Sandbox,
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl Test {
    pub fn new() -> Test {
        Test {
            units: Vec::new(),
            config: None,
            check: vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("exit $(cat {CHECK_EXIT})"),
            ],
            check_exit: None,
            check_timeout: "5s".into(),
            defaults: "{ verify_timeout: 5s, settle: 0s }".into(),
            running: Vec::new(),
            before: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            status: 0,
            stdout: Expect::Exactly(String::new()),
            stderr: Expect::Exactly(String::new()),
            states: Vec::new(),
            starts: Vec::new(),
            no_jobs: false,
        }
    }

    pub fn unit(mut self, u: Unit) -> Test {
        self.units.push(u);
        self
    }
    /// The whole config file, instead of one generated from the units.
    pub fn config(mut self, yaml: &str) -> Test {
        self.config = Some(yaml.to_owned());
        self
    }
    pub fn defaults(mut self, flow_map: &str) -> Test {
        self.defaults = flow_map.to_owned();
        self
    }
    /// The check's exit code: 0 primary, 1 standby, anything else unknown.
    pub fn check_exits(mut self, code: i32) -> Test {
        self.check_exit = Some(code);
        self
    }
    pub fn primary(self) -> Test {
        self.check_exits(0)
    }
    pub fn standby(self) -> Test {
        self.check_exits(1)
    }
    pub fn check_timeout(mut self, t: &str) -> Test {
        self.check_timeout = t.to_owned();
        self
    }
    pub fn check_command(mut self, argv: &[&str]) -> Test {
        self.check = argv.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Units started (and verified active) before the command runs.
    pub fn running(mut self, units: &[&str]) -> Test {
        self.running.extend(units.iter().map(|s| s.to_string()));
        self
    }
    /// A command run inside the sandbox after setup, before the command under test.
    pub fn before(mut self, argv: &[&str]) -> Test {
        self.before
            .push(argv.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.push((k.into(), v.into()));
        self
    }
    /// The exit status (default 0).
    pub fn status(mut self, code: i32) -> Test {
        self.status = code;
        self
    }
    /// Exactly this on stdout (default: nothing).
    pub fn stdout(mut self, s: &str) -> Test {
        self.stdout = Expect::Exactly(s.to_owned());
        self
    }
    /// stdout holds this (and may hold more).
    pub fn stdout_has(mut self, s: &str) -> Test {
        self.stdout.has(s);
        self
    }
    /// stdout is checked by the test itself, from `Ran`.
    pub fn any_stdout(mut self) -> Test {
        self.stdout = Expect::Any;
        self
    }
    /// Exactly this on stderr (default: nothing).
    pub fn stderr(mut self, s: &str) -> Test {
        self.stderr = Expect::Exactly(s.to_owned());
        self
    }
    /// stderr holds this (and may hold more).
    pub fn stderr_has(mut self, s: &str) -> Test {
        self.stderr.has(s);
        self
    }
    /// After the run, `systemctl is-active UNIT` prints `state`.
    pub fn state(mut self, unit: &str, state: &str) -> Test {
        self.states.push((unit.to_owned(), state.to_owned()));
        self
    }
    pub fn active(self, unit: &str) -> Test {
        self.state(unit, "active")
    }
    pub fn inactive(self, unit: &str) -> Test {
        self.state(unit, "inactive")
    }
    /// After the run, systemd has started UNIT exactly `n` times in all.
    pub fn starts(mut self, unit: &str, n: usize) -> Test {
        self.starts.push((unit.to_owned(), n));
        self
    }
    /// After the run, no systemd job is queued or running.
    pub fn no_jobs(mut self) -> Test {
        self.no_jobs = true;
        self
    }

    pub fn config_text(&self) -> String {
        if let Some(c) = &self.config {
            return c.clone();
        }
        let argv: Vec<String> = self.check.iter().map(|a| format!("{a:?}")).collect();
        let mut s = format!(
            "check:\n  command: [{}]\n  timeout: {}\ndefaults: {}\nunits:\n",
            argv.join(", "),
            self.check_timeout,
            self.defaults
        );
        for u in &self.units {
            s.push_str(&u.entry());
        }
        s
    }

    /// Boots a sandbox and sets the host up, without running the command. Never `None` (nor is
    /// `run`'s): without root it panics, see `sandbox::available`.
    #[must_use = "the sandbox is torn down when dropped"]
    pub fn setup(&self) -> Option<Sandbox> {
        if !sandbox::available() {
            return None;
        }
        let sb = Sandbox::boot();
        for u in &self.units {
            sb.install_unit(&u.name, &u.body);
        }
        sb.daemon_reload();
        sb.write(CONFIG, &self.config_text());
        if let Some(code) = self.check_exit {
            sb.write(CHECK_EXIT, &code.to_string());
        }
        for u in &self.running {
            sb.systemctl(&["start", "--", u]);
            assert_eq!(sb.state(u), "active", "setup: {u} did not start");
        }
        for argv in &self.before {
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            sb.ok(&argv);
        }
        Some(sb)
    }

    /// Runs the command in the sandbox and checks every expectation.
    #[track_caller]
    pub fn run(self) -> Option<Ran> {
        let sb = self.setup()?;
        let mut argv: Vec<&str> = vec![sandbox::BIN];
        argv.extend(self.args.iter().map(String::as_str));
        let mut cmd = sb.command(&argv);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out: Output = cmd.output().expect("nsenter");
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            status: out.status.code().unwrap_or(-1),
            sandbox: sb,
        };
        let ctx = format!(
            "\n--- args {:?}\n--- status {}\n--- stdout\n{}--- stderr\n{}---",
            self.args, ran.status, ran.stdout, ran.stderr
        );
        assert_eq!(ran.status, self.status, "exit status{ctx}");
        self.stdout.check("stdout", &ran.stdout, &ctx);
        self.stderr.check("stderr", &ran.stderr, &ctx);
        for (u, want) in &self.states {
            assert_eq!(&ran.sandbox.state(u), want, "state of {u}{ctx}");
        }
        for (u, n) in &self.starts {
            assert_eq!(ran.sandbox.starts(u), *n, "starts of {u}{ctx}");
        }
        if self.no_jobs {
            assert_eq!(ran.sandbox.jobs().trim(), "", "jobs after the run{ctx}");
        }
        Some(ran)
    }
}

/// One more run of the binary in a sandbox a `Test` set up, strict like the first: exit 0 and
/// nothing printed unless the test says otherwise; `check()` runs it and checks.
#[must_use = "nothing runs until `check()`"]
pub struct Again<'a> {
    ran: &'a Ran,
    args: Vec<String>,
    status: i32,
    stdout: Expect,
    stderr: Expect,
}

impl Again<'_> {
    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }
    pub fn stdout(mut self, s: &str) -> Self {
        self.stdout = Expect::Exactly(s.to_owned());
        self
    }
    pub fn stdout_has(mut self, s: &str) -> Self {
        self.stdout.has(s);
        self
    }
    /// stdout is the test's to check: `check()` returns it.
    pub fn any_stdout(mut self) -> Self {
        self.stdout = Expect::Any;
        self
    }
    pub fn stderr_has(mut self, s: &str) -> Self {
        self.stderr.has(s);
        self
    }

    /// Runs it, checks every expectation, and returns stdout.
    #[track_caller]
    pub fn check(self) -> String {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let (status, stdout, stderr) = self.ran.again(&args);
        let ctx = format!(
            "\n--- args {:?}\n--- status {status}\n--- stdout\n{stdout}--- stderr\n{stderr}---",
            self.args
        );
        assert_eq!(status, self.status, "exit status{ctx}");
        self.stdout.check("stdout", &stdout, &ctx);
        self.stderr.check("stderr", &stderr, &ctx);
        stdout
    }
}

impl Ran {
    /// One more run in the same sandbox, checked strictly (see `Again`).
    pub fn then(&self, args: &[&str]) -> Again<'_> {
        Again {
            ran: self,
            args: args.iter().map(|s| s.to_string()).collect(),
            status: 0,
            stdout: Expect::Exactly(String::new()),
            stderr: Expect::Exactly(String::new()),
        }
    }

    /// Runs the binary again in the same sandbox, for a test that looks at everything itself.
    pub fn again(&self, args: &[&str]) -> (i32, String, String) {
        let mut argv: Vec<&str> = vec![sandbox::BIN];
        argv.extend_from_slice(args);
        let out = self.sandbox.exec(&argv);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Polls until `f` holds or the timeout passes.
    pub fn eventually(&self, timeout: Duration, f: impl Fn(&Sandbox) -> bool) -> bool {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if f(&self.sandbox) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        f(&self.sandbox)
    }
}

/// The hosts most tests start from.
pub mod fixtures {
    use super::Test;
    use crate::unit::Unit;

    /// A primary unit (stopped) and a standby unit (running): a standby that may be promoted.
    pub fn host() -> Test {
        Test::new()
            .unit(Unit::simple("app.service"))
            .unit(Unit::simple("replica.service").standby())
            .running(&["replica.service"])
    }
}
