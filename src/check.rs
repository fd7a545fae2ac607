//! The primary check: run the configured command, map its exit to a role. Anything but a
//! configured exit code is `Unknown`, and an unknown role is never acted on.

use std::time::Duration;

use crate::config::CheckConfig;
use crate::domain::Role;
pub use crate::process::Exit;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub role: Role,
    pub exit_code: Exit,
    pub duration: Duration,
    /// The last lines the check printed (stdout and stderr interleaved).
    pub output: Vec<String>,
}

/// Maps an exit to a role: pure, so the rule is tested apart from processes.
pub fn role_for(exit: &Exit, cfg: &CheckConfig) -> Role {
    match exit {
        Exit::Code(c) if cfg.primary_exit_codes.contains(c) => Role::Primary,
        Exit::Code(c) if cfg.standby_exit_codes.contains(c) => Role::Standby,
        _ => Role::Unknown,
    }
}

pub fn run(cfg: &CheckConfig) -> CheckResult {
    let crate::process::Finished {
        exit,
        output,
        duration,
    } = crate::process::run(&cfg.command, cfg.timeout, &[]);
    let role = role_for(&exit, cfg);
    log::debug!("check {:?} {exit} after {duration:?}: {role}", cfg.command);
    CheckResult {
        role,
        exit_code: exit,
        duration,
        output,
    }
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
            confirm: 1,
            confirm_interval: Duration::from_secs(1),
            fence_after: None,
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
}
