//! The command line, as clap sees it. Kept free of logic so the man page and completions can
//! be generated from the same definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "failover-manager",
    version,
    about = "Runs the right systemd units for this host's role (primary or standby), and verifies them",
    long_about = "Runs the configured primary check, reads the state of every managed unit with one \
                  batched `systemctl is-active`, and starts or stops units so that exactly this \
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
        default_value = crate::config::DEFAULT_PATH,
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
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// How long to wait for another run to finish before giving up (exit 75)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lock_wait: std::time::Duration,

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
