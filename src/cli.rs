//! The command line, as clap sees it. Kept free of logic so the man page and completions can
//! be generated from the same definition: build.rs compiles this file too (`#[path]`), so it
//! must stay self-contained (clap, humantime and std only; no `crate::` paths). The checks of
//! values that the config file accepts too live in `cli/values.rs`, shared with `config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

// An explicit path: the same file whether this is compiled as the crate's `cli` or by build.rs.
#[path = "cli/values.rs"]
pub mod values;

/// Where the config file is read from unless `-c` or `$FAILOVER_MANAGER_CONFIG` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/failover-manager/config.yaml";

/// `0.1.0 (git abc1234)` when built from a git checkout, else `0.1.0`. `FM_VERSION` is set by
/// build.rs; it is absent while build.rs itself is compiled (it includes this file).
pub const VERSION: &str = match option_env!("FM_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Every exit status, for the man page's EXIT STATUS (a test holds it to src/exit.rs).
#[allow(dead_code)] // read by build.rs and the test below, not by the binary
pub const EXIT_STATUS: &[(u8, &str)] = &[
    (
        0,
        "Converged, nothing to do, paused, or the check did not confirm a change (reconcile); \
         in sync (diff); valid, without a warning (validate); done (pause, resume); every host \
         in step with the key (status).",
    ),
    (
        1,
        "A unit did not reach its state, a hook failed, systemd could not be asked, the lock \
         could not be taken (held far too long, interrupted), or output, the metrics or another \
         file of the tool's own could not be written; diff found drift; validate found warnings \
         only (a unit enabled at boot, a service timeout too short, systemd not reachable); \
         status found something to look at (no site holds the role, hosts behind the key, the \
         primary on two sites) or could not read etcd.",
    ),
    (2, "Bad command line."),
    (
        3,
        "The check could not tell the role (failed, timed out, crashed, not found; etcd could \
         not be read, or its key names no site): nothing was changed (reconcile, diff).",
    ),
    (
        75,
        "Another run held the lock for all of --lock-wait: this run was skipped; promote \
         --no-wait before the old site is sure to have stopped: try again later.",
    ),
    (
        78,
        "The config file is invalid, or a file it names is unsafe to run, or cannot serve the \
         command (watch without check.etcd, an unreadable credentials file); validate found \
         errors (a unit that does not exist or is masked, a check command that is missing or \
         not executable, a metrics_file directory that is not root's alone).",
    ),
];

#[derive(Debug, Parser)]
#[command(
    name = "failover-manager",
    version = VERSION,
    about = "Runs the right systemd units for this host's role (primary or standby), and verifies them",
    long_about = "Runs the configured primary check, reads the state of every managed unit from systemd \
                  in one batched D-Bus call, and starts or stops units so that exactly this \
                  role's units run. Meant to run from a systemd timer every minute on every host; \
                  prints nothing when nothing changed. An unknown role (check failed, timed out or \
                  crashed) never changes anything."
)]
pub struct Cli {
    /// Config file
    #[arg(
        short,
        long,
        global = true,
        env = "FAILOVER_MANAGER_CONFIG",
        default_value = DEFAULT_CONFIG,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// Explain each decision (-vv: also every command run)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print errors only
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Without a command: `reconcile`
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the role, start/stop units to match it and verify them (the default)
    Reconcile(ReconcileArgs),
    /// Show desired against observed state per unit; exit 1 on drift
    Diff(OutputArgs),
    /// Check the config file, and what this host says about its units and check command
    Validate(ValidateArgs),
    /// Maintenance mode: reconcile changes nothing until `resume` (survives reboots)
    Pause(PauseArgs),
    /// Leave maintenance mode
    Resume,
    /// Follow the etcd key (check.etcd) and start a run at once whenever it changes or
    /// expires; runs until stopped (failover-manager-watch.service)
    Watch(WatchArgs),
    /// Where the role is and what every host acknowledged last, from etcd (check.etcd);
    /// read-only, from any host
    Status(OutputArgs),
    /// Move the role to SITE with no overlap (check.etcd): the old site stops first, then
    /// SITE starts; back to the old site if it does not stop in time
    Switchover(SwitchoverArgs),
    /// After the site holding the role was lost (manual mode): wait until its hosts have
    /// fenced themselves, then give the role to SITE, recording who and when in etcd
    Promote(PromoteArgs),
    /// Page once when this host's incident starts and once when it ends: run by the alert
    /// unit (failover-manager-alert@.service) at every failed run; sends nothing otherwise
    Page(PageArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PromoteArgs {
    /// The site to give the role to
    #[arg(value_name = "SITE", value_parser = values::site)]
    pub site: String,

    /// Do not wait: when it is not safe yet, start the countdown (the old site is told to stop)
    /// and exit 75 saying how long is left; run it again then
    #[arg(long, conflicts_with = "force")]
    pub no_wait: bool,

    /// Give SITE the role now, without waiting for the old site to fence itself: it may still
    /// run the application. Recorded in etcd
    #[arg(long)]
    pub force: bool,

    /// How long to wait for SITE's hosts to acknowledge running it, once the key names SITE
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = values::positive)]
    pub timeout: std::time::Duration,

    /// Say what it would wait for and how long, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// This alert unit's name (%n): a run starts it when an incident it paged for ends
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,

    /// The pager: a command (argv) that gets the page's one line on stdin, and
    /// FAILOVER_MANAGER_EVENT=started|ended in its environment; a page is marked sent only
    /// when it exits 0
    #[arg(required = true, last = true, value_name = "PAGER")]
    pub pager: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SwitchoverArgs {
    /// The site to give the role to
    #[arg(value_name = "SITE", value_parser = values::site)]
    pub site: String,

    /// How long to wait for each site's hosts to acknowledge (the old one stopping, the new
    /// one starting)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = values::positive)]
    pub timeout: std::time::Duration,

    /// Say which hosts it would wait for, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// The unit to start on every change
    #[arg(long, value_name = "UNIT", default_value = "failover-manager.service")]
    pub unit: String,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Check the config file only, without asking systemd (e.g. in a config repo's CI)
    #[arg(long)]
    pub config_only: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// Why, for whoever finds the host paused
    #[arg(long, value_name = "TEXT", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub reason: String,
}

impl ReconcileArgs {
    /// The options of a bare `reconcile`, as clap fills them (the command run by default).
    pub fn defaults() -> ReconcileArgs {
        #[derive(Parser)]
        struct Bare {
            #[command(flatten)]
            args: ReconcileArgs,
        }
        Bare::parse_from(["reconcile"]).args
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for another run to finish before giving up (exit 75); at most 1h
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = values::lock_wait)]
    pub lock_wait: std::time::Duration,

    /// Write Prometheus metrics here (node_exporter textfile; an absolute path ending in
    /// .prom); overrides `metrics_file:`
    #[arg(long, value_name = "PATH", value_parser = values::metrics_file_arg)]
    pub metrics_file: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::EXIT_STATUS;
    use crate::exit::ExitCode;

    #[test]
    fn man_page_exit_status_lists_exactly_the_codes_the_binary_uses() {
        use ExitCode::*;
        let all = [Success, Failure, Usage, RoleUnknown, Locked, ConfigInvalid];
        for c in all {
            // A new variant breaks this match: add it to `all` and to EXIT_STATUS.
            match c {
                Success | Failure | Usage | RoleUnknown | Locked | ConfigInvalid => {}
            }
        }
        let mut used: Vec<u8> = all.iter().map(|c| c.code()).collect();
        used.sort_unstable();
        used.dedup();
        let documented: Vec<u8> = man_page_exit_status().iter().map(|(c, _)| *c).collect();
        assert_eq!(documented, used);
    }

    /// The EXIT STATUS section of failover-manager.1 as build.rs generated it (what is
    /// installed), read back the way man shows it: each code and its text.
    fn man_page_exit_status() -> Vec<(u8, String)> {
        let page = include_str!(concat!(env!("OUT_DIR"), "/assets/man/failover-manager.1"));
        let section = page
            .split_once("\n.SH \"EXIT STATUS\"\n")
            .and_then(|(_, rest)| rest.split("\n.SH ").next())
            .expect("failover-manager.1 has an EXIT STATUS section");
        section
            .split(".TP\n")
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| {
                let (code, text) = entry.split_once('\n').unwrap_or((entry, ""));
                let code = code
                    .strip_prefix("\\fB")
                    .and_then(|c| c.strip_suffix("\\fR"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or_else(|| panic!("not a bold exit code: {code:?}"));
                // The only escapes roff needs in this text: a dash, an apostrophe.
                let text = text
                    .trim_end()
                    .replace('\n', " ")
                    .replace("\\-", "-")
                    .replace("\\*(Aq", "'");
                assert!(
                    !text.contains('\\'),
                    "an escape this test cannot read: {text}"
                );
                (code, text)
            })
            .collect()
    }

    #[test]
    fn the_generated_man_page_says_exit_status_word_for_word() {
        let want: Vec<(u8, String)> = EXIT_STATUS
            .iter()
            .map(|(code, text)| (*code, (*text).to_owned()))
            .collect();
        assert_eq!(man_page_exit_status(), want);
    }

    /// The codes under which the man page's EXIT STATUS says `words`.
    fn codes_saying(words: &str) -> Vec<u8> {
        let words = words.to_lowercase();
        man_page_exit_status()
            .into_iter()
            .filter(|(_, text)| text.to_lowercase().contains(&words))
            .map(|(code, _)| code)
            .collect()
    }

    #[test]
    fn each_way_a_command_ends_is_said_under_the_code_it_exits_with() {
        use crate::exit::Status::{self, *};
        for status in [
            Converged,
            Failed,
            RoleUnknown,
            InSync,
            Drift,
            Valid,
            Warnings,
            Invalid,
            Healthy,
            Degraded,
            NotYet,
        ] {
            // A new variant breaks this match: add it to the list and its words to EXIT_STATUS.
            let words = match status {
                Converged => "converged",
                Failed => "a unit did not reach its state",
                RoleUnknown => "could not tell the role",
                InSync => "in sync (diff)",
                Drift => "diff found drift",
                Valid => "valid, without a warning (validate)",
                Warnings => "validate found warnings only",
                Invalid => "validate found errors",
                Healthy => "every host in step with the key (status)",
                Degraded => "status found something to look at",
                NotYet => "promote --no-wait before",
            };
            let code = ExitCode::of(&Ok::<Status, _>(status)).code();
            assert_eq!(codes_saying(words), [code], "{status:?}: {words:?}");
        }
    }

    #[test]
    fn each_error_is_said_under_the_code_it_exits_with() {
        use crate::config::ConfigError;
        use crate::exit::Error;
        use crate::lock::LockError;
        use crate::maintenance::PauseError;
        use crate::secure_fs::FsError;
        use crate::security::SecurityError;
        use crate::systemd::SystemdError;
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let fs = || FsError::Io {
            what: "file".into(),
            path: "f".into(),
            source: io(),
        };
        let held = |held_for| LockError::Stuck {
            path: "l".into(),
            holder: "pid 1".into(),
            held_for,
        };
        for error in [
            Error::Config(ConfigError::NotText { path: "c".into() }),
            Error::Insecure(SecurityError::Unsafe {
                what: "check".into(),
                path: "c".into(),
                problem: "owned by uid 1000".into(),
                fix: "chown root".into(),
            }),
            Error::Lock(LockError::Busy {
                path: "l".into(),
                holder: "pid 1".into(),
                waited: std::time::Duration::ZERO,
            }),
            Error::Lock(held(std::time::Duration::from_secs(3600))),
            Error::Lock(LockError::Interrupted { path: "l".into() }),
            Error::Lock(LockError::File(fs())),
            Error::Pause(PauseError::File(fs())),
            Error::Systemd(SystemdError::Connect("no".into())),
            Error::Fence(fs()),
            Error::Output(io()),
            Error::Setup("watch follows check.etcd".into()),
        ] {
            // A new variant breaks this match: add one to the list and its words to EXIT_STATUS.
            let words = match &error {
                Error::Config(_) => "the config file is invalid",
                Error::Insecure(_) => "unsafe to run",
                Error::Lock(LockError::Busy { .. }) => "held the lock for all of --lock-wait",
                Error::Lock(LockError::Stuck { .. }) => "held far too long",
                Error::Lock(LockError::Interrupted { .. }) => "interrupted",
                Error::Lock(LockError::Open { .. } | LockError::File(_)) => {
                    "the lock could not be taken"
                }
                Error::Pause(_) | Error::Fence(_) => "file of the tool's own",
                Error::Systemd(_) => "systemd could not be asked",
                Error::Output(_) => "output",
                Error::Setup(_) => "cannot serve the command",
            };
            let code = ExitCode::of(&Err(error)).code();
            assert!(
                codes_saying(words).contains(&code),
                "{words:?}, code {code}"
            );
        }
    }
}
