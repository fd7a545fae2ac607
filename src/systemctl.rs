//! The only module that talks to systemd. Every call is an argv vector with unit names after
//! `--`; the parsing of what systemctl prints is pure and tested on its own.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A unit's `ActiveState` as `systemctl is-active` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Maintenance,
    Refreshing,
    /// Anything this version does not know; never guessed into one of the above.
    Other(String),
}

impl UnitState {
    pub fn parse(s: &str) -> UnitState {
        match s.trim() {
            "active" => UnitState::Active,
            "reloading" => UnitState::Reloading,
            "inactive" => UnitState::Inactive,
            "failed" => UnitState::Failed,
            "activating" => UnitState::Activating,
            "deactivating" => UnitState::Deactivating,
            "maintenance" => UnitState::Maintenance,
            "refreshing" => UnitState::Refreshing,
            other => UnitState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            UnitState::Active => "active",
            UnitState::Reloading => "reloading",
            UnitState::Inactive => "inactive",
            UnitState::Failed => "failed",
            UnitState::Activating => "activating",
            UnitState::Deactivating => "deactivating",
            UnitState::Maintenance => "maintenance",
            UnitState::Refreshing => "refreshing",
            UnitState::Other(s) => s,
        }
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for UnitState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SystemctlError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`systemctl is-active` printed {got} states for {expected} units (is systemd reachable?){}", stderr_suffix(.stderr))]
    StateCount {
        expected: usize,
        got: usize,
        stderr: String,
    },
    #[error("`systemctl show {unit}` printed nothing (is systemd reachable?){}", stderr_suffix(.stderr))]
    Show { unit: String, stderr: String },
    #[error("`systemctl {verb} {unit}` failed: {}", .stderr.trim())]
    Job {
        verb: &'static str,
        unit: String,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim().replace('\n', "; ");
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// Parses the output of `systemctl is-active -- u1 u2 …`: one state per line, in argument order.
/// The exit code is useless for several units (0 if any is active), so only lines count.
pub fn parse_is_active(stdout: &str, expected: usize) -> Option<Vec<UnitState>> {
    let states: Vec<UnitState> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(UnitState::parse)
        .collect();
    (states.len() == expected).then_some(states)
}

/// What systemd knows of why a unit is where it is: `systemctl show` properties.
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
    /// Changes on every start of the unit: a restart between two polls shows here.
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

/// The properties `details` asks for; one `systemctl show` of one unit costs about as much
/// as one `is-active` (measured: ~7 ms each), and it also tells whether a job is pending.
pub const DETAIL_PROPERTIES: &str = "LoadState,ActiveState,SubState,Result,ExecMainStatus,\
     UnitFileState,Job,ConditionResult,InvocationID,NRestarts";

pub fn parse_show(stdout: &str) -> UnitDetails {
    let mut d = UnitDetails::default();
    for line in stdout.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.to_owned();
        match k {
            "LoadState" => d.load_state = v,
            "ActiveState" => d.active_state = UnitState::parse(&v),
            "SubState" => d.sub_state = v,
            "Result" => d.result = v,
            "ExecMainStatus" => d.exec_main_status = v,
            "UnitFileState" => d.unit_file_state = v,
            // `Job=` is empty when no job is queued, else the job's id.
            "Job" => d.job_pending = !v.trim().is_empty() && v.trim() != "0",
            "ConditionResult" => d.condition_result = v,
            "InvocationID" => d.invocation_id = v,
            "NRestarts" => d.n_restarts = v,
            _ => {}
        }
    }
    d
}

/// Parses `systemctl show` of several units: one block per unit, separated by blank lines, in
/// argument order.
pub fn parse_show_many(stdout: &str, expected: usize) -> Option<Vec<UnitDetails>> {
    let blocks: Vec<UnitDetails> = stdout
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(parse_show)
        .collect();
    (blocks.len() == expected).then_some(blocks)
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

/// Everything the reconciler needs from systemd. A trait so the apply loop's ordering and
/// timeouts can be unit-tested; the integration tests run the real implementation.
pub trait Manager {
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemctlError>;
    /// Queues a start or stop job without waiting for it (`--no-block`): waiting is ours to do,
    /// with our own timeout, because `systemctl start` blocks for as long as the unit's own.
    fn enqueue(&self, verb: Verb, unit: &str) -> Result<(), SystemctlError> {
        self.enqueue_many(verb, &[unit])
    }
    /// One batched `systemctl start|stop --no-block -- u1 u2 …` (for `parallel: true`).
    fn enqueue_many(&self, verb: Verb, units: &[&str]) -> Result<(), SystemctlError>;
    /// What systemd says of each unit (`systemctl show`), in one call: for verification
    /// and `validate`.
    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemctlError>;
    /// One property's value (`systemctl show -p P --value`), for `validate`.
    fn property(&self, unit: &str, property: &str) -> Result<String, SystemctlError>;
    fn journal_tail(
        &self,
        unit: &str,
        since: Option<std::time::SystemTime>,
        lines: usize,
    ) -> Vec<String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
        }
    }
}

/// The real thing: `systemctl` and `journalctl` from PATH.
#[derive(Debug, Default)]
pub struct Systemctl;

fn run(program: &str, args: &[&str]) -> Result<std::process::Output, SystemctlError> {
    let started = Instant::now();
    let out = duct::cmd(program, args)
        .unchecked()
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .run()
        .map_err(|source| SystemctlError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    log::debug!(
        "ran {program} {} in {:?}: {}",
        args.join(" "),
        started.elapsed(),
        out.status
    );
    Ok(out)
}

impl Manager for Systemctl {
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemctlError> {
        let mut args = vec!["is-active", "--"];
        args.extend_from_slice(units);
        let out = run("systemctl", &args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        parse_is_active(&stdout, units.len()).ok_or_else(|| SystemctlError::StateCount {
            expected: units.len(),
            got: stdout.lines().filter(|l| !l.trim().is_empty()).count(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn enqueue_many(&self, verb: Verb, units: &[&str]) -> Result<(), SystemctlError> {
        let mut args = vec![verb.as_str(), "--no-block", "--"];
        args.extend_from_slice(units);
        let out = run("systemctl", &args)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(SystemctlError::Job {
                verb: verb.as_str(),
                unit: units.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemctlError> {
        let mut args = vec!["show", "--property", DETAIL_PROPERTIES, "--"];
        args.extend_from_slice(units);
        let out = run("systemctl", &args)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        parse_show_many(&stdout, units.len()).ok_or_else(|| SystemctlError::Show {
            unit: units.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn property(&self, unit: &str, property: &str) -> Result<String, SystemctlError> {
        let out = run(
            "systemctl",
            &["show", "--property", property, "--value", "--", unit],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn journal_tail(
        &self,
        unit: &str,
        since: Option<std::time::SystemTime>,
        lines: usize,
    ) -> Vec<String> {
        let n = lines.to_string();
        let since = since.map(journal_since);
        let mut args = vec!["--no-pager", "--quiet", "-o", "cat", "-n", &n];
        if let Some(s) = since.as_deref() {
            args.extend_from_slice(&["--since", s]);
        }
        args.extend_from_slice(&["-u", unit]);
        match run("journalctl", &args) {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
            Err(e) => {
                log::debug!("{e}");
                Vec::new()
            }
        }
    }
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
    fn is_active_output_is_one_line_per_unit_in_order() {
        let got = parse_is_active("active\ninactive\nfailed\nactivating\n", 4);
        assert_eq!(
            got,
            Some(vec![
                UnitState::Active,
                UnitState::Inactive,
                UnitState::Failed,
                UnitState::Activating
            ])
        );
    }

    #[test]
    fn is_active_wrong_count_is_an_error_not_a_guess() {
        // What systemctl prints when it cannot reach the manager: nothing on stdout.
        assert_eq!(parse_is_active("", 2), None);
        assert_eq!(parse_is_active("active\n", 2), None);
        assert_eq!(parse_is_active("active\nactive\nactive\n", 2), None);
    }

    #[test]
    fn show_many_splits_blocks_in_order() {
        let d = parse_show_many(
            "LoadState=loaded\nUnitFileState=enabled\n\nLoadState=not-found\nUnitFileState=\n",
            2,
        );
        let d = d.unwrap_or_default();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].unit_file_state, "enabled");
        assert_eq!(d[1].load_state, "not-found");
        assert!(parse_show_many("", 1).is_none());
    }

    #[test]
    fn show_and_cause() {
        let d = parse_show(
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainStatus=3\nUnitFileState=disabled\nJob=\nJunk\n",
        );
        assert_eq!(d.result, "exit-code");
        assert_eq!(d.active_state, UnitState::Failed);
        assert!(!d.job_pending);
        assert!(parse_show("Job=28\n").job_pending);
        assert_eq!(d.cause(), "result exit-code, exit status 3");
        let nf = parse_show("LoadState=not-found\nActiveState=inactive\n");
        assert_eq!(nf.cause(), "unit not-found");
        let ok = parse_show(
            "LoadState=loaded\nActiveState=activating\nSubState=start\nResult=success\nExecMainStatus=0\n",
        );
        assert_eq!(ok.cause(), "", "nothing to add to the state");
    }
}
