//! The configuration file: strict parsing and validation. Every error names file, line and
//! column, of the offending value, and its key path.
//!
//! Validation happens while serde_norway deserialises (in visitors), never afterwards: an error
//! raised inside a visitor is stamped by serde_norway with that value's own position and key
//! path, so no position ever has to be guessed by searching the text.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::cli::values;
use crate::domain::When;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub mod inputs;
mod prescan;

/// Larger than any sane config; a bigger file is a mistake (a log, a binary) and not parsed.
const MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub check: CheckConfig,
    pub hooks: Hooks,
    pub units: Vec<UnitConfig>,
    /// Prometheus textfile for node_exporter, rewritten at the end of every reconcile.
    pub metrics_file: Option<PathBuf>,
    /// This host's site (`dc1`): a label on every metric, so one Prometheus can tell the sites
    /// apart and see two primaries.
    pub site: Option<String>,
    /// Queue the jobs of a phase (all stops, then all starts) at once over D-Bus, and verify them
    /// together, instead of one unit at a time.
    pub parallel: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// Where the role comes from.
    pub source: Source,
    /// The whole check's time: the command's, or every etcd request of one run together.
    pub timeout: Duration,
    pub primary_exit_codes: Vec<i32>,
    pub standby_exit_codes: Vec<i32>,
    /// Results in a row that must agree before a change is acted on (keepalived's rise/fall).
    pub confirm: u32,
    pub confirm_interval: Duration,
    /// Self-fencing: stop the primary units when the role has been unknown this long.
    pub fence_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `check.command`: its exit code says the role.
    Command(Vec<String>),
    /// `check.etcd`: a key in etcd names the primary site.
    Etcd(EtcdConfig),
}

impl CheckConfig {
    /// The check command, when the role comes from one.
    pub fn command(&self) -> Option<&[String]> {
        match &self.source {
            Source::Command(argv) => Some(argv),
            Source::Etcd(_) => None,
        }
    }

    pub fn etcd(&self) -> Option<&EtcdConfig> {
        match &self.source {
            Source::Etcd(e) => Some(e),
            Source::Command(_) => None,
        }
    }
}

/// `check.etcd`: the witness, spoken to directly.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Tried in turn; list every member, this site's first.
    #[serde(deserialize_with = "endpoints")]
    pub endpoints: Vec<String>,
    #[serde(deserialize_with = "etcd_key")]
    pub key: String,
    /// Each request's own limit (connect, send, answer).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "positive_duration"
    )]
    pub request_timeout: Duration,
    #[serde(default)]
    pub ca_file: Option<AbsolutePath>,
    #[serde(default)]
    pub cert_file: Option<AbsolutePath>,
    #[serde(default)]
    pub key_file: Option<AbsolutePath>,
    /// `user:password` on one line, in a file only root can read.
    #[serde(default)]
    pub credentials_file: Option<AbsolutePath>,
    /// Automatic mode: the key is held on a lease of this TTL (whole seconds).
    #[serde(default, deserialize_with = "lease_ttl")]
    pub lease_ttl: Option<Duration>,
    /// Automatic mode: may this site take the role when nobody holds it.
    #[serde(default = "yes")]
    pub candidate: bool,
    /// Automatic mode: must exit 0 before this host takes the role (a replica too far behind
    /// says no).
    #[serde(default, deserialize_with = "opt_argv")]
    pub before_acquire: Option<Vec<String>>,
    /// Automatic mode: the shortest lease this config is safe with (the inequality solved for
    /// the TTL), to hold a lease granted under another config against.
    #[serde(skip)]
    pub min_lease_ttl: Duration,
}

impl EtcdConfig {
    pub fn automatic(&self) -> bool {
        self.lease_ttl.is_some()
    }
}

/// A path that must be absolute (a relative one would depend on the working directory).
#[derive(Debug, Clone, PartialEq)]
pub struct AbsolutePath(pub PathBuf);

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AbsolutePath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an absolute path")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AbsolutePath, E> {
                if !s.starts_with('/') {
                    return Err(E::custom(format!("{s:?} is not an absolute path")));
                }
                Ok(AbsolutePath(PathBuf::from(s)))
            }
        }
        d.deserialize_str(V)
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(1)
}

/// `http://host:port` or `https://…`, nothing after the authority: the client adds the API path.
fn endpoints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of URLs such as http://10.0.0.1:2379")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out: Vec<String> = Vec::new();
            while let Some(e) = seq.next_element::<String>()? {
                let rest = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"))
                    .ok_or_else(|| {
                        de::Error::custom(format!("{e:?} must start with http:// or https://"))
                    })?;
                let authority = rest.trim_end_matches('/');
                let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
                if authority.is_empty() || !authority.chars().all(plain) {
                    return Err(de::Error::custom(format!(
                        "{e:?} must be scheme://host:port and nothing else"
                    )));
                }
                if out.contains(&e) {
                    return Err(de::Error::custom(format!("{e:?} is listed twice")));
                }
                out.push(e);
            }
            if out.is_empty() {
                return Err(de::Error::custom("is empty"));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

/// An etcd key: printable, no blank space, starting with `/`.
fn etcd_key<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an etcd key such as /failover-manager/primary-site")
        }
        fn visit_str<E: de::Error>(self, k: &str) -> Result<String, E> {
            if !k.starts_with('/') || k.len() > 255 || !k.chars().all(|c| c.is_ascii_graphic()) {
                return Err(E::custom(format!(
                    "key {:?} must start with / and be up to 255 printable ASCII characters without spaces",
                    k.chars().take(64).collect::<String>()
                )));
            }
            Ok(k.to_owned())
        }
    }
    d.deserialize_str(V)
}

/// etcd counts a lease's TTL in whole seconds, and will not grant less than a couple.
fn lease_ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("whole seconds such as \"30s\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
            let t = DurationVisitor { allow_zero: false }.visit_str::<E>(s)?;
            if t.subsec_nanos() != 0 || t < Duration::from_secs(3) {
                return Err(E::custom(format!(
                    "{} must be whole seconds, 3s or more (etcd counts a lease in seconds)",
                    humantime::format_duration(t)
                )));
            }
            Ok(t)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_u64(n)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_i64(n)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_f64(n)
        }
    }
    d.deserialize_any(V).map(Some)
}

fn opt_argv<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    argv(d).map(Some)
}

/// Commands run after a transition is verified (or fails), like keepalived's notify scripts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub on_promote: Option<Hook>,
    pub on_demote: Option<Hook>,
    pub on_failure: Option<Hook>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    #[serde(deserialize_with = "argv")]
    pub command: Vec<String>,
    #[serde(
        default = "default_hook_timeout",
        deserialize_with = "positive_duration"
    )]
    pub timeout: Duration,
}

impl Hooks {
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &Hook)> {
        [
            ("on_promote", &self.on_promote),
            ("on_demote", &self.on_demote),
            ("on_failure", &self.on_failure),
        ]
        .into_iter()
        .filter_map(|(k, h)| h.as_ref().map(|h| (k, h)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitConfig {
    pub name: String,
    pub when: When,
    pub verify_timeout: Duration,
    pub settle: Duration,
    /// `false`: observed and shown, never started or stopped (an operator is working on it).
    pub managed: bool,
}

#[cfg(test)]
impl Config {
    /// A config with a check command that says primary, and these units.
    pub fn for_test(units: impl IntoIterator<Item = UnitConfig>) -> Config {
        Config {
            path: PathBuf::from("/test.yaml"),
            check: CheckConfig {
                source: Source::Command(vec!["true".into()]),
                timeout: default_check_timeout(),
                primary_exit_codes: default_primary_codes(),
                standby_exit_codes: default_standby_codes(),
                confirm: 1,
                confirm_interval: default_confirm_interval(),
                fence_after: None,
            },
            hooks: Hooks::default(),
            units: units.into_iter().collect(),
            metrics_file: None,
            site: None,
            parallel: false,
        }
    }
}

#[cfg(test)]
impl UnitConfig {
    /// A managed unit with short timeouts and no settle window, for unit tests.
    pub fn for_test(name: &str, when: When) -> UnitConfig {
        UnitConfig {
            name: name.to_owned(),
            when,
            verify_timeout: Duration::from_secs(1),
            settle: Duration::ZERO,
            managed: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read config: it is a {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: config is {size} bytes; refusing anything over {MAX_BYTES} bytes")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path}: config is not UTF-8 text (binary file?)")]
    NotText { path: PathBuf },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

// ---- raw, serde-facing shapes ------------------------------------------------------------

/// `LONE_LIST`: see [`CheckVisitor`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig<const LONE_LIST: bool> {
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
struct RawUnit {
    #[serde(deserialize_with = "unit_name")]
    name: String,
    #[serde(default)]
    when: Option<When>,
    #[serde(default, deserialize_with = "opt_positive_duration")]
    verify_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_any_duration")]
    settle: Option<Duration>,
    #[serde(default = "yes")]
    managed: bool,
}

impl<const LONE_LIST: bool> RawConfig<LONE_LIST> {
    /// Fills in the defaults; everything was validated while it was read.
    fn into_config(self, path: &Path) -> Config {
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

fn default_check_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_verify_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_settle() -> Duration {
    Duration::from_secs(2)
}
fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_confirm() -> u32 {
    1
}
fn default_confirm_interval() -> Duration {
    Duration::from_secs(2)
}
fn yes() -> bool {
    true
}
fn default_primary_codes() -> Vec<i32> {
    vec![0]
}
fn default_standby_codes() -> Vec<i32> {
    vec![1]
}

// ---- validating visitors -------------------------------------------------------------------
//
// Each check runs inside the visitor of the value it is about, so that serde_norway stamps the
// error with that value's position and key path (an error raised after deserializing would
// point at the enclosing entry, or nowhere).

/// Parses inside the visitor (see above).
struct DurationVisitor {
    allow_zero: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"10s\" or \"1m 30s\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        values::duration(s, self.allow_zero).map_err(E::custom)
    }
    // A bare number has no unit, and guessing seconds is how typos go unnoticed.
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write \"{n}s\""
        )))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write \"{n}s\""
        )))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write e.g. \"{n}s\""
        )))
    }
}

fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: false })
}
fn any_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: true })
}
fn opt_positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    positive_duration(d).map(Some)
}
fn opt_any_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    any_duration(d).map(Some)
}

/// A command: a non-empty list of strings whose first (the program) is not blank.
struct ArgvVisitor;

impl<'de> Visitor<'de> for ArgvVisitor {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence: the program and its arguments")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut argv = Vec::new();
        while let Some(arg) = seq.next_element::<String>()? {
            argv.push(arg);
        }
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(de::Error::custom(
                "is empty; give the program and its arguments, e.g. [\"/usr/local/bin/program\", \"argument\"]",
            ));
        }
        Ok(argv)
    }
}

fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_seq(ArgvVisitor)
}

/// `check:`. Written by hand rather than derived so that each exit-code list can be held
/// against the other while it is read, at the element that repeats a code.
fn check<'de, const LONE_LIST: bool, D: Deserializer<'de>>(d: D) -> Result<CheckConfig, D::Error> {
    d.deserialize_struct(
        "check",
        CHECK_KEYS,
        CheckVisitor {
            lone_list: LONE_LIST,
        },
    )
}

const CHECK_KEYS: &[&str] = &[
    "command",
    "etcd",
    "timeout",
    "primary_exit_codes",
    "standby_exit_codes",
    "confirm",
    "confirm_interval",
    "fence_after",
];

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum CheckKey {
    Command,
    Etcd,
    Timeout,
    PrimaryExitCodes,
    StandbyExitCodes,
    Confirm,
    ConfirmInterval,
    FenceAfter,
}

/// The list read second is held against the first. A list given alone is held against the
/// other's default, at its elements only when it is known not to be followed by the other list
/// (`lone_list`, from `lone_exit_code_list`: see `parse`); else at the end of the map, said at
/// `check:`.
struct CheckVisitor {
    lone_list: bool,
}

impl CheckVisitor {
    /// What a list is held against as it is read: the other list, once read.
    fn other<'a>(
        &self,
        role: &'static str,
        read: Option<&'a [i32]>,
        default: &'a [i32],
    ) -> Option<Other<'a>> {
        match read {
            Some(codes) => Some(Other::given(role, codes)),
            None => self.lone_list.then(|| Other::defaulted(role, default)),
        }
    }
}

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CheckConfig;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map with `command` or `etcd`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckConfig, A::Error> {
        let mut command = None;
        let mut etcd = None;
        let (mut primary, mut standby): (Option<Vec<i32>>, Option<Vec<i32>>) = (None, None);
        let mut timeout = default_check_timeout();
        let mut confirm = default_confirm();
        let mut confirm_interval = default_confirm_interval();
        let mut fence_after = None;
        let mut seen = Vec::new();
        let (primary_default, standby_default) = (default_primary_codes(), default_standby_codes());
        while let Some(key) = map.next_key::<CheckKey>()? {
            if seen.contains(&key) {
                // CHECK_KEYS lists the keys in CheckKey's order.
                return Err(de::Error::duplicate_field(CHECK_KEYS[key as usize]));
            }
            seen.push(key);
            match key {
                CheckKey::Command => command = Some(map.next_value::<Argv>()?.0),
                CheckKey::Etcd => etcd = Some(map.next_value::<EtcdConfig>()?),
                CheckKey::Timeout => timeout = map.next_value::<Positive>()?.0,
                CheckKey::PrimaryExitCodes => {
                    let other = self.other("standby", standby.as_deref(), &standby_default);
                    primary = Some(map.next_value_seed(ExitCodes { other })?);
                }
                CheckKey::StandbyExitCodes => {
                    let other = self.other("primary", primary.as_deref(), &primary_default);
                    standby = Some(map.next_value_seed(ExitCodes { other })?);
                }
                CheckKey::Confirm => confirm = map.next_value::<Confirm>()?.0,
                CheckKey::ConfirmInterval => confirm_interval = map.next_value::<Positive>()?.0,
                CheckKey::FenceAfter => fence_after = Some(map.next_value::<Positive>()?.0),
            }
        }
        let source = match (command, etcd) {
            (Some(argv), None) => Source::Command(argv),
            (None, Some(e)) => {
                if primary.is_some() || standby.is_some() {
                    return Err(de::Error::custom(
                        "primary_exit_codes and standby_exit_codes are for check.command, not check.etcd",
                    ));
                }
                Source::Etcd(e)
            }
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    "has both `command` and `etcd`; the role comes from one of them",
                ));
            }
            (None, None) => return Err(de::Error::missing_field("command")),
        };
        // Without `lone_list`, a list given alone was held against nothing while it was read.
        let lone = match (&primary, &standby) {
            (Some(p), None) => Some((p, Other::defaulted("standby", &standby_default))),
            (None, Some(s)) => Some((s, Other::defaulted("primary", &primary_default))),
            _ => None,
        };
        if let Some((given, other)) = lone
            && let Some(&c) = given.iter().find(|c| other.codes.contains(c))
        {
            return Err(de::Error::custom(other.clash(c)));
        }
        Ok(CheckConfig {
            source,
            timeout,
            primary_exit_codes: primary.unwrap_or(primary_default),
            standby_exit_codes: standby.unwrap_or(standby_default),
            confirm,
            confirm_interval,
            fence_after,
        })
    }
}

struct Argv(Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        argv(d).map(Argv)
    }
}

struct Positive(Duration);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        positive_duration(d).map(Positive)
    }
}

/// `check.confirm`: 1 to 10 results in a row.
struct Confirm(u32);

impl<'de> Deserialize<'de> for Confirm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Confirm;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number from 1 to 10")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Confirm, E> {
                match u32::try_from(n) {
                    Ok(n @ 1..=10) => Ok(Confirm(n)),
                    _ => Err(E::custom(format!("{n} must be between 1 and 10"))),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Confirm, E> {
                match u32::try_from(n) {
                    Ok(n @ 1..=10) => Ok(Confirm(n)),
                    _ => Err(E::custom(format!("{n} must be between 1 and 10"))),
                }
            }
        }
        d.deserialize_u64(V)
    }
}

/// The other exit-code list, as each code read is held against it.
#[derive(Clone, Copy)]
struct Other<'a> {
    role: &'static str,
    codes: &'a [i32],
    /// `codes` is that list's default: the file does not give it.
    default: bool,
}

impl<'a> Other<'a> {
    fn given(role: &'static str, codes: &'a [i32]) -> Self {
        Other {
            role,
            codes,
            default: false,
        }
    }
    fn defaulted(role: &'static str, codes: &'a [i32]) -> Self {
        Other {
            role,
            codes,
            default: true,
        }
    }
    /// Why `code` cannot be in both lists.
    fn clash(&self, code: i32) -> String {
        let role = self.role;
        match self.default {
            false => format!("{code} is also a {role} exit code"),
            true => format!(
                "{code} is also a {role} exit code ({role}_exit_codes defaults to {:?}); set {role}_exit_codes",
                self.codes
            ),
        }
    }
}

/// An exit-code list: not empty, each code 0 to 255 and not in the `other` list.
struct ExitCodes<'a> {
    other: Option<Other<'a>>,
}

impl<'de> DeserializeSeed<'de> for ExitCodes<'_> {
    type Value = Vec<i32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<i32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ExitCodes<'_> {
    type Value = Vec<i32>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of exit codes (0 to 255)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i32>, A::Error> {
        let mut codes = Vec::new();
        while let Some(c) = seq.next_element_seed(ExitCode { other: self.other })? {
            codes.push(c);
        }
        if codes.is_empty() {
            return Err(de::Error::custom("is empty"));
        }
        Ok(codes)
    }
}

struct ExitCode<'a> {
    other: Option<Other<'a>>,
}

impl<'de> DeserializeSeed<'de> for ExitCode<'_> {
    type Value = i32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i32, D::Error> {
        d.deserialize_i64(self)
    }
}

impl Visitor<'_> for ExitCode<'_> {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an exit code (0 to 255)")
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i32, E> {
        let code = match i32::try_from(n) {
            Ok(c @ 0..=255) => c,
            _ => return Err(E::custom(format!("{n} is not an exit code (0 to 255)"))),
        };
        match self.other {
            Some(other) if other.codes.contains(&code) => Err(E::custom(other.clash(code))),
            _ => Ok(code),
        }
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i32, E> {
        match i64::try_from(n) {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(E::custom(format!("{n} is not an exit code (0 to 255)"))),
        }
    }
}

/// `metrics_file:`, checked as `--metrics-file` is.
struct MetricsFile(PathBuf);

impl<'de> Deserialize<'de> for MetricsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MetricsFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an absolute path ending in .prom")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MetricsFile, E> {
                let path = PathBuf::from(s);
                values::metrics_file(&path).map_err(E::custom)?;
                Ok(MetricsFile(path))
            }
        }
        d.deserialize_str(V)
    }
}

/// `site:`, a metric label value: short and plain, so a typo or a stray quote cannot split one
/// site's series in two or break the text format.
struct Site(String);

impl<'de> Deserialize<'de> for Site {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Site;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a site name such as dc1")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Site, E> {
                values::site(s).map(Site).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

struct UnitNameVisitor;

impl Visitor<'_> for UnitNameVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a unit name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        normalize_unit_name(s).map_err(E::custom)
    }
}

fn unit_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(UnitNameVisitor)
}

/// `units:`: not empty, and no unit twice (each entry is held against those before it as it is
/// read, so the error points at the repeat).
struct RawUnits(Vec<RawUnit>);

impl<'de> Deserialize<'de> for RawUnits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawUnits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of units")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawUnits, A::Error> {
                let mut seen = HashMap::new();
                let mut units = Vec::new();
                while let Some(u) = seq.next_element_seed(UnitEntry { seen: &mut seen })? {
                    units.push(u);
                }
                if units.is_empty() {
                    return Err(de::Error::custom(
                        "is empty; list the units this host manages",
                    ));
                }
                Ok(RawUnits(units))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One entry of `units:`: either a bare name (shorthand) or a map. Written by hand rather than
/// with `#[serde(untagged)]`, which would replace the precise error with "did not match any
/// variant".
struct UnitEntry<'a> {
    seen: &'a mut HashMap<String, When>,
}

impl<'de> DeserializeSeed<'de> for UnitEntry<'_> {
    type Value = RawUnit;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawUnit, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UnitEntry<'_> {
    type Value = RawUnit;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a unit name or a map with `name`")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawUnit, E> {
        let unit = RawUnit {
            name: normalize_unit_name(s).map_err(E::custom)?,
            when: None,
            verify_timeout: None,
            settle: None,
            managed: true,
        };
        self.admit(unit)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawUnit, A::Error> {
        let unit = RawUnit::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.admit(unit)
    }
}

impl UnitEntry<'_> {
    fn admit<E: de::Error>(self, unit: RawUnit) -> Result<RawUnit, E> {
        let when = unit.when.unwrap_or(When::Primary);
        match self.seen.get(&unit.name) {
            Some(&w) if w == when => Err(E::custom(format!("{} is listed twice", unit.name))),
            Some(_) => Err(E::custom(format!(
                "{} is listed for both roles; a unit runs on the primary or on the standby, not both",
                unit.name
            ))),
            None => {
                self.seen.insert(unit.name.clone(), when);
                Ok(unit)
            }
        }
    }
}

// ---- unit names ----------------------------------------------------------------------------

/// systemd's unit types (unit_type_from_string in src/basic/unit-name.c).
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// systemd's UNIT_NAME_MAX is 256 including the terminating NUL.
const UNIT_NAME_MAX: usize = 255;

/// Validates a unit name with systemd's own grammar (unit_name_is_valid) and appends
/// `.service` to a name without a unit type, as systemctl itself would. Refused beyond that
/// grammar: the slices and scopes that systemd itself owns, a leading `-` (it could be read
/// as an option), a template without an instance, and units that `systemctl start` cannot act
/// on (device, scope).
pub fn normalize_unit_name(raw: &str) -> Result<String, String> {
    let q = quoted(raw);
    let name = raw.trim();
    if name.is_empty() {
        return Err("unit name is empty".into());
    }
    // First: `-.slice` would otherwise be refused as an option, which hides what it is.
    refuse_systemds_own(raw, name)?;
    if name.starts_with('-') {
        return Err(format!(
            "unit name {q} starts with '-' (looks like an option)"
        ));
    }
    let full = match name.rsplit_once('.') {
        Some((_, suffix)) if UNIT_TYPES.contains(&suffix) => name.to_owned(),
        _ => format!("{name}.service"),
    };
    let (stem, unit_type) = full.rsplit_once('.').unwrap_or((&full, "service"));
    if stem.is_empty() {
        return Err(format!("unit name {q} has no name before .{unit_type}"));
    }
    if full.len() > UNIT_NAME_MAX {
        return Err(format!(
            "unit name {q} is longer than {UNIT_NAME_MAX} characters"
        ));
    }
    if let Some(bad) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "unit name {q} contains {bad:?}; systemd allows only ASCII letters, digits and \":-_.\\@\""
        ));
    }
    // Everything after the first '@' is the instance, which may itself contain '@'.
    if let Some((prefix, instance)) = stem.split_once('@') {
        if prefix.is_empty() {
            return Err(format!("unit name {q} has nothing before '@'"));
        }
        if instance.is_empty() {
            return Err(format!(
                "unit name {q} is a template; name an instance, e.g. {prefix}@main.{unit_type}"
            ));
        }
    }
    refuse_unstartable(raw, unit_type)?;
    Ok(full)
}

/// Units that are valid names but that a start or stop cannot act on.
/// A slice is accepted: `systemctl start` sets it up and `stop` stops every unit in it, which
/// is what "the whole application" means on a host (an `app.slice` of several services).
fn refuse_unstartable(raw: &str, unit_type: &str) -> Result<(), String> {
    let q = quoted(raw);
    match unit_type {
        "device" => Err(format!(
            "unit name {q} is a device unit: systemd creates it when the kernel reports the device, and systemctl cannot start or stop one"
        )),
        "scope" => Err(format!(
            "unit name {q} is a scope unit: the program that runs its processes creates it (systemd-run --scope, a login), and systemctl cannot start one"
        )),
        _ => Ok(()),
    }
}

/// The slices and scopes that systemd itself creates and owns (systemd.special(7)), each with
/// what it is and what a stop of it would take down with it.
const SYSTEMDS_OWN: &[(&str, &str, &str)] = &[
    ("-.slice", "root slice", "every unit on the host"),
    (
        "system.slice",
        "slice of every system service",
        "the host's own services",
    ),
    (
        "user.slice",
        "slice of every login session",
        "every login and user manager on the host",
    ),
    (
        "machine.slice",
        "slice of every virtual machine and container (systemd-machined)",
        "every VM and container on the host",
    ),
    (
        "capsule.slice",
        "slice of every capsule (systemd-capsule@.service)",
        "every capsule's service manager and services",
    ),
    (
        "init.scope",
        "scope of PID 1, the service manager",
        "systemd itself",
    ),
];

/// Refuses a slice or scope that systemd owns: the table above, and logind's slice of one
/// user, `user-UID.slice` (user@.service(5)), the only kind of slice systemd names after a UID.
fn refuse_systemds_own(raw: &str, name: &str) -> Result<(), String> {
    let q = quoted(raw);
    if let Some(&(_, what, stops)) = SYSTEMDS_OWN.iter().find(|(n, _, _)| *n == name) {
        return Err(format!(
            "unit name {q} is systemd's own {what}: stopping it would stop {stops}"
        ));
    }
    let uid = name
        .strip_prefix("user-")
        .and_then(|n| n.strip_suffix(".slice"))
        .filter(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()));
    match uid {
        Some(uid) => Err(format!(
            "unit name {q} is systemd-logind's slice of user {uid}: stopping it would stop every login and the user manager of user {uid}"
        )),
        None => Ok(()),
    }
}

/// A value as a message quotes it: at most 64 characters of it (a name a megabyte long is
/// refused for its length, not repeated).
fn quoted(raw: &str) -> String {
    match raw.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
        None => format!("{raw:?}"),
    }
}

// ---- loading and validation ---------------------------------------------------------------

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = open(path)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let mut bytes = Vec::new();
    // Bounded read: the size can change between metadata() and read (a growing file).
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::NotText {
        path: path.to_owned(),
    })?;
    parse(path, &text)
}

/// Opens the config only if it is a regular file, and never waits in open(2): a FIFO would
/// block this run (and every later one) until something wrote to it, /dev/zero would be read
/// to the size limit, and some devices act on open alone (a watchdog arms itself). The path is
/// looked at first so that a device is not even opened; the descriptor is looked at again
/// (O_NONBLOCK keeps a FIFO swapped in meanwhile from blocking).
fn open(path: &Path) -> Result<std::fs::File, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let not_a_file = |meta: &std::fs::Metadata| ConfigError::NotAFile {
        path: path.to_owned(),
        kind: file_kind(meta.file_type()),
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_a_file(&meta));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_a_file(&meta));
    }
    Ok(file)
}

fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    // Some Windows editors begin UTF-8 files with a byte-order mark; libyaml would take it for
    // indentation of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let invalid = |(line, column): (usize, usize), message: String| {
        let (line, column) = within(text, line, column);
        ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            message: shorten(message),
        }
    };
    if text.contains('\0') {
        return Err(ConfigError::NotText {
            path: path.to_owned(),
        });
    }
    if let Some((at, c)) = forbidden_character(text) {
        let what = if c.is_control() {
            "control character"
        } else {
            "character"
        };
        let message = format!("{what} U+{:04X} is not allowed in YAML", u32::from(c));
        return Err(invalid(at, message));
    }
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if text.lines().all(blank) {
        return Err(invalid(
            (1, 1),
            "config is empty; it needs `check` and `units`".into(),
        ));
    }
    prescan::check(text).map_err(|p| invalid((p.line, p.column), p.message))?;
    let raw = serde_yaml::from_str::<RawConfig<false>>(text)
        .map_err(|e| match lone_exit_code_list(text) {
            // A lone list's clash with the other's default is found at the end of `check:`;
            // read again, told that no other list follows, to point at the code itself. (A
            // valid config is read once; the second read only ever finds an error as early.)
            true => serde_yaml::from_str::<RawConfig<true>>(text)
                .err()
                .unwrap_or(e),
            false => e,
        })
        .map_err(|e| {
            let at = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            invalid(at, strip_mark(&e.to_string(), at))
        })?;
    let mut config = raw.into_config(path);
    consistent(&mut config).map_err(|(key, message)| invalid(key_position(text, key), message))?;
    Ok(config)
}

/// What no single value can say alone, checked once everything is read and reported at the
/// line of the key concerned: `check.etcd` needs `site`, and automatic mode needs `fence_after`
/// short enough that this site has stopped before the other may take over.
fn consistent(c: &mut Config) -> Result<(), (&'static str, String)> {
    let Some(etcd) = c.check.etcd() else {
        return Ok(());
    };
    if etcd.cert_file.is_some() != etcd.key_file.is_some() {
        return Err((
            if etcd.cert_file.is_some() {
                "cert_file"
            } else {
                "key_file"
            },
            "check.etcd.cert_file and key_file go together (a client certificate and its key)"
                .into(),
        ));
    }
    if c.site.is_none() {
        return Err((
            "etcd",
            "check.etcd needs `site:` (this host's site, as the key names it)".into(),
        ));
    }
    let Some(ttl) = etcd.lease_ttl else {
        // Manual mode takes nothing: a key for what only automatic mode does is a mistake.
        if !etcd.candidate || etcd.before_acquire.is_some() {
            return Err((
                if etcd.candidate {
                    "before_acquire"
                } else {
                    "candidate"
                },
                "check.etcd.candidate and before_acquire are for automatic mode (lease_ttl): in \
                 manual mode no host takes the role on its own"
                    .into(),
            ));
        }
        return Ok(());
    };
    let Some(fence_after) = c.check.fence_after else {
        return Err((
            "lease_ttl",
            format!(
                "check.etcd.lease_ttl needs check.fence_after: a primary that cannot renew must \
                 stop before its lease ({}) runs out",
                humantime::format_duration(ttl)
            ),
        ));
    };
    let b = Budget::of(c, fence_after, ttl);
    if b.total() >= ttl {
        return Err(("lease_ttl", b.refusal(ttl)));
    }
    let min = b.min_ttl();
    if let Source::Etcd(e) = &mut c.check.source {
        e.min_lease_ttl = min;
    }
    Ok(())
}

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

    fn refusal(&self, ttl: Duration) -> String {
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

/// Where `key:` first stands in the text (1-based), for errors raised after deserialising;
/// the top of the file when it is not found (a flow mapping, say).
fn key_position(text: &str, key: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start_matches([' ', '-', '{']);
            let rest = t.strip_prefix(key)?;
            rest.trim_start()
                .starts_with(':')
                .then(|| (i + 1, l.len() - t.len() + 1))
        })
        .unwrap_or((1, 1))
}

/// Whether `check:` gives one exit-code list and not the other: a lenient look at the text
/// (every other rule is left to the real read; a text it cannot read gives `false`). A key
/// counts as given whatever its value, `null` included.
fn lone_exit_code_list(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Doc {
        check: Lists,
    }
    #[derive(Deserialize)]
    struct Lists {
        #[serde(default)]
        primary_exit_codes: Given,
        #[serde(default)]
        standby_exit_codes: Given,
    }
    #[derive(Default)]
    struct Given(bool);
    impl<'de> Deserialize<'de> for Given {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            de::IgnoredAny::deserialize(d).map(|_| Given(true))
        }
    }
    serde_yaml::from_str::<Doc>(text)
        .is_ok_and(|d| d.check.primary_exit_codes.0 != d.check.standby_exit_codes.0)
}

/// serde_norway says " at line L column C" after the problem; we print the position in front
/// instead. (A second position, of the context, is kept: "while parsing a flow mapping at …".)
fn strip_mark(message: &str, (line, column): (usize, usize)) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

/// Messages quote the offending value; one a megabyte long would flood the journal.
fn shorten(mut message: String) -> String {
    const MAX: usize = 1000;
    if let Some((cut, _)) = message.char_indices().nth(MAX) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Whether `c` ends a line, as libyaml counts lines (so that positions agree with its marks).
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The 1-based position of the first character that libyaml's reader refuses (YAML allows
/// tab, line breaks and printable characters only), with its line and column counted as
/// libyaml counts them. NUL is left to the caller (a binary file).
fn forbidden_character(text: &str) -> Option<((usize, usize), char)> {
    let (mut line, mut column) = (1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = matches!(c,
            '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}'
            | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        if !allowed {
            return Some(((line, column), c));
        }
        if is_break(c) && !(c == '\r' && chars.peek() == Some(&'\n')) {
            line += 1;
            column = 1;
        } else if !is_break(c) {
            column += 1;
        }
    }
    None
}

/// A position inside the text: libyaml places an error at the very end (an unclosed bracket)
/// one line below the last when the text ends with a line break; an editor shows no such line,
/// so it becomes the end of the last line.
fn within(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = lines(text);
    match lines.get(line.max(1) - 1) {
        Some(_) => (line.max(1), column.max(1)),
        None => (
            lines.len(),
            lines.last().map_or(0, |l| l.chars().count()) + 1,
        ),
    }
}

/// The text's lines as libyaml counts them (a break is \n, \r\n, \r, NEL, LS or PS); a final
/// break does not start another line, and an empty text has one, empty line.
fn lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if !is_break(c) {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r'
            && let Some(&(j, '\n')) = iter.peek()
        {
            iter.next();
            end = j + 1;
        }
        start = end;
    }
    if start < text.len() || lines.is_empty() {
        lines.push(&text[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
check:
  command: [\"/usr/local/bin/amIthePrimary\", \"--site\", \"a\"]
  timeout: 5s
defaults: { verify_timeout: 20s, settle: 1s }
units:
  - my-application.service
  - web
  - name: replica-sync.service
    when: standby
    verify_timeout: 1m 30s
    settle: 0s
";

    fn parse_ok(text: &str) -> Config {
        match parse(Path::new("c.yaml"), text) {
            Ok(c) => c,
            Err(e) => panic!("expected valid config, got: {e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(Path::new("c.yaml"), text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const ETCD: &str = "site: dc1\ncheck:\n  etcd:\n    endpoints: [http://127.0.0.1:2379, https://10.0.0.2:2379]\n    key: /fm/primary\n";

    fn etcd_config(etcd_extra: &str, check_extra: &str, units: &str) -> String {
        format!("{ETCD}{etcd_extra}{check_extra}units:\n{units}")
    }

    #[test]
    fn check_etcd_manual_and_automatic() {
        let c = parse_ok(&etcd_config("", "", "  - app.service\n"));
        let e = c.check.etcd().expect("check.etcd");
        assert_eq!(e.endpoints.len(), 2);
        assert_eq!(e.key, "/fm/primary");
        assert_eq!(e.request_timeout, Duration::from_secs(1));
        assert!(!e.automatic());
        assert!(e.candidate);
        assert_eq!(c.check.command(), None);
        // Automatic: 10 s + 5 s to stop + 0.6 s < 30 s.
        let c = parse_ok(&etcd_config(
            "    lease_ttl: 30s\n    candidate: false\n    before_acquire: [/usr/local/bin/replica-lag-ok]\n",
            "  fence_after: 10s\n",
            "  - name: app.service\n    verify_timeout: 5s\n",
        ));
        let e = c.check.etcd().expect("check.etcd");
        assert_eq!(e.lease_ttl, Some(Duration::from_secs(30)));
        // (10 s + 5 s) × 50/49 = 15.3 s: a lease granted for 15 s would not do.
        assert_eq!(e.min_lease_ttl, Duration::from_secs(16));
        assert!(!e.candidate);
        assert_eq!(
            e.before_acquire.as_deref(),
            Some(&["/usr/local/bin/replica-lag-ok".to_owned()][..])
        );
    }

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

    #[test]
    fn check_etcd_bad_values_are_said_where_they_are() {
        for (etcd, says) in [
            (
                "    lease_ttl: 2s\n",
                "c.yaml:6:16: check.etcd.lease_ttl: 2s must be whole seconds, 3s or more",
            ),
            ("    lease_ttl: 3500ms\n", "must be whole seconds"),
            ("    lease_ttl: 30\n", "has no unit"),
            ("    request_timeout: 0s\n", "check.etcd.request_timeout"),
            ("    candidate: maybe\n", "check.etcd.candidate"),
            ("    before_acquire: []\n", "check.etcd.before_acquire"),
            (
                "    ca_file: etc/ca.pem\n",
                "\"etc/ca.pem\" is not an absolute path",
            ),
            ("    endpoint: http://x\n", "unknown field `endpoint`"),
        ] {
            let e = parse_err(&etcd_config(etcd, "", "  - app.service\n"));
            assert!(e.contains(says), "{etcd:?}: {e}");
        }
        for (endpoints, says) in [
            ("[]", "is empty"),
            ("[ftp://x:1]", "must start with http:// or https://"),
            (
                "[http://x:2379/v3/kv]",
                "must be scheme://host:port and nothing else",
            ),
            ("[http://]", "must be scheme://host:port"),
            ("[http://a:1, http://a:1]", "is listed twice"),
        ] {
            let e = parse_err(&format!(
                "site: a\ncheck:\n  etcd: {{endpoints: {endpoints}, key: /k}}\nunits: [a]\n"
            ));
            assert!(e.contains(says), "{endpoints}: {e}");
        }
        for key in ["k", "\"/a b\"", "\"\""] {
            let e = parse_err(&format!(
                "site: a\ncheck:\n  etcd: {{endpoints: [http://a:1], key: {key}}}\nunits: [a]\n"
            ));
            assert!(
                e.contains("must start with / and be up to 255 printable"),
                "{key}: {e}"
            );
        }
        let e = parse_err(&etcd_config(
            "    candidate: false\n",
            "",
            "  - app.service\n",
        ));
        assert!(
            e.starts_with(
                "c.yaml:6:5: check.etcd.candidate and before_acquire are for automatic mode"
            ),
            "{e}"
        );
        let e = parse_err(&etcd_config(
            "    cert_file: /etc/fm.pem\n",
            "",
            "  - app.service\n",
        ));
        assert!(
            e.starts_with("c.yaml:6:5: check.etcd.cert_file and key_file go together"),
            "{e}"
        );
        let e = parse_err(
            "site: a\ncheck:\n  command: [x]\n  etcd: {endpoints: [http://a:1], key: /k}\nunits: [a]\n",
        );
        assert!(e.contains("has both `command` and `etcd`"), "{e}");
        let e = parse_err(
            "site: a\ncheck:\n  etcd: {endpoints: [http://a:1], key: /k}\n  primary_exit_codes: [0]\nunits: [a]\n",
        );
        assert!(e.contains("are for check.command, not check.etcd"), "{e}");
    }

    #[test]
    fn parses_the_documented_example() {
        let c = parse_ok(GOOD);
        assert_eq!(c.check.command().map(<[String]>::len), Some(3));
        assert_eq!(c.check.timeout, Duration::from_secs(5));
        assert_eq!(c.check.primary_exit_codes, vec![0]);
        assert_eq!(c.check.standby_exit_codes, vec![1]);
        let names: Vec<_> = c.units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "my-application.service",
                "web.service",
                "replica-sync.service"
            ]
        );
        assert_eq!(c.units[0].when, When::Primary);
        assert_eq!(c.units[0].verify_timeout, Duration::from_secs(20));
        assert_eq!(c.units[0].settle, Duration::from_secs(1));
        assert_eq!(c.units[2].when, When::Standby);
        assert_eq!(c.units[2].verify_timeout, Duration::from_secs(90));
        assert_eq!(c.units[2].settle, Duration::ZERO);
    }

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
    fn unknown_top_level_and_check_keys() {
        let e = parse_err("check: {command: [x]}\nunits: [a]\nunit: [b]\n");
        assert!(
            e.starts_with("c.yaml:3:") && e.contains("unknown field `unit`"),
            "{e}"
        );
        let e = parse_err("check:\n  command: [x]\n  timout: 3s\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:") && e.contains("check: unknown field `timout`"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\ndefaults: {setle: 1s}\nunits: [a]\n");
        assert!(e.contains("defaults: unknown field `setle`"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  timeout: 1s\n  timeout: 2s\nunits: [a]\n");
        assert!(e.contains("check: duplicate field `timeout`"), "{e}");
        let e = parse_err("check:\n  timeout: 1s\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:3: check: missing field `command`"),
            "{e}"
        );
        let e = parse_err("check: [x]\nunits: [a]\n");
        assert!(
            e.contains("check: invalid type: sequence, expected a map with `command`"),
            "{e}"
        );
    }

    #[test]
    fn missing_sections() {
        assert!(parse_err("units: [a]\n").contains("missing field `check`"));
        assert!(parse_err("check: {command: [x]}\n").contains("missing field `units`"));
        assert!(parse_err("").contains("config is empty"));
        assert!(parse_err("# only a comment\n").contains("config is empty"));
    }

    #[test]
    fn empty_units_list() {
        let e = parse_err("check: {command: [x]}\nunits: []\n");
        assert!(e.starts_with("c.yaml:2:8: units: is empty"), "{e}");
    }

    #[test]
    fn duplicate_unit() {
        let e = parse_err("check: {command: [x]}\nunits:\n  - a.service\n  - b\n  - a\n");
        assert!(e.starts_with("c.yaml:5:"), "{e}");
        assert!(e.contains("units[2]: a.service is listed twice"), "{e}");
    }

    #[test]
    fn unit_in_both_roles() {
        let e = parse_err(
            "check: {command: [x]}\nunits:\n  - a.service\n  - name: a.service\n    when: standby\n",
        );
        assert!(e.starts_with("c.yaml:4:"), "{e}");
        assert!(e.contains("listed for both roles"), "{e}");
    }

    #[test]
    fn invalid_unit_names() {
        for (name, why) in [
            ("--foo", "looks like an option"),
            ("-x.service", "looks like an option"),
            ("a b.service", "contains ' '"),
            ("app;reboot", "contains ';'"),
            ("foo@.service", "is a template"),
            ("\"@x.service\"", "nothing before '@'"),
            ("\".service\"", "no name before .service"),
            ("\"@.service\"", "nothing before '@'"),
            ("sda.device", "is a device unit"),
            ("session-3.scope", "is a scope unit"),
            ("-x.slice", "looks like an option"),
            // systemd's own slices and scopes: each says what a stop would take down.
            (
                "\"-.slice\"",
                "is systemd's own root slice: stopping it would stop every unit on the host",
            ),
            (
                "system.slice",
                "slice of every system service: stopping it would stop the host's own services",
            ),
            (
                "user.slice",
                "slice of every login session: stopping it would stop every login",
            ),
            (
                "machine.slice",
                "stopping it would stop every VM and container on the host",
            ),
            (
                "capsule.slice",
                "stopping it would stop every capsule's service manager",
            ),
            (
                "init.scope",
                "scope of PID 1, the service manager: stopping it would stop systemd itself",
            ),
            (
                "user-1000.slice",
                "systemd-logind's slice of user 1000: stopping it would stop every login",
            ),
            ("\" machine.slice \"", "every VM and container"),
            ("a#b.service", "contains '#'"),
            ("café", "contains 'é'"),
            ("\"\"", "empty"),
        ] {
            let e = parse_err(&format!("check: {{command: [x]}}\nunits:\n  - {name}\n"));
            assert!(e.starts_with("c.yaml:3:"), "{name}: {e}");
            assert!(e.contains(why), "{name}: expected {why:?} in {e}");
        }
        let long = "a".repeat(260);
        let e = parse_err(&format!("check: {{command: [x]}}\nunits: [{long}]\n"));
        assert!(e.contains("longer than 255"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - name: \"x y\"\n");
        assert!(e.contains("units[0].name: unit name"), "{e}");
    }

    #[test]
    fn every_slice_and_scope_of_systemds_own_is_refused_with_what_it_would_stop() {
        for &(name, what, stops) in SYSTEMDS_OWN {
            let e = normalize_unit_name(name).err().unwrap_or_default();
            assert_eq!(
                e,
                format!(
                    "unit name {name:?} is systemd's own {what}: stopping it would stop {stops}"
                )
            );
        }
    }

    #[test]
    fn unit_name_normalization() {
        assert_eq!(normalize_unit_name("app").as_deref(), Ok("app.service"));
        assert_eq!(normalize_unit_name("app.timer").as_deref(), Ok("app.timer"));
        assert_eq!(normalize_unit_name("a@b").as_deref(), Ok("a@b.service"));
        assert_eq!(
            normalize_unit_name("db-replica@main.service").as_deref(),
            Ok("db-replica@main.service")
        );
        // A dotted name whose last part is not a unit type is a service, as for systemctl.
        assert_eq!(
            normalize_unit_name("app.v2").as_deref(),
            Ok("app.v2.service")
        );
        assert_eq!(
            normalize_unit_name("foo\\x2dbar.mount").as_deref(),
            Ok("foo\\x2dbar.mount")
        );
        // systemd's grammar: every real unit type keeps its suffix (a slice can be started
        // and stopped); anything else after the last dot is part of a service's name, as for
        // systemctl; an instance may contain '@'.
        for name in [
            "app.slice",
            // Below a slice of systemd's, but a site's own: only user-UID.slice is logind's.
            "system-app.slice",
            "machine-app.slice",
            "user-app.slice",
            "a.socket",
            "a.target",
            "a.automount",
            "a.swap",
            "a.path",
        ] {
            assert_eq!(normalize_unit_name(name).as_deref(), Ok(name));
        }
        assert_eq!(
            normalize_unit_name("app.Service").as_deref(),
            Ok("app.Service.service")
        );
        assert_eq!(normalize_unit_name("a@b@c").as_deref(), Ok("a@b@c.service"));
        let longest = format!("{}.service", "a".repeat(255 - ".service".len()));
        assert_eq!(normalize_unit_name(&longest), Ok(longest.clone()));
        assert!(normalize_unit_name(&format!("a{longest}")).is_err());
    }

    #[test]
    fn durations() {
        let unit =
            |extra: &str| format!("check: {{command: [x]}}\nunits:\n  - name: a\n    {extra}\n");
        assert!(parse_err(&unit("verify_timeout: 0s")).contains("must be greater than zero"));
        assert!(parse_err(&unit("verify_timeout: 2h")).contains("almost certainly a typo"));
        assert!(parse_err(&unit("verify_timeout: soon")).contains("invalid duration \"soon\""));
        assert!(parse_err(&unit("verify_timeout: 30")).contains("has no unit; write \"30s\""));
        assert!(parse_err(&unit("settle: 1.5")).contains("has no unit"));
        let e = parse_err(&unit("verify_timeout: 0s"));
        assert!(
            e.starts_with("c.yaml:4:") && e.contains("units[0].verify_timeout"),
            "{e}"
        );
        assert_eq!(
            parse_ok(&unit("settle: 0s")).units[0].settle,
            Duration::ZERO
        );
        assert_eq!(
            parse_ok(&unit("settle: 500ms")).units[0].settle,
            Duration::from_millis(500)
        );
        let e = parse_err("check: {command: [x], timeout: 0s}\nunits: [a]\n");
        assert!(
            e.contains("check.timeout: duration \"0s\" must be greater than zero"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\ndefaults: {verify_timeout: 0s}\nunits: [a]\n");
        assert!(e.contains("defaults.verify_timeout"), "{e}");
        let c = parse_ok("check: {command: [x], fence_after: 5m}\nunits: [a]\n");
        assert_eq!(c.check.fence_after, Some(Duration::from_secs(300)));
        assert_eq!(
            parse_ok("check: {command: [x]}\nunits: [a]\n")
                .check
                .fence_after,
            None
        );
        let e = parse_err("check: {command: [x], fence_after: 0s}\nunits: [a]\n");
        assert!(
            e.starts_with(
                "c.yaml:1:36: check.fence_after: duration \"0s\" must be greater than zero"
            ),
            "{e}"
        );
    }

    #[test]
    fn check_command_and_exit_codes() {
        let e = parse_err("check:\n  command: []\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:2:12: check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: [\"\"]\nunits: [a]\n");
        assert!(e.contains("check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: /bin/true\nunits: [a]\n");
        assert!(e.contains("check.command: invalid type: string"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  standby_exit_codes: [256]\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:24: check.standby_exit_codes[0]: 256 is not an exit code"),
            "{e}"
        );
        // Two given lists: the repeated code, in the list read second.
        let e = parse_err(
            "check:\n  command: [x]\n  standby_exit_codes: [1, 2]\n  primary_exit_codes: [0, 3, 2]\nunits: [a]\n",
        );
        assert!(
            e.starts_with(
                "c.yaml:4:30: check.primary_exit_codes[2]: 2 is also a standby exit code"
            ),
            "{e}"
        );
        let e = parse_err("check: {command: [x], primary_exit_codes: [-1]}\nunits: [a]\n");
        assert!(e.contains("-1 is not an exit code"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  primary_exit_codes: []\nunits: [a]\n");
        assert!(e.contains("check.primary_exit_codes: is empty"), "{e}");
        let c = parse_ok(
            "check:\n  command: [x]\n  primary_exit_codes: [0, 10]\n  standby_exit_codes: [1, 11]\nunits: [a]\n",
        );
        assert_eq!(c.check.primary_exit_codes, vec![0, 10]);
    }

    #[test]
    fn a_code_in_both_lists_is_said_at_the_element_in_either_order() {
        let check = |lists: &str| format!("check:\n  command: [x]\n{lists}units: [a]\n");
        let given = |p: &[i32], s: &[i32]| Ok::<_, &str>((p.to_vec(), s.to_vec()));
        for (lists, expected) in [
            // One list given: held against the other's default, at the element.
            (
                "  primary_exit_codes: [0, 1]\n",
                Err(
                    "c.yaml:3:27: check.primary_exit_codes[1]: 1 is also a standby exit code (standby_exit_codes defaults to [1]); set standby_exit_codes",
                ),
            ),
            (
                "  standby_exit_codes: [2, 0]\n",
                Err(
                    "c.yaml:3:27: check.standby_exit_codes[1]: 0 is also a primary exit code (primary_exit_codes defaults to [0]); set primary_exit_codes",
                ),
            ),
            // The other list, given later, wins over its default: no clash.
            (
                "  primary_exit_codes: [0, 1]\n  standby_exit_codes: [2]\n",
                given(&[0, 1], &[2]),
            ),
            (
                "  standby_exit_codes: [2, 0]\n  primary_exit_codes: [1]\n",
                given(&[1], &[2, 0]),
            ),
            // ... and is held against the list given first.
            (
                "  primary_exit_codes: [0, 1]\n  standby_exit_codes: [2, 1]\n",
                Err("c.yaml:4:27: check.standby_exit_codes[1]: 1 is also a primary exit code\n"),
            ),
            (
                "  standby_exit_codes: [1, 3]\n  primary_exit_codes: [0, 3]\n",
                Err("c.yaml:4:27: check.primary_exit_codes[1]: 3 is also a standby exit code\n"),
            ),
            // A list written as null is given (and wrong): not held against a default.
            (
                "  standby_exit_codes: [0]\n  primary_exit_codes: null\n",
                Err("c.yaml:4:23: check.primary_exit_codes: invalid type"),
            ),
            ("", given(&[0], &[1])),
        ] {
            let text = check(lists);
            let got = parse(Path::new("c.yaml"), &text)
                .map(|c| (c.check.primary_exit_codes, c.check.standby_exit_codes))
                .map_err(|e| e.to_string() + "\n");
            match (&got, expected) {
                (Err(e), Err(want)) => assert!(e.starts_with(want), "{lists}: {e}"),
                (got, want) => assert_eq!(*got, want.map_err(String::from), "{lists}"),
            }
        }
        // On one line, too.
        let e = parse_err("check: {command: [x], primary_exit_codes: [1, 0]}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:1:44: check.primary_exit_codes[0]: 1 is also a standby"),
            "{e}"
        );
    }

    #[test]
    fn without_the_first_look_a_lone_list_is_still_held_against_the_default() {
        // What the first read (told nothing) finds; `parse` reads again to point at the code.
        let text = "check:\n  command: [x]\n  primary_exit_codes: [0, 1]\nunits: [a]\n";
        let e = serde_yaml::from_str::<RawConfig<false>>(text)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "check: 1 is also a standby exit code (standby_exit_codes defaults to [1]); set standby_exit_codes at line 2 column 3"
            )
        );
        assert!(lone_exit_code_list(text));
        assert!(!lone_exit_code_list("check: {command: [x]}\nunits: [a]\n"));
        assert!(!lone_exit_code_list("check: [\n"));
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

    #[test]
    fn site_is_a_plain_label_value() {
        let c = parse_ok("check: {command: [x]}\nsite: dc-1.east_2\nunits: [a]\n");
        assert_eq!(c.site.as_deref(), Some("dc-1.east_2"));
        assert_eq!(parse_ok("check: {command: [x]}\nunits: [a]\n").site, None);
        for bad in ["\"\"", "\"dc 1\"", "dc\\\"1", "[dc1]"] {
            let e = parse_err(&format!(
                "check: {{command: [x]}}\nsite: {bad}\nunits: [a]\n"
            ));
            assert!(e.starts_with("c.yaml:2:7: "), "{bad}: {e}");
        }
    }

    #[test]
    fn metrics_file_and_parallel() {
        let c = parse_ok("check: {command: [x]}\nunits: [a]\n");
        assert_eq!(c.metrics_file, None);
        assert!(!c.parallel);
        let c = parse_ok(
            "check: {command: [x]}\nmetrics_file: /var/lib/node_exporter/fm.prom\nparallel: true\nunits: [a]\n",
        );
        assert_eq!(
            c.metrics_file,
            Some(PathBuf::from("/var/lib/node_exporter/fm.prom"))
        );
        assert!(c.parallel);
        let e = parse_err("check: {command: [x]}\nmetrics_file: fm.prom\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:15: metrics_file: fm.prom is not an absolute path"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nmetrics_file: /x/fm.txt\nunits: [a]\n");
        assert!(e.contains("must end in .prom"), "{e}");
        let e = parse_err("check: {command: [x]}\nparallel: yes please\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:") && e.contains("parallel: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_and_bad_when() {
        let e = parse_err("check: {command: [x]}\nunits:\n  - name: a\n    when: both\n");
        assert!(
            e.starts_with("c.yaml:4:") && e.contains("units[0].when: unknown variant `both`"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: a.service\n");
        assert!(e.contains("units: invalid type: string"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - [a]\n");
        assert!(e.contains("expected a unit name or a map"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - when: standby\n");
        assert!(e.contains("missing field `name`"), "{e}");
    }

    #[test]
    fn broken_yaml_and_binary() {
        let e = parse_err("check: {command: [x]\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:"), "{e}");
        let e = parse_err("check:\n\tcommand: [x]\n");
        assert!(e.starts_with("c.yaml:2:"), "{e}");
        assert!(parse_err("a\0b").contains("not UTF-8 text"));
    }

    #[test]
    fn load_refuses_large_and_binary_files() {
        let dir = std::env::temp_dir().join(format!("fm-config-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let big = dir.join("big.yaml");
        let bin = dir.join("bin.yaml");
        let ok = dir.join("ok.yaml");
        std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).ok();
        std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x80]).ok();
        std::fs::write(&ok, GOOD).ok();
        let big_err = load(&big).map(|_| ()).map_err(|e| e.to_string());
        let bin_err = load(&bin).map(|_| ()).map_err(|e| e.to_string());
        let missing = load(&dir.join("nope.yaml"))
            .map(|_| ())
            .map_err(|e| e.to_string());
        let ok_units = load(&ok).map(|c| c.units.len()).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(big_err.is_err_and(|e| e.contains("refusing anything over")));
        assert!(bin_err.is_err_and(|e| e.contains("not UTF-8")));
        assert!(missing.is_err_and(|e| e.contains("cannot read config")));
        assert_eq!(ok_units, Ok(3));
    }

    #[test]
    fn positions_come_from_the_parser_not_from_a_search_of_the_text() {
        // A commented-out key above the real one (a text search blamed the comment).
        let e = parse_err("check:\n  command: [x]\n  # confirm: 3\n  confirm: 0\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:4:12: check.confirm: 0 must be"),
            "{e}"
        );
        // The same key under `hooks:`, earlier in the file.
        let e =
            parse_err("hooks:\n  on_promote: {command: [x]}\ncheck:\n  command: []\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:4:12: check.command: is empty"), "{e}");
        let e = parse_err(
            "check: {command: [x]}\n# metrics_file: /ok.prom\nmetrics_file: x.prom\nunits: [a]\n",
        );
        assert!(e.starts_with("c.yaml:3:15: metrics_file:"), "{e}");
        // A repeated unit whose name is also a word used before it.
        let e = parse_err(
            "check: {command: [x]}\nunits:\n  - name: x\n    when: standby\n  - standby\n  - standby\n",
        );
        assert!(
            e.starts_with("c.yaml:6:5: units[2]: standby.service is listed twice"),
            "{e}"
        );
    }

    #[test]
    fn byte_order_mark_control_characters_and_second_documents() {
        assert_eq!(
            parse_ok("\u{feff}check:\n  command: [x]\nunits: [a]\n")
                .units
                .len(),
            1
        );
        // Columns as an editor shows them, without the mark.
        let e = parse_err("\u{feff}check: {command: [x], confirm: 0}\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:1:32:"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits: [a\u{1}]\n");
        assert!(
            e.starts_with("c.yaml:2:10: control character U+0001 is not allowed in YAML"),
            "{e}"
        );
        // Columns count characters, as libyaml does.
        let e = parse_err("check: {command: [x]}\r\nunits: [\"\u{e9}\u{7f}\"]\r\n");
        assert!(
            e.starts_with("c.yaml:2:11: control character U+007F"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: [a]\n---\nunits: [b]\n");
        assert!(
            e.starts_with("c.yaml:3:1: a second YAML document (---) is not allowed"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: [a]\n...\nunits: [b]\n");
        assert!(
            e.starts_with("c.yaml:4:1: text after the end of the document (...)"),
            "{e}"
        );
        // Markers around the one document are fine.
        parse_ok("---\ncheck: {command: [x]}\nunits: [a]\n...\n# end\n");
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_sees_it() {
        // libyaml takes quadratic time over these (minutes for a MiB).
        for open in ["[", "{a: ", "- ", "? "] {
            let text = format!(
                "check: {{command: [x]}}\nunits:\n  {}",
                open.repeat(200_000)
            );
            let e = parse_err(&text);
            assert!(
                e.starts_with("c.yaml:3:") && e.contains("nested deeper than 16 levels"),
                "{e}"
            );
        }
    }

    #[test]
    fn an_error_at_the_end_points_into_the_text() {
        // libyaml places it below the final line break, on a line no editor shows.
        let e = parse_err("check: {command: [x]}\nunits: [a\n");
        assert!(e.starts_with("c.yaml:2:10: "), "{e}");
        // The problem's position is said once, in front; the context's stays.
        let e = parse_err("check: {command: [x]\nunits: [a]\n");
        assert_eq!(
            e,
            "c.yaml:2:1: did not find expected ',' or '}', while parsing a flow mapping at line 1 column 8"
        );
        assert_eq!(lines("a\r\nb\rc\u{2028}d\n"), ["a", "b", "c", "d"]);
        assert_eq!(lines(""), [""]);
    }

    #[test]
    fn a_huge_value_is_not_quoted_whole() {
        let long = "a".repeat(100_000);
        let e = parse_err(&format!("check: {{command: [x]}}\nunits: [\"{long}\"]\n"));
        assert!(e.contains("\"… is longer than 255 characters"), "{e}");
        assert!(e.len() < 200, "{} bytes", e.len());
        // Messages that serde_norway writes are cut short too.
        let e = parse_err(&format!(
            "check: {{command: [x], timeout: {long}}}\nunits: [a]\n"
        ));
        assert!(
            e.ends_with('…') && e.len() < 1100,
            "{} bytes: {e:.200}",
            e.len()
        );
    }

    #[test]
    fn load_refuses_what_is_not_a_regular_file_without_blocking() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("fm-config-fifo-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let fifo = dir.join("fifo.yaml");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: a valid NUL-terminated path; mkfifo(3) only creates a file.
        let made = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } == 0;
        // A blocking open of a FIFO without a writer never returns: load in a thread.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        let fifo_err = rx.recv_timeout(Duration::from_secs(10));
        if fifo_err.is_err() {
            // Unblock the reader so the thread can end.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        let dir_err = load(&dir).map(|_| ()).map_err(|e| e.to_string());
        let zero_err = load(Path::new("/dev/zero"))
            .map(|_| ())
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(made, "mkfifo failed");
        let fifo_err = fifo_err.map_err(|_| "load blocked on a FIFO".to_string());
        assert!(fifo_err.is_ok_and(|r| r.is_err_and(|e| e.ends_with(
            "fifo.yaml: cannot read config: it is a FIFO (named pipe), not a regular file"
        ))),);
        assert!(dir_err.is_err_and(|e| e.contains("it is a directory, not a regular file")));
        assert!(
            zero_err.is_err_and(|e| e
                == "/dev/zero: cannot read config: it is a character device, not a regular file")
        );
    }
}
