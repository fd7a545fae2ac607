//! One reconcile, as a value: check, observe, plan, confirm, fence, apply, hooks, and how it
//! ended. Every side effect goes through `Host` (the check, the clock, the pause and fence
//! records, the lock, systemd, the hooks), so each safety rule is unit-tested without root;
//! the caller (`run`) prints, writes the metrics and picks the exit status from the `Report`.

use std::path::Path;
use std::time::Duration;

use crate::apply;
use crate::check::{self, CheckResult};
use crate::clock::Stamp;
use crate::config::{CheckConfig, Config, Hooks};
use crate::deadline::{self, Decision};
use crate::domain::{Role, StepResult, UnitState};
use crate::exit::{Error, Status};
use crate::fence;
use crate::hooks;
use crate::interrupt::{Real, Time};
use crate::lock::{self, Lock, LockError};
use crate::maintenance::{self, Pause, PauseError};
use crate::note::Note;
use crate::plan::{self, Plan};
use crate::report::{self, Confirmation};
use crate::secure_fs::FsError;
use crate::systemd::{Manager, Systemd};

/// Everything a reconcile does to the world beyond computing.
pub trait Host {
    fn manager(&self) -> &dyn Manager;
    /// One run at a time; `None` where no lock is taken (tests).
    fn lock(&self, wait: Duration, stuck_after: Duration) -> Result<Option<Lock>, LockError>;
    fn paused(&self) -> Result<Option<Pause>, PauseError>;
    fn check(&self, cfg: &CheckConfig, ctx: &check::Context) -> CheckResult;
    /// Sleeps; false when interrupted.
    /// The clocks and SIGTERM/SIGINT, as every wait reads them.
    fn time(&self) -> &dyn Time;
    /// The boot clock (`clock`), which safety durations are counted on.
    fn clock(&self) -> Stamp;
    /// Writes the fencing token where units can read it (`None`: removes it).
    fn store_epoch(&self, epoch: Option<i64>) -> Result<(), FsError>;
    /// The dead man's switch: (re)arms it.
    fn arm(&self, spec: &deadline::Spec) -> Result<(), String>;
    /// Stops the switch: this host is a confirmed standby.
    /// Whether there was one to stop.
    fn disarm(&self, spec: &deadline::Spec) -> Result<bool, String>;
    /// Records in etcd that this host is in sync with its role (`ack`); whether it wrote.
    fn acknowledge(
        &self,
        etcd: &crate::config::EtcdConfig,
        ack: &crate::ack::Ack,
    ) -> Result<bool, String>;
    fn host_name(&self) -> String;
    /// Revokes `lease` (automatic mode): the key goes with it.
    fn release(&self, etcd: &crate::config::EtcdConfig, lease: i64) -> Result<(), String>;
    fn load_record(&self) -> Result<Option<fence::Record>, FsError>;
    fn store_record(&self, record: &fence::Record) -> Result<(), FsError>;
    /// Runs the hook for `event` if one is configured; `Err` says why it failed.
    fn hook(
        &self,
        hooks: &Hooks,
        event: hooks::Event,
        env: &[(String, String)],
    ) -> Result<(), String>;
}

/// This machine: systemd over D-Bus, the files under /run and /var/lib, real processes.
pub struct System {
    systemd: Systemd,
    time: Real,
    /// The run's one etcd client (made at its first use): the check, a second check, the
    /// acknowledgement and a release share its connection and its token.
    etcd: std::cell::OnceCell<Result<crate::etcd::Client, String>>,
}

impl System {
    pub fn new() -> System {
        System {
            systemd: Systemd::new(),
            time: Real,
            etcd: std::cell::OnceCell::new(),
        }
    }

    fn etcd(&self, cfg: &crate::config::EtcdConfig) -> Result<&crate::etcd::Client, String> {
        self.etcd
            .get_or_init(|| crate::witness::client(cfg))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Host for System {
    fn manager(&self) -> &dyn Manager {
        &self.systemd
    }
    fn lock(&self, wait: Duration, stuck_after: Duration) -> Result<Option<Lock>, LockError> {
        lock::acquire(Path::new(lock::PATH), wait, Some(stuck_after)).map(Some)
    }
    fn paused(&self) -> Result<Option<Pause>, PauseError> {
        maintenance::read(Path::new(maintenance::PATH))
    }
    fn check(&self, cfg: &CheckConfig, ctx: &check::Context) -> CheckResult {
        check::run(cfg, ctx, &self.time, cfg.etcd().map(|e| self.etcd(e)))
    }
    fn time(&self) -> &dyn Time {
        &self.time
    }
    fn clock(&self) -> Stamp {
        crate::clock::now()
    }
    fn store_epoch(&self, epoch: Option<i64>) -> Result<(), FsError> {
        crate::epoch::store(Path::new(crate::epoch::PATH), epoch)
    }
    fn arm(&self, spec: &deadline::Spec) -> Result<(), String> {
        self.systemd.arm(spec).map_err(|e| e.to_string())
    }
    fn disarm(&self, spec: &deadline::Spec) -> Result<bool, String> {
        self.systemd.disarm(spec).map_err(|e| e.to_string())
    }
    fn acknowledge(
        &self,
        etcd: &crate::config::EtcdConfig,
        ack: &crate::ack::Ack,
    ) -> Result<bool, String> {
        crate::witness::acknowledge(etcd, self.etcd(etcd)?, ack, etcd.request_timeout * 2)
    }
    fn host_name(&self) -> String {
        crate::ack::host_name()
    }
    fn release(&self, etcd: &crate::config::EtcdConfig, lease: i64) -> Result<(), String> {
        let until = std::time::Instant::now() + etcd.request_timeout * 2;
        self.etcd(etcd)?
            .revoke(lease, until)
            .map_err(|e| e.to_string())
    }
    fn load_record(&self) -> Result<Option<fence::Record>, FsError> {
        fence::load(Path::new(fence::PATH))
    }
    fn store_record(&self, record: &fence::Record) -> Result<(), FsError> {
        fence::store(Path::new(fence::PATH), record)
    }
    fn hook(
        &self,
        hooks: &Hooks,
        event: hooks::Event,
        env: &[(String, String)],
    ) -> Result<(), String> {
        hooks::run(hooks, event, env, &self.time)
    }
}

/// How a reconcile asked to run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Plan, change nothing: `--dry-run`, and `diff`.
    pub dry_run: bool,
    pub lock_wait: Duration,
    /// Read the units again after acting (for the metrics file).
    pub observe_after: bool,
    /// Ask the check again before acting on a change (`check.confirm`): not for `diff`, which
    /// shows what the first answer means.
    pub confirm: bool,
}

impl Options {
    /// `diff`: what a run would do now, read-only, one check.
    pub fn diff() -> Options {
        Options {
            dry_run: true,
            lock_wait: Duration::ZERO,
            observe_after: false,
            confirm: false,
        }
    }
}

/// What one reconcile returns, however it ended: the one value that the printer, the metrics,
/// the incident and the exit status are made from.
#[derive(Debug)]
pub enum Run {
    /// Ended before the check was asked: another run holds the lock, or the pause file cannot
    /// be read. Nothing was learned or changed.
    NotStarted(Error),
    /// The check was asked: what the run learned and did, and how it ended.
    Ran(Box<Report>),
}

impl Run {
    pub fn report(&self) -> Option<&Report> {
        match self {
            Run::Ran(r) => Some(r),
            Run::NotStarted(_) => None,
        }
    }

    /// The one mapping from how a run ended to its status or the error it stopped on.
    pub fn outcome(self) -> Result<Status, Error> {
        match self {
            Run::NotStarted(e) => Err(e),
            Run::Ran(r) => r.outcome(),
        }
    }
}

/// How a reconcile ended.
#[derive(Debug)]
pub enum End {
    /// Maintenance mode: nothing changed, whatever the check said.
    Paused,
    /// The check (or a confirming one) could not tell: nothing changed.
    RoleUnknown,
    /// A confirming check said another role: nothing changed this run.
    Unconfirmed,
    /// SIGTERM/SIGINT before anything was changed.
    Interrupted,
    /// `--dry-run`: the plan, nothing changed.
    DryRun,
    /// The plan was applied (for a fenced host: its primary units stopped) and the hooks run.
    Acted {
        /// SIGTERM/SIGINT stopped the waiting; no hook ran.
        interrupted: bool,
        /// Each failed hook's message (the transition stands).
        hook_errors: Vec<String>,
    },
    /// Stopped after the check: systemd unreachable, or the fence record unreadable.
    Failed(Error),
}

/// What one reconcile learned and did, whatever way it ended.
#[derive(Debug)]
pub struct Report {
    pub check: CheckResult,
    pub plan: Plan,
    pub results: Vec<StepResult>,
    pub observed_after: Option<Vec<UnitState>>,
    pub paused: Option<Pause>,
    pub confirmation: Option<Confirmation>,
    /// Why the units' states are not known (systemd unreachable).
    pub unobserved: Option<String>,
    pub fence: Option<fence::View>,
    /// The fence record could not be stored: fencing is blind, a human is needed.
    pub record_lost: bool,
    /// What this run did with the dead man's switch.
    pub switch: Option<deadline::Outcome>,
    /// What to tell a person besides the changes, in the order it happened.
    pub notes: Vec<Note>,
    pub end: End,
}

impl Report {
    /// The run's status (`Failed` for a run that stopped on an error: see `into_error`).
    pub fn status(&self) -> Status {
        let failed = self.results.iter().any(StepResult::failed);
        match &self.end {
            End::Failed(_) => Status::Failed,
            End::Paused | End::Unconfirmed => Status::Converged,
            End::RoleUnknown => Status::RoleUnknown,
            End::Interrupted => Status::Failed,
            // A fenced host needs a human for as long as it lasts.
            End::DryRun | End::Acted { .. } if self.plan.fenced => Status::Failed,
            End::DryRun => Status::Converged,
            End::Acted {
                interrupted,
                hook_errors,
            } => {
                let switch_failed = matches!(self.switch, Some(deadline::Outcome::Failed(_)));
                if failed
                    || *interrupted
                    || !hook_errors.is_empty()
                    || self.record_lost
                    || switch_failed
                {
                    Status::Failed
                } else {
                    Status::Converged
                }
            }
        }
    }

    /// The status, or the error the run stopped on after the check.
    pub fn outcome(self) -> Result<Status, Error> {
        let status = self.status();
        match self.end {
            End::Failed(e) => Err(e),
            _ => Ok(status),
        }
    }

    /// `diff`'s status: whether the units are as the role wants them.
    pub fn drift(&self) -> Status {
        match (self.plan.role, self.plan.in_sync()) {
            (Role::Unknown, _) => Status::RoleUnknown,
            (_, true) => Status::InSync,
            (_, false) => Status::Drift,
        }
    }
}

/// What a check may do in etcd: a dry run and `diff` only read; a paused host renews what its
/// site holds but takes nothing.
pub fn context<'a>(config: &'a Config, dry_run: bool, paused: bool) -> check::Context<'a> {
    check::Context {
        site: config.site.as_deref(),
        renew: !dry_run,
        take: !dry_run && !paused,
    }
}

/// Step 1 of every run: the check.
pub fn run_check(config: &Config, ctx: &check::Context, host: &dyn Host) -> CheckResult {
    let check = host.check(&config.check, ctx);
    log::info!(
        "role {} (check {})",
        check.role,
        report::check_summary(&check)
    );
    check
}

/// One reconcile (`diff` and `--dry-run` too, which change nothing), however it ends.
pub fn reconcile(config: &Config, opts: Options, host: &dyn Host) -> Run {
    // A dry run changes nothing, so it neither waits for nor blocks a real run.
    let lock = match opts.dry_run {
        true => Ok(None),
        false => host.lock(
            opts.lock_wait,
            crate::validate::worst_case(config, opts.lock_wait),
        ),
    };
    let (_lock, paused) = match lock
        .map_err(Error::from)
        .and_then(|l| host.paused().map(|p| (l, p)).map_err(Error::from))
    {
        Ok(v) => v,
        Err(e) => return Run::NotStarted(e),
    };
    let check = run_check(
        config,
        &context(config, opts.dry_run, paused.is_some()),
        host,
    );
    let role = check.role;
    let mut r = Report {
        check,
        plan: unobserved(config, role),
        results: Vec::new(),
        observed_after: None,
        paused,
        confirmation: None,
        unobserved: None,
        fence: None,
        record_lost: false,
        switch: None,
        notes: Vec::new(),
        end: End::DryRun,
    };
    r.end = decide(config, opts, host, &mut r);
    if !opts.dry_run {
        acknowledge(config, host, &mut r);
    }
    Run::Ran(Box::new(r))
}

/// Everything after the check, in order; fills `r` as it learns.
fn decide(config: &Config, opts: Options, host: &dyn Host, r: &mut Report) -> End {
    match observe(config, r.check.role, host.manager()) {
        Ok(plan) => r.plan = plan,
        Err(e) => {
            r.unobserved = Some(e.to_string());
            return End::Failed(e);
        }
    }
    if host.time().interrupted() {
        r.notes.push(Note::Interrupted { confirming: false });
        return End::Interrupted;
    }
    match assess_fence(config, &r.check, !opts.dry_run, host) {
        Ok((view, stored)) => {
            r.fence = view;
            if let Err(e) = stored {
                r.record_lost = true;
                r.notes.push(Note::RecordNotKept(e));
            }
        }
        Err(e) => return End::Failed(e),
    }
    if !opts.dry_run {
        r.switch = hold_switch(config, host, r);
        if r.switch.as_ref().is_some_and(|o| !o.holds()) {
            // Primary without a switch that bounds it: as if the check could not tell, and
            // the lease goes, so that the other site need not wait for it (the switch armed
            // earlier still fires here).
            release(config, host, r);
            r.check.role = Role::Unknown;
            r.plan = plan::plan(Role::Unknown, &config.units, &states(&r.plan));
        }
        keep_epoch(host, r);
    }
    if r.plan.role == Role::Unknown {
        let late = r.switch == Some(deadline::Outcome::ArmedLate);
        let fenced = late || r.fence.as_ref().is_some_and(|f| f.fenced());
        if fenced {
            // Role unknown for `fence_after`: the primary units stop (nothing starts).
            r.plan = plan::fenced(&config.units, &states(&r.plan));
        }
        if let Some(p) = &r.paused {
            // Maintenance: nothing changes and nobody is paged, whatever the check says.
            log::info!("{}; changing nothing (role unknown)", p.describe());
            return End::Paused;
        }
        r.notes.push(Note::RoleUnknown(Box::new(r.check.clone())));
        if let Some(f) = &r.fence {
            r.notes.push(Note::Fence(f.clone()));
        }
        if !fenced {
            return End::RoleUnknown;
        }
    } else if let Some(p) = &r.paused {
        log::info!(
            "{}; changing nothing (role {}, {} changes pending)",
            p.describe(),
            r.plan.role,
            r.plan.steps.len()
        );
        return End::Paused;
    } else if !r.plan.is_empty() && config.check.confirm > 1 && opts.confirm {
        if let Some(end) = confirm_change(config, opts, host, r) {
            return end;
        }
        not_actionable(r);
    } else {
        not_actionable(r);
    }
    if opts.dry_run {
        return End::DryRun;
    }
    let end = act(config, opts, host, r);
    rearm_after_acting(config, opts, host, r);
    end
}

/// A run that started units for longer than the switch's slack armed it too early for them: it
/// may fire before the next run, and a run that never comes would leave them unguarded. So it
/// confirms once more and arms again from that confirmation.
fn rearm_after_acting(config: &Config, opts: Options, host: &dyn Host, r: &mut Report) {
    let (Some(after), Some(deadline::Outcome::Armed { .. })) =
        (config.check.fence_after, r.switch.as_ref())
    else {
        return;
    };
    let started = r
        .results
        .iter()
        .any(|s| s.action == crate::domain::Action::Start);
    let aged = host
        .clock()
        .since(&r.check.sent)
        .is_none_or(|d| d > deadline::slack(after));
    if !started || !aged || host.time().interrupted() {
        return;
    }
    let again = host.check(
        &config.check,
        &context(config, opts.dry_run, r.paused.is_some()),
    );
    let previous = Some(Role::Primary);
    let outcome = match deadline::decide(again.role, previous, &again.sent, &host.clock(), after) {
        Decision::Arm => match deadline::spec(config, deadline::SYSTEMCTL).map(|s| host.arm(&s)) {
            Some(Ok(())) => return,
            Some(Err(e)) => e,
            None => return,
        },
        _ => format!("the check now says {}", again.role),
    };
    r.notes.push(Note::NotRearmed(outcome));
}

fn states(plan: &Plan) -> Vec<UnitState> {
    plan.units.iter().map(|u| u.observed.clone()).collect()
}

fn not_actionable(r: &mut Report) {
    let notes: Vec<Note> = r
        .plan
        .units
        .iter()
        .filter(|u| u.action.is_none() && u.managed && !u.in_sync())
        .map(|u| Note::NotActionable {
            unit: u.name.clone(),
            state: u.observed.clone(),
        })
        .collect();
    r.notes.extend(notes);
}

/// The plan when systemd could not be asked: every unit `unknown` (a state never acted on) and
/// no previous role, so that `--output json` still says what the check found.
pub fn unobserved(config: &Config, role: Role) -> Plan {
    let states = vec![UnitState::unknown(); config.units.len()];
    let mut plan = plan::plan(role, &config.units, &states);
    plan.observed_role = None;
    plan
}

/// Reads every unit's state and plans.
pub fn observe(config: &Config, role: Role, mgr: &dyn Manager) -> Result<Plan, Error> {
    let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
    let observed = mgr.is_active(&names)?;
    let plan = plan::plan(role, &config.units, &observed);
    for u in &plan.units {
        log::info!("{}", report::decision(u));
    }
    Ok(plan)
}

/// `check.fence_after`: where this run stands, and the record kept for the next (when `store`
/// and it changed), or why it could not be kept.
pub fn assess_fence(
    config: &Config,
    check: &CheckResult,
    store: bool,
    host: &dyn Host,
) -> Result<(Option<fence::View>, Result<(), String>), Error> {
    if config.check.fence_after.is_none() {
        return Ok((None, Ok(())));
    }
    let old = host.load_record()?;
    let (view, next) = fence::assess(
        check.role,
        old,
        &check.sent,
        &host.clock(),
        host.time().wall(),
        config.check.fence_after,
    );
    let mut stored = Ok(());
    if let (Some(next), true) = (next, store)
        && let Err(e) = host.store_record(&next)
    {
        stored = Err(e.to_string());
    }
    Ok((view, stored))
}

/// The dead man's switch (`deadline`): armed by a run that confirmed primary in time, left
/// to fire when the role is unknown, stopped once this host is a confirmed standby.
fn hold_switch(config: &Config, host: &dyn Host, r: &mut Report) -> Option<deadline::Outcome> {
    let after = config.check.fence_after?;
    // With a check command the timer's period is the operator's (the shipped minute would
    // trip a switch between two runs): there, fencing stays the runs' own.
    config.check.etcd()?;
    let spec = deadline::spec(config, deadline::SYSTEMCTL)?;
    let previous = r.fence.as_ref().and_then(|f| f.previous);
    let decide = |now: &Stamp| deadline::decide(r.check.role, previous, &r.check.sent, now, after);
    let outcome = match decide(&host.clock()) {
        Decision::Arm => match host.arm(&spec) {
            // systemd counts from when it restarted the timer, at the latest now: a restart
            // that came too late may fire after the lease can expire, so stop now instead.
            Ok(()) => match decide(&host.clock()) {
                Decision::Arm => deadline::Outcome::Armed {
                    fires_after: spec.fire_after,
                },
                _ => deadline::Outcome::ArmedLate,
            },
            Err(e) => deadline::Outcome::Failed(e),
        },
        Decision::TooLate { since } => deadline::Outcome::TooLate { since },
        Decision::Disarm => match host.disarm(&spec) {
            Ok(true) => deadline::Outcome::Disarmed,
            // Nothing to stop: the usual case, a standby since boot.
            Ok(false) => return None,
            // It fires on a standby then, where it stops what should not run anyway.
            Err(e) => {
                log::debug!("dead man's switch: {e}");
                return None;
            }
        },
        Decision::Leave => return None,
    };
    r.notes
        .push(Note::Switch(outcome.clone(), Box::new(spec.clone())));
    Some(outcome)
}

/// Gives the lease this run renewed back (automatic mode), so that the key lapses at once.
fn release(config: &Config, host: &dyn Host, r: &mut Report) {
    let (Some(etcd), Some(a)) = (config.check.etcd(), r.check.etcd()) else {
        return;
    };
    if let (Some(lease), Some(_)) = (a.verdict.lease, a.ttl_left)
        && let Err(e) = host.release(etcd, lease)
    {
        r.notes.push(Note::LeaseNotReleased(e));
    }
}

/// A run that acted on a definite role says in etcd how it left the units (`ack`).
fn acknowledge(config: &Config, host: &dyn Host, r: &mut Report) {
    let (Some(etcd), Some(site), Some(answer)) =
        (config.check.etcd(), config.site.as_deref(), r.check.etcd())
    else {
        return;
    };
    // Interrupted, or fenced (the role is unknown): nothing to say about the role.
    let acted = matches!(
        &r.end,
        End::Acted {
            interrupted: false,
            ..
        }
    ) && !r.plan.fenced;
    if !acted {
        return;
    }
    let pending: Vec<String> = r
        .results
        .iter()
        .filter(|s| s.failed())
        .map(|s| s.name.clone())
        .collect();
    let said = crate::ack::Said {
        role: r.plan.role,
        revision: answer.key_revision,
        at: crate::clock::unix(host.time().wall()),
        fence: crate::ack::fence_seconds(config),
        pending: &pending,
    };
    let Some(a) = crate::ack::of(&etcd.key, site, &host.host_name(), &said) else {
        return;
    };
    match host.acknowledge(etcd, &a) {
        Ok(true) => log::info!("acknowledged {} = {}", a.key, a.value),
        Ok(false) => {}
        // Only delays a switchover, which then says whom it waited for: no reason to fail.
        Err(error) => r.notes.push(Note::NotAcknowledged {
            key: a.key,
            value: a.value,
            error,
        }),
    }
}

/// The fencing token where units can read it, while this host is primary (etcd only).
fn keep_epoch(host: &dyn Host, r: &mut Report) {
    if r.check.etcd().is_none() {
        return;
    }
    let epoch = match r.check.role {
        Role::Primary => r.check.etcd().and_then(|a| a.verdict.epoch),
        Role::Standby => None,
        // Unknown: the last token stands (a unit still running may still need it).
        Role::Unknown => return,
    };
    if let Err(e) = host.store_epoch(epoch) {
        r.notes.push(Note::EpochNotKept(e.to_string()));
    }
}

/// `check.confirm`: before acting on a change, the check must say the same again until
/// `confirm` results in a row agree. Returns how the run ends when it ends here; else the
/// fresh plan to act on is in `r`.
fn confirm_change(config: &Config, opts: Options, host: &dyn Host, r: &mut Report) -> Option<End> {
    let first = r.plan.role;
    r.confirmation = Some(Confirmation {
        required: config.check.confirm,
        roles: vec![first],
    });
    for n in 2..=config.check.confirm {
        if !host.time().sleep(config.check.confirm_interval) || host.time().interrupted() {
            r.notes.push(Note::Interrupted { confirming: true });
            return Some(End::Interrupted);
        }
        let ctx = context(config, opts.dry_run, r.paused.is_some());
        let again = host.check(&config.check, &ctx);
        if host.time().interrupted() {
            r.notes.push(Note::Interrupted { confirming: true });
            return Some(End::Interrupted);
        }
        log::info!(
            "confirming: check {n} of {} says {} ({})",
            config.check.confirm,
            again.role,
            report::check_summary(&again)
        );
        if let Some(c) = r.confirmation.as_mut() {
            c.roles.push(again.role);
        }
        if again.role == Role::Unknown {
            r.notes.push(Note::RoleUnknown(Box::new(again.clone())));
            // Like any run whose check cannot tell: nothing desired, nothing to do.
            r.plan = plan::plan(Role::Unknown, &config.units, &states(&r.plan));
            r.check = again;
            return Some(End::RoleUnknown);
        }
        if again.role != first {
            log::info!(
                "the check said {first} and then {}: not acting until {} results in a row agree",
                again.role,
                config.check.confirm
            );
            return Some(End::Unconfirmed);
        }
    }
    // Units may have moved while we waited: act on a fresh observation.
    match observe(config, first, host.manager()) {
        Ok(plan) => {
            r.plan = plan;
            None
        }
        Err(e) => {
            r.plan = unobserved(config, first);
            r.unobserved = Some(e.to_string());
            Some(End::Failed(e))
        }
    }
}

/// Applies the plan and runs the hooks (not after an interrupt).
fn act(config: &Config, opts: Options, host: &dyn Host, r: &mut Report) -> End {
    r.results = apply::apply(
        &r.plan,
        &config.units,
        config.parallel,
        host.manager(),
        host.time(),
    );
    if opts.observe_after && !r.results.is_empty() {
        let names: Vec<&str> = config.units.iter().map(|u| u.name.as_str()).collect();
        // For the metrics only: a failure to look again must not hide the run's own result.
        r.observed_after = host.manager().is_active(&names).ok();
    }
    let interrupted = host.time().interrupted();
    let mut hook_errors = Vec::new();
    if !interrupted {
        let epoch = r.check.etcd().and_then(|a| a.verdict.epoch);
        for event in hooks::events(&r.plan, &r.results) {
            let mut env = hooks::environment(event, &r.plan, &r.results);
            env.push((
                "FAILOVER_MANAGER_EPOCH".into(),
                epoch.map_or_else(String::new, |e| e.to_string()),
            ));
            if let Err(msg) = host.hook(&config.hooks, event, &env) {
                hook_errors.push(msg);
            }
        }
    }
    End::Acted {
        interrupted,
        hook_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Exit;
    use crate::exit::ExitCode;
    use crate::hooks::Event;
    use crate::systemd::fake::Fake;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::time::SystemTime;

    type Env = Vec<(String, String)>;

    /// The world of one run: a scripted systemd (a standby host: replica.service runs), the
    /// check's answers in order (the last repeats), and records of everything done.
    struct World {
        systemd: Fake,
        answers: RefCell<VecDeque<Role>>,
        paused: Option<Pause>,
        record: Option<fence::Record>,
        store_fails: bool,
        stored: RefCell<Vec<fence::Record>>,
        failing_hooks: Vec<Event>,
        /// Each hook run, with its environment.
        hooks_run: RefCell<Vec<(Event, Env)>>,
        /// SIGTERM arrives while the check runs.
        interrupt_in_check: bool,
        interrupted: Cell<bool>,
        checks: Cell<usize>,
        now: SystemTime,
        /// The boot clock: the check's requests are sent at this reading.
        clock: Stamp,
        /// Each arming (true) or disarming (false) of the dead man's switch.
        switch: RefCell<Vec<bool>>,
        arm_fails: bool,
        /// How long systemd takes to answer the arming (the clock moves on by that much).
        arm_takes_ms: u64,
        hook_takes_ms: u64,
        later_ms: Cell<u64>,
        /// How long before `clock` the check's request was sent.
        answer_age_ms: u64,
        /// The check answers as the etcd witness would (automatic mode, lease 7).
        etcd: bool,
        released: RefCell<Vec<i64>>,
        epochs: RefCell<Vec<Option<i64>>>,
    }

    impl World {
        fn new(answers: &[Role]) -> World {
            let mut systemd = Fake::new(&[]);
            systemd
                .initial
                .insert("replica.service".into(), UnitState::Active);
            World {
                systemd,
                answers: RefCell::new(answers.iter().copied().collect()),
                paused: None,
                record: None,
                store_fails: false,
                stored: RefCell::new(Vec::new()),
                failing_hooks: Vec::new(),
                hooks_run: RefCell::new(Vec::new()),
                interrupt_in_check: false,
                interrupted: Cell::new(false),
                checks: Cell::new(0),
                now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                clock: crate::clock::at("boot", 5_000_000),
                switch: RefCell::new(Vec::new()),
                arm_fails: false,
                arm_takes_ms: 0,
                hook_takes_ms: 0,
                later_ms: Cell::new(0),
                answer_age_ms: 0,
                etcd: false,
                released: RefCell::new(Vec::new()),
                epochs: RefCell::new(Vec::new()),
            }
        }

        /// Every start and stop queued, in order.
        fn jobs(&self) -> Vec<String> {
            self.systemd.calls("st")
        }

        fn events(&self) -> Vec<Event> {
            self.hooks_run.borrow().iter().map(|(e, _)| *e).collect()
        }
    }

    /// The monotonic clock is the real one (the fake systemd's waits are short); the wall
    /// clock stands still; SIGTERM comes when a test says.
    impl Time for World {
        fn now(&self) -> std::time::Instant {
            std::time::Instant::now()
        }
        fn wall(&self) -> SystemTime {
            self.now
        }
        fn interrupted(&self) -> bool {
            self.interrupted.get()
        }
        fn sleep(&self, _: Duration) -> bool {
            !self.interrupted.get()
        }
    }

    impl Host for World {
        fn manager(&self) -> &dyn Manager {
            &self.systemd
        }
        fn lock(&self, _: Duration, _: Duration) -> Result<Option<Lock>, LockError> {
            Ok(None)
        }
        fn paused(&self) -> Result<Option<Pause>, PauseError> {
            Ok(self.paused.clone())
        }
        fn check(&self, _: &CheckConfig, _: &check::Context) -> CheckResult {
            self.checks.set(self.checks.get() + 1);
            let mut answers = self.answers.borrow_mut();
            let role = match answers.len() {
                0 => Role::Unknown,
                1 => answers[0],
                _ => answers.pop_front().unwrap_or(Role::Unknown),
            };
            if self.interrupt_in_check {
                self.interrupted.set(true);
            }
            let sent = crate::clock::at(
                "boot",
                self.clock.boottime_ms + self.later_ms.get() - self.answer_age_ms,
            );
            let answer = if self.etcd {
                check::Answer::Etcd(crate::witness::Answer {
                    verdict: crate::election::Verdict {
                        role,
                        why: crate::election::Why::Holds,
                        epoch: (role == Role::Primary).then_some(12),
                        lease: (role == Role::Primary).then_some(7),
                    },
                    endpoint: "http://127.0.0.1:2379".into(),
                    key: "/k".into(),
                    key_revision: 12,
                    ttl_left: (role == Role::Primary).then_some(30),
                    sent: sent.clone(),
                })
            } else {
                check::Answer::Exit(Exit::Code(match role {
                    Role::Primary => 0,
                    Role::Standby => 1,
                    Role::Unknown => 9,
                }))
            };
            CheckResult {
                role,
                answer,
                duration: Duration::from_millis(3),
                output: Vec::new(),
                sent,
            }
        }
        fn time(&self) -> &dyn Time {
            self
        }
        fn clock(&self) -> Stamp {
            crate::clock::at("boot", self.clock.boottime_ms + self.later_ms.get())
        }
        fn store_epoch(&self, epoch: Option<i64>) -> Result<(), FsError> {
            self.epochs.borrow_mut().push(epoch);
            Ok(())
        }
        fn arm(&self, _: &deadline::Spec) -> Result<(), String> {
            if self.arm_fails {
                return Err("Access denied".into());
            }
            self.later_ms.set(self.later_ms.get() + self.arm_takes_ms);
            self.switch.borrow_mut().push(true);
            Ok(())
        }
        fn disarm(&self, _: &deadline::Spec) -> Result<bool, String> {
            self.switch.borrow_mut().push(false);
            Ok(true)
        }
        fn acknowledge(
            &self,
            _: &crate::config::EtcdConfig,
            _: &crate::ack::Ack,
        ) -> Result<bool, String> {
            Ok(false)
        }
        fn host_name(&self) -> String {
            "a".into()
        }
        fn release(&self, _: &crate::config::EtcdConfig, lease: i64) -> Result<(), String> {
            self.released.borrow_mut().push(lease);
            Ok(())
        }
        fn load_record(&self) -> Result<Option<fence::Record>, FsError> {
            Ok(self.record.clone())
        }
        fn store_record(&self, record: &fence::Record) -> Result<(), FsError> {
            if self.store_fails {
                return Err(FsError::Io {
                    what: "fence record".into(),
                    path: fence::PATH.into(),
                    source: std::io::Error::from_raw_os_error(libc::EROFS),
                });
            }
            self.stored.borrow_mut().push(record.clone());
            Ok(())
        }
        fn hook(&self, _: &Hooks, event: Event, env: &[(String, String)]) -> Result<(), String> {
            self.hooks_run.borrow_mut().push((event, env.to_vec()));
            // Time the run spends after the check (starting units, hooks).
            self.later_ms.set(self.later_ms.get() + self.hook_takes_ms);
            if self.failing_hooks.contains(&event) {
                return Err(format!("hook {} exited 2", event.key()));
            }
            Ok(())
        }
    }

    /// The same, with the role from etcd in automatic mode (lease 30 s).
    fn etcd_config(check_extra: &str) -> Config {
        let text = format!(
            "site: dc1\ncheck:\n  etcd: {{endpoints: [http://127.0.0.1:2379], key: /k, lease_ttl: 30s}}\n\
             {check_extra}defaults: {{ verify_timeout: 200ms, settle: 0s }}\n\
             units:\n  - app.service\n  - name: replica.service\n    when: standby\n"
        );
        match crate::config::parse(Path::new("/t.yaml"), &text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn etcd_world(answers: &[Role]) -> World {
        World {
            etcd: true,
            ..World::new(answers)
        }
    }

    fn config(check_extra: &str) -> Config {
        let text = format!(
            "check:\n  command: [/bin/true]\n{check_extra}defaults: {{ verify_timeout: 200ms, settle: 0s }}\n\
             units:\n  - app.service\n  - name: replica.service\n    when: standby\n"
        );
        match crate::config::parse(Path::new("/t.yaml"), &text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    const OPTS: Options = Options {
        dry_run: false,
        lock_wait: Duration::from_secs(1),
        observe_after: false,
        confirm: true,
    };

    fn ran(run: Run) -> Report {
        match run {
            Run::Ran(r) => *r,
            Run::NotStarted(e) => panic!("{e}"),
        }
    }

    fn run(config: &Config, world: &World) -> Report {
        ran(reconcile(config, OPTS, world))
    }

    fn exit(r: Report) -> ExitCode {
        ExitCode::of(&r.outcome())
    }

    #[test]
    fn a_standby_that_the_check_calls_primary_is_promoted_and_exits_0() {
        let world = World::new(&[Role::Primary]);
        let r = run(&config(""), &world);
        assert!(matches!(r.end, End::Acted { .. }), "{:?}", r.end);
        assert_eq!(world.jobs(), ["stop replica.service", "start app.service"]);
        assert_eq!(world.events(), [Event::Promote]);
        assert_eq!(exit(r), ExitCode::Success);
    }

    #[test]
    fn paused_changes_nothing_and_exits_0_whatever_the_check_says() {
        for answer in [Role::Primary, Role::Unknown] {
            let world = World {
                paused: Some(Pause::now("test")),
                ..World::new(&[answer])
            };
            let r = run(&config("  fence_after: 1s\n"), &world);
            assert!(matches!(r.end, End::Paused), "{answer}: {:?}", r.end);
            assert!(world.jobs().is_empty(), "{answer}");
            assert!(world.events().is_empty(), "{answer}");
            assert!(r.paused.is_some());
            assert_eq!(exit(r), ExitCode::Success, "{answer}");
        }
    }

    #[test]
    fn role_unknown_changes_nothing_and_exits_3() {
        let world = World::new(&[Role::Unknown]);
        let r = run(&config(""), &world);
        assert!(matches!(r.end, End::RoleUnknown), "{:?}", r.end);
        assert!(r.plan.units.iter().all(|u| u.desired.is_none()));
        assert!(world.jobs().is_empty());
        assert!(world.events().is_empty());
        assert_eq!(exit(r), ExitCode::RoleUnknown);
    }

    #[test]
    fn a_confirming_check_that_disagrees_changes_nothing_and_exits_0() {
        let world = World::new(&[Role::Primary, Role::Standby]);
        let r = run(&config("  confirm: 3\n  confirm_interval: 1ms\n"), &world);
        assert!(matches!(r.end, End::Unconfirmed), "{:?}", r.end);
        assert_eq!(world.checks.get(), 2, "no third check after a disagreement");
        assert_eq!(
            r.confirmation.as_ref().map(|c| c.roles.clone()),
            Some(vec![Role::Primary, Role::Standby])
        );
        assert!(world.jobs().is_empty());
        assert_eq!(exit(r), ExitCode::Success);
    }

    #[test]
    fn confirmation_that_ends_unknown_exits_3_with_an_unknown_plan() {
        let world = World::new(&[Role::Primary, Role::Unknown]);
        let r = run(&config("  confirm: 2\n  confirm_interval: 1ms\n"), &world);
        assert!(matches!(r.end, End::RoleUnknown), "{:?}", r.end);
        assert_eq!(r.plan.role, Role::Unknown);
        assert_eq!(
            r.check.role,
            Role::Unknown,
            "the report shows the last check"
        );
        assert!(r.plan.units.iter().all(|u| u.action.is_none()));
        assert!(r.plan.is_empty());
        assert!(world.jobs().is_empty());
        assert_eq!(exit(r), ExitCode::RoleUnknown);
    }

    #[test]
    fn a_confirmed_primary_arms_the_dead_mans_switch_before_it_starts_anything() {
        let world = etcd_world(&[Role::Primary]);
        let r = run(&etcd_config("  fence_after: 20s\n"), &world);
        assert_eq!(*world.switch.borrow(), [true]);
        assert_eq!(
            r.switch,
            Some(deadline::Outcome::Armed {
                fires_after: Duration::from_secs(15)
            })
        );
        assert_eq!(world.jobs(), ["stop replica.service", "start app.service"]);
        assert_eq!(
            *world.epochs.borrow(),
            [Some(12)],
            "the fencing token is kept"
        );
        assert_eq!(exit(r), ExitCode::Success);
        // A check command: fencing stays the runs' own (a switch would fire between two runs
        // of the shipped minute timer).
        let world = World::new(&[Role::Primary]);
        assert_eq!(run(&config("  fence_after: 20s\n"), &world).switch, None);
        assert!(world.switch.borrow().is_empty());
        // A dry run arms nothing.
        let world = etcd_world(&[Role::Primary]);
        let dry = Options {
            dry_run: true,
            ..OPTS
        };
        assert!(matches!(
            reconcile(&etcd_config("  fence_after: 20s\n"), dry, &world),
            Run::Ran(_)
        ));
        assert!(world.switch.borrow().is_empty());
    }

    #[test]
    fn a_primary_that_cannot_bound_itself_acts_as_if_the_role_were_unknown_and_lets_go() {
        // The answer came from a request sent 5.1 s ago: past a quarter of fence_after.
        let late = World {
            answer_age_ms: 5_100,
            ..etcd_world(&[Role::Primary])
        };
        // systemd refused the switch.
        let refused = World {
            arm_fails: true,
            ..etcd_world(&[Role::Primary])
        };
        for world in [late, refused] {
            let r = run(&etcd_config("  fence_after: 20s\n"), &world);
            assert!(
                r.switch.as_ref().is_some_and(|o| !o.holds()),
                "{:?}",
                r.switch
            );
            assert_eq!(r.plan.role, Role::Unknown);
            assert!(world.jobs().is_empty(), "nothing started or stopped");
            assert!(world.events().is_empty());
            assert_eq!(*world.released.borrow(), [7], "the lease is given back");
            assert_eq!(exit(r), ExitCode::RoleUnknown);
        }
    }

    #[test]
    fn a_takeover_that_took_long_confirms_again_and_arms_the_switch_anew() {
        // Starting the units (and the hooks) took 6 s: more than a quarter of fence_after since
        // the confirming request, so the switch armed before them could fire before the next
        // run does.
        let world = World {
            hook_takes_ms: 6_000,
            ..etcd_world(&[Role::Primary])
        };
        let r = run(&etcd_config("  fence_after: 20s\n"), &world);
        assert_eq!(world.jobs(), ["stop replica.service", "start app.service"]);
        assert_eq!(world.checks.get(), 2, "confirmed once more");
        assert_eq!(*world.switch.borrow(), [true, true], "armed anew");
        assert_eq!(exit(r), ExitCode::Success);
        // Quick: nothing more.
        let world = etcd_world(&[Role::Primary]);
        run(&etcd_config("  fence_after: 20s\n"), &world);
        assert_eq!(world.checks.get(), 1);
        assert_eq!(*world.switch.borrow(), [true]);
    }

    #[test]
    fn a_switch_that_systemd_armed_too_late_fences_at_once() {
        // Answer 1 s old, then systemd takes 4.1 s to restart the timer: it may now fire
        // later than fence_after after the request, when the lease may have gone.
        let mut world = World {
            answer_age_ms: 1_000,
            arm_takes_ms: 4_100,
            ..etcd_world(&[Role::Primary])
        };
        world
            .systemd
            .initial
            .insert("app.service".into(), UnitState::Active);
        let r = run(&etcd_config("  fence_after: 20s\n"), &world);
        assert_eq!(r.switch, Some(deadline::Outcome::ArmedLate));
        assert!(r.plan.fenced);
        assert_eq!(
            world.jobs(),
            ["stop app.service"],
            "nothing started, app stopped"
        );
        assert_eq!(*world.released.borrow(), [7]);
        assert_eq!(exit(r), ExitCode::Failure);
    }

    #[test]
    fn a_standby_stops_the_switch_once_and_an_unknown_role_leaves_it_to_fire() {
        let was_primary = fence::Record::Confirmed(fence::Confirmed::new(
            Role::Primary,
            crate::clock::at("boot", 4_999_000),
            SystemTime::UNIX_EPOCH,
        ));
        let world = World {
            record: Some(was_primary.clone()),
            ..etcd_world(&[Role::Standby])
        };
        let r = run(&etcd_config("  fence_after: 20s\n"), &world);
        assert_eq!(*world.switch.borrow(), [false]);
        assert_eq!(r.switch, Some(deadline::Outcome::Disarmed));
        assert_eq!(*world.epochs.borrow(), [None], "no token on a standby");
        // Standby before too: nothing to stop.
        let world = World {
            record: Some(fence::Record::Confirmed(fence::Confirmed::new(
                Role::Standby,
                crate::clock::at("boot", 4_999_000),
                SystemTime::UNIX_EPOCH,
            ))),
            ..etcd_world(&[Role::Standby])
        };
        run(&etcd_config("  fence_after: 20s\n"), &world);
        assert!(world.switch.borrow().is_empty());
        // Unknown: the switch stays armed, to fire; the token stands.
        let world = World {
            record: Some(was_primary),
            ..etcd_world(&[Role::Unknown])
        };
        let r = run(&etcd_config("  fence_after: 20s\n"), &world);
        assert!(world.switch.borrow().is_empty());
        assert!(world.epochs.borrow().is_empty());
        assert_eq!(r.switch, None);
    }

    #[test]
    fn confirmed_changes_are_acted_on_after_a_fresh_look() {
        let world = World::new(&[Role::Primary]);
        let r = run(&config("  confirm: 3\n  confirm_interval: 1ms\n"), &world);
        assert_eq!(world.checks.get(), 3);
        assert_eq!(world.jobs(), ["stop replica.service", "start app.service"]);
        assert_eq!(exit(r), ExitCode::Success);
    }

    #[test]
    fn fencing_stops_only_the_primary_units_runs_demote_and_failure_and_exits_1() {
        // A primary whose check has not answered for an hour, 30s allowed.
        let mut world = World::new(&[Role::Unknown]);
        world.systemd.initial.clear();
        world
            .systemd
            .initial
            .insert("app.service".into(), UnitState::Active);
        world.record = Some(fence::Record::Confirmed(fence::Confirmed::new(
            Role::Primary,
            crate::clock::at("boot", 5_000_000 - 3_600_000),
            world.now - Duration::from_secs(3600),
        )));
        let r = run(&config("  fence_after: 30s\n"), &world);
        assert!(r.plan.fenced);
        assert!(r.fence.as_ref().is_some_and(|f| f.fenced()));
        assert_eq!(world.jobs(), ["stop app.service"], "replica is not started");
        assert_eq!(world.events(), [Event::Demote, Event::Failure]);
        let fenced_env = world.hooks_run.borrow()[0]
            .1
            .iter()
            .any(|(k, v)| k == "FAILOVER_MANAGER_FENCED" && v == "1");
        assert!(fenced_env);
        assert_eq!(exit(r), ExitCode::Failure);
        // Not yet long enough: unknown as ever, nothing stopped.
        let world = World {
            record: Some(fence::Record::Confirmed(fence::Confirmed::new(
                Role::Primary,
                crate::clock::at("boot", 5_000_000 - 10_000),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 - 10),
            ))),
            ..World::new(&[Role::Unknown])
        };
        let r = run(&config("  fence_after: 30s\n"), &world);
        assert!(world.jobs().is_empty());
        assert_eq!(exit(r), ExitCode::RoleUnknown);
    }

    #[test]
    fn an_interrupt_during_the_check_changes_nothing_and_exits_1() {
        let world = World {
            interrupt_in_check: true,
            ..World::new(&[Role::Primary])
        };
        let r = run(&config(""), &world);
        assert!(matches!(r.end, End::Interrupted), "{:?}", r.end);
        assert!(world.jobs().is_empty());
        assert!(world.events().is_empty());
        assert_eq!(exit(r), ExitCode::Failure);
    }

    #[test]
    fn a_failed_hook_exits_1_and_never_undoes_the_transition() {
        let world = World {
            failing_hooks: vec![Event::Promote],
            ..World::new(&[Role::Primary])
        };
        let r = run(&config(""), &world);
        assert_eq!(
            world.jobs(),
            ["stop replica.service", "start app.service"],
            "no job after the hook"
        );
        assert!(r.results.iter().all(|s| !s.failed()));
        match &r.end {
            End::Acted { hook_errors, .. } => assert_eq!(hook_errors.len(), 1),
            e => panic!("{e:?}"),
        }
        assert_eq!(exit(r), ExitCode::Failure);
    }

    #[test]
    fn systemd_unreachable_still_reports_the_check_and_exits_1() {
        let mut world = World::new(&[Role::Primary]);
        world.systemd.unreachable = true;
        let r = run(&config(""), &world);
        assert!(
            matches!(r.end, End::Failed(Error::Systemd(_))),
            "{:?}",
            r.end
        );
        assert_eq!(r.check.role, Role::Primary);
        assert!(r.unobserved.is_some());
        assert!(
            r.plan
                .units
                .iter()
                .all(|u| u.observed == UnitState::unknown() && u.action.is_none())
        );
        assert_eq!(r.plan.observed_role, None);
        assert!(world.jobs().is_empty());
        assert_eq!(exit(r), ExitCode::Failure);
    }

    #[test]
    fn a_record_that_cannot_be_stored_exits_1_after_acting() {
        let world = World {
            store_fails: true,
            ..World::new(&[Role::Primary])
        };
        let r = run(&config("  fence_after: 30s\n"), &world);
        assert!(r.record_lost);
        assert_eq!(world.jobs(), ["stop replica.service", "start app.service"]);
        assert_eq!(exit(r), ExitCode::Failure);
        // Stored: the same run converges.
        let world = World::new(&[Role::Primary]);
        let r = run(&config("  fence_after: 30s\n"), &world);
        assert_eq!(world.stored.borrow().len(), 1);
        assert_eq!(exit(r), ExitCode::Success);
    }

    #[test]
    fn a_dry_run_changes_nothing_and_stores_nothing() {
        let world = World::new(&[Role::Primary]);
        let r = ran(reconcile(
            &config("  fence_after: 30s\n"),
            Options {
                dry_run: true,
                ..OPTS
            },
            &world,
        ));
        assert!(matches!(r.end, End::DryRun));
        assert_eq!(r.plan.steps.len(), 2);
        assert!(world.jobs().is_empty());
        assert!(world.stored.borrow().is_empty());
        assert_eq!(exit(r), ExitCode::Success);
    }
}
