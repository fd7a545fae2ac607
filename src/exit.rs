//! Every exit status the tool can end with, and the one place results become numbers.

use crate::config::ConfigError;
use crate::lock::LockError;
use crate::maintenance::PauseError;
use crate::security::SecurityError;
use crate::systemd::SystemdError;

/// How a command ended when nothing went wrong with the tool itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reconcile reached the desired state, had nothing to do, or was told to do nothing
    /// (paused, or a check that did not confirm a change).
    Converged,
    /// Reconcile could not reach it, or a hook failed.
    Failed,
    /// The check could not tell the role; nothing was changed.
    RoleUnknown,
    InSync,
    Drift,
    Valid,
    /// `validate` found only warnings.
    Warnings,
    /// `validate` found errors on the host.
    Invalid,
    /// `status`: every host in step with the key.
    Healthy,
    /// `status`: something for a person to look at, or etcd could not be read.
    Degraded,
    /// `promote --no-wait`: not safe yet; the countdown runs in etcd.
    NotYet,
}

/// What stopped a command: each maps to an exit code below.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Insecure(#[from] SecurityError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("maintenance mode: {0}")]
    Pause(#[from] PauseError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Fence(#[from] crate::secure_fs::FsError),
    /// Not a reader that has gone (EPIPE): that only ends the output (`output::write_out`).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The config cannot serve this command (`watch` without `check.etcd`), or what it names
    /// cannot be used (an unreadable credentials or TLS file).
    #[error("{0}")]
    Setup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Converged, nothing to do, in sync, or valid.
    Success,
    /// Reconciliation failed (a unit did not reach its state, systemd unreachable), or `diff`
    /// found drift.
    Failure,
    /// Bad command line (clap's convention).
    Usage,
    /// The check could not tell the role: nothing was changed.
    RoleUnknown,
    /// Not now, try again later (EX_TEMPFAIL): another run held the lock for all of
    /// `--lock-wait` (this run was skipped), or `promote --no-wait` before it is safe.
    Locked,
    /// The config is invalid (EX_CONFIG from sysexits.h).
    ConfigInvalid,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::RoleUnknown => 3,
            ExitCode::Locked => 75,
            ExitCode::ConfigInvalid => 78,
        }
    }

    pub fn of(result: &Result<Status, Error>) -> ExitCode {
        match result {
            Ok(Status::Converged | Status::InSync | Status::Valid | Status::Healthy) => {
                ExitCode::Success
            }
            Ok(Status::Failed | Status::Drift | Status::Warnings | Status::Degraded) => {
                ExitCode::Failure
            }
            Ok(Status::RoleUnknown) => ExitCode::RoleUnknown,
            Ok(Status::NotYet) => ExitCode::Locked,
            Ok(Status::Invalid) => ExitCode::ConfigInvalid,
            Err(e) => ExitCode::of_error(e),
        }
    }

    /// The exit code of a command that stopped on `e`.
    pub fn of_error(e: &Error) -> ExitCode {
        match e {
            Error::Config(_) | Error::Insecure(_) | Error::Setup(_) => ExitCode::ConfigInvalid,
            Error::Lock(LockError::Busy { .. }) => ExitCode::Locked,
            Error::Lock(_)
            | Error::Pause(_)
            | Error::Systemd(_)
            | Error::Output(_)
            | Error::Fence(_) => ExitCode::Failure,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_documented_ones() {
        let cases = [
            (Ok(Status::Converged), 0),
            (Ok(Status::InSync), 0),
            (Ok(Status::Valid), 0),
            (Ok(Status::Failed), 1),
            (Ok(Status::Drift), 1),
            (Ok(Status::RoleUnknown), 3),
            (Ok(Status::Warnings), 1),
            (Ok(Status::Invalid), 78),
            (
                Err(Error::Lock(LockError::Busy {
                    path: "l".into(),
                    holder: "pid 1".into(),
                    waited: std::time::Duration::ZERO,
                })),
                75,
            ),
            (
                Err(Error::Lock(LockError::Interrupted { path: "l".into() })),
                1,
            ),
            (
                Err(Error::Lock(LockError::Stuck {
                    path: "l".into(),
                    holder: "pid 1".into(),
                    held_for: std::time::Duration::from_secs(3600),
                })),
                1,
            ),
            (
                Err(Error::Config(ConfigError::NotText { path: "x".into() })),
                78,
            ),
            (
                Err(Error::Systemd(SystemdError::Connect(
                    "/run/systemd/private: No such file or directory".into(),
                ))),
                1,
            ),
        ];
        for (result, code) in cases {
            assert_eq!(ExitCode::of(&result).code(), code, "{result:?}");
        }
        assert_eq!(ExitCode::Usage.code(), 2);
    }
}
