//! The only module that talks to systemd. It speaks D-Bus the way systemctl does (through
//! sd-bus, `sdbus.rs`): as root over systemd's private socket, so it works while dbus-daemon
//! is down, else over the system bus. One connection per run, made at the first question.
//!
//! - All states in one round trip: `ListUnitsByNames`. The state strings are systemd's
//!   `ActiveState`, exactly what `systemctl is-active` prints, so every decision can be
//!   reproduced with systemctl.
//! - Jobs are queued with `StartUnit`/`StopUnit` (mode `replace`) and awaited through
//!   systemd's `JobRemoved` signal, watched for before the first job is queued (an instant
//!   job's signal would otherwise be lost); unit changes arrive as `PropertiesChanged`.
//! - A dropped connection (`systemctl daemon-reexec`, which a systemd upgrade runs) is made
//!   again, and the caller is told that it may have missed signals.
//!
//! journalctl stays a process: it is read only for failure reports.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::{Action, UnitState};
use crate::interrupt::{Real, Time};
use crate::sdbus::{Arg, Bus, CallError, Errno, Message, Value};

#[cfg(test)]
pub mod fake;

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("cannot reach systemd: {0}")]
    Connect(String),
    #[error("systemd did not answer {method}: {error}")]
    Call { method: &'static str, error: String },
    #[error(
        "systemd answered for {got} of {expected} units (ListUnitsByNames skips invalid names)"
    )]
    Count { expected: usize, got: usize },
    #[error("{verb} {unit}: {error}")]
    Job {
        verb: &'static str,
        unit: String,
        error: String,
    },
}

/// What systemd knows of a unit and of why it is where it is; the names are systemctl
/// show's properties, the values the strings it prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitDetails {
    pub load_state: String,
    pub active_state: UnitState,
    pub sub_state: String,
    pub result: String,
    pub exec_main_status: String,
    pub unit_file_state: String,
    /// A start or stop job is queued or running for the unit.
    pub job_pending: bool,
    /// `no` when a `Condition…=` was not met at the last start.
    pub condition_result: String,
    /// Changes on every start of the unit: a restart between two reads shows here.
    pub invocation_id: String,
    pub n_restarts: String,
}

impl Default for UnitDetails {
    fn default() -> Self {
        UnitDetails {
            load_state: String::new(),
            active_state: UnitState::Other(String::new()),
            sub_state: String::new(),
            result: String::new(),
            exec_main_status: String::new(),
            unit_file_state: String::new(),
            job_pending: false,
            condition_result: String::new(),
            invocation_id: String::new(),
            n_restarts: String::new(),
        }
    }
}

impl UnitDetails {
    /// A short cause for a report: "result exit-code, status 1" or "not-found".
    pub fn cause(&self) -> String {
        if self.load_state != "loaded" && !self.load_state.is_empty() {
            return format!("unit {}", self.load_state);
        }
        let mut parts = Vec::new();
        if !self.result.is_empty() && self.result != "success" {
            parts.push(format!("result {}", self.result));
        }
        if !self.exec_main_status.is_empty() && self.exec_main_status != "0" {
            parts.push(format!("exit status {}", self.exec_main_status));
        }
        parts.join(", ")
    }
}

/// `journalctl --since` for lines logged from `t` on, to the microsecond (the journal's own
/// precision): whole seconds would let in what the unit logged earlier in the same second,
/// from an earlier run. Not by invocation ID: a stop's invocation began long before the
/// step, a restart in the settle window hides the crash in the invocation before, and a
/// start that never ran (a dependency failed) has only systemd's own lines to show.
pub fn journal_since(t: std::time::SystemTime) -> String {
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!("@{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// Something systemd said while we waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A job ended (`JobRemoved`): ours, or another one of a unit we wait for.
    JobRemoved {
        job: u32,
        unit: String,
        result: String,
    },
    /// A property of the unit changed (`PropertiesChanged`): worth a new read.
    Changed { unit: String },
    /// The connection was lost and made again (daemon-reexec): signals may have been missed,
    /// so every unit must be read again.
    Reconnected,
}

/// Everything the reconciler needs from systemd. A trait so the apply loop's ordering and
/// timeouts can be unit-tested; the integration tests run the real implementation.
pub trait Manager {
    /// Each unit's state, as `systemctl is-active` prints it, in one round trip.
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemdError>;
    /// Verification's read, in one round trip: load state, state, sub-state and whether a job
    /// is pending; with `identity[i]`, also the unit's InvocationID and NRestarts.
    fn observe(&self, units: &[&str], identity: &[bool]) -> Result<Vec<UnitDetails>, SystemdError>;
    /// Everything a report or `validate` shows of each unit.
    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemdError>;
    /// One property as `systemctl show -p P --value` prints it (LoadState, TimeoutStartUSec).
    fn property(&self, unit: &str, property: &str) -> Result<String, SystemdError>;
    /// Queues a start or stop job (mode `replace`) without waiting for it, and returns its
    /// id. The job's end is watched for before it is queued.
    fn queue(&self, action: Action, unit: &str) -> Result<u32, SystemdError>;
    /// Waits until systemd says something about one of `units` (or a job we queued), or until
    /// `until`, or an interrupt; returns what it said (nothing on a timeout).
    fn wait(&self, units: &[&str], until: Instant) -> Result<Vec<Event>, SystemdError>;
    fn journal_tail(
        &self,
        unit: &str,
        since: Option<std::time::SystemTime>,
        lines: usize,
    ) -> Vec<String>;
}

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";
/// What systemctl connects to as root: systemd itself, no dbus-daemon in between.
const PRIVATE_SOCKET: &str = "unix:path=/run/systemd/private";
/// systemctl's own default method-call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a question keeps trying when the connection drops under it (a daemon-reexec
/// takes well under a second).
const RECONNECT_FOR: Duration = Duration::from_secs(3);
/// The longest single sleep in a wait, so an interrupt is noticed at once even if its
/// signal landed just before the wait began.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// The object path of a unit: systemd's bus_label_escape of its name.
pub fn unit_path(name: &str) -> String {
    let mut p = String::from(UNIT_PREFIX);
    if name.is_empty() {
        p.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            p.push(char::from(b));
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// The unit name of a unit's object path, or None for any other path.
pub fn unit_name(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?;
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = label.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A job's id from its object path (`/org/freedesktop/systemd1/job/1234`).
pub fn job_id(path: &str) -> Option<u32> {
    path.strip_prefix("/org/freedesktop/systemd1/job/")?
        .parse()
        .ok()
}

/// The D-Bus interface with a unit type's own properties (Result, …), from its suffix.
fn type_interface(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "service" => SERVICE,
        "socket" => "org.freedesktop.systemd1.Socket",
        "timer" => "org.freedesktop.systemd1.Timer",
        "mount" => "org.freedesktop.systemd1.Mount",
        "automount" => "org.freedesktop.systemd1.Automount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// A time span in microseconds as systemctl show prints it ("15min", "1min 30s", "infinity").
pub fn format_timespan(usec: u64) -> String {
    const TABLE: [(&str, u64); 9] = [
        ("y", 31_557_600_000_000),
        ("month", 2_629_800_000_000),
        ("w", 604_800_000_000),
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ];
    if usec == u64::MAX {
        return "infinity".into();
    }
    if usec == 0 {
        return "0".into();
    }
    let mut parts = Vec::new();
    let mut t = usec;
    for (suffix, unit) in TABLE {
        if t == 0 {
            break;
        }
        if t < unit {
            continue;
        }
        let (a, b) = (t / unit, t % unit);
        // Under a minute, systemd writes the rest as a decimal fraction of this unit.
        if usec < 60_000_000 && b > 0 {
            let digits = unit.ilog10() as usize;
            let frac = format!("{b:0digits$}");
            parts.push(format!("{a}.{}{suffix}", frac.trim_end_matches('0')));
            break;
        }
        parts.push(format!("{a}{suffix}"));
        t = b;
    }
    parts.join(" ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One connection and what was set up on it.
struct Conn {
    bus: Bus,
    /// Direct (private socket): systemd sends every signal to every direct connection.
    /// Through dbus-daemon, signals must be asked for (AddMatch, Subscribe).
    direct: bool,
    watching: bool,
}

/// A unit as `ListUnitsByNames` lists it.
struct Listed {
    load: String,
    active: String,
    sub: String,
    job: u32,
}

/// The real thing, over D-Bus.
#[derive(Default)]
pub struct Systemd {
    /// What its waits read the clock and SIGTERM/SIGINT from.
    time: Real,
    conn: RefCell<Option<Conn>>,
    connected_once: Cell<bool>,
    /// A connection was made again since the last `wait`: tell its caller.
    reconnected: Cell<bool>,
    /// The ids of the jobs we queued, so their `JobRemoved` is never filtered out.
    jobs: RefCell<HashSet<u32>>,
}

fn connect() -> Result<Conn, SystemdError> {
    let started = Instant::now();
    let mut tried = Vec::new();
    // As root, systemctl talks to systemd directly: it needs no dbus-daemon.
    if crate::security::running_as_root() {
        match Bus::open_address(PRIVATE_SOCKET) {
            Ok(bus) => {
                log::debug!(
                    "dbus connect {PRIVATE_SOCKET} in {:?}: ok",
                    started.elapsed()
                );
                return Ok(Conn {
                    bus,
                    direct: true,
                    watching: false,
                });
            }
            Err(e) => tried.push(format!("/run/systemd/private: {e}")),
        }
    }
    match Bus::open_system() {
        Ok(bus) => {
            log::debug!("dbus connect system bus in {:?}: ok", started.elapsed());
            Ok(Conn {
                bus,
                direct: false,
                watching: false,
            })
        }
        Err(e) => {
            tried.push(format!("system bus: {e}"));
            Err(SystemdError::Connect(tried.join("; ")))
        }
    }
}

/// A call error worth making the connection again for: it broke, or (through dbus-daemon)
/// systemd is off the bus for a moment while it re-executes.
fn transient(e: &CallError) -> bool {
    e.is_disconnect()
        || matches!(
            e.name.as_deref(),
            Some(
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    | "org.freedesktop.DBus.Error.Disconnected"
            )
        )
}

impl Conn {
    fn call(
        &self,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg],
    ) -> Result<Message, CallError> {
        self.bus
            .call(DEST, path, interface, member, args, CALL_TIMEOUT)
    }

    fn list(&self, units: &[&str]) -> Result<Vec<Listed>, CallError> {
        let m = self.call(
            MANAGER_PATH,
            MANAGER,
            "ListUnitsByNames",
            &[Arg::Strs(units)],
        )?;
        let mut out = Vec::with_capacity(units.len());
        m.enter(b'a', "(ssssssouso)")?;
        while m.enter(b'r', "ssssssouso")? {
            m.skip("ss")?; // name (an alias comes back as its unit's name), description
            let load = m.read_str()?;
            let active = m.read_str()?;
            let sub = m.read_str()?;
            m.skip("so")?; // following, unit path
            let job = m.read_u32()?;
            m.skip("so")?; // job type, job path
            m.exit()?;
            out.push(Listed {
                load,
                active,
                sub,
                job,
            });
        }
        m.exit()?;
        Ok(out)
    }

    /// The names of the units systemd has loaded that match `pattern` (a glob).
    fn names_like(&self, pattern: &str) -> Result<Vec<String>, CallError> {
        let m = self.call(
            MANAGER_PATH,
            MANAGER,
            "ListUnitsByPatterns",
            &[Arg::Strs(&[]), Arg::Strs(&[pattern])],
        )?;
        let mut out = Vec::new();
        m.enter(b'a', "(ssssssouso)")?;
        while m.enter(b'r', "ssssssouso")? {
            out.push(m.read_str()?);
            m.skip("sssssouso")?;
            m.exit()?;
        }
        m.exit()?;
        Ok(out)
    }

    /// `Properties.Get`, with the reply entered into its variant of signature `sig`.
    fn get(
        &self,
        unit: &str,
        interface: &str,
        property: &str,
        sig: &str,
    ) -> Result<Message, CallError> {
        let m = self.call(
            &unit_path(unit),
            PROPERTIES,
            "Get",
            &[Arg::Str(interface), Arg::Str(property)],
        )?;
        if !m.enter(b'v', sig)? {
            return Err(Errno(libc::EBADMSG).into());
        }
        Ok(m)
    }

    /// A property that a unit may lack (NRestarts of a timer): empty then. A broken
    /// connection is still an error.
    fn get_opt<T: Default>(
        &self,
        unit: &str,
        interface: &str,
        property: &str,
        sig: &str,
        read: impl Fn(&Message) -> Result<T, Errno>,
    ) -> Result<T, CallError> {
        match self.get(unit, interface, property, sig) {
            Ok(m) => Ok(read(&m).unwrap_or_default()),
            Err(e) if transient(&e) => Err(e),
            Err(_) => Ok(T::default()),
        }
    }

    fn identity(&self, unit: &str, d: &mut UnitDetails) -> Result<(), CallError> {
        d.invocation_id = self.get_opt(unit, UNIT, "InvocationID", "ay", |m| {
            m.read_bytes().map(|b| hex(&b))
        })?;
        if type_interface(unit) == Some(SERVICE) {
            d.n_restarts = self.get_opt(unit, SERVICE, "NRestarts", "u", |m| {
                m.read_u32().map(|n| n.to_string())
            })?;
        }
        Ok(())
    }

    fn details(&self, unit: &str, d: &mut UnitDetails) -> Result<(), CallError> {
        self.identity(unit, d)?;
        d.unit_file_state = self.get_opt(unit, UNIT, "UnitFileState", "s", Message::read_str)?;
        d.condition_result = self.get_opt(unit, UNIT, "ConditionResult", "b", |m| {
            m.read_bool()
                .map(|b| if b { "yes" } else { "no" }.to_owned())
        })?;
        if let Some(iface) = type_interface(unit) {
            d.result = self.get_opt(unit, iface, "Result", "s", Message::read_str)?;
        }
        if type_interface(unit) == Some(SERVICE) {
            d.exec_main_status = self.get_opt(unit, SERVICE, "ExecMainStatus", "i", |m| {
                m.read_i32().map(|n| n.to_string())
            })?;
        }
        Ok(())
    }

    /// Asks for the signals the waits need. A direct connection gets them all anyway.
    fn watch(&mut self) -> Result<(), CallError> {
        if self.watching {
            return Ok(());
        }
        if !self.direct {
            for rule in [
                "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',\
                 interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
                "type='signal',sender='org.freedesktop.systemd1',\
                 interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',\
                 path_namespace='/org/freedesktop/systemd1/unit'",
            ] {
                self.bus.call(
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "AddMatch",
                    &[Arg::Str(rule)],
                    CALL_TIMEOUT,
                )?;
            }
            // Without a subscriber on the bus, systemd sends no PropertiesChanged there.
            self.call(MANAGER_PATH, MANAGER, "Subscribe", &[])?;
        }
        self.watching = true;
        Ok(())
    }
}

impl From<Errno> for CallError {
    fn from(e: Errno) -> Self {
        CallError {
            errno: e,
            name: None,
            message: None,
        }
    }
}

fn check_count<T>(expected: usize, got: Vec<T>) -> Result<Vec<T>, SystemdError> {
    if got.len() == expected {
        Ok(got)
    } else {
        Err(SystemdError::Count {
            expected,
            got: got.len(),
        })
    }
}

fn listed_details(l: &Listed) -> UnitDetails {
    UnitDetails {
        load_state: l.load.clone(),
        active_state: UnitState::parse(&l.active),
        sub_state: l.sub.clone(),
        job_pending: l.job != 0,
        ..UnitDetails::default()
    }
}

/// What one signal means for a wait on `units` (and our `jobs`), if anything. `Err` when it
/// says the connection is gone.
fn event_of(m: &Message, units: &[&str], jobs: &HashSet<u32>) -> Result<Option<Event>, Errno> {
    if m.is_signal(MANAGER, "JobRemoved") {
        let job = m.read_u32()?;
        m.skip("o")?;
        let unit = m.read_str()?;
        let result = m.read_str()?;
        let ours = jobs.contains(&job) || units.contains(&unit.as_str());
        return Ok(ours.then_some(Event::JobRemoved { job, unit, result }));
    }
    if m.is_signal(PROPERTIES, "PropertiesChanged") {
        return Ok(unit_name(&m.path())
            .filter(|u| units.contains(&u.as_str()))
            .map(|unit| Event::Changed { unit }));
    }
    if m.is_signal("org.freedesktop.DBus.Local", "Disconnected") {
        return Err(Errno(libc::ECONNRESET));
    }
    Ok(None)
}

impl Systemd {
    pub fn new() -> Systemd {
        Systemd::default()
    }

    /// Runs `f` on the connection (made first if need be), logging the call and its duration
    /// (`-vv`). When the connection breaks under it, it is made again and `f` retried, for up
    /// to RECONNECT_FOR: a daemon-reexec must not fail a run.
    fn with_conn<T>(
        &self,
        member: &'static str,
        what: &str,
        mut f: impl FnMut(&mut Conn) -> Result<T, CallError>,
    ) -> Result<T, SystemdError> {
        let first = self.time.now();
        let mut backoff = Duration::from_millis(10);
        loop {
            let started = Instant::now();
            let result = {
                let mut guard = self.conn.borrow_mut();
                if guard.is_none() {
                    match connect() {
                        Ok(c) => {
                            if self.connected_once.replace(true) {
                                self.reconnected.set(true);
                            }
                            *guard = Some(c);
                        }
                        // Unreachable at the first question: say so now. Unreachable after
                        // we were connected: systemd is re-executing, try again.
                        Err(e) if !self.connected_once.get() => return Err(e),
                        Err(e) => {
                            drop(guard);
                            if self.time.now().saturating_duration_since(first) >= RECONNECT_FOR
                                || !self.time.sleep(backoff)
                            {
                                return Err(e);
                            }
                            backoff = (backoff * 2).min(Duration::from_millis(100));
                            continue;
                        }
                    }
                }
                match guard.as_mut() {
                    Some(conn) => f(conn),
                    None => Err(Errno(libc::ENOTCONN).into()),
                }
            };
            log::debug!(
                "dbus {member} {what} in {:?}: {}",
                started.elapsed(),
                match &result {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("error: {e}"),
                }
            );
            match result {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) => {
                    *self.conn.borrow_mut() = None;
                    if self.time.now().saturating_duration_since(first) >= RECONNECT_FOR
                        || !self.time.sleep(backoff)
                    {
                        return Err(SystemdError::Call {
                            method: member,
                            error: e.to_string(),
                        });
                    }
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(SystemdError::Call {
                        method: member,
                        error: e.to_string(),
                    });
                }
            }
        }
    }

    fn list(&self, units: &[&str]) -> Result<Vec<Listed>, SystemdError> {
        let what = format!("({} units)", units.len());
        let listed = self.with_conn("ListUnitsByNames", &what, |c| c.list(units))?;
        check_count(units.len(), listed)
    }
}

/// systemd's answer for a unit it does not have.
fn no_such_unit(e: &SystemdError) -> bool {
    matches!(e, SystemdError::Call { error, .. }
        if error.contains("not found") || error.contains("not loaded") || error.contains("NoSuchUnit"))
}

/// The dead man's switch (`deadline`), held by systemd.
impl Systemd {
    /// Restarts the switch's timer, which counts `OnActiveSec=` from then; creates the timer
    /// and its service when systemd does not have them (the first arming, after a fence, after
    /// a reboot, or a config that changed what the switch does).
    pub fn arm(&self, spec: &crate::deadline::Spec) -> Result<(), SystemdError> {
        let restart = self.with_conn("RestartUnit", &spec.timer, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "RestartUnit",
                &[Arg::Str(&spec.timer), Arg::Str("replace")],
            )
            .map(|_| ())
        });
        match restart {
            Err(e) if no_such_unit(&e) => self.create_switch(spec),
            other => other,
        }
    }

    fn create_switch(&self, spec: &crate::deadline::Spec) -> Result<(), SystemdError> {
        let usec = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let argv: Vec<&str> = spec.exec.iter().map(String::as_str).collect();
        let program = argv.first().copied().unwrap_or(crate::deadline::SYSTEMCTL);
        // A service that failed once (its stop job canceled by a run's start) must not stay
        // loaded, or this name could never be created again.
        let _ = self.with_conn("ResetFailedUnit", &spec.service, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "ResetFailedUnit",
                &[Arg::Str(&spec.service)],
            )
            .map(|_| ())
        });
        let timer = [
            ("Description", Value::Str(&spec.description)),
            ("CollectMode", Value::Str("inactive-or-failed")),
            ("OnActiveSec", Value::U64(usec(spec.fire_after))),
            // The default accuracy is a minute.
            ("AccuracyUSec", Value::U64(1_000)),
            ("RandomizedDelayUSec", Value::U64(0)),
        ];
        let service = [
            ("Description", Value::Str(&spec.description)),
            ("Type", Value::Str("oneshot")),
            ("CollectMode", Value::Str("inactive-or-failed")),
            ("ExecStart", Value::Exec(program, &argv)),
        ];
        self.with_conn("StartTransientUnit", &spec.timer, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "StartTransientUnit",
                &[
                    Arg::Str(&spec.timer),
                    Arg::Str("fail"),
                    Arg::Props(&timer),
                    Arg::Units(&[(&spec.service, &service)]),
                ],
            )
            .map(|_| ())
        })?;
        // A switch of an earlier config would fire on its own schedule: retire it.
        let pattern = "failover-manager-deadline-*.timer";
        let old = self.with_conn("ListUnitsByPatterns", pattern, |c| c.names_like(pattern))?;
        for name in old.iter().filter(|n| **n != spec.timer) {
            log::info!("retiring the dead man's switch of an earlier config: {name}");
            self.stop_now(name)?;
        }
        Ok(())
    }

    /// Stops the switch (a confirmed standby); whether there was one to stop.
    pub fn disarm(&self, spec: &crate::deadline::Spec) -> Result<bool, SystemdError> {
        match self.stop_now(&spec.timer) {
            Ok(()) => Ok(true),
            Err(e) if no_such_unit(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn stop_now(&self, unit: &str) -> Result<(), SystemdError> {
        self.with_conn("StopUnit", unit, |c| {
            c.call(
                MANAGER_PATH,
                MANAGER,
                "StopUnit",
                &[Arg::Str(unit), Arg::Str("replace")],
            )
            .map(|_| ())
        })
    }
}

impl Manager for Systemd {
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
        Ok(self
            .list(units)?
            .iter()
            .map(|l| UnitState::parse(&l.active))
            .collect())
    }

    fn observe(&self, units: &[&str], identity: &[bool]) -> Result<Vec<UnitDetails>, SystemdError> {
        // Identity first, then the state: a restart between the two reads then shows as a
        // new invocation at the next read instead of going unseen.
        let mut ids = Vec::with_capacity(units.len());
        for (u, want) in units
            .iter()
            .zip(identity.iter().chain(std::iter::repeat(&false)))
        {
            let mut d = UnitDetails::default();
            if *want {
                self.with_conn("Get", &format!("{u} InvocationID NRestarts"), |c| {
                    c.identity(u, &mut d)
                })?;
            }
            ids.push(d);
        }
        let listed = self.list(units)?;
        Ok(listed
            .iter()
            .zip(ids)
            .map(|(l, id)| UnitDetails {
                invocation_id: id.invocation_id,
                n_restarts: id.n_restarts,
                ..listed_details(l)
            })
            .collect())
    }

    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemdError> {
        let listed = self.list(units)?;
        let mut out = Vec::with_capacity(units.len());
        for (u, l) in units.iter().zip(&listed) {
            let mut d = listed_details(l);
            self.with_conn("Get", &format!("{u} (details)"), |c| c.details(u, &mut d))?;
            out.push(d);
        }
        Ok(out)
    }

    fn property(&self, unit: &str, property: &str) -> Result<String, SystemdError> {
        let what = format!("{unit} {property}");
        self.with_conn("Get", &what, |c| match property {
            "LoadState" => c
                .get(unit, UNIT, property, "s")?
                .read_str()
                .map_err(Into::into),
            "TimeoutStartUSec" | "TimeoutStopUSec" => c
                .get(unit, SERVICE, property, "t")?
                .read_u64()
                .map(format_timespan)
                .map_err(Into::into),
            // A timer's period: its OnUnitActiveSec= ("" when it has none).
            "OnUnitActiveUSec" => {
                let m = c.get(
                    unit,
                    "org.freedesktop.systemd1.Timer",
                    "TimersMonotonic",
                    "a(stt)",
                )?;
                let mut period = String::new();
                m.enter(b'a', "(stt)")?;
                while m.enter(b'r', "stt")? {
                    let base = m.read_str()?;
                    let value = m.read_u64()?;
                    m.skip("t")?;
                    m.exit()?;
                    if base == property {
                        period = format_timespan(value);
                    }
                }
                Ok(period)
            }
            _ => Err(Errno(libc::EINVAL).into()),
        })
    }

    fn queue(&self, action: Action, unit: &str) -> Result<u32, SystemdError> {
        let member = match action {
            Action::Start => "StartUnit",
            Action::Stop => "StopUnit",
        };
        // Watching first: an instant job ends before the call returns to us.
        let path = self
            .with_conn(member, unit, |c| {
                c.watch()?;
                c.call(
                    MANAGER_PATH,
                    MANAGER,
                    member,
                    &[Arg::Str(unit), Arg::Str("replace")],
                )?
                .read_path()
                .map_err(Into::into)
            })
            .map_err(|e| SystemdError::Job {
                verb: action.as_str(),
                unit: unit.to_owned(),
                error: match e {
                    SystemdError::Call { error, .. } => {
                        refusal(&error, crate::security::running_as_root())
                    }
                    other => other.to_string(),
                },
            })?;
        let id = job_id(&path).unwrap_or(0);
        self.jobs.borrow_mut().insert(id);
        Ok(id)
    }

    fn wait(&self, units: &[&str], until: Instant) -> Result<Vec<Event>, SystemdError> {
        loop {
            if self.reconnected.replace(false) {
                return Ok(vec![Event::Reconnected]);
            }
            let mut events = Vec::new();
            let mut lost = None;
            {
                let mut guard = self.conn.borrow_mut();
                if let Some(conn) = guard.as_mut() {
                    if let Err(e) = conn.watch() {
                        lost = Some(e.to_string());
                    }
                    let jobs = self.jobs.borrow();
                    while lost.is_none() {
                        match conn.bus.next_message() {
                            Ok(Some(m)) => match event_of(&m, units, &jobs) {
                                Ok(Some(e)) => events.push(e),
                                Ok(None) => {}
                                Err(e) => lost = Some(e.to_string()),
                            },
                            Ok(None) => break,
                            Err(e) => lost = Some(e.to_string()),
                        }
                    }
                    if lost.is_none() && events.is_empty() {
                        let now = self.time.now();
                        if now < until && !self.time.interrupted() {
                            if let Err(e) = conn.bus.wait((until - now).min(WAIT_SLICE)) {
                                lost = Some(e.to_string());
                            }
                            if !conn.bus.is_open() {
                                lost.get_or_insert_with(|| "connection closed".into());
                            }
                        }
                    }
                } else {
                    lost = Some("not connected".into());
                }
                if lost.is_some() {
                    *guard = None;
                }
            }
            if let Some(why) = lost {
                log::debug!("dbus connection lost while waiting: {why}");
                // Make it again (for a while), then report that signals may have been missed.
                self.with_conn("connect", "(again)", |c| c.watch())?;
                self.reconnected.set(false);
                return Ok(vec![Event::Reconnected]);
            }
            if !events.is_empty() || self.time.now() >= until || self.time.interrupted() {
                return Ok(events);
            }
        }
    }

    fn journal_tail(
        &self,
        unit: &str,
        since: Option<std::time::SystemTime>,
        lines: usize,
    ) -> Vec<String> {
        let started = Instant::now();
        let n = lines.to_string();
        let since = since.map(journal_since);
        let mut args = vec!["--no-pager", "--quiet", "-o", "cat", "-n", &n];
        if let Some(s) = since.as_deref() {
            args.extend_from_slice(&["--since", s]);
        }
        args.extend_from_slice(&["-u", unit]);
        let out = duct::cmd("journalctl", &args)
            .unchecked()
            .stdin_null()
            .stdout_capture()
            .stderr_null()
            .run();
        log::debug!(
            "ran journalctl {} in {:?}",
            args.join(" "),
            started.elapsed()
        );
        match out {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect(),
            Err(e) => {
                log::debug!("cannot run journalctl: {e}");
                Vec::new()
            }
        }
    }
}

/// systemd refuses changes to a caller that is not root (through polkit, "Interactive
/// authentication required."): say so plainly.
fn refusal(error: &str, root: bool) -> String {
    if root {
        return error.to_owned();
    }
    format!("refused: changing units needs root (systemd said: {error})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_since_is_to_the_microsecond() {
        let t = std::time::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_042_999);
        assert_eq!(journal_since(t), "@1700000000.000042");
    }

    #[test]
    fn parses_every_known_state() {
        for s in [
            "active",
            "reloading",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "maintenance",
            "refreshing",
        ] {
            let st = UnitState::parse(s);
            assert!(!matches!(st, UnitState::Other(_)), "{s}");
            assert_eq!(st.as_str(), s);
        }
        assert_eq!(
            UnitState::parse("something-new"),
            UnitState::Other("something-new".into())
        );
    }

    #[test]
    fn unit_paths_are_systemds_escaping_both_ways() {
        // What `systemctl show -p ObjectPath` prints for these.
        assert_eq!(
            unit_path("app.service"),
            "/org/freedesktop/systemd1/unit/app_2eservice"
        );
        assert_eq!(
            unit_path("bench-fast@001.service"),
            "/org/freedesktop/systemd1/unit/bench_2dfast_40001_2eservice"
        );
        assert_eq!(
            unit_path("0day.service"),
            "/org/freedesktop/systemd1/unit/_30day_2eservice"
        );
        for name in [
            "app.service",
            "a-b@x_y.timer",
            "0day.service",
            "dev-sda1.device",
        ] {
            assert_eq!(unit_name(&unit_path(name)).as_deref(), Some(name));
        }
        assert_eq!(unit_name("/org/freedesktop/systemd1/job/12"), None);
        assert_eq!(unit_name("/org/freedesktop/systemd1/unit/bad_4"), None);
        assert_eq!(job_id("/org/freedesktop/systemd1/job/1234"), Some(1234));
        assert_eq!(job_id("/org/freedesktop/systemd1/unit/x"), None);
    }

    #[test]
    fn timespans_print_like_systemctl_show() {
        assert_eq!(format_timespan(15 * 60_000_000), "15min");
        assert_eq!(format_timespan(90_000_000), "1min 30s");
        assert_eq!(format_timespan(u64::MAX), "infinity");
        assert_eq!(format_timespan(0), "0");
        assert_eq!(format_timespan(1_500_000), "1.5s");
        assert_eq!(format_timespan(3_600_000_000 + 1_000), "1h 1ms");
        assert_eq!(format_timespan(500_000), "500ms");
        // What validate parses back.
        assert!(humantime::parse_duration(&format_timespan(90_000_000)).is_ok());
    }

    #[test]
    fn type_interfaces_and_ids() {
        assert_eq!(type_interface("a.service"), Some(SERVICE));
        assert_eq!(
            type_interface("a.timer"),
            Some("org.freedesktop.systemd1.Timer")
        );
        assert_eq!(type_interface("a.target"), None);
        assert_eq!(hex(&[0x0a, 0xff, 0x00]), "0aff00");
    }

    #[test]
    fn a_refusal_to_a_user_says_that_root_is_needed() {
        let said = "Interactive authentication required.";
        assert_eq!(refusal(said, true), said);
        assert_eq!(
            refusal(said, false),
            "refused: changing units needs root (systemd said: Interactive authentication required.)"
        );
    }

    #[test]
    fn counts_are_checked_not_guessed() {
        assert!(check_count(2, vec![1, 2]).is_ok());
        let e = check_count(3, vec![1, 2]).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("systemd answered for 2 of 3 units (ListUnitsByNames skips invalid names)")
        );
    }

    #[test]
    fn cause() {
        let d = UnitDetails {
            load_state: "loaded".into(),
            active_state: UnitState::Failed,
            result: "exit-code".into(),
            exec_main_status: "3".into(),
            ..UnitDetails::default()
        };
        assert_eq!(d.cause(), "result exit-code, exit status 3");
        let nf = UnitDetails {
            load_state: "not-found".into(),
            ..UnitDetails::default()
        };
        assert_eq!(nf.cause(), "unit not-found");
        let ok = UnitDetails {
            load_state: "loaded".into(),
            result: "success".into(),
            exec_main_status: "0".into(),
            ..UnitDetails::default()
        };
        assert_eq!(ok.cause(), "", "nothing to add to the state");
    }
}
