//! One run of a command: load, check, observe, plan, and then print, diff or apply.
//! Returns a status; the exit code is decided in `exit`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::apply;
use crate::check::{self, CheckResult};
use crate::cli::{Cli, Command, Format, ReconcileArgs, ValidateArgs};
use crate::config::{self, Config, ConfigError};
use crate::domain::{Desired, Role, StepResult, UnitState};
use crate::fence;
use crate::hooks;
use crate::lock::{self, LockError};
use crate::maintenance::{self, Pause, PauseError};
use crate::metrics;
use crate::plan::{self, Plan};
use crate::report;
use crate::security::{self, SecurityError};
use crate::systemd::{Manager, Systemd, SystemdError};
use crate::validate::{self, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reconcile reached the desired state, had nothing to do, or was told to do nothing
    /// (paused, or a check that did not confirm a change).
    Converged,
    /// Reconcile could not reach it, or a hook failed.
    Failed,
    /// The check could not tell the role; nothing was changed.
    RoleUnknown,
    InSync,
    Drift,
    Valid,
    /// `validate` found only warnings.
    Warnings,
    /// `validate` found errors on the host.
    Invalid,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Insecure(#[from] SecurityError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("maintenance mode: {0}")]
    Pause(#[from] PauseError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Fence(#[from] crate::secure_fs::FsError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

pub fn run(cli: &Cli) -> Result<Status, Error> {
    let pause_path = Path::new(maintenance::PATH);
    // Pause and resume must work even when the config is broken: that is when they are needed.
    match &cli.command {
        Some(Command::Pause(args)) => return pause(pause_path, &args.reason, cli.quiet),
        Some(Command::Resume) => return resume(pause_path, cli.quiet),
        _ => {}
    }
    let config = config::load(&cli.config)?;
    // Ownership is a property of the host that will run these programs as root, not of the
    // file's text: `validate --config-only` (a config repo's CI) leaves it out.
    let config_only = matches!(&cli.command, Some(Command::Validate(v)) if v.config_only);
    if security::running_as_root() && !config_only {
        security::check_config(&config)?;
    }
    let mgr = Systemd::new();
    match &cli.command {
        None => reconcile(&config, &ReconcileArgs::defaults(), cli.quiet, &mgr),
        Some(Command::Reconcile(args)) => reconcile(&config, args, cli.quiet, &mgr),
        Some(Command::Diff(args)) => diff(&config, args.output, &mgr),
        Some(Command::Validate(args)) => validate(&config, args, cli.quiet, &mgr),
        Some(Command::Pause(_) | Command::Resume) => Ok(Status::Converged),
    }
}

/// Step 1 of every run: the check.
fn run_check(config: &Config) -> CheckResult {
    let check = check::run(&config.check);
    log::info!(
        "role {} (check {})",
        check.role,
        report::check_summary(&check)
    );
    check
}

/// The plan when systemd could not be asked: every unit `unknown` (a state never acted on) and
/// no previous role, so that `--output json` still says what the check found.
fn unobserved(config: &Config, role: Role) -> Plan {
    let states = vec![UnitState::Other("unknown".into()); config.units.len()];
    let mut plan = plan::plan(role, &config.units, &states);
    plan.observed_role = None;
    plan
}

fn observe_units(config: &Config, role: Role, mgr: &dyn Manager) -> Result<Plan, Error> {
    let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
    let observed = mgr.is_active(&names)?;
    let plan = plan::plan(role, &config.units, &observed);
    for u in &plan.units {
        log::info!(
            "{}: runs on the {}, wanted {}, is {}: {}",
            u.name,
            u.when.as_str(),
            match u.desired {
                Some(Desired::Running) => "running",
                Some(Desired::Stopped) => "stopped",
                None => "nothing (role unknown)",
            },
            u.observed,
            match (u.action, u.managed) {
                (Some(a), _) => format!("will {a:?}").to_lowercase(),
                (None, false) => "not managed (managed: false)".into(),
                (None, true) => "nothing to do".into(),
            }
        );
    }
    Ok(plan)
}

/// The outcome of re-running the check before acting on a change (`check.confirm`).
enum Confirmation {
    Agreed,
    Disagreed(Role),
    Unknown(CheckResult),
    Interrupted,
}

/// Runs the check again until `check.confirm` results agree; also returns every answer.
fn confirm(config: &Config, first: Role) -> (Confirmation, report::Confirmation) {
    let mut answers = report::Confirmation {
        required: config.check.confirm,
        roles: vec![first],
    };
    for n in 2..=config.check.confirm {
        if !crate::interrupt::sleep(config.check.confirm_interval) {
            return (Confirmation::Interrupted, answers);
        }
        let again = check::run(&config.check);
        if crate::interrupt::requested() {
            return (Confirmation::Interrupted, answers);
        }
        log::info!(
            "confirming: check {n} of {} says {} ({})",
            config.check.confirm,
            again.role,
            report::check_summary(&again)
        );
        answers.roles.push(again.role);
        match again.role {
            Role::Unknown => return (Confirmation::Unknown(again), answers),
            r if r != first => return (Confirmation::Disagreed(r), answers),
            _ => {}
        }
    }
    (Confirmation::Agreed, answers)
}

/// What a reconcile learned, whatever way it ends: for `--output json` and the metrics file.
#[derive(Default)]
struct Record {
    check: Option<CheckResult>,
    plan: Option<Plan>,
    results: Vec<StepResult>,
    observed_after: Option<Vec<UnitState>>,
    paused: Option<Pause>,
    confirmation: Option<report::Confirmation>,
    /// Why the units' states are not known (systemd unreachable).
    error: Option<String>,
    fence: Option<fence::View>,
}

fn reconcile(
    config: &Config,
    args: &ReconcileArgs,
    quiet: bool,
    mgr: &dyn Manager,
) -> Result<Status, Error> {
    let started = std::time::Instant::now();
    let mut record = Record::default();
    let metrics_file = args.metrics_file.as_ref().or(config.metrics_file.as_ref());
    let result = reconcile_steps(
        config,
        args,
        quiet,
        metrics_file.is_some(),
        mgr,
        &mut record,
    );
    // One JSON object on every path that got as far as a check, so scripts always get one.
    if args.output.output == Format::Json
        && let (Some(check), Some(plan)) = (&record.check, &record.plan)
    {
        print_out(&report::json(&report::Json {
            command: "reconcile",
            check,
            plan,
            results: &record.results,
            dry_run: args.dry_run,
            paused: record.paused.as_ref(),
            confirmation: record.confirmation.as_ref(),
            error: record.error.as_deref(),
            fence: record.fence.as_ref(),
        }))?;
    }
    // A dry run changes nothing, and a run skipped for the lock leaves it to the holder.
    let skipped = matches!(result, Err(Error::Lock(LockError::Busy { .. })));
    if let (Some(path), false, false) = (metrics_file, args.dry_run, skipped) {
        let text = metrics::render(&metrics::Snapshot {
            check: record.check.as_ref(),
            // Units whose states are not known are not shown as down.
            plan: record.plan.as_ref().filter(|_| record.error.is_none()),
            observed_after: record.observed_after.as_deref(),
            success: matches!(result, Ok(Status::Converged)),
            paused: record.paused.is_some(),
            site: config.site.as_deref(),
            fence: record.fence.as_ref(),
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
            return result.map(|_| Status::Failed);
        }
    }
    result
}

fn reconcile_steps(
    config: &Config,
    args: &ReconcileArgs,
    quiet: bool,
    want_observed_after: bool,
    mgr: &dyn Manager,
    record: &mut Record,
) -> Result<Status, Error> {
    let json = args.output.output == Format::Json;
    // A dry run changes nothing, so it neither waits for nor blocks a real run.
    let _lock = if args.dry_run {
        None
    } else {
        let stuck_after = validate::worst_case(config, args.lock_wait);
        Some(lock::acquire(
            Path::new(lock::PATH),
            args.lock_wait,
            Some(stuck_after),
        )?)
    };
    let paused = maintenance::read(Path::new(maintenance::PATH))?;
    record.paused = paused.clone();
    let check = run_check(config);
    record.check = Some(check.clone());
    let mut plan = observe_into(config, check.role, mgr, record)?;
    if crate::interrupt::requested() {
        log::error!("interrupted while running the check; nothing was changed");
        return Ok(Status::Failed);
    }
    let (fence, stored) = assess_fence(config, check.role, !args.dry_run)?;
    record.fence = fence;
    if let Some(p) = &paused {
        // Maintenance: nothing changes and nobody is paged, whatever the check says.
        log::info!(
            "{}; changing nothing (role {}, {} changes pending)",
            p.describe(),
            plan.role,
            plan.steps.len()
        );
        if args.dry_run && !json {
            print_out(&format!(
                "{}: reconcile changes nothing while paused",
                p.describe()
            ))?;
            print_out(&report::dry_run(&plan))?;
        }
        return Ok(Status::Converged);
    }
    if plan.role == Role::Unknown {
        for l in report::unknown_role(&check) {
            log::error!("{l}");
        }
        if let Some(line) = fence.as_ref().and_then(report::fence_status) {
            log::error!("{line}");
        }
        if fence.is_some_and(|f| f.fenced()) {
            return fence_host(config, args, quiet, want_observed_after, mgr, record);
        }
        return Ok(Status::RoleUnknown);
    }
    if !plan.is_empty() && config.check.confirm > 1 {
        match confirm_change(config, &plan, mgr, record)? {
            Some(status) => return Ok(status),
            None => plan = record.plan.clone().unwrap_or(plan),
        }
    }
    for u in plan
        .units
        .iter()
        .filter(|u| u.action.is_none() && u.managed && !u.in_sync())
    {
        log::warn!(
            "{}: is {}, not a state to act on; leaving it for the next run",
            u.name,
            u.observed
        );
    }
    if args.dry_run {
        if !json {
            print_out(&report::dry_run(&plan))?;
        }
        return Ok(Status::Converged);
    }
    let status = act(
        config,
        &plan,
        !json && !quiet,
        want_observed_after,
        mgr,
        record,
    )?;
    // A record that could not be kept leaves fencing blind: said, and a human is needed, but
    // only after the units were taken care of.
    Ok(if stored { status } else { Status::Failed })
}

/// `check.fence_after`: where this run stands, and the record kept for the next (when `store`
/// and it changed). Returns whether the record is as it should be.
fn assess_fence(
    config: &Config,
    role: Role,
    store: bool,
) -> Result<(Option<fence::View>, bool), Error> {
    if config.check.fence_after.is_none() {
        return Ok((None, true));
    }
    let path = Path::new(fence::PATH);
    let old = fence::load(path)?;
    let (view, next) = fence::assess(
        role,
        old,
        std::time::SystemTime::now(),
        config.check.fence_after,
    );
    let mut stored = true;
    if let (Some(next), true) = (next, store)
        && let Err(e) = fence::store(path, &next)
    {
        log::error!("cannot keep the time of the last confirmed role: {e}");
        stored = false;
    }
    Ok((view, stored))
}

/// Role unknown for `fence_after`: stop this host's primary units (nothing starts), say so,
/// run on_demote and on_failure, and exit 1 for as long as it lasts.
fn fence_host(
    config: &Config,
    args: &ReconcileArgs,
    quiet: bool,
    want_observed_after: bool,
    mgr: &dyn Manager,
    record: &mut Record,
) -> Result<Status, Error> {
    let states: Vec<UnitState> = record
        .plan
        .as_ref()
        .map(|p| p.units.iter().map(|u| u.observed.clone()).collect())
        .unwrap_or_default();
    let plan = plan::fenced(&config.units, &states);
    record.plan = Some(plan.clone());
    let json = args.output.output == Format::Json;
    if args.dry_run {
        if !json {
            print_out(&report::dry_run(&plan))?;
        }
        return Ok(Status::Failed);
    }
    act(
        config,
        &plan,
        !json && !quiet,
        want_observed_after,
        mgr,
        record,
    )?;
    Ok(Status::Failed)
}

/// Steps 4–5: apply the plan, say what changed, run the hook.
fn act(
    config: &Config,
    plan: &Plan,
    print_changes: bool,
    want_observed_after: bool,
    mgr: &dyn Manager,
    record: &mut Record,
) -> Result<Status, Error> {
    let results = apply::apply(plan, &config.units, config.parallel, mgr);
    if want_observed_after && !results.is_empty() {
        let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
        // For the metrics only: a failure to look again must not hide the run's own result.
        record.observed_after = mgr.is_active(&names).ok();
    }
    let (changes, errors) = report::changes(plan, &results);
    if print_changes && !changes.is_empty() {
        print_out(&(changes.join("\n") + "\n"))?;
    }
    for e in &errors {
        log::error!("{e}");
    }
    let mut failed = results.iter().any(StepResult::failed) || crate::interrupt::requested();
    if crate::interrupt::requested() {
        log::error!("interrupted: stopped waiting; the lines above say what was and was not done");
    } else {
        for event in hooks::events(plan, &results) {
            let env = hooks::environment(event, plan, &results);
            if let Err(msg) = hooks::run(&config.hooks, event, &env) {
                // One log record per line, so each keeps its journal priority.
                for line in msg.lines() {
                    log::error!("{line}");
                }
                failed = true;
            }
        }
    }
    record.results = results;
    Ok(if failed {
        Status::Failed
    } else {
        Status::Converged
    })
}

/// Observes the units and plans, keeping the plan in `record`; when systemd cannot be asked,
/// the record still gets a plan (`unobserved`) and the reason.
fn observe_into(
    config: &Config,
    role: Role,
    mgr: &dyn Manager,
    record: &mut Record,
) -> Result<Plan, Error> {
    match observe_units(config, role, mgr) {
        Ok(plan) => {
            record.plan = Some(plan.clone());
            Ok(plan)
        }
        Err(e) => {
            record.plan = Some(unobserved(config, role));
            record.error = Some(e.to_string());
            Err(e)
        }
    }
}

/// `check.confirm`: before acting on a change, the check must say the same again. Returns
/// the run's status when it ends here; else the fresh plan to act on is in `record`.
fn confirm_change(
    config: &Config,
    plan: &Plan,
    mgr: &dyn Manager,
    record: &mut Record,
) -> Result<Option<Status>, Error> {
    let (confirmation, answers) = confirm(config, plan.role);
    record.confirmation = Some(answers);
    match confirmation {
        Confirmation::Agreed => {
            // Units may have moved while we waited: act on a fresh observation.
            observe_into(config, plan.role, mgr, record)?;
            Ok(None)
        }
        Confirmation::Disagreed(r) => {
            log::info!(
                "the check said {} and then {r}: not acting until {} results in a row agree",
                plan.role,
                config.check.confirm
            );
            Ok(Some(Status::Converged))
        }
        Confirmation::Unknown(c) => {
            for l in report::unknown_role(&c) {
                log::error!("{l}");
            }
            // Like any run whose check cannot tell: nothing desired, nothing to do.
            let states: Vec<UnitState> = plan.units.iter().map(|u| u.observed.clone()).collect();
            record.plan = Some(plan::plan(Role::Unknown, &config.units, &states));
            record.check = Some(c);
            Ok(Some(Status::RoleUnknown))
        }
        Confirmation::Interrupted => {
            log::error!("interrupted while confirming the role; nothing was changed");
            Ok(Some(Status::Failed))
        }
    }
}

fn diff(config: &Config, format: Format, mgr: &dyn Manager) -> Result<Status, Error> {
    let paused = maintenance::read(Path::new(maintenance::PATH))?;
    let check = run_check(config);
    let (fence, _) = assess_fence(config, check.role, false)?;
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
    let plan = match observe_units(config, check.role, mgr) {
        // What reconcile would do: a fenced host's primary units stop.
        Ok(plan) if fence.is_some_and(|f| f.fenced()) => {
            let states: Vec<UnitState> = plan.units.iter().map(|u| u.observed.clone()).collect();
            plan::fenced(&config.units, &states)
        }
        Ok(plan) => plan,
        Err(e) => {
            if format == Format::Json {
                json(&unobserved(config, check.role), Some(&e.to_string()))?;
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
    mgr: &dyn Manager,
) -> Result<Status, Error> {
    let mut findings = Vec::new();
    if !args.config_only {
        findings.extend(validate::check_command(&config.check.command));
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

fn print_out(s: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
