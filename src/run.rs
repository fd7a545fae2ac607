//! One run of a command: load, check, observe, plan, and then print, diff or apply.
//! Returns a status; the exit code is decided in `exit`.

use std::io::{IsTerminal, Write};

use crate::apply;
use crate::check::{self, CheckResult, Role};
use crate::cli::{Cli, Command, Format, ReconcileArgs};
use crate::config::{self, Config, ConfigError};
use crate::plan::{self, Plan};
use crate::report;
use crate::systemctl::{Manager, Systemctl, SystemctlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reconcile reached the desired state (or had nothing to do).
    Converged,
    /// Reconcile could not reach it.
    Failed,
    /// The check could not tell the role; nothing was changed.
    RoleUnknown,
    InSync,
    Drift,
    Valid,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Systemctl(#[from] SystemctlError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

pub fn run(cli: &Cli) -> Result<Status, Error> {
    let config = config::load(&cli.config)?;
    let mgr = Systemctl;
    match &cli.command {
        None => reconcile(&config, &ReconcileArgs::default(), cli.quiet, &mgr),
        Some(Command::Reconcile(args)) => reconcile(&config, args, cli.quiet, &mgr),
        Some(Command::Diff(args)) => diff(&config, args.output, &mgr),
        Some(Command::Validate) => {
            if !cli.quiet {
                println!(
                    "{}: valid ({} units)",
                    config.path.display(),
                    config.units.len()
                );
            }
            Ok(Status::Valid)
        }
    }
}

/// Steps 1–3 of every run: the check, one batched observation, the plan.
fn observe(config: &Config, mgr: &dyn Manager) -> Result<(CheckResult, Plan), Error> {
    let check = check::run(&config.check);
    log::info!("role {} (check {})", check.role, check.summary());
    let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
    let observed = mgr.is_active(&names)?;
    let plan = plan::plan(check.role, &config.units, &observed);
    for u in &plan.units {
        log::info!(
            "{}: when {:?}, wanted {:?}, is {}: {}",
            u.name,
            u.when,
            u.desired,
            u.observed,
            match u.action {
                Some(a) => format!("{a:?}"),
                None => "nothing to do".into(),
            }
        );
    }
    Ok((check, plan))
}

fn reconcile(
    config: &Config,
    args: &ReconcileArgs,
    quiet: bool,
    mgr: &dyn Manager,
) -> Result<Status, Error> {
    let (check, plan) = observe(config, mgr)?;
    let json = args.output.output == Format::Json;
    if plan.role == Role::Unknown {
        for l in report::unknown_role(&check) {
            log::error!("{l}");
        }
        if json {
            print_out(&report::json("reconcile", &check, &plan, &[], args.dry_run))?;
        }
        return Ok(Status::RoleUnknown);
    }
    for u in plan
        .units
        .iter()
        .filter(|u| u.action.is_none() && !u.in_sync())
    {
        log::warn!(
            "{}: is {}, not a state to act on; leaving it for the next run",
            u.name,
            u.observed
        );
    }
    if args.dry_run {
        if json {
            print_out(&report::json("reconcile", &check, &plan, &[], true))?;
        } else {
            print_out(&report::dry_run(&plan))?;
        }
        return Ok(Status::Converged);
    }
    let results = apply::apply(&plan, &config.units, mgr);
    let (changes, errors) = report::changes(&plan, &results);
    if json {
        print_out(&report::json("reconcile", &check, &plan, &results, false))?;
    } else if !quiet && !changes.is_empty() {
        print_out(&(changes.join("\n") + "\n"))?;
    }
    for e in &errors {
        log::error!("{e}");
    }
    if results.iter().any(apply::StepResult::failed) || crate::interrupt::requested() {
        Ok(Status::Failed)
    } else {
        Ok(Status::Converged)
    }
}

fn diff(config: &Config, format: Format, mgr: &dyn Manager) -> Result<Status, Error> {
    let (check, plan) = observe(config, mgr)?;
    match format {
        Format::Json => print_out(&report::json("diff", &check, &plan, &[], true))?,
        Format::Text => {
            let stdout = std::io::stdout();
            let color =
                stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            print_out(&report::diff(&plan, &check, report::Style { color }))?;
        }
    }
    Ok(match (plan.role, plan.in_sync()) {
        (Role::Unknown, _) => Status::RoleUnknown,
        (_, true) => Status::InSync,
        (_, false) => Status::Drift,
    })
}

fn print_out(s: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
