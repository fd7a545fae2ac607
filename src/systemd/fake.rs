//! A scripted systemd for unit tests (apply's loop, a whole reconcile): no root needed.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::{Event, Manager, SystemdError, UnitDetails};
use crate::domain::{Action, UnitState};

/// A scripted systemd: each job ends at once (`done`, signalled), and each read of a unit
/// answers the next state of its script (the last one repeats), or a fixed state after
/// its job: active after a start, inactive after a stop.
pub struct Fake {
    pub after: HashMap<String, UnitState>,
    pub scripts: RefCell<HashMap<String, VecDeque<UnitDetails>>>,
    pub calls: RefCell<Vec<String>>,
    pub queued: RefCell<HashMap<String, Action>>,
    pub signals: RefCell<Vec<Event>>,
    pub refuse: Option<&'static str>,
    /// This many reads fail as if the connection had dropped (daemon-reexec).
    pub lost_reads: Cell<usize>,
    /// What `is_active` answers before any job (inactive when not set).
    pub initial: HashMap<String, UnitState>,
    /// Every call fails as if systemd could not be reached.
    pub unreachable: bool,
}

pub fn loaded(state: UnitState, invocation: &str) -> UnitDetails {
    UnitDetails {
        load_state: "loaded".into(),
        active_state: state,
        invocation_id: invocation.into(),
        ..UnitDetails::default()
    }
}

impl Fake {
    pub fn new(after: &[(&str, UnitState)]) -> Fake {
        Fake {
            after: after
                .iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect(),
            scripts: RefCell::new(HashMap::new()),
            calls: RefCell::new(Vec::new()),
            queued: RefCell::new(HashMap::new()),
            signals: RefCell::new(Vec::new()),
            refuse: None,
            lost_reads: Cell::new(0),
            initial: HashMap::new(),
            unreachable: false,
        }
    }

    pub fn script(self, unit: &str, reads: &[UnitDetails]) -> Fake {
        self.scripts
            .borrow_mut()
            .insert(unit.into(), reads.iter().cloned().collect());
        self
    }

    fn details(&self, unit: &str) -> UnitDetails {
        if let Some(script) = self.scripts.borrow_mut().get_mut(unit) {
            if script.len() > 1 {
                return script.pop_front().unwrap_or_default();
            }
            if let Some(d) = script.front() {
                return d.clone();
            }
        }
        let verb = self.queued.borrow().get(unit).copied();
        let default = match verb {
            Some(Action::Stop) => UnitState::Inactive,
            _ => UnitState::Active,
        };
        loaded(self.after.get(unit).cloned().unwrap_or(default), "i1")
    }

    pub fn calls(&self, prefix: &str) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Manager for Fake {
    fn is_active(&self, units: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
        if self.unreachable {
            return Err(SystemdError::Connect("No such file or directory".into()));
        }
        Ok(units
            .iter()
            .map(|u| self.initial.get(*u).cloned().unwrap_or(UnitState::Inactive))
            .collect())
    }
    fn observe(&self, units: &[&str], _: &[bool]) -> Result<Vec<UnitDetails>, SystemdError> {
        self.calls
            .borrow_mut()
            .push(format!("read {}", units.join(" ")));
        if self.lost_reads.get() > 0 {
            self.lost_reads.set(self.lost_reads.get() - 1);
            return Err(SystemdError::Call {
                method: "ListUnitsByNames",
                error: "Connection reset by peer".into(),
            });
        }
        Ok(units.iter().map(|u| self.details(u)).collect())
    }
    fn details_many(&self, units: &[&str]) -> Result<Vec<UnitDetails>, SystemdError> {
        Ok(units.iter().map(|u| self.details(u)).collect())
    }
    fn property(&self, _: &str, _: &str) -> Result<String, SystemdError> {
        Ok(String::new())
    }
    fn queue(&self, verb: Action, unit: &str) -> Result<u32, SystemdError> {
        self.calls
            .borrow_mut()
            .push(format!("{} {unit}", verb.as_str()));
        if let Some(error) = self.refuse {
            return Err(SystemdError::Job {
                verb: verb.as_str(),
                unit: unit.into(),
                error: error.into(),
            });
        }
        self.queued.borrow_mut().insert(unit.to_string(), verb);
        let job = self.calls.borrow().len() as u32;
        self.signals.borrow_mut().push(Event::JobRemoved {
            job,
            unit: unit.into(),
            result: "done".into(),
        });
        Ok(job)
    }
    fn wait(&self, _: &[&str], until: Instant) -> Result<Vec<Event>, SystemdError> {
        let events: Vec<Event> = self.signals.borrow_mut().drain(..).collect();
        if events.is_empty() {
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(2)),
            );
        }
        Ok(events)
    }
    fn journal_tail(&self, unit: &str, _: Option<SystemTime>, _: usize) -> Vec<String> {
        vec![format!("{unit}: boom")]
    }
}
