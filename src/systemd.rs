//! The only module that talks to systemd. It speaks D-Bus the way systemctl does (through
//! sd-bus, `sdbus.rs`): as root over systemd's private socket, so it works while dbus-daemon
//! is down, else over the system bus. One connection per run, made at the first question.
//!
//! - All states in one round trip: `ListUnitsByNames`. The state strings are systemd's
//!   `ActiveState`, exactly what `systemctl is-active` prints, so every decision can be
//!   reproduced with systemctl.
//! - Jobs are queued with `StartUnit`/`StopUnit` (mode `replace`) and awaited through
//!   systemd's `JobRemoved` signal, watched for before the first job is queued (an instant
//!   job's signal would otherwise be lost); unit changes arrive as `PropertiesChanged`.
//! - A dropped connection (`systemctl daemon-reexec`, which a systemd upgrade runs) is made
//!   again, and the caller is told that it may have missed signals.
//!
//! journalctl stays a process: it is read only for failure reports.
//!
//! This file holds what the rest of the crate uses: [`SystemdError`], [`UnitDetails`],
//! [`Event`], the [`Manager`] trait and [`journal_since`]. The real manager, [`Systemd`], is
//! in [`manager`], over one connection of [`conn`]; systemd's D-Bus names and their escaping
//! are in [`names`], the dead man's switch's transient units in [`switch`], and a scripted
//! systemd for unit tests in [`fake`].

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::{Action, UnitState};

mod conn;
#[cfg(test)]
pub mod fake;
mod manager;
mod names;
mod switch;

pub use manager::Systemd;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot reach systemd: {0}")]
    Connect(String),
    #[error("systemd did not answer {method}: {error}")]
    Call { method: &'static str, error: String },
    #[error(
        "systemd answered for {got} of {expected} units (ListUnitsByNames skips invalid names)"
    )]
    Count { expected: usize, got: usize },
    #[error("{verb} {unit}: {error}")]
    Job {
        verb: &'static str,
        unit: String,
        error: String,
    },
}

/// What systemd knows of a unit and of why it is where it is; the names are systemctl
/// show's properties, the values the strings it prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitDetails {
    pub load_state: String,
    pub active_state: UnitState,
    pub sub_state: String,
    pub result: String,
    pub exec_main_status: String,
    pub unit_file_state: String,
    /// A start or stop job is queued or running for the unit.
    pub job_pending: bool,
    /// `no` when a `Condition…=` was not met at the last start.
    pub condition_result: String,
    /// Changes on every start of the unit: a restart between two reads shows here.
    pub invocation_id: String,
    pub n_restarts: String,
}

impl Default for UnitDetails {
    fn default() -> Self {
        UnitDetails {
            load_state: String::new(),
            active_state: UnitState::Other(String::new()),
            sub_state: String::new(),
            result: String::new(),
            exec_main_status: String::new(),
            unit_file_state: String::new(),
            job_pending: false,
            condition_result: String::new(),
            invocation_id: String::new(),
            n_restarts: String::new(),
        }
    }
}

impl UnitDetails {
    /// A short cause for a report: "result exit-code, status 1" or "not-found".
    pub fn cause(&self) -> String {
        if self.load_state != "loaded" && !self.load_state.is_empty() {
            return format!("unit {}", self.load_state);
        }
        let mut parts = Vec::new();
        if !self.result.is_empty() && self.result != "success" {
            parts.push(format!("result {}", self.result));
        }
        if !self.exec_main_status.is_empty() && self.exec_main_status != "0" {
            parts.push(format!("exit status {}", self.exec_main_status));
        }
        parts.join(", ")
    }
}

/// `journalctl --since` for lines logged from `t` on, to the microsecond (the journal's own
/// precision): whole seconds would let in what the unit logged earlier in the same second,
/// from an earlier run. Not by invocation ID: a stop's invocation began long before the
/// step, a restart in the settle window hides the crash in the invocation before, and a
/// start that never ran (a dependency failed) has only systemd's own lines to show.
pub fn journal_since(t: std::time::SystemTime) -> String {
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!("@{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// Something systemd said while we waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job ended (`JobRemoved`): ours, or another one of a unit we wait for.
    JobRemoved {
        job: u32,
        unit: String,
        result: String,
    },
    /// A property of the unit changed (`PropertiesChanged`): worth a new read.
    Changed { unit: String },
    /// The connection was lost and made again (daemon-reexec): signals may have been missed,
    /// so every unit must be read again.
    Reconnected,
}

/// Everything the reconciler needs from systemd. A trait so the apply loop's ordering and
/// timeouts can be unit-tested; the integration tests run the real implementation.
pub trait Manager {
    /// Each unit's state, as `systemctl is-active` prints it, in one round trip.
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemdError>;
    /// Verification's read, in one round trip: load state, state, sub-state and whether a job
    /// is pending; with `identity[i]`, also the unit's InvocationID and NRestarts.
    fn observe(&self, units: &[&str], identity: &[bool]) -> Result<Vec<UnitDetails>, SystemdError>;
    /// Everything a report or `validate` shows of each unit.
    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemdError>;
    /// One property as `systemctl show -p P --value` prints it (LoadState, TimeoutStartUSec).
    fn property(&self, unit: &str, property: &str) -> Result<String, SystemdError>;
    /// Queues a start or stop job (mode `replace`) without waiting for it, and returns its
    /// id. The job's end is watched for before it is queued.
    fn queue(&self, action: Action, unit: &str) -> Result<u32, SystemdError>;
    /// Waits until systemd says something about one of `units` (or a job we queued), or until
    /// `until`, or an interrupt; returns what it said (nothing on a timeout).
    fn wait(&self, units: &[&str], until: Instant) -> Result<Vec<Event>, SystemdError>;
    fn journal_tail(
        &self,
        unit: &str,
        since: Option<std::time::SystemTime>,
        lines: usize,
    ) -> Vec<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_since_is_to_the_microsecond() {
        let t = std::time::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_042_999);
        assert_eq!(journal_since(t), "@1700000000.000042");
    }

    #[test]
    fn parses_every_known_state() {
        for s in [
            "active",
            "reloading",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "maintenance",
            "refreshing",
        ] {
            let st = UnitState::parse(s);
            assert!(!matches!(st, UnitState::Other(_)), "{s}");
            assert_eq!(st.as_str(), s);
        }
        assert_eq!(
            UnitState::parse("something-new"),
            UnitState::Other("something-new".into())
        );
    }

    #[test]
    fn cause() {
        let d = UnitDetails {
            load_state: "loaded".into(),
            active_state: UnitState::Failed,
            result: "exit-code".into(),
            exec_main_status: "3".into(),
            ..UnitDetails::default()
        };
        assert_eq!(d.cause(), "result exit-code, exit status 3");
        let nf = UnitDetails {
            load_state: "not-found".into(),
            ..UnitDetails::default()
        };
        assert_eq!(nf.cause(), "unit not-found");
        let ok = UnitDetails {
            load_state: "loaded".into(),
            result: "success".into(),
            exec_main_status: "0".into(),
            ..UnitDetails::default()
        };
        assert_eq!(ok.cause(), "", "nothing to add to the state");
    }
}
