//! [`Budget`], the inequality of automatic mode: how long this site may still run its primary
//! units after its last renewal (the fence's wait, the stops, the clock's drift), which the
//! lease must outlast. Separate because it is a value of its own beyond loading: the config
//! check refuses a lease too short for it, and the acknowledgements carry its fence time.

use std::time::Duration;

use super::{Config, UnitConfig};
use crate::domain::When;

/// The inequality of automatic mode: fencing starts `fence_after` after the last renewal was
/// sent, stopping the primary units takes up to their verify_timeouts, and this host's clock
/// may run slow against the members' by up to 2%; all of it must end before the lease can.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub fence_after: Duration,
    pub stop: Duration,
    pub clock: Duration,
    pub units: Vec<String>,
}

impl Budget {
    pub fn of(c: &Config, fence_after: Duration, ttl: Duration) -> Budget {
        let primary: Vec<&UnitConfig> = c
            .units
            .iter()
            .filter(|u| u.when == When::Primary && u.managed)
            .collect();
        let times = primary.iter().map(|u| u.verify_timeout);
        // One at a time unless `parallel`: then the slowest.
        let stop = if c.parallel {
            times.max().unwrap_or_default()
        } else {
            times.sum()
        };
        Budget {
            fence_after,
            stop,
            clock: ttl / 50,
            units: primary.iter().map(|u| u.name.clone()).collect(),
        }
    }

    pub fn total(&self) -> Duration {
        self.fence_after + self.stop + self.clock
    }

    /// The shortest whole-second TTL the inequality holds for: t > (fence_after + stop) × 50/49.
    pub fn min_ttl(&self) -> Duration {
        let bound = (self.fence_after + self.stop).as_secs_f64() * 50.0 / 49.0;
        Duration::from_secs(bound.floor() as u64 + 1)
    }

    pub(super) fn refusal(&self, ttl: Duration) -> String {
        let f = |d: Duration| humantime::format_duration(d).to_string();
        format!(
            "check.etcd.lease_ttl {} must be longer than fence_after {} + stopping the primary units {} \
             (verify_timeout of {}) + {} for clock rate = {}: otherwise the other site may take the \
             role while this one still runs them (lengthen lease_ttl, or shorten fence_after or \
             the units' verify_timeout)",
            f(ttl),
            f(self.fence_after),
            f(self.stop),
            if self.units.is_empty() {
                "no unit".to_owned()
            } else {
                self.units.join(", ")
            },
            f(self.clock),
            f(self.total())
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EtcdConfig;
    use crate::config::tests::{etcd_config, parse_err, parse_ok};

    #[test]
    fn check_etcd_needs_a_site_and_automatic_mode_the_inequality() {
        let e = parse_err("check:\n  etcd: {endpoints: [http://a:2379], key: /k}\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:2:3: check.etcd needs `site:`"), "{e}");
        let e = parse_err(&etcd_config(
            "    lease_ttl: 30s\n",
            "",
            "  - app.service\n",
        ));
        assert!(
            e.starts_with("c.yaml:6:5: check.etcd.lease_ttl needs check.fence_after"),
            "{e}"
        );
        // 20 s + 2 × 5 s (one unit after the other) + 0.6 s >= 30 s: refused, with the numbers.
        let units = "  - {name: app.service, verify_timeout: 5s}\n  - {name: vip.service, verify_timeout: 5s}\n";
        let e = parse_err(&etcd_config(
            "    lease_ttl: 30s\n",
            "  fence_after: 20s\n",
            units,
        ));
        assert!(
            e.starts_with(
                "c.yaml:6:5: check.etcd.lease_ttl 30s must be longer than fence_after 20s + stopping the primary units 10s (verify_timeout of app.service, vip.service) + 600ms for clock rate = 30s 600ms"
            ),
            "{e}"
        );
        // Stopped together (parallel): the slowest counts, and it fits.
        let c = parse_ok(&format!(
            "parallel: true\n{}",
            etcd_config("    lease_ttl: 30s\n", "  fence_after: 20s\n", units)
        ));
        assert!(c.check.etcd().is_some_and(EtcdConfig::automatic));
        // Standby units do not count; unmanaged primary units are not stopped either.
        parse_ok(&etcd_config(
            "    lease_ttl: 30s\n",
            "  fence_after: 20s\n",
            "  - {name: app.service, verify_timeout: 5s}\n  - {name: replica.service, when: standby, verify_timeout: 60s}\n  - {name: x.service, managed: false, verify_timeout: 60s}\n",
        ));
    }
}
