//! The shapes serde reads the file into, before the defaults are filled in: where a key is
//! optional, a raw shape holds `None` (or `defaults:`), and [`RawConfig::into_config`] makes the
//! public [`Config`] of it. Separate from the public types so that what the file may say (and
//! leave out) and what the rest of the program is given can differ. Every key's default lives
//! here too, for the visitors and derives that need one.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::check_map::check;
use super::visit::{
    MetricsFile, RawUnits, Site, any_duration, opt_any_duration, opt_positive_duration,
    positive_duration, unit_name,
};
use super::{CheckConfig, Config, Hook, Hooks, UnitConfig};
use crate::domain::When;

/// `LONE_LIST`: see `CheckVisitor` (in `check_map`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig<const LONE_LIST: bool> {
    #[serde(deserialize_with = "check::<LONE_LIST, _>")]
    check: CheckConfig,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    hooks: RawHooks,
    units: RawUnits,
    #[serde(default)]
    metrics_file: Option<MetricsFile>,
    #[serde(default)]
    site: Option<Site>,
    #[serde(default)]
    parallel: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    on_promote: Option<Hook>,
    on_demote: Option<Hook>,
    on_failure: Option<Hook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(
        default = "default_verify_timeout",
        deserialize_with = "positive_duration"
    )]
    verify_timeout: Duration,
    #[serde(default = "default_settle", deserialize_with = "any_duration")]
    settle: Duration,
}

impl Default for RawDefaults {
    fn default() -> Self {
        RawDefaults {
            verify_timeout: default_verify_timeout(),
            settle: default_settle(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUnit {
    #[serde(deserialize_with = "unit_name")]
    pub(super) name: String,
    #[serde(default)]
    pub(super) when: Option<When>,
    #[serde(default, deserialize_with = "opt_positive_duration")]
    pub(super) verify_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_any_duration")]
    pub(super) settle: Option<Duration>,
    #[serde(default = "yes")]
    pub(super) managed: bool,
}

impl<const LONE_LIST: bool> RawConfig<LONE_LIST> {
    /// Fills in the defaults; everything was validated while it was read.
    pub(super) fn into_config(self, path: &Path) -> Config {
        let defaults = self.defaults;
        let units = self.units.0.into_iter().map(|u| UnitConfig {
            name: u.name,
            when: u.when.unwrap_or(When::Primary),
            verify_timeout: u.verify_timeout.unwrap_or(defaults.verify_timeout),
            settle: u.settle.unwrap_or(defaults.settle),
            managed: u.managed,
        });
        Config {
            path: path.to_owned(),
            check: self.check,
            hooks: Hooks {
                on_promote: self.hooks.on_promote,
                on_demote: self.hooks.on_demote,
                on_failure: self.hooks.on_failure,
            },
            units: units.collect(),
            metrics_file: self.metrics_file.map(|m| m.0),
            site: self.site.map(|s| s.0),
            parallel: self.parallel,
        }
    }
}

pub(super) fn default_request_timeout() -> Duration {
    Duration::from_secs(1)
}
pub(super) fn default_check_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_verify_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_settle() -> Duration {
    Duration::from_secs(2)
}
pub(super) fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}
pub(super) fn default_confirm() -> u32 {
    1
}
pub(super) fn default_confirm_interval() -> Duration {
    Duration::from_secs(2)
}
pub(super) fn yes() -> bool {
    true
}
pub(super) fn default_primary_codes() -> Vec<i32> {
    vec![0]
}
pub(super) fn default_standby_codes() -> Vec<i32> {
    vec![1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parse_err, parse_ok};

    #[test]
    fn defaults_apply_when_omitted() {
        let c = parse_ok("check: {command: [x]}\nunits: [a.service]\n");
        assert_eq!(c.check.timeout, Duration::from_secs(10));
        assert_eq!(c.units[0].verify_timeout, Duration::from_secs(30));
        assert_eq!(c.units[0].settle, Duration::from_secs(2));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse_err("check: {command: [x]}\nunits:\n  - name: a.service\n    timeot: 3s\n");
        assert!(e.starts_with("c.yaml:4:"), "{e}");
        assert!(e.contains("units[0]: unknown field `timeot`"), "{e}");
        assert!(!e.contains(" at line "), "position is not repeated: {e}");
    }

    #[test]
    fn confirm_hooks_and_managed() {
        let c = parse_ok(
            "check:\n  command: [x]\n  confirm: 3\n  confirm_interval: 1s\n\
             hooks:\n  on_promote: {command: [/usr/local/bin/page, promoted]}\n  \
             on_failure: {command: [/bin/true], timeout: 5s}\n\
             units:\n  - name: a\n    managed: false\n  - b\n",
        );
        assert_eq!(c.check.confirm, 3);
        assert_eq!(c.check.confirm_interval, Duration::from_secs(1));
        assert_eq!(
            c.hooks.on_promote.as_ref().map(|h| h.timeout),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            c.hooks.on_failure.as_ref().map(|h| h.timeout),
            Some(Duration::from_secs(5))
        );
        assert!(c.hooks.on_demote.is_none());
        assert!(!c.units[0].managed);
        assert!(c.units[1].managed);
        let e = parse_err("check: {command: [x], confirm: 0}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:1:32: check.confirm: 0 must be between 1 and 10"),
            "{e}"
        );
        let e =
            parse_err("check: {command: [x]}\nhooks:\n  on_promote: {command: []}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:25: hooks.on_promote.command: is empty"),
            "{e}"
        );
        let e =
            parse_err("check: {command: [x]}\nhooks:\n  on_promot: {command: [x]}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:") && e.contains("hooks: unknown field `on_promot`"),
            "{e}"
        );
        let e = parse_err(
            "check: {command: [x]}\nhooks:\n  on_promote: {command: [x], timeout: 0s}\nunits: [a]\n",
        );
        assert!(e.contains("hooks.on_promote.timeout"), "{e}");
    }
}
