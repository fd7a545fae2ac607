//! The primary check: where the role comes from. A configured command (its exit code maps to
//! a role; anything but a configured code is `Unknown`), or the etcd witness (`witness`). An
//! unknown role is never acted on.

use crate::interrupt::Time;
use std::time::{Duration, Instant};

use crate::clock::{self, Stamp};
use crate::config::{CheckConfig, Source};
use crate::domain::Role;
use crate::election::Me;
pub use crate::process::Exit;
use crate::witness;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub role: Role,
    pub answer: Answer,
    pub duration: Duration,
    /// The last lines the check printed (stdout and stderr interleaved).
    pub output: Vec<String>,
    /// When the check began asking (for etcd: when the deciding request was sent). A role is
    /// trusted from here, not from when the answer came.
    pub sent: Stamp,
}

/// What the source said.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Exit(Exit),
    Etcd(witness::Answer),
}

impl CheckResult {
    /// The command's exit code, when it exited.
    pub fn exit_code(&self) -> Option<i32> {
        match &self.answer {
            Answer::Exit(Exit::Code(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn etcd(&self) -> Option<&witness::Answer> {
        match &self.answer {
            Answer::Etcd(a) => Some(a),
            Answer::Exit(_) => None,
        }
    }
}

/// What a run allows the check to do beyond reading.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// This host's site (`site:`).
    pub site: Option<&'a str>,
    /// Renew a lease this site holds: a reconcile, paused or not (see `election::Me`).
    pub renew: bool,
    /// Take the role when nobody holds it: a reconcile that is not paused.
    pub take: bool,
}

/// Maps an exit to a role: pure, so the rule is tested apart from processes.
pub fn role_for(exit: &Exit, cfg: &CheckConfig) -> Role {
    match exit {
        Exit::Code(c) if cfg.primary_exit_codes.contains(c) => Role::Primary,
        Exit::Code(c) if cfg.standby_exit_codes.contains(c) => Role::Standby,
        _ => Role::Unknown,
    }
}

/// The check. `client`: the run's etcd client (or why it could not be made), for `check.etcd`.
pub fn run(
    cfg: &CheckConfig,
    ctx: &Context,
    time: &dyn Time,
    client: Option<Result<&crate::etcd::Client, String>>,
) -> CheckResult {
    match &cfg.source {
        Source::Command(argv) => run_command(cfg, argv, time),
        Source::Etcd(etcd) => {
            let started = Instant::now();
            let me = Me {
                site: ctx.site.unwrap_or_default(),
                automatic: etcd.automatic(),
                candidate: etcd.candidate,
                renew: ctx.renew,
                take: ctx.take,
                min_ttl: i64::try_from(etcd.min_lease_ttl.as_secs()).unwrap_or(i64::MAX),
            };
            let gate = || match &etcd.before_acquire {
                None => Ok(()),
                Some(argv) => gate(
                    argv,
                    cfg.timeout,
                    &[
                        ("FAILOVER_MANAGER_SITE", me.site),
                        ("FAILOVER_MANAGER_ETCD_KEY", &etcd.key),
                    ],
                    time,
                ),
            };
            let client = client.unwrap_or_else(|| Err("no etcd client".into()));
            let a = witness::ask(etcd, client, &me, cfg.timeout, &gate);
            log::debug!("etcd {} via {}: {:?}", a.key, a.endpoint, a.verdict);
            CheckResult {
                role: a.verdict.role,
                duration: started.elapsed(),
                output: Vec::new(),
                sent: a.sent.clone(),
                answer: Answer::Etcd(a),
            }
        }
    }
}

fn run_command(cfg: &CheckConfig, argv: &[String], time: &dyn Time) -> CheckResult {
    let sent = clock::now();
    let crate::process::Finished {
        exit,
        output,
        duration,
    } = crate::process::run(argv, cfg.timeout, &[], time);
    let role = role_for(&exit, cfg);
    log::debug!("check {argv:?} {exit} after {duration:?}: {role}");
    CheckResult {
        role,
        answer: Answer::Exit(exit),
        duration,
        output,
        sent,
    }
}

/// `before_acquire`: exit 0 lets this host take the role; anything else says why not.
fn gate(
    argv: &[String],
    timeout: Duration,
    env: &[(&str, &str)],
    time: &dyn Time,
) -> Result<(), String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let f = crate::process::run(argv, timeout, &env, time);
    let program = argv.first().map_or("", String::as_str);
    match f.exit {
        Exit::Code(0) => Ok(()),
        other => Err(match f.output.last() {
            Some(line) => format!("{program} {other}: {line}"),
            None => format!("{program} {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context = Context {
        site: None,
        renew: true,
        take: true,
    };

    fn cfg(argv: &[&str], timeout_ms: u64) -> CheckConfig {
        CheckConfig {
            source: Source::Command(argv.iter().map(|s| s.to_string()).collect()),
            timeout: Duration::from_millis(timeout_ms),
            primary_exit_codes: vec![0],
            standby_exit_codes: vec![1, 7],
            confirm: 1,
            confirm_interval: Duration::from_secs(1),
            fence_after: None,
        }
    }

    fn run_at(c: &CheckConfig) -> CheckResult {
        run(c, &CTX, &crate::interrupt::Real, None)
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
        assert_eq!(run_at(&cfg(&["true"], 5000)).role, Role::Primary);
        assert_eq!(run_at(&cfg(&["false"], 5000)).role, Role::Standby);
        let r = run_at(&cfg(&["sh", "-c", "echo out; echo err >&2; exit 2"], 5000));
        assert_eq!(r.answer, Answer::Exit(Exit::Code(2)));
        assert_eq!(r.role, Role::Unknown);
        assert_eq!(r.output, ["out", "err"]);
    }

    #[test]
    fn missing_program_is_unknown() {
        let r = run_at(&cfg(&["/nonexistent/amIthePrimary"], 5000));
        assert!(
            matches!(r.answer, Answer::Exit(Exit::SpawnFailed(_))),
            "{r:?}"
        );
        assert_eq!(r.role, Role::Unknown);
    }

    #[test]
    fn signal_is_unknown() {
        let r = run_at(&cfg(&["sh", "-c", "kill -9 $$"], 5000));
        assert_eq!(r.answer, Answer::Exit(Exit::Signal(9)));
        assert_eq!(r.role, Role::Unknown);
    }
}
