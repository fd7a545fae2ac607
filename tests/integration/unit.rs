//! Real units of the kinds the field throws at us. Each appends a line to
//! /run/fm-test/NAME.starts whenever systemd starts it, so tests can count starts.

pub struct Unit {
    pub name: String,
    pub body: String,
    /// Extra config keys for the unit's entry ("when: standby", "settle: 2s", …).
    pub keys: Vec<String>,
}

const COUNT: &str = "ExecStartPre=/bin/sh -c 'echo start >> /run/fm-test/%n.starts'";

impl Unit {
    fn new(name: &str, service: &str) -> Unit {
        Unit {
            name: name.to_owned(),
            body: format!(
                "[Unit]\nDescription=test unit {name}\n\n[Service]\n{COUNT}\n{service}\n"
            ),
            keys: Vec::new(),
        }
    }

    /// `Type=simple`, runs until stopped.
    pub fn simple(name: &str) -> Unit {
        Unit::new(name, "ExecStart=/bin/sleep infinity")
    }

    /// `Type=oneshot` with `RemainAfterExit=yes`: active after its command finishes.
    pub fn oneshot(name: &str) -> Unit {
        Unit::new(
            name,
            "Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true",
        )
    }

    /// Exits 1 at once.
    pub fn fails_at_once(name: &str) -> Unit {
        Unit::new(
            name,
            "ExecStart=/bin/sh -c 'echo \"cannot open /etc/app.conf\"; exit 1'",
        )
    }

    /// `Type=simple`: active the instant it forks, dead a second later.
    pub fn dies_after_1s(name: &str) -> Unit {
        Unit::new(
            name,
            "ExecStart=/bin/sh -c 'echo \"lost connection to database\"; sleep 1; exit 3'",
        )
    }

    /// `Type=notify` that never notifies: stuck in `activating`.
    pub fn never_ready(name: &str) -> Unit {
        Unit::new(
            name,
            "Type=notify\nTimeoutStartSec=infinity\nExecStart=/bin/sleep infinity",
        )
    }

    /// Ignores SIGTERM: a stop waits for systemd's TimeoutStopSec before SIGKILL.
    pub fn ignores_term(name: &str) -> Unit {
        Unit::new(
            name,
            "TimeoutStopSec=20\nExecStart=/bin/sh -c 'trap \"\" TERM; while :; do sleep 0.2; done'",
        )
    }

    pub fn standby(self) -> Unit {
        self.key("when: standby")
    }

    pub fn key(mut self, kv: &str) -> Unit {
        self.keys.push(kv.to_owned());
        self
    }

    /// The unit's entry in the config's `units:` list.
    pub fn entry(&self) -> String {
        let mut s = format!("  - name: {}\n", self.name);
        for k in &self.keys {
            s.push_str(&format!("    {k}\n"));
        }
        s
    }
}
