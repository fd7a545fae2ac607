//! [`Systemd`], the real [`Manager`]: one connection per run, made at the first question and
//! made again when it breaks (daemon-reexec); jobs queued and their ends awaited on systemd's
//! signals; journalctl for failure reports; and the words for a refused change. The calls
//! themselves are [`super::conn`]'s.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::conn::{Conn, Listed, connect, transient};
use super::names::{
    MANAGER, MANAGER_PATH, PROPERTIES, SERVICE, UNIT, format_timespan, job_id, unit_name,
};
use super::{Event, Manager, SystemdError, UnitDetails, journal_since};
use crate::domain::{Action, UnitState};
use crate::interrupt::{Real, Time};
use crate::sdbus::{Arg, CallError, Errno, Message};

/// How long a question keeps trying when the connection drops under it (a daemon-reexec
/// takes well under a second).
const RECONNECT_FOR: Duration = Duration::from_secs(3);
/// The longest single sleep in a wait, so an interrupt is noticed at once even if its
/// signal landed just before the wait began.
const WAIT_SLICE: Duration = Duration::from_millis(20);

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
    pub(super) fn with_conn<T>(
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
}
