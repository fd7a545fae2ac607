//! One connection to systemd over sd-bus ([`Conn`]) and the questions asked on it: unit
//! lists, properties, the signals a wait needs. Separate because it knows one connection
//! only: making it again when it breaks, and everything that outlives it, is the
//! manager's ([`super::manager`]).

use std::time::{Duration, Instant};

use super::names::{
    DEST, MANAGER, MANAGER_PATH, PROPERTIES, SERVICE, UNIT, hex, type_interface, unit_path,
};
use super::{SystemdError, UnitDetails};
use crate::sdbus::{Arg, Bus, CallError, Errno, Message};

/// What systemctl connects to as root: systemd itself, no dbus-daemon in between.
const PRIVATE_SOCKET: &str = "unix:path=/run/systemd/private";
/// systemctl's own default method-call timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// One connection and what was set up on it.
pub(super) struct Conn {
    pub(super) bus: Bus,
    /// Direct (private socket): systemd sends every signal to every direct connection.
    /// Through dbus-daemon, signals must be asked for (AddMatch, Subscribe).
    direct: bool,
    watching: bool,
}

/// A unit as `ListUnitsByNames` lists it.
pub(super) struct Listed {
    pub(super) load: String,
    pub(super) active: String,
    pub(super) sub: String,
    pub(super) job: u32,
}

pub(super) fn connect() -> Result<Conn, SystemdError> {
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
pub(super) fn transient(e: &CallError) -> bool {
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
    pub(super) fn call(
        &self,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg],
    ) -> Result<Message, CallError> {
        self.bus
            .call(DEST, path, interface, member, args, CALL_TIMEOUT)
    }

    pub(super) fn list(&self, units: &[&str]) -> Result<Vec<Listed>, CallError> {
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
    pub(super) fn names_like(&self, pattern: &str) -> Result<Vec<String>, CallError> {
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
    pub(super) fn get(
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

    pub(super) fn identity(&self, unit: &str, d: &mut UnitDetails) -> Result<(), CallError> {
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

    pub(super) fn details(&self, unit: &str, d: &mut UnitDetails) -> Result<(), CallError> {
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
    pub(super) fn watch(&mut self) -> Result<(), CallError> {
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
