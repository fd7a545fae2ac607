//! One run of a command: load the config, then reconcile (`reconcile` decides, this module
//! prints what it returned and writes the metrics), diff, validate, pause or resume.
//! Returns a status; the exit code is decided in `exit`.

use std::path::Path;

use crate::cli::{Cli, Command, Format, ReconcileArgs, ValidateArgs};
use crate::config::{self, Config};
use crate::exit::{Error, Status};
use crate::lock::{self, LockError};
use crate::maintenance::{self, Pause};
use crate::metrics;
use crate::output::print_out;
use crate::printer::{Metrics, Printer};
use crate::reconcile::{self, Host, Options, Run, System};
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
        confirm: true,
    };
    let run = reconcile::reconcile(config, opts, host);
    let printer = Printer::new(args.output.output, quiet);
    let printed = printer.reconcile(&run, args.dry_run);
    let mut status = match (run.report(), &printed) {
        (Some(r), Ok(())) => Some(r.status()),
        _ => None,
    };
    // A dry run changes nothing, and a run skipped for the lock leaves it to the holder.
    let skipped = matches!(run, Run::NotStarted(Error::Lock(LockError::Busy { .. })));
    let incident = match args.dry_run || skipped {
        true => None,
        false => crate::paging::keep(&run, status, host),
    };
    if let (Some(path), false, false) = (metrics_file, args.dry_run, skipped) {
        let text = printer.metrics(&Metrics {
            run: &run,
            status,
            site: config.site.as_deref(),
            incident: incident.as_ref(),
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
    // The error the run stopped on wins, then one writing its output; else its status (the
    // metrics file's failure included).
    let outcome = run.outcome();
    printed?;
    outcome.map(|s| status.unwrap_or(s))
}

fn diff(config: &Config, format: Format, host: &dyn Host) -> Result<Status, Error> {
    let run = reconcile::reconcile(config, Options::diff(), host);
    Printer::new(format, false).diff(&run)?;
    match run {
        Run::Ran(r) if !matches!(r.end, reconcile::End::Failed(_)) => Ok(r.drift()),
        other => other.outcome(),
    }
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
