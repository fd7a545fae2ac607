//! One run of a command: load the config, then reconcile (`reconcile` decides, this module
//! prints what it returned and writes the metrics), diff, validate, pause or resume.
//! Returns a status; the exit code is decided in `exit`.

use std::io::IsTerminal;
use std::path::Path;

use crate::cli::{Cli, Command, Format, ReconcileArgs, ValidateArgs};
use crate::config::{self, Config};
use crate::domain::Role;
use crate::exit::{Error, Status};
use crate::lock::{self, LockError};
use crate::maintenance::{self, Pause};
use crate::metrics;
use crate::output::print_out;
use crate::plan::{self, Plan};
use crate::reconcile::{self, End, Host, Options, Report, System};
use crate::report;
use crate::security;
use crate::validate::{self, Severity};

pub fn run(cli: &Cli) -> Result<Status, Error> {
    let pause_path = Path::new(maintenance::PATH);
    // Pause and resume must work even when the config is broken: that is when they are needed.
    match &cli.command {
        Some(Command::Pause(args)) => return pause(pause_path, &args.reason, cli.quiet),
        Some(Command::Resume) => return resume(pause_path, cli.quiet),
        // Paging must work when the config does not: a broken config is an incident too.
        Some(Command::Page(args)) => return crate::paging::page(args),
        _ => {}
    }
    let config =
        config::load(&cli.config).map_err(|e| crate::paging::unusable_config(cli, e.into()))?;
    // Ownership is a property of the host that will run these programs as root, not of the
    // file's text: `validate --config-only` (a config repo's CI) leaves it out.
    let config_only = matches!(&cli.command, Some(Command::Validate(v)) if v.config_only);
    if security::running_as_root() && !config_only {
        security::check_config(&config)
            .map_err(|e| crate::paging::unusable_config(cli, e.into()))?;
    }
    let host = System::new();
    match &cli.command {
        None => reconcile(&config, &ReconcileArgs::defaults(), cli.quiet, &host),
        Some(Command::Reconcile(args)) => reconcile(&config, args, cli.quiet, &host),
        Some(Command::Diff(args)) => diff(&config, args.output, &host),
        Some(Command::Validate(args)) => validate(&config, args, cli.quiet, &host),
        Some(Command::Watch(args)) => crate::watch::run(&config, &args.unit),
        Some(Command::Status(args)) => crate::fleet::status(&config, args.output),
        Some(Command::Switchover(args)) => crate::fleet::switchover(&config, args),
        Some(Command::Promote(args)) => crate::fleet::promote(&config, args),
        Some(Command::Pause(_) | Command::Resume | Command::Page(_)) => Ok(Status::Converged),
    }
}

fn reconcile(
    config: &Config,
    args: &ReconcileArgs,
    quiet: bool,
    host: &dyn Host,
) -> Result<Status, Error> {
    let started = std::time::Instant::now();
    let metrics_file = args.metrics_file.as_ref().or(config.metrics_file.as_ref());
    let opts = Options {
        dry_run: args.dry_run,
        lock_wait: args.lock_wait,
        observe_after: metrics_file.is_some(),
    };
    let (report, said) = match reconcile::reconcile(config, opts, host) {
        Ok(r) => {
            let said = say(&r, args, quiet);
            (Ok(r), said)
        }
        Err(e) => (Err(e), Ok(())),
    };
    let mut status = match (&report, &said) {
        (Ok(r), Ok(())) => Some(r.status()),
        _ => None,
    };
    // A dry run changes nothing, and a run skipped for the lock leaves it to the holder.
    let skipped = matches!(report, Err(Error::Lock(LockError::Busy { .. })));
    let incident = match args.dry_run || skipped {
        true => None,
        false => crate::paging::keep(&report, status, host),
    };
    if let (Some(path), false, false) = (metrics_file, args.dry_run, skipped) {
        let r = report.as_ref().ok();
        let text = metrics::render(&metrics::Snapshot {
            check: r.map(|r| &r.check),
            // Units whose states are not known are not shown as down.
            plan: r.filter(|r| r.unobserved.is_none()).map(|r| &r.plan),
            observed_after: r.and_then(|r| r.observed_after.as_deref()),
            results: r.map_or(&[], |r| &r.results),
            success: status == Some(Status::Converged),
            paused: r.is_some_and(|r| r.paused.is_some()),
            site: config.site.as_deref(),
            fence: r.and_then(|r| r.fence.as_ref()),
            incident: incident.as_ref(),
            finished: std::time::SystemTime::now(),
            duration: started.elapsed(),
        });
        if let Err(e) = metrics::write(path, &text) {
            // Stale metrics would say all is well: that needs a human too.
            match (e.is_read_only(), path.parent()) {
                (true, Some(dir)) => log::error!(
                    "cannot write the metrics file {}: {e} (the service may write only where it \
                     is allowed to: `systemctl edit failover-manager.service`, then [Service] \
                     ReadWritePaths={})",
                    path.display(),
                    dir.display()
                ),
                _ => log::error!("cannot write the metrics file: {e}"),
            }
            status = status.map(|_| Status::Failed);
            crate::paging::metrics_lost(host);
        }
    }
    // An error after the check (systemd unreachable) was reported like any run, and wins.
    match (report.map(reconcile::Report::into_error), said) {
        (Err(e) | Ok(Some(e)), _) | (Ok(None), Err(e)) => Err(e),
        (Ok(None), Ok(())) => Ok(status.unwrap_or(Status::Failed)),
    }
}

/// Says what a reconcile did: the changes on stdout (or the plan, for a dry run), failures on
/// stderr, and with `--output json` one object on every path that got as far as a check.
fn say(r: &Report, args: &ReconcileArgs, quiet: bool) -> Result<(), Error> {
    let json = args.output.output == Format::Json;
    match &r.end {
        End::Paused if args.dry_run && !json => {
            if let Some(p) = &r.paused {
                print_out(&format!(
                    "{}: reconcile changes nothing while paused",
                    p.describe()
                ))?;
            }
            print_out(&report::dry_run(&r.plan))?;
        }
        End::DryRun if !json => print_out(&report::dry_run(&r.plan))?,
        End::Acted {
            interrupted,
            hook_errors,
        } => {
            let (changes, errors) = report::changes(&r.plan, &r.results);
            if !json && !quiet && !changes.is_empty() {
                print_out(&(changes.join("\n") + "\n"))?;
            }
            for e in &errors {
                log::error!("{e}");
            }
            if *interrupted {
                log::error!(
                    "interrupted: stopped waiting; the lines above say what was and was not done"
                );
            }
            // One log record per line, so each keeps its journal priority.
            for line in hook_errors.iter().flat_map(|m| m.lines()) {
                log::error!("{line}");
            }
        }
        _ => {}
    }
    if json {
        print_out(&report::json(&report::Json {
            command: "reconcile",
            check: &r.check,
            plan: &r.plan,
            results: &r.results,
            dry_run: args.dry_run,
            paused: r.paused.as_ref(),
            confirmation: r.confirmation.as_ref(),
            error: r.unobserved.as_deref(),
            fence: r.fence.as_ref(),
        }))?;
    }
    Ok(())
}

fn diff(config: &Config, format: Format, host: &dyn Host) -> Result<Status, Error> {
    let paused = host.paused()?;
    let check = reconcile::run_check(config, &reconcile::context(config, true, false), host);
    let (fence, _) = reconcile::assess_fence(config, &check, false, host)?;
    let json = |plan: &Plan, error: Option<&str>| {
        print_out(&report::json(&report::Json {
            command: "diff",
            check: &check,
            plan,
            results: &[],
            dry_run: true,
            paused: paused.as_ref(),
            confirmation: None,
            error,
            fence: fence.as_ref(),
        }))
    };
    let plan = match reconcile::observe(config, check.role, host.manager()) {
        // What reconcile would do: a fenced host's primary units stop.
        Ok(plan) if fence.as_ref().is_some_and(|f| f.fenced()) => {
            let states: Vec<_> = plan.units.iter().map(|u| u.observed.clone()).collect();
            plan::fenced(&config.units, &states)
        }
        Ok(plan) => plan,
        Err(e) => {
            if format == Format::Json {
                json(
                    &reconcile::unobserved(config, check.role),
                    Some(&e.to_string()),
                )?;
            }
            return Err(e);
        }
    };
    match format {
        Format::Json => json(&plan, None)?,
        Format::Text => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            if let Some(p) = &paused {
                print_out(&format!("{}: reconcile changes nothing", p.describe()))?;
            }
            print_out(&report::diff(&plan, &check, report::Style { color }))?;
            if let Some(line) = fence.as_ref().and_then(report::fence_status) {
                print_out(&line)?;
            }
        }
    }
    Ok(match (plan.role, plan.in_sync()) {
        (Role::Unknown, _) => Status::RoleUnknown,
        (_, true) => Status::InSync,
        (_, false) => Status::Drift,
    })
}

fn validate(
    config: &Config,
    args: &ValidateArgs,
    quiet: bool,
    host: &dyn Host,
) -> Result<Status, Error> {
    let mgr = host.manager();
    let mut findings = Vec::new();
    if !args.config_only {
        if let Some(argv) = config.check.command() {
            findings.extend(validate::check_command(argv));
        }
        if let Some(etcd) = config.check.etcd() {
            if let Some(argv) = &etcd.before_acquire {
                findings.extend(validate::check_command(argv));
            }
            // One read of the key, as a run makes it (never a write).
            let until = std::time::Instant::now() + config.check.timeout;
            let read = crate::witness::client(etcd)
                .and_then(|c| c.range(&etcd.key, until).map_err(|e| e.to_string()));
            if let Err(e) = read {
                findings.push(validate::Finding {
                    severity: Severity::Warning,
                    message: format!("cannot read the etcd key {}: {e}", etcd.key),
                });
            }
        }
        if let Some(Err(e)) = config.metrics_file.as_deref().map(metrics::check_dir) {
            findings.push(validate::Finding {
                severity: Severity::Error,
                message: e.to_string(),
            });
        }
        let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
        match mgr.details_many(&names) {
            Ok(details) => {
                findings.extend(validate::units(&config.units, &details));
                let worst = validate::worst_case(config, ReconcileArgs::defaults().lock_wait);
                // Only an installed service has a timeout of its own (else systemd reports
                // its default for a unit it cannot find).
                let unit = "failover-manager.service";
                if mgr.property(unit, "LoadState").is_ok_and(|s| s == "loaded")
                    && let Ok(t) = mgr.property(unit, "TimeoutStartUSec")
                {
                    findings.extend(validate::service_timeout(worst, &t));
                }
                let leased = config.check.etcd().is_some_and(|e| e.automatic());
                for u in config.units.iter().filter(|u| {
                    leased
                        && u.managed
                        && u.when == crate::domain::When::Primary
                        && u.name.ends_with(".service")
                }) {
                    if let Ok(t) = mgr.property(&u.name, "TimeoutStopUSec") {
                        findings.extend(validate::stop_timeout(&u.name, &t, u.verify_timeout));
                    }
                }
                let timer = "failover-manager.timer";
                if let Some(spec) = crate::deadline::spec(config, crate::deadline::SYSTEMCTL)
                    && mgr
                        .property(timer, "LoadState")
                        .is_ok_and(|s| s == "loaded")
                    && let Ok(p) = mgr.property(timer, "OnUnitActiveUSec")
                {
                    findings.extend(validate::timer_period(&p, spec.fire_after));
                }
            }
            Err(e) => findings.push(validate::Finding {
                severity: Severity::Warning,
                message: format!(
                    "cannot ask systemd about the units ({e}); use --config-only to skip"
                ),
            }),
        }
    }
    for f in &findings {
        match f.severity {
            Severity::Error => log::error!("{}", f.message),
            Severity::Warning => log::warn!("{}", f.message),
        }
    }
    let worst = findings.iter().map(|f| f.severity).max();
    if !quiet && worst.is_none() {
        print_out(&format!(
            "{}: valid ({} units)",
            config.path.display(),
            config.units.len()
        ))?;
    }
    Ok(match worst {
        None => Status::Valid,
        Some(Severity::Warning) => Status::Warnings,
        Some(Severity::Error) => Status::Invalid,
    })
}

fn pause(path: &Path, reason: &str, quiet: bool) -> Result<Status, Error> {
    // Wait for a run in progress to end: a pause must mean that nothing starts after it.
    let lock_wait = ReconcileArgs::defaults().lock_wait;
    let _lock = lock::acquire(Path::new(lock::PATH), lock_wait, None)?;
    let previous = maintenance::read(path)?;
    let p = Pause::now(reason);
    maintenance::write(path, &p)?;
    if !quiet {
        match previous {
            Some(old) => print_out(&format!("{} (was {})", p.describe(), old.describe()))?,
            None => print_out(&p.describe())?,
        }
    }
    Ok(Status::Converged)
}

fn resume(path: &Path, quiet: bool) -> Result<Status, Error> {
    let previous = maintenance::read(path)?;
    let removed = maintenance::remove(path)?;
    if !quiet {
        match (removed, previous) {
            (true, Some(p)) => print_out(&format!("resumed (was {})", p.describe()))?,
            _ => print_out("not paused")?,
        }
    }
    Ok(Status::Converged)
}
