//! The dead man's switch behind `check.fence_after`: every run that confirms primary (re)arms a
//! systemd timer that stops this host's `when: primary` units unless a later run confirms
//! again. systemd holds it, so a stopped timer, a hung or killed run, or a broken binary still
//! fences, in time, with no run of ours (Patroni leans on a kernel watchdog for the same).
//!
//! Timing: the role was confirmed by a request sent at `sent`; fencing must begin by `sent` +
//! `fence_after`. The timer counts from when systemd (re)starts it, which is later than `sent`
//! by the run's own delay, so it fires `fence_after` − `slack` after it is armed, and a run arms
//! it only if no more than `slack` has passed since `sent`: the switch then always fires by
//! `sent` + `fence_after`. A run that took longer (frozen, swapped out, a slow systemd) does not
//! arm and does not act as primary.

use std::time::Duration;

use crate::clock::Stamp;
use crate::config::Config;
use crate::domain::{Role, When};

/// The transient timer and service that hold the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub timer: String,
    pub service: String,
    pub description: String,
    /// `OnActiveSec=` of the timer.
    pub fire_after: Duration,
    /// ExecStart= of the service: `systemctl stop` of the managed primary units.
    pub exec: Vec<String>,
}

/// systemctl where systemd has always put it (also on a merged /usr).
pub const SYSTEMCTL: &str = "/bin/systemctl";

/// What a run did with the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Armed {
        fires_after: Duration,
    },
    Disarmed,
    /// Not armed: the answer was too old (see `Decision::TooLate`).
    TooLate {
        since: Option<Duration>,
    },
    /// systemd would not arm it: this run does not act as primary.
    Failed(String),
    /// Armed, but systemd took so long that it may fire after the lease can expire: this run
    /// stops the primary units itself.
    ArmedLate,
}

impl Outcome {
    /// Whether this run may act as primary.
    pub fn holds(&self) -> bool {
        !matches!(
            self,
            Outcome::TooLate { .. } | Outcome::Failed(_) | Outcome::ArmedLate
        )
    }
}

/// How late after the confirming request a run may still arm: a quarter of `fence_after`.
pub fn slack(fence_after: Duration) -> Duration {
    fence_after / 4
}

/// The switch for this config; `None` without `fence_after` or without a managed primary unit.
/// The names carry a digest of what the switch does, so a config that changes them gets a
/// new switch (and the run retires the old one) instead of re-arming a stale one.
pub fn spec(config: &Config, systemctl: &str) -> Option<Spec> {
    let after = config.check.fence_after?;
    let stop: Vec<&str> = config
        .units
        .iter()
        .filter(|u| u.when == When::Primary && u.managed)
        .map(|u| u.name.as_str())
        .collect();
    if stop.is_empty() {
        return None;
    }
    let fire_after = after - slack(after);
    let mut exec = vec![systemctl.to_owned(), "stop".into(), "--".into()];
    exec.extend(stop.iter().map(|s| (*s).to_owned()));
    let digest = fnv1a(format!("{}\0{}", fire_after.as_millis(), exec.join("\0")).as_bytes());
    let stem = format!("failover-manager-deadline-{:08x}", digest as u32);
    Some(Spec {
        timer: format!("{stem}.timer"),
        service: format!("{stem}.service"),
        description: format!(
            "failover-manager dead man's switch: stop {} unless the primary role is confirmed within {}",
            stop.join(" "),
            humantime::format_duration(fire_after)
        ),
        fire_after,
        exec,
    })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What a run does with the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Primary, confirmed recently enough: (re)arm.
    Arm,
    /// Primary, but the confirmation is older than `slack` (or of another boot): arming now
    /// could outlive the lease, so this run must not act as primary.
    TooLate { since: Option<Duration> },
    /// Confirmed standby after being primary: the switch has nothing left to guard.
    Disarm,
    /// Unknown: the switch, if armed, must be left to fire. Standby before too: nothing to do.
    Leave,
}

pub fn decide(
    role: Role,
    previous: Option<Role>,
    sent: &Stamp,
    now: &Stamp,
    fence_after: Duration,
) -> Decision {
    match role {
        Role::Primary => match now.since(sent) {
            Some(d) if d <= slack(fence_after) => Decision::Arm,
            since => Decision::TooLate { since },
        },
        Role::Standby if previous != Some(Role::Standby) => Decision::Disarm,
        Role::Standby | Role::Unknown => Decision::Leave,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;
    use crate::config::UnitConfig;

    const F: Duration = Duration::from_secs(20);

    #[test]
    fn arms_only_within_the_slack_of_the_confirming_request() {
        let sent = at("b", 10_000);
        assert_eq!(
            decide(Role::Primary, None, &sent, &at("b", 10_004), F),
            Decision::Arm
        );
        assert_eq!(
            decide(
                Role::Primary,
                Some(Role::Primary),
                &sent,
                &at("b", 15_000),
                F
            ),
            Decision::Arm,
            "exactly the slack (a quarter of 20 s) still arms"
        );
        assert_eq!(
            decide(Role::Primary, None, &sent, &at("b", 15_001), F),
            Decision::TooLate {
                since: Some(Duration::from_millis(5_001))
            }
        );
        // A request from another boot cannot vouch for this one.
        assert_eq!(
            decide(Role::Primary, None, &sent, &at("other", 10_001), F),
            Decision::TooLate { since: None }
        );
    }

    #[test]
    fn unknown_leaves_the_switch_to_fire_and_standby_disarms_it() {
        let t = at("b", 0);
        for previous in [None, Some(Role::Primary), Some(Role::Standby)] {
            assert_eq!(decide(Role::Unknown, previous, &t, &t, F), Decision::Leave);
        }
        assert_eq!(
            decide(Role::Standby, Some(Role::Primary), &t, &t, F),
            Decision::Disarm
        );
        // Nothing remembered (first run, or after a fence): disarm too, in case.
        assert_eq!(decide(Role::Standby, None, &t, &t, F), Decision::Disarm);
        assert_eq!(
            decide(Role::Standby, Some(Role::Standby), &t, &t, F),
            Decision::Leave
        );
    }

    fn config(fence_after: Option<Duration>, units: &[(&str, When, bool)]) -> Config {
        let mut c = Config::for_test(units.iter().map(|(n, w, managed)| UnitConfig {
            managed: *managed,
            ..UnitConfig::for_test(n, *w)
        }));
        c.check.fence_after = fence_after;
        c
    }

    #[test]
    fn the_switch_stops_the_managed_primary_units_and_fires_before_fence_after() {
        let c = config(
            Some(F),
            &[
                ("app.service", When::Primary, true),
                ("replica.service", When::Standby, true),
                ("hands-off.service", When::Primary, false),
                ("vip.service", When::Primary, true),
            ],
        );
        let s = spec(&c, "/usr/bin/systemctl").expect("a switch");
        assert_eq!(
            s.exec,
            [
                "/usr/bin/systemctl",
                "stop",
                "--",
                "app.service",
                "vip.service"
            ]
        );
        assert_eq!(s.fire_after, Duration::from_secs(15));
        assert!(s.timer.starts_with("failover-manager-deadline-") && s.timer.ends_with(".timer"));
        assert_eq!(
            s.service.trim_end_matches(".service"),
            s.timer.trim_end_matches(".timer")
        );
        // Another unit list or fence_after: another switch.
        let other = config(Some(F), &[("app.service", When::Primary, true)]);
        assert_ne!(
            spec(&other, "/usr/bin/systemctl").map(|s| s.timer),
            Some(s.timer.clone())
        );
        let longer = config(
            Some(F * 2),
            &[
                ("app.service", When::Primary, true),
                ("vip.service", When::Primary, true),
            ],
        );
        assert_ne!(
            spec(&longer, "/usr/bin/systemctl").map(|s| s.timer),
            Some(s.timer)
        );
        // Nothing to guard: no switch.
        assert_eq!(
            spec(&config(None, &[("app.service", When::Primary, true)]), "s"),
            None
        );
        assert_eq!(
            spec(
                &config(Some(F), &[("replica.service", When::Standby, true)]),
                "s"
            ),
            None
        );
    }
}
