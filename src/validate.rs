//! `validate` beyond the config file: what the host says about the managed units and the
//! check command. Pure: it judges details that `run` fetched with one batched call.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::config::UnitConfig;
use crate::systemd::UnitDetails;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

fn error(message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        message,
    }
}

fn warning(message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        message,
    }
}

pub fn units(units: &[UnitConfig], details: &[UnitDetails]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (u, d) in units.iter().zip(details) {
        let name = &u.name;
        match d.load_state.as_str() {
            "loaded" => {}
            "not-found" => out.push(error(format!(
                "{name}: no such unit on this host (install it on both sites)"
            ))),
            "masked" => out.push(error(format!(
                "{name}: is masked, so it can never start (systemctl unmask {name})"
            ))),
            other => out.push(error(format!(
                "{name}: systemd cannot load it ({other}); see systemctl status {name}"
            ))),
        }
        if d.unit_file_state.starts_with("masked") && d.load_state != "masked" {
            out.push(error(format!("{name}: is masked ({})", d.unit_file_state)));
        }
        if matches!(d.unit_file_state.as_str(), "enabled" | "enabled-runtime") {
            out.push(warning(format!(
                "{name}: is enabled at boot, so it starts on the standby at every reboot \
                 (fix: systemctl disable {name})"
            )));
        }
    }
    out
}

/// The longest a reconcile can legitimately take with this config: confirming checks, the
/// lock wait, every unit's verify_timeout + settle, and the slowest hook.
pub fn worst_case(config: &crate::config::Config, lock_wait: Duration) -> Duration {
    let c = &config.check;
    let checks = c.timeout * c.confirm + c.confirm_interval * (c.confirm - 1);
    let units: Duration = config
        .units
        .iter()
        .map(|u| u.verify_timeout + u.settle)
        .sum();
    let hook = config
        .hooks
        .all()
        .map(|(_, h)| h.timeout)
        .max()
        .unwrap_or_default();
    checks + lock_wait + units + hook
}

/// A warning when the service's TimeoutStartSec= (as systemd prints it: "15min",
/// "1min 30s", "infinity") is shorter than the worst case: systemd would kill a slow but
/// healthy run mid-verification.
pub fn service_timeout(worst: Duration, timeout_start: &str) -> Option<Finding> {
    let t = timeout_start.trim();
    if t.is_empty() || t == "infinity" {
        return None;
    }
    let limit = humantime::parse_duration(t).ok()?;
    (limit < worst).then(|| {
        warning(format!(
            "failover-manager.service has TimeoutStartSec={t}, but a run with this config may take up to {}: systemd would kill a slow run mid-verification (raise it with `systemctl edit failover-manager.service`)",
            humantime::format_duration(worst)
        ))
    })
}

/// A warning when the timer does not run at least twice within the dead man's switch's
/// `fire_after`: one late run would then fence a healthy primary. `period` as systemd prints
/// it ("5s", "1min"); empty when the timer has no period.
pub fn timer_period(period: &str, fire_after: Duration) -> Option<Finding> {
    let p = humantime::parse_duration(period.trim()).ok()?;
    (p * 2 > fire_after).then(|| {
        warning(format!(
            "failover-manager.timer runs every {}, but the dead man's switch stops the primary \
             units {} after the last run that confirmed primary (3/4 of check.fence_after): one \
             late run would fence a healthy primary (run the timer at least twice as often, \
             e.g. examples/etcd/failover-manager.timer.d/cadence.conf, or lengthen fence_after)",
            period.trim(),
            humantime::format_duration(fire_after)
        ))
    })
}

/// With a leased key, a primary unit must stop within its verify_timeout: the inequality
/// counts that long for the stop, but systemd takes up to TimeoutStopSec= (then kills).
/// `timeout_stop` as systemd prints it ("1min 30s", "infinity").
pub fn stop_timeout(unit: &str, timeout_stop: &str, verify_timeout: Duration) -> Option<Finding> {
    let t = timeout_stop.trim();
    let too_long =
        t == "infinity" || humantime::parse_duration(t).is_ok_and(|d| d > verify_timeout);
    too_long.then(|| {
        error(format!(
            "{unit}: TimeoutStopSec={t} is longer than its verify_timeout {}, which the lease \
             inequality counts on for stopping it: the other site could start it while it still \
             stops here (set TimeoutStopSec= to at most {} with `systemctl edit {unit}`, or raise \
             verify_timeout and lease_ttl)",
            humantime::format_duration(verify_timeout),
            humantime::format_duration(verify_timeout),
        ))
    })
}

pub fn check_command(argv: &[String]) -> Option<Finding> {
    let program = argv.first()?;
    let Some(path) = crate::security::resolve(program) else {
        return Some(error(format!(
            "check command {program:?}: not found in PATH"
        )));
    };
    match std::fs::metadata(&path) {
        Err(e) => Some(error(format!("check command {}: {e}", path.display()))),
        Ok(m) if !m.is_file() => Some(error(format!(
            "check command {}: not a file",
            path.display()
        ))),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Some(error(format!(
            "check command {}: not executable (chmod +x {})",
            path.display(),
            Path::new(&path).display()
        ))),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_primary_unit_must_stop_within_its_verify_timeout() {
        let v = Duration::from_secs(10);
        assert_eq!(stop_timeout("app.service", "10s", v), None);
        assert_eq!(stop_timeout("app.service", "5s", v), None);
        assert!(
            stop_timeout("app.service", "1min 30s", v).is_some_and(|f| f.severity
                == Severity::Error
                && f.message.starts_with(
                    "app.service: TimeoutStopSec=1min 30s is longer than its verify_timeout 10s"
                ))
        );
        assert!(stop_timeout("app.service", "infinity", v).is_some());
    }

    #[test]
    fn the_timer_must_run_twice_within_the_switch() {
        let f = Duration::from_millis(11_250);
        assert_eq!(timer_period("5s", f), None);
        assert_eq!(timer_period("", f), None);
        assert!(timer_period("10s", f).is_some_and(|w| w.severity == Severity::Warning
            && w.message.starts_with("failover-manager.timer runs every 10s, but the dead man's switch stops the primary units 11s 250ms after")));
        assert!(timer_period("1min", f).is_some());
    }
    use crate::domain::When;

    fn unit(name: &str) -> UnitConfig {
        UnitConfig::for_test(name, When::Primary)
    }

    fn details(load: &str, file: &str) -> UnitDetails {
        UnitDetails {
            load_state: load.into(),
            unit_file_state: file.into(),
            ..UnitDetails::default()
        }
    }

    #[test]
    fn unit_findings() {
        let us = [
            unit("a.service"),
            unit("b.service"),
            unit("c.service"),
            unit("d.service"),
        ];
        let ds = [
            details("loaded", "disabled"),
            details("not-found", ""),
            details("masked", "masked"),
            details("loaded", "enabled"),
        ];
        let f = units(&us, &ds);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.starts_with("b.service: no such unit"));
        assert!(f[1].message.contains("systemctl unmask c.service"));
        assert_eq!(f[2].severity, Severity::Warning);
        assert!(f[2].message.contains("systemctl disable d.service"));
    }

    #[test]
    fn service_timeout_against_the_worst_case() {
        let text = "check: {command: [x], timeout: 10s, confirm: 3, confirm_interval: 2s}\n\
                    hooks: {on_failure: {command: [y], timeout: 1m}}\n\
                    defaults: {verify_timeout: 30s, settle: 2s}\nunits: [a, b]\n";
        let c = crate::config::parse(Path::new("c.yaml"), text);
        let worst = c
            .map(|c| worst_case(&c, Duration::from_secs(30)))
            .unwrap_or_default();
        // 3×10s + 2×2s + 30s + 2×32s + 60s
        assert_eq!(worst, Duration::from_secs(188));
        assert_eq!(service_timeout(worst, "15min"), None);
        assert_eq!(service_timeout(worst, "infinity"), None);
        let f = service_timeout(worst, "1min 30s");
        assert!(f.is_some_and(|f| f.severity == Severity::Warning
            && f.message.contains("TimeoutStartSec=1min 30s")
            && f.message.contains("up to 3m 8s")));
    }

    #[test]
    fn check_command_findings() {
        assert_eq!(check_command(&["sh".into()]), None);
        assert!(
            check_command(&["/nonexistent/x".into()])
                .is_some_and(|f| f.severity == Severity::Error)
        );
        assert!(
            check_command(&["no-such-program-fm".into()])
                .is_some_and(|f| f.message.contains("not found in PATH"))
        );
        let f = std::env::temp_dir().join(format!("fm-validate-{}", std::process::id()));
        let _ = std::fs::write(&f, "#!/bin/sh\n");
        let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644));
        let finding = check_command(&[f.to_string_lossy().into_owned()]);
        let _ = std::fs::remove_file(&f);
        assert!(finding.is_some_and(|f| f.message.contains("not executable")));
    }
}
