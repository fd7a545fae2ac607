//! The configuration file: strict parsing and validation. Every error names file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Larger than any sane config; a bigger file is a mistake (a log, a binary) and not parsed.
const MAX_BYTES: u64 = 1024 * 1024;
/// Durations above this are typos ("30m" for "30s"): a run that waits an hour blocks the timer.
const MAX_DURATION: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub path: PathBuf,
    pub check: CheckConfig,
    pub hooks: Hooks,
    pub units: Vec<UnitConfig>,
    /// Prometheus textfile for node_exporter, rewritten at the end of every reconcile.
    pub metrics_file: Option<PathBuf>,
    /// Start (and stop) all units of a step in one batched systemctl call, verified together.
    pub parallel: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub command: Vec<String>,
    pub timeout: Duration,
    pub primary_exit_codes: Vec<i32>,
    pub standby_exit_codes: Vec<i32>,
    /// Results in a row that must agree before a change is acted on (keepalived's rise/fall).
    pub confirm: u32,
    pub confirm_interval: Duration,
    /// Self-fencing: stop the primary units when the role has been unknown this long.
    pub fence_after: Option<Duration>,
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

/// Which role a unit belongs to: it runs on the host holding that role and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Primary,
    Standby,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            When::Primary => "primary",
            When::Standby => "standby",
        }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    check: RawCheck,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    hooks: RawHooks,
    units: Vec<RawUnit>,
    #[serde(default)]
    metrics_file: Option<PathBuf>,
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
struct RawCheck {
    command: Vec<String>,
    #[serde(
        default = "default_check_timeout",
        deserialize_with = "positive_duration"
    )]
    timeout: Duration,
    #[serde(default = "default_primary_codes")]
    primary_exit_codes: Vec<i32>,
    #[serde(default = "default_standby_codes")]
    standby_exit_codes: Vec<i32>,
    #[serde(default = "default_confirm")]
    confirm: u32,
    #[serde(
        default = "default_confirm_interval",
        deserialize_with = "positive_duration"
    )]
    confirm_interval: Duration,
    #[serde(default, deserialize_with = "opt_positive_duration")]
    fence_after: Option<Duration>,
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
struct RawUnitMap {
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

/// A unit entry: either a bare name (shorthand) or a map. Written by hand rather than with
/// `#[serde(untagged)]`, which would replace the precise error with "did not match any variant".
struct RawUnit(RawUnitMap);

impl<'de> Deserialize<'de> for RawUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawUnit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a unit name or a map with `name`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawUnit, E> {
                Ok(RawUnit(RawUnitMap {
                    name: normalize_unit_name(s).map_err(E::custom)?,
                    when: None,
                    verify_timeout: None,
                    settle: None,
                    managed: true,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawUnit, A::Error> {
                RawUnitMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawUnit)
            }
        }
        d.deserialize_any(V)
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

fn parse_duration<E: de::Error>(s: &str, allow_zero: bool) -> Result<Duration, E> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        E::custom(format!(
            "invalid duration {s:?} ({e}); write e.g. \"10s\" or \"1m 30s\""
        ))
    })?;
    if !allow_zero && d.is_zero() {
        return Err(E::custom(format!(
            "duration {s:?} must be greater than zero"
        )));
    }
    if d > MAX_DURATION {
        return Err(E::custom(format!(
            "duration {s:?} is longer than {}; that is almost certainly a typo",
            humantime::format_duration(MAX_DURATION)
        )));
    }
    Ok(d)
}

/// Parses inside the visitor, so serde_norway stamps the error with the value's own key path
/// and position (an error raised after deserializing would point at the enclosing entry).
struct DurationVisitor {
    allow_zero: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"10s\" or \"1m 30s\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        parse_duration(s, self.allow_zero)
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

/// Unit types that `systemctl start` can act on.
const STARTABLE_SUFFIXES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
];

/// Validates a unit name against systemd's grammar and appends `.service` to a bare name, as
/// systemctl itself would. A leading `-` is refused outright: it could be read as an option.
pub fn normalize_unit_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("unit name is empty".into());
    }
    if name.starts_with('-') {
        return Err(format!(
            "unit name {raw:?} starts with '-' (looks like an option)"
        ));
    }
    let has_suffix = name
        .rsplit_once('.')
        .is_some_and(|(_, suffix)| STARTABLE_SUFFIXES.contains(&suffix));
    let full = if has_suffix {
        name.to_owned()
    } else {
        format!("{name}.service")
    };
    // systemd's UNIT_NAME_MAX is 256 including the terminating NUL.
    if full.len() > 255 {
        return Err(format!("unit name {raw:?} is longer than 255 characters"));
    }
    let Some((stem, _suffix)) = full.rsplit_once('.') else {
        return Err(format!("unit name {raw:?} has no type suffix"));
    };
    if let Some(bad) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "unit name {raw:?} contains {bad:?}; systemd allows only ASCII letters, digits and \":-_.\\@\""
        ));
    }
    if let Some((prefix, instance)) = stem.split_once('@') {
        if prefix.is_empty() {
            return Err(format!("unit name {raw:?} has nothing before '@'"));
        }
        if instance.is_empty() {
            return Err(format!(
                "unit name {raw:?} is a template; name an instance, e.g. {prefix}@main.{_suffix}",
                _suffix = full.rsplit_once('.').map_or("service", |(_, s)| s)
            ));
        }
        if instance.contains('@') {
            return Err(format!("unit name {raw:?} contains more than one '@'"));
        }
    }
    Ok(full)
}

// ---- loading and validation ---------------------------------------------------------------

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    use std::io::Read;
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
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

pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let invalid = |line: usize, column: usize, message: String| ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        message,
    };
    if text.contains('\0') {
        return Err(ConfigError::NotText {
            path: path.to_owned(),
        });
    }
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if text.lines().all(blank) {
        return Err(invalid(
            1,
            1,
            "config is empty; it needs `check` and `units`".into(),
        ));
    }
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        invalid(line, column, strip_mark(&e.to_string()))
    })?;

    let at_key = |key: &str, message: String| {
        let (line, column) = locate_key(text, key);
        invalid(line, column, message)
    };

    let check = raw.check;
    if check.command.is_empty() || check.command[0].trim().is_empty() {
        return Err(at_key(
            "command",
            "check.command: is empty; give the program and its arguments, e.g. [\"/usr/local/bin/amIthePrimary\"]".into(),
        ));
    }
    for (key, codes) in [
        ("primary_exit_codes", &check.primary_exit_codes),
        ("standby_exit_codes", &check.standby_exit_codes),
    ] {
        if codes.is_empty() {
            return Err(at_key(key, format!("check.{key}: is empty")));
        }
        if let Some(c) = codes.iter().find(|c| !(0..=255).contains(*c)) {
            return Err(at_key(
                key,
                format!("check.{key}: {c} is not an exit code (0 to 255)"),
            ));
        }
    }
    if let Some(c) = check
        .primary_exit_codes
        .iter()
        .find(|c| check.standby_exit_codes.contains(c))
    {
        return Err(at_key(
            "standby_exit_codes",
            format!("check.standby_exit_codes: {c} is also a primary exit code"),
        ));
    }

    if !(1..=10).contains(&check.confirm) {
        return Err(at_key(
            "confirm",
            format!("check.confirm: {} must be between 1 and 10", check.confirm),
        ));
    }
    let hooks = Hooks {
        on_promote: raw.hooks.on_promote,
        on_demote: raw.hooks.on_demote,
        on_failure: raw.hooks.on_failure,
    };
    for (key, hook) in hooks.all() {
        if hook.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(at_key(key, format!("hooks.{key}.command: is empty")));
        }
    }

    if let Some(m) = &raw.metrics_file {
        if !m.is_absolute() {
            return Err(at_key(
                "metrics_file",
                format!("metrics_file: {} is not an absolute path", m.display()),
            ));
        }
        if m.extension().is_none_or(|e| e != "prom") {
            return Err(at_key(
                "metrics_file",
                format!(
                    "metrics_file: {} must end in .prom, or node_exporter's textfile collector ignores it",
                    m.display()
                ),
            ));
        }
    }

    if raw.units.is_empty() {
        return Err(at_key(
            "units",
            "units: is empty; list the units this host manages".into(),
        ));
    }
    let mut units: Vec<UnitConfig> = Vec::with_capacity(raw.units.len());
    for (i, RawUnit(u)) in raw.units.into_iter().enumerate() {
        let when = u.when.unwrap_or(When::Primary);
        if let Some(prev) = units.iter().find(|p| p.name == u.name) {
            let (line, column) = locate_unit(text, &u.name, 2);
            let message = if prev.when == when {
                format!("units[{i}]: {} is listed twice", u.name)
            } else {
                format!(
                    "units[{i}]: {} is listed for both roles; a unit runs on the primary or on the standby, not both",
                    u.name
                )
            };
            return Err(invalid(line, column, message));
        }
        units.push(UnitConfig {
            name: u.name,
            when,
            verify_timeout: u.verify_timeout.unwrap_or(raw.defaults.verify_timeout),
            settle: u.settle.unwrap_or(raw.defaults.settle),
            managed: u.managed,
        });
    }

    Ok(Config {
        path: path.to_owned(),
        check: CheckConfig {
            command: check.command,
            timeout: check.timeout,
            primary_exit_codes: check.primary_exit_codes,
            standby_exit_codes: check.standby_exit_codes,
            confirm: check.confirm,
            confirm_interval: check.confirm_interval,
            fence_after: check.fence_after,
        },
        hooks,
        units,
        metrics_file: raw.metrics_file,
        parallel: raw.parallel,
    })
}

/// serde_norway appends " at line L column C"; we print the position in front instead.
fn strip_mark(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

/// Line and column (1-based) of the first `key:` in the text, in block or flow style;
/// serde does not keep positions for values it accepted, so errors found after parsing are
/// placed by looking the key up.
fn locate_key(text: &str, key: &str) -> (usize, usize) {
    for (n, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        let mut from = 0;
        while let Some(i) = code[from..].find(key).map(|i| i + from) {
            let before = code[..i].chars().next_back();
            let after = code[i + key.len()..].trim_start();
            if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) && after.starts_with(':') {
                return (n + 1, i + 1);
            }
            from = i + key.len();
        }
    }
    (1, 1)
}

/// Position of the `nth` unit entry (1-based) naming `name`, with or without `.service`,
/// for errors about repeated units.
fn locate_unit(text: &str, name: &str, nth: usize) -> (usize, usize) {
    let bare = name.strip_suffix(".service").unwrap_or(name);
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    let start = locate_key(text, "units").0;
    let mut seen = 0;
    for (n, line) in text.lines().enumerate().skip(start.saturating_sub(1)) {
        let code = line.split(" #").next().unwrap_or(line);
        let mut col = 0;
        for token in code.split(|c: char| !is_name_char(c)) {
            if !token.is_empty() && (token == name || token == bare) {
                seen += 1;
                if seen == nth {
                    return (n + 1, col + 1);
                }
            }
            col += token.len() + 1;
        }
    }
    (1, 1)
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

    #[test]
    fn parses_the_documented_example() {
        let c = parse_ok(GOOD);
        assert_eq!(c.check.command.len(), 3);
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
        assert!(e.starts_with("c.yaml:2:1: units: is empty"), "{e}");
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
            ("a@b@c.service", "more than one '@'"),
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
    }

    #[test]
    fn check_command_and_exit_codes() {
        let e = parse_err("check:\n  command: []\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:2:3: check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: [\"\"]\nunits: [a]\n");
        assert!(e.contains("check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: /bin/true\nunits: [a]\n");
        assert!(e.contains("check.command: invalid type: string"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  primary_exit_codes: [0, 1]\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:") && e.contains("1 is also a primary exit code"),
            "{e}"
        );
        let e = parse_err("check:\n  command: [x]\n  standby_exit_codes: [256]\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:3:") && e.contains("256 is not an exit code"),
            "{e}"
        );
        let e = parse_err("check:\n  command: [x]\n  primary_exit_codes: []\nunits: [a]\n");
        assert!(e.contains("check.primary_exit_codes: is empty"), "{e}");
        let c = parse_ok(
            "check:\n  command: [x]\n  primary_exit_codes: [0, 10]\n  standby_exit_codes: [1, 11]\nunits: [a]\n",
        );
        assert_eq!(c.check.primary_exit_codes, vec![0, 10]);
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
            e.starts_with("c.yaml:1:23:")
                && e.contains("check.confirm: 0 must be between 1 and 10"),
            "{e}"
        );
        let e =
            parse_err("check: {command: [x]}\nhooks:\n  on_promote: {command: []}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:3:") && e.contains("hooks.on_promote.command: is empty"),
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
            e.starts_with("c.yaml:2:1: metrics_file: fm.prom is not an absolute path"),
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
}
