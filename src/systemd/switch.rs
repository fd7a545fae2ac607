//! The dead man's switch (`deadline`), held by systemd: a transient timer and service made
//! with `StartTransientUnit`, restarted at every arming, stopped when disarmed, and those of
//! an earlier config retired. Separate because it is the one place that creates units
//! rather than starting and stopping the configured ones.

use std::time::Duration;

use super::names::{MANAGER, MANAGER_PATH};
use super::{Systemd, SystemdError};
use crate::sdbus::{Arg, Value};

/// systemd's answer for a unit it does not have.
fn no_such_unit(e: &SystemdError) -> bool {
    matches!(e, SystemdError::Call { error, .. }
        if error.contains("not found") || error.contains("not loaded") || error.contains("NoSuchUnit"))
}

/// The dead man's switch (`deadline`), held by systemd.
impl Systemd {
    /// Restarts the switch's timer, which counts `OnActiveSec=` from then; creates the timer
    /// and its service when systemd does not have them (the first arming, after a fence, after
    /// a reboot, or a config that changed what the switch does).
    pub fn arm(&self, spec: &crate::deadline::Spec) -> Result<(), SystemdError> {
        let restart = self.with_conn("RestartUnit", &spec.timer, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "RestartUnit",
                &[Arg::Str(&spec.timer), Arg::Str("replace")],
            )
            .map(|_| ())
        });
        match restart {
            Err(e) if no_such_unit(&e) => self.create_switch(spec),
            other => other,
        }
    }

    fn create_switch(&self, spec: &crate::deadline::Spec) -> Result<(), SystemdError> {
        let usec = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let argv: Vec<&str> = spec.exec.iter().map(String::as_str).collect();
        let program = argv.first().copied().unwrap_or(crate::deadline::SYSTEMCTL);
        // A service that failed once (its stop job canceled by a run's start) must not stay
        // loaded, or this name could never be created again.
        let _ = self.with_conn("ResetFailedUnit", &spec.service, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "ResetFailedUnit",
                &[Arg::Str(&spec.service)],
            )
            .map(|_| ())
        });
        let timer = [
            ("Description", Value::Str(&spec.description)),
            ("CollectMode", Value::Str("inactive-or-failed")),
            ("OnActiveSec", Value::U64(usec(spec.fire_after))),
            // The default accuracy is a minute.
            ("AccuracyUSec", Value::U64(1_000)),
            ("RandomizedDelayUSec", Value::U64(0)),
        ];
        let service = [
            ("Description", Value::Str(&spec.description)),
            ("Type", Value::Str("oneshot")),
            ("CollectMode", Value::Str("inactive-or-failed")),
            ("ExecStart", Value::Exec(program, &argv)),
        ];
        self.with_conn("StartTransientUnit", &spec.timer, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "StartTransientUnit",
                &[
                    Arg::Str(&spec.timer),
                    Arg::Str("fail"),
                    Arg::Props(&timer),
                    Arg::Units(&[(&spec.service, &service)]),
                ],
            )
            .map(|_| ())
        })?;
        // A switch of an earlier config would fire on its own schedule: retire it.
        let pattern = "failover-manager-deadline-*.timer";
        let old = self.with_conn("ListUnitsByPatterns", pattern, |c| c.names_like(pattern))?;
        for name in old.iter().filter(|n| **n != spec.timer) {
            log::info!("retiring the dead man's switch of an earlier config: {name}");
            self.stop_now(name)?;
        }
        Ok(())
    }

    /// Stops the switch (a confirmed standby); whether there was one to stop.
    pub fn disarm(&self, spec: &crate::deadline::Spec) -> Result<bool, SystemdError> {
        match self.stop_now(&spec.timer) {
            Ok(()) => Ok(true),
            Err(e) if no_such_unit(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn stop_now(&self, unit: &str) -> Result<(), SystemdError> {
        self.with_conn("StopUnit", unit, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "StopUnit",
                &[Arg::Str(unit), Arg::Str("replace")],
            )
            .map(|_| ())
        })
    }
}
