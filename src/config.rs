//! The configuration file: strict parsing and validation. Every error names file, line and
//! column, of the offending value, and its key path.
//!
//! Validation happens while serde_norway deserialises (in visitors), never afterwards: an error
//! raised inside a visitor is stamped by serde_norway with that value's own position and key
//! path, so no position ever has to be guessed by searching the text.
//!
//! This file holds the public types and the entry points, [`load`] and [`parse`]. The text is
//! scanned first by [`prescan`], then read into the serde-facing shapes of [`raw`] by the
//! visitors of [`visit`] (single values and `units:`) and [`check_map`] (`check:`); unit names
//! are checked in [`unit_name`], the rules across keys in [`consistent`] (with automatic mode's
//! [`Budget`]), and lines and positions in the text are counted in [`text`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::When;

mod budget;
mod check_map;
mod consistent;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub mod inputs;
mod prescan;
mod raw;
// The man page failover-manager.yaml(5), rendered by build.rs; the crate only tests it.
#[cfg(test)]
mod reference;
mod text;
mod unit_name;
mod visit;

pub use budget::Budget;
use check_map::lone_exit_code_list;
use consistent::consistent;
use raw::RawConfig;
use text::{forbidden_character, key_position, shorten, strip_mark, within};

// Named by the serde attributes of the public types below.
use raw::{default_hook_timeout, default_request_timeout, yes};
use visit::{argv, endpoints, etcd_key, lease_ttl, opt_argv, positive_duration};

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
                timeout: raw::default_check_timeout(),
                primary_exit_codes: raw::default_primary_codes(),
                standby_exit_codes: raw::default_standby_codes(),
                confirm: 1,
                confirm_interval: raw::default_confirm_interval(),
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

// ---- loading and parsing ------------------------------------------------------------------

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

    // These helpers serve the tests of the submodules too.
    pub(super) fn parse_ok(text: &str) -> Config {
        match parse(Path::new("c.yaml"), text) {
            Ok(c) => c,
            Err(e) => panic!("expected valid config, got: {e}"),
        }
    }

    pub(super) fn parse_err(text: &str) -> String {
        match parse(Path::new("c.yaml"), text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const ETCD: &str = "site: dc1\ncheck:\n  etcd:\n    endpoints: [http://127.0.0.1:2379, https://10.0.0.2:2379]\n    key: /fm/primary\n";

    pub(super) fn etcd_config(etcd_extra: &str, check_extra: &str, units: &str) -> String {
        format!("{ETCD}{etcd_extra}{check_extra}units:\n{units}")
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
    fn missing_sections() {
        assert!(parse_err("units: [a]\n").contains("missing field `check`"));
        assert!(parse_err("check: {command: [x]}\n").contains("missing field `units`"));
        assert!(parse_err("").contains("config is empty"));
        assert!(parse_err("# only a comment\n").contains("config is empty"));
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
    fn load_refuses_what_is_not_a_regular_file_without_blocking() {
        let dir = std::env::temp_dir().join(format!("fm-config-fifo-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let fifo = dir.join("fifo.yaml");
        let made = crate::sys::mkfifo(&fifo, 0o600).is_ok();
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
