//! One run of a command: load the config, then reconcile (`reconcile` decides, this module
//! prints what it returned and writes the metrics), diff, validate, pause or resume.
//! Returns a status; the exit code is decided in `exit`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::cli::{Cli, Command, Format, ReconcileArgs, ValidateArgs};
use crate::config::{self, Config};
use crate::domain::Role;
use crate::exit::{Error, Status};
use crate::lock::{self, LockError};
use crate::maintenance::{self, Pause};
use crate::metrics;
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
        Some(Command::Status(args)) => status(&config, args.output),
        Some(Command::Switchover(args)) => switchover(&config, args),
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

/// `status`: the key and the acknowledgements, in one read (and the lease's time left).
fn status(config: &Config, format: Format) -> Result<Status, Error> {
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "status reads check.etcd, and this config has check.command".into(),
        ));
    };
    let client = crate::witness::client(etcd).map_err(Error::Setup)?;
    let until = std::time::Instant::now() + config.check.timeout;
    let read = client.range_tree(&etcd.key, until);
    let (view, ttl, error) = match read {
        Ok((_, kvs)) => {
            let view = crate::status::assess(&etcd.key, &kvs);
            let ttl = view.lease.and_then(|l| client.time_to_live(l, until).ok());
            (Some(view), ttl, None)
        }
        Err(e) => (None, None, Some(e.to_string())),
    };
    match format {
        Format::Json => print_out(&report::status_json(
            &etcd.key,
            view.as_ref(),
            ttl,
            error.as_deref(),
        ))?,
        Format::Text => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            match (&view, &error) {
                (Some(v), _) => print_out(&report::status_text(
                    &etcd.key,
                    v,
                    ttl,
                    report::Style { color },
                ))?,
                (None, Some(e)) => log::error!("cannot read {} from etcd: {e}", etcd.key),
                (None, None) => {}
            }
        }
    }
    Ok(match view {
        Some(v) if v.healthy() => Status::Healthy,
        _ => Status::Degraded,
    })
}

/// `switchover SITE` (see `switchover`).
fn switchover(config: &Config, args: &crate::cli::SwitchoverArgs) -> Result<Status, Error> {
    use crate::switchover::{self, Refusal};
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "switchover moves check.etcd's key, and this config has check.command".into(),
        ));
    };
    let key = etcd.key.as_str();
    let client = crate::witness::client(etcd).map_err(Error::Setup)?;
    let budget = config.check.timeout;
    let read = || {
        client
            .range_tree(key, std::time::Instant::now() + budget)
            .ok()
            .map(|(_, kvs)| crate::status::assess(key, &kvs))
    };
    let failed = |message: String| {
        log::error!("switchover: {message}");
        Ok(Status::Failed)
    };
    let view = match client.range_tree(key, std::time::Instant::now() + budget) {
        Ok((_, kvs)) => crate::status::assess(key, &kvs),
        Err(e) => return failed(format!("cannot read {key}: {e}; nothing changed")),
    };
    let plan = match switchover::plan(&view, &args.site) {
        Ok(Some(p)) => p,
        Ok(None) => {
            print_out(&format!(
                "{} holds the role already: nothing to do",
                args.site
            ))?;
            return Ok(Status::Converged);
        }
        Err(Refusal::NoHolder(h)) => {
            return failed(format!(
                "{key} names no site to move the role from ({h:?}); nothing changed"
            ));
        }
        Err(Refusal::NeverAcknowledged(site)) => {
            return failed(format!(
                "no host of {site} has ever acknowledged its role under {key}/ack/{site}/:                  nothing would tell when it has stopped or started; nothing changed"
            ));
        }
        Err(Refusal::NotInStep { site, hosts }) => {
            return failed(format!(
                "{} of {site} not in step with {key} (revision {}): down, cut off or paused?                  nothing changed",
                hosts.join(", "),
                view.revision
            ));
        }
    };
    let say = |s: String| print_out(&format!("switchover: {s}"));
    if args.dry_run {
        say(format!(
            "would move {key} from {} (revision {}) to {}, waiting for {} of {} to stop, then {} of {} to start",
            plan.from,
            plan.revision,
            plan.to,
            plan.from_hosts.join(", "),
            plan.from,
            plan.to_hosts.join(", "),
            plan.to
        ))?;
        return Ok(Status::Converged);
    }
    let until = || std::time::Instant::now() + budget;
    let lease = || -> Result<i64, String> {
        match etcd.lease_ttl {
            Some(ttl) => client.grant(ttl, until()).map_err(|e| e.to_string()),
            None => Ok(0),
        }
    };
    // 1: nobody holds the role.
    let neutral = switchover::neutral(&plan.from, &plan.to);
    let r1 = match client.replace(key, plan.revision, &neutral, 0, until()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(format!(
                "{key} changed meanwhile (another switchover?); nothing changed"
            ));
        }
        Err(e) => return failed(format!("cannot write {key}: {e}; nothing changed")),
    };
    say(format!(
        "{key} = {neutral} (revision {r1}); waiting for {} to stop: {}",
        plan.from,
        plan.from_hosts.join(", ")
    ))?;
    // 2: the old site stopped.
    let stopped = switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.from, &plan.from_hosts, r1, Role::Standby)
    });
    if let Err(left) = stopped {
        let back = lease().and_then(|l| {
            client
                .replace(key, r1, &plan.from, l, until())
                .map_err(|e| e.to_string())
        });
        return failed(match back {
            Ok(Some(r)) => format!(
                "{} did not confirm its units stopped within {} (no acknowledgement from: {});                  {key} = {} again (revision {r}): {} never had the role",
                plan.from,
                humantime::format_duration(args.timeout),
                left.join(", "),
                plan.from,
                plan.to
            ),
            _ => format!(
                "{} did not confirm its units stopped within {} (no acknowledgement from: {}),                  and {key} could not be set back (changed meanwhile, or etcd unreachable): it                  may still hold {neutral}, which names no site (every host a standby)",
                plan.from,
                humantime::format_duration(args.timeout),
                left.join(", ")
            ),
        });
    }
    // 3: the new site holds the role.
    let r2 = match lease().and_then(|l| {
        client
            .replace(key, r1, &plan.to, l, until())
            .map_err(|e| e.to_string())
    }) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(format!(
                "{key} changed after {} stopped: it no longer holds {neutral}; not moved",
                plan.from
            ));
        }
        Err(e) => {
            return failed(format!(
                "cannot give the role to {}: {e}; {key} may still hold {neutral}, which names                  no site (every host a standby): run the switchover again",
                plan.to
            ));
        }
    };
    say(format!(
        "{key} = {} (revision {r2}); waiting for {} to start: {}",
        plan.to,
        plan.to,
        plan.to_hosts.join(", ")
    ))?;
    // 4: the new site runs it.
    match switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.to, &plan.to_hosts, r2, Role::Primary)
    }) {
        Ok(()) => {
            say(format!("done: {} holds the role (revision {r2})", plan.to))?;
            Ok(Status::Converged)
        }
        Err(left) => failed(format!(
            "{key} = {}, but {} did not confirm its units running within {} (no              acknowledgement from: {}): see `failover-manager status` there",
            plan.to,
            plan.to,
            humantime::format_duration(args.timeout),
            left.join(", ")
        )),
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

/// Every line the tool prints on stdout goes through here.
fn print_out(s: &str) -> Result<(), Error> {
    write_out(&mut std::io::stdout().lock(), s)
}

/// A reader that has gone (`failover-manager diff | head`: EPIPE) ends the output, not the
/// command, and is no error: what the command did or found still decides its exit status
/// (drift or in sync, for `diff`), as with any filter whose reader stops early.
fn write_out(out: &mut impl Write, s: &str) -> Result<(), Error> {
    let line_end: &[u8] = if s.ends_with('\n') { b"" } else { b"\n" };
    let written = out
        .write_all(s.as_bytes())
        .and_then(|()| out.write_all(line_end))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    /// Takes writes until `fail_at` bytes, then fails every write (and flush) with `kind`.
    struct Sink {
        taken: Vec<u8>,
        fail_at: usize,
        kind: ErrorKind,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = self.fail_at.saturating_sub(self.taken.len());
            if room == 0 {
                return Err(self.kind.into());
            }
            let n = buf.len().min(room);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            match self.taken.len() < self.fail_at {
                true => Ok(()),
                false => Err(self.kind.into()),
            }
        }
    }

    #[test]
    fn a_reader_that_has_gone_is_no_error_but_a_failed_write_is() {
        for (text, fail_at, kind, taken, ok) in [
            ("drift", usize::MAX, ErrorKind::BrokenPipe, "drift\n", true),
            ("a\nb\n", usize::MAX, ErrorKind::BrokenPipe, "a\nb\n", true),
            // `diff | head -1`: the reader goes after the first line, or before anything.
            ("a\nb", 2, ErrorKind::BrokenPipe, "a\n", true),
            ("a\nb", 0, ErrorKind::BrokenPipe, "", true),
            ("a", 1, ErrorKind::BrokenPipe, "a", true),
            // Anything else is still a failure (exit 1): a full disk under `> file`.
            ("a\nb", 2, ErrorKind::StorageFull, "a\n", false),
            ("a", 0, ErrorKind::PermissionDenied, "", false),
        ] {
            let mut sink = Sink {
                taken: Vec::new(),
                fail_at,
                kind,
            };
            let result = write_out(&mut sink, text);
            assert_eq!(
                String::from_utf8_lossy(&sink.taken),
                taken,
                "{text:?} {kind:?}"
            );
            assert_eq!(
                result.is_ok(),
                ok,
                "{text:?} at {fail_at} {kind:?}: {result:?}"
            );
            if let Err(e) = result {
                assert!(matches!(e, Error::Output(_)), "{e:?}");
            }
        }
    }
}
