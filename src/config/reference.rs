//! The config file's reference, in words: every map the parser reads and every key it accepts
//! there, with the value it takes, what leaving it out means, and what it does. build.rs renders
//! it as the man page failover-manager.yaml(5); the tests below hold it to the parser (the keys
//! of each map, the defaults, the examples) and to examples/config.yaml, so neither can drift.
//!
//! build.rs compiles this file too (`#[path]`, as src/cli.rs): it must stay self-contained
//! (std only, no `crate::` paths) outside its tests. The binary itself never reads it.

/// What the parser does when a key is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Omitted {
    /// The file must give it.
    Required,
    /// This value, written as YAML: leaving the key out is the same as writing it (a test
    /// holds the parser to that).
    Value(&'static str),
    /// No value: the feature is off, or the value comes from elsewhere, said in words.
    Unset(&'static str),
}

impl Omitted {
    /// What the page says after a key's text.
    pub fn sentence(self) -> String {
        match self {
            Omitted::Required => "Required.".to_owned(),
            Omitted::Value(v) | Omitted::Unset(v) => format!("Default: {v}."),
        }
    }
}

/// One key of a map.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    /// What it takes, in a few words.
    pub value: &'static str,
    pub omitted: Omitted,
    /// What it does, its limits, and what it interacts with.
    pub about: &'static str,
}

/// One map of the file, and every key it accepts.
#[derive(Debug)]
pub struct Map {
    /// Its key path (`check.etcd`, `units[]`); empty for the top level.
    pub path: &'static str,
    pub about: &'static str,
    pub keys: &'static [Key],
}

impl Map {
    /// Its heading on the page.
    pub fn heading(&self) -> &'static str {
        match self.path {
            "" => "top level",
            p => p,
        }
    }

    /// A key's full path, as the parser's errors name it (`check.etcd.key`, `units[].when`).
    pub fn key_path(&self, key: &Key) -> String {
        match self.path {
            "" => key.name.to_owned(),
            p => format!("{p}.{}", key.name),
        }
    }
}

/// The page's one-line summary (NAME).
pub const SUMMARY: &str = "the configuration file of failover-manager";

/// Where the file is read from (cli::DEFAULT_CONFIG; a test holds them equal).
pub const PATH: &str = "/etc/failover-manager/config.yaml";

/// DESCRIPTION, paragraph by paragraph; then [`MINIMAL`].
pub const DESCRIPTION: &[&str] = &[
    "failover-manager(1) reads its configuration from /etc/failover-manager/config.yaml, or the \
     file named by -c/--config or $FAILOVER_MANAGER_CONFIG. It is the same file on every host \
     of both sites: it says how this host learns its role (check) and which systemd units run \
     in which role (units). The package installs config.yaml.example next to it and no \
     config.yaml: nothing runs until someone wrote one for this host.",
    "The file is YAML: one document, a regular file (a FIFO, a device or a directory is refused \
     without being read), UTF-8 text of at most 1 MiB without control characters, nested at \
     most 16 levels deep; a byte-order mark at its start is ignored.",
    "Keys are checked strictly: a misspelt or unknown key, a wrong type or a bad value is an \
     error that names the file, the line and column of the offending value and its key path \
     (an unknown key's error lists the keys accepted there), and the run exits 78 without \
     touching systemd. Check a file with: failover-manager validate -c FILE (which also asks \
     systemd about the units).",
    "Durations are written with a unit: \"500ms\", \"10s\", \"1m 30s\". A bare number is an \
     error (is 30 seconds or minutes?), zero is refused except where a key says it may be 0s, \
     and anything over 1h is refused as a typo.",
    "Commands (check.command, hooks.on_*.command, check.etcd.before_acquire) are lists: the \
     program and its arguments, run directly, never through a shell (no quoting, no pipes, no \
     $VARIABLES). Run as root, failover-manager refuses (exit 78) a config file, a program, or \
     a file named in a command's arguments or by check.etcd that anyone but root could change; \
     a key or credentials file must be readable by root alone.",
    "A minimal file:",
];

/// The smallest useful config: a check command and the units.
pub const MINIMAL: &str = "\
check:
  command: [\"/usr/lib/failover-manager/checks/primary-site-file\", \"dc1\"]
units:
  - my-application.service
";

/// Every map, the top level first; each key as the parser accepts it (a test holds the names
/// to the parser's own list of a map's keys, in both directions).
pub const MAPS: &[Map] = &[
    Map {
        path: "",
        about: "The top level of the file.",
        keys: &[
            Key {
                name: "check",
                value: "map",
                omitted: Omitted::Required,
                about: "Where this host's role (primary or standby) comes from: exactly one of \
                        check.command or check.etcd, with the check's timeout, confirmation and \
                        self-fencing. See check, below.",
            },
            Key {
                name: "units",
                value: "list of unit names or maps",
                omitted: Omitted::Required,
                about: "The units this host manages, in start order (stops run in reverse \
                        order). Not empty; a unit appears once, in one role. Units not listed \
                        are never touched. See units[], below.",
            },
            Key {
                name: "defaults",
                value: "map",
                omitted: Omitted::Unset("every key at its default"),
                about: "Defaults for every entry of units, each of which may override them. \
                        See defaults, below.",
            },
            Key {
                name: "hooks",
                value: "map",
                omitted: Omitted::Unset("no hooks"),
                about: "Commands run after a transition was verified, or after a start or \
                        stop failed. See hooks, below.",
            },
            Key {
                name: "metrics_file",
                value: "absolute path ending in .prom",
                omitted: Omitted::Unset("no metrics file"),
                about: "A Prometheus text file for node_exporter's textfile collector, \
                        rewritten atomically at the end of every reconcile (role, success, \
                        timing, the check's exit code, paused, fencing, and per unit whether \
                        it should run here and whether it does). A relative path, or one not \
                        ending in .prom (the collector ignores other names), is refused. \
                        validate refuses a directory that is not root's alone; the shipped \
                        service's sandbox must be given the directory (ReadWritePaths=).",
            },
            Key {
                name: "site",
                value: "1 to 63 ASCII letters, digits, '.', '_' or '-'",
                omitted: Omitted::Unset("none"),
                about: "This host's site (dc1): a label on every metric, so that one \
                        Prometheus scraping both sites can tell them apart and see two \
                        primaries. Required with check.etcd, whose key names the primary site \
                        by this name.",
            },
            Key {
                name: "parallel",
                value: "true or false",
                omitted: Omitted::Value("false"),
                about: "false: one unit at a time, each verified before the next; a failed \
                        start stops the starts after it (a resource group). true: all stops \
                        queued at once, then all starts, verified together; for independent \
                        units that start slowly. With check.etcd.lease_ttl, the primary units' \
                        stop time in the lease inequality is then the slowest verify_timeout \
                        instead of their sum.",
            },
        ],
    },
    Map {
        path: "check",
        about: "The primary check. Either a command whose exit status says the role, or etcd \
                (check.etcd). When the check cannot tell (an exit status in neither list, a \
                kill by a signal, a timeout, a program that cannot be started, etcd that \
                cannot be read), the role is unknown: nothing is started or stopped and the \
                run exits 3.",
        keys: &[
            Key {
                name: "command",
                value: "command (list of strings)",
                omitted: Omitted::Unset("none (then check.etcd is required)"),
                about: "The check: the program and its arguments, run directly. Not empty, and \
                        its first element not blank. The examples in \
                        /usr/lib/failover-manager/checks/ exit 0 (primary), 1 (standby) or 2 \
                        (cannot tell). Exactly one of check.command and check.etcd: neither, \
                        or both, is an error.",
            },
            Key {
                name: "etcd",
                value: "map",
                omitted: Omitted::Unset("none (then check.command is required)"),
                about: "Instead of check.command: an etcd key, read by failover-manager \
                        itself, names the primary site. Needs site. primary_exit_codes and \
                        standby_exit_codes are refused with it. See check.etcd, below.",
            },
            Key {
                name: "timeout",
                value: "duration",
                omitted: Omitted::Value("10s"),
                about: "How long the check may run: then the command is killed with every \
                        process it started, and the role is unknown. With check.etcd, the time \
                        of every request of one run together. Above zero.",
            },
            Key {
                name: "primary_exit_codes",
                value: "list of exit codes (0 to 255)",
                omitted: Omitted::Value("[0]"),
                about: "Exit statuses of check.command that mean \"this host is the \
                        primary\". Not empty; no code may also be a standby exit code \
                        (including the other list's default when only one list is given). \
                        Only with check.command.",
            },
            Key {
                name: "standby_exit_codes",
                value: "list of exit codes (0 to 255)",
                omitted: Omitted::Value("[1]"),
                about: "Exit statuses of check.command that mean \"this host is the \
                        standby\". Not empty, no code in both lists. Only with check.command.",
            },
            Key {
                name: "confirm",
                value: "integer from 1 to 10",
                omitted: Omitted::Value("1"),
                about: "Hysteresis, like keepalived's rise and fall: when the first result \
                        would start or stop anything, the check is run again until this many \
                        results in a row agree. A disagreement changes nothing this run (exit \
                        0). 1 acts at once. In the steady state the check runs once per run.",
            },
            Key {
                name: "confirm_interval",
                value: "duration",
                omitted: Omitted::Value("2s"),
                about: "The pause between the confirming checks of check.confirm. Above zero.",
            },
            Key {
                name: "fence_after",
                value: "duration",
                omitted: Omitted::Unset("off"),
                about: "Self-fencing: when the check has given no definite answer for this \
                        long, this host stops its managed when: primary units (it never starts \
                        anything while the role is unknown), runs on_demote and on_failure, and \
                        exits 1. Counted from the last definite answer, kept in \
                        /var/lib/failover-manager/last-confirmed. Set it below the time the \
                        other site waits before it may be promoted, minus the run cadence, \
                        check.timeout and the units' stop time. Above zero; required by \
                        check.etcd.lease_ttl, and fence_after + the primary units' stop time + \
                        lease_ttl/50 must stay below lease_ttl.",
            },
        ],
    },
    Map {
        path: "check.etcd",
        about: "The etcd witness, spoken to by failover-manager itself (etcd's v3 API as JSON \
                over HTTP). The key names the primary site; this host is primary when it \
                names site. Without lease_ttl (manual mode) a person or a switchover moves the \
                key. With lease_ttl (automatic mode) the key is held on a lease that the \
                primary site's hosts renew every run, and a host of a candidate site takes it \
                when it lapses.",
        keys: &[
            Key {
                name: "endpoints",
                value: "list of http:// or https:// URLs",
                omitted: Omitted::Required,
                about: "Every etcd member, this site's first; tried in turn. Each is \
                        scheme://host:port and nothing else (failover-manager adds the API \
                        path); not empty, none twice.",
            },
            Key {
                name: "key",
                value: "etcd key",
                omitted: Omitted::Required,
                about: "The key that names the primary site: starts with /, up to 255 \
                        printable ASCII characters without spaces.",
            },
            Key {
                name: "request_timeout",
                value: "duration",
                omitted: Omitted::Value("1s"),
                about: "Each request's own limit (connect, send, answer); check.timeout bounds \
                        all of one run's requests together. Above zero.",
            },
            Key {
                name: "ca_file",
                value: "absolute path",
                omitted: Omitted::Unset("none (https:// endpoints need it)"),
                about: "The CA that signed the members' certificates, the only one trusted: \
                        https:// endpoints need it (without it a run cannot read them, and the \
                        role is unknown).",
            },
            Key {
                name: "cert_file",
                value: "absolute path",
                omitted: Omitted::Unset("no client certificate"),
                about: "A client certificate. Goes together with key_file: one without the \
                        other is an error.",
            },
            Key {
                name: "key_file",
                value: "absolute path",
                omitted: Omitted::Unset("no client certificate"),
                about: "The client certificate's private key; readable by root alone. Goes \
                        together with cert_file.",
            },
            Key {
                name: "credentials_file",
                value: "absolute path",
                omitted: Omitted::Unset("no authentication"),
                about: "A file holding user:password on one line, readable by root alone: \
                        failover-manager authenticates as that etcd user.",
            },
            Key {
                name: "lease_ttl",
                value: "duration, whole seconds, 3s or more",
                omitted: Omitted::Unset("manual mode"),
                about: "Automatic mode: the key is held on a lease of this TTL. Needs \
                        check.fence_after, and the lease must outlast this site's stop: \
                        fence_after + the primary units' stop time (the sum of the managed \
                        when: primary units' verify_timeout, or the largest with parallel: \
                        true) + lease_ttl/50 (clock drift) < lease_ttl; otherwise the file is \
                        refused, naming the numbers.",
            },
            Key {
                name: "candidate",
                value: "true or false",
                omitted: Omitted::Value("true"),
                about: "Automatic mode: whether this site may take the role when nobody holds \
                        the key. false in manual mode is an error.",
            },
            Key {
                name: "before_acquire",
                value: "command (list of strings)",
                omitted: Omitted::Unset("none (the role is taken without asking)"),
                about: "Automatic mode: a command that must exit 0 before this host takes the \
                        role (a replica too far behind says no). Refused in manual mode.",
            },
        ],
    },
    Map {
        path: "defaults",
        about: "Defaults for every entry of units; each entry may override them.",
        keys: &[
            Key {
                name: "verify_timeout",
                value: "duration",
                omitted: Omitted::Value("30s"),
                about: "How long a start or stop may take to reach its end state (active; \
                        inactive or failed for a stop) before it counts as failed. Above zero.",
            },
            Key {
                name: "settle",
                value: "duration",
                omitted: Omitted::Value("2s"),
                about: "After a unit became active, how long it must stay active to count as \
                        started: catches services that come up and die a second later. May \
                        be 0s.",
            },
        ],
    },
    Map {
        path: "hooks",
        about: "Commands run once the units are known to be where they should be (like \
                keepalived's notify scripts), or after a start or stop failed. A hook that \
                fails or times out makes the run exit 1, but never undoes the transition. \
                Their environment says what happened: FAILOVER_MANAGER_EVENT (promote, demote \
                or failure), FAILOVER_MANAGER_ROLE, FAILOVER_MANAGER_PREVIOUS_ROLE, \
                FAILOVER_MANAGER_STARTED, FAILOVER_MANAGER_STOPPED, FAILOVER_MANAGER_FAILED, \
                FAILOVER_MANAGER_SKIPPED (space-separated unit names), FAILOVER_MANAGER_REASONS, \
                FAILOVER_MANAGER_FENCED and, with check.etcd, FAILOVER_MANAGER_EPOCH.",
        keys: &[
            Key {
                name: "on_promote",
                value: "hook (map)",
                omitted: Omitted::Unset("none"),
                about: "Run after this host became the primary and its units were verified.",
            },
            Key {
                name: "on_demote",
                value: "hook (map)",
                omitted: Omitted::Unset("none"),
                about: "Run after this host became the standby and its units were verified, \
                        and when it fences itself (check.fence_after).",
            },
            Key {
                name: "on_failure",
                value: "hook (map)",
                omitted: Omitted::Unset("none"),
                about: "Run after a start or stop failed, and when this host fences itself.",
            },
        ],
    },
    Map {
        path: "hooks.on_*",
        about: "Each of hooks.on_promote, hooks.on_demote and hooks.on_failure.",
        keys: &[
            Key {
                name: "command",
                value: "command (list of strings)",
                omitted: Omitted::Required,
                about: "The program and its arguments, run directly. Not empty, and its first \
                        element not blank.",
            },
            Key {
                name: "timeout",
                value: "duration",
                omitted: Omitted::Value("30s"),
                about: "How long the hook may run before it is killed (and counts as failed). \
                        Above zero.",
            },
        ],
    },
    Map {
        path: "units[]",
        about: "Each entry of units: a unit name alone (shorthand: runs on the primary, \
                managed, with the defaults), or a map. A name follows systemd's grammar (ASCII \
                letters, digits and :-_.\\@, at most 255 characters); one without a type is a \
                service (web is web.service), a template needs an instance (worker@main). \
                Refused: a name starting with -, device and scope units (systemctl cannot \
                start them), and the slices systemd owns (-.slice, system.slice, user.slice, \
                machine.slice, capsule.slice, user-UID.slice). Any startable unit type works: \
                services, timers, sockets, targets, paths, mounts. The unit files must exist \
                on every host (validate refuses a missing or masked one, and warns about one \
                enabled at boot).",
        keys: &[
            Key {
                name: "name",
                value: "unit name",
                omitted: Omitted::Required,
                about: "The unit's name, as above.",
            },
            Key {
                name: "when",
                value: "primary or standby",
                omitted: Omitted::Value("primary"),
                about: "The role the unit runs in: started on the host that has it, stopped on \
                        the other. On a failover the standby units are stopped before any \
                        primary unit starts.",
            },
            Key {
                name: "verify_timeout",
                value: "duration",
                omitted: Omitted::Unset("defaults.verify_timeout"),
                about: "As defaults.verify_timeout, for this unit. Above zero.",
            },
            Key {
                name: "settle",
                value: "duration",
                omitted: Omitted::Unset("defaults.settle"),
                about: "As defaults.settle, for this unit. May be 0s.",
            },
            Key {
                name: "managed",
                value: "true or false",
                omitted: Omitted::Value("true"),
                about: "false: observed and shown (failover-manager diff), never started or \
                        stopped, e.g. while someone works on it (for the whole host: \
                        failover-manager pause). An unmanaged unit does not count in the lease \
                        inequality of check.etcd.lease_ttl.",
            },
        ],
    },
];

/// EXAMPLES: what each shows, and the file (each one a valid config: a test parses it).
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "Two sites with a flag file naming the primary site; a replica runs on the standby, a \
         change is acted on after two agreeing checks, and the on-call person is paged when a \
         start or stop fails:",
        "\
check:
  command: [\"/usr/lib/failover-manager/checks/primary-site-file\", \"dc1\"]
  timeout: 10s
  confirm: 2
defaults:
  verify_timeout: 30s
hooks:
  on_failure:
    command: [\"/usr/local/bin/page-oncall\", \"failover-manager\"]
metrics_file: /var/lib/node_exporter/textfile_collector/failover_manager.prom
site: dc1
units:
  - postgresql@16-main.service
  - name: my-application.service
    verify_timeout: 2m
  - name: replica-sync.service
    when: standby
    settle: 0s
",
    ),
    (
        "Automatic takeover with an etcd witness: 15s + 10s + 0.6s < 30s, so the lease \
         outlasts this site's stop:",
        "\
site: dc1
check:
  etcd:
    endpoints:
      - http://127.0.0.1:2379
      - http://10.0.2.1:2379
      - http://10.0.3.1:2379
    key: /failover-manager/primary-site
    lease_ttl: 30s
  timeout: 5s
  fence_after: 15s
defaults: { verify_timeout: 10s }
units: [my-application.service]
",
    ),
];

/// FILES: path, what it is.
pub const FILES: &[(&str, &str)] = &[
    (PATH, "The config file."),
    (
        "/etc/failover-manager/config.yaml.example",
        "An example showing every key, commented (installed by the package and make install).",
    ),
    (
        "/usr/lib/failover-manager/checks/",
        "Example check commands (/usr/local/lib/failover-manager/checks/ with make install).",
    ),
    (
        "/var/lib/failover-manager/last-confirmed",
        "The time of the check's last definite answer, for check.fence_after.",
    ),
];

pub const SEE_ALSO: &[&str] = &[
    "failover-manager(1)",
    "failover-manager-validate(1)",
    "systemd.unit(5)",
    "systemd.timer(5)",
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, parse};

    /// A document with `entries` (`key: value`) added to the map at `path`, each map written in
    /// flow style, everything else the least a valid config needs.
    fn doc(path: &str, entries: &[String]) -> String {
        let e = entries.join(", ");
        let sep = if e.is_empty() { "" } else { ", " };
        match path {
            "" => format!("{{check: {{command: [x]}}, units: [a]{sep}{e}}}\n"),
            "check" => format!("{{check: {{command: [x]{sep}{e}}}, units: [a]}}\n"),
            "check.etcd" => format!(
                "{{site: a, check: {{etcd: {{endpoints: [http://a:1], key: /k{sep}{e}}}}}, units: [a]}}\n"
            ),
            "defaults" => format!("{{check: {{command: [x]}}, defaults: {{{e}}}, units: [a]}}\n"),
            "hooks" => format!("{{check: {{command: [x]}}, hooks: {{{e}}}, units: [a]}}\n"),
            "units[]" => format!("{{check: {{command: [x]}}, units: [{{name: a{sep}{e}}}]}}\n"),
            hook => {
                let hook = hook.strip_prefix("hooks.").expect("a hook's path");
                format!(
                    "{{check: {{command: [x]}}, hooks: {{{hook}: {{command: [y]{sep}{e}}}}}, units: [a]}}\n"
                )
            }
        }
    }

    /// The documents of a map: one per hook for `hooks.on_*`.
    fn docs(map: &Map, entries: &[String]) -> Vec<String> {
        match map.path {
            "hooks.on_*" => MAPS
                .iter()
                .find(|m| m.path == "hooks")
                .expect("hooks")
                .keys
                .iter()
                .map(|k| doc(&format!("hooks.{}", k.name), entries))
                .collect(),
            p => vec![doc(p, entries)],
        }
    }

    fn parsed(text: &str) -> Result<Config, String> {
        parse(Path::new("c.yaml"), text).map_err(|e| e.to_string())
    }

    /// The keys an unknown key's error says are accepted: serde's `expected `a``, `expected `a`
    /// or `b``, `expected one of `a`, `b`, …`.
    fn accepted(error: &str) -> Vec<String> {
        let (_, list) = error
            .split_once("unknown field `bogus`, expected ")
            .unwrap_or_else(|| panic!("not an unknown-key error: {error}"));
        let mut keys: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_map_documents_exactly_the_keys_the_parser_accepts() {
        assert_eq!(
            MAPS.len(),
            7,
            "a map was added: give it a document in doc()"
        );
        for map in MAPS {
            let mut documented: Vec<String> = map.keys.iter().map(|k| k.name.to_owned()).collect();
            documented.sort();
            let before = documented.len();
            documented.dedup();
            assert_eq!(documented.len(), before, "{}: a key twice", map.path);
            for text in docs(map, &["bogus: 1".to_owned()]) {
                let error = parsed(&text)
                    .err()
                    .unwrap_or_else(|| panic!("{text} parsed"));
                assert_eq!(accepted(&error), documented, "{}: {text}", map.path);
            }
        }
    }

    #[test]
    fn a_documented_default_is_what_leaving_the_key_out_gives() {
        for map in MAPS {
            let written: Vec<String> = map
                .keys
                .iter()
                .filter_map(|k| match k.omitted {
                    Omitted::Value(v) => Some(format!("{}: {v}", k.name)),
                    _ => None,
                })
                .collect();
            for (with, without) in docs(map, &written).iter().zip(docs(map, &[])) {
                let without = parsed(&without);
                assert!(without.is_ok(), "{}: {without:?}", map.path);
                assert_eq!(parsed(with), without, "{}: {with}", map.path);
            }
        }
        // The shorthand is a map that gives only the name.
        assert_eq!(parsed(&doc("", &[])), parsed(&doc("units[]", &[])));
    }

    #[test]
    fn a_required_key_cannot_be_left_out() {
        for map in MAPS {
            for key in map.keys.iter().filter(|k| k.omitted == Omitted::Required) {
                // What a document of this map gives the key, taken away.
                let full = docs(map, &[]);
                for text in full {
                    let without = match (map.path, key.name) {
                        ("", "check") => "{units: [a]}\n".to_owned(),
                        ("", "units") => "{check: {command: [x]}}\n".to_owned(),
                        (_, "command") => text.replace("command: [y]", "timeout: 1s"),
                        ("check.etcd", k) => text.replace(
                            if k == "key" {
                                ", key: /k"
                            } else {
                                "endpoints: [http://a:1], "
                            },
                            "",
                        ),
                        ("units[]", "name") => text.replace("name: a", "when: primary"),
                        (p, k) => panic!("{p}.{k}: no document without it"),
                    };
                    assert_ne!(without, text);
                    let error = parsed(&without).err().unwrap_or_default();
                    assert!(
                        error.contains(&format!("missing field `{}`", key.name)),
                        "{}: {without}: {error}",
                        map.key_path(key)
                    );
                }
            }
        }
    }

    #[test]
    fn the_examples_are_valid_configs() {
        assert!(parsed(MINIMAL).is_ok(), "{MINIMAL}");
        for (what, text) in EXAMPLES {
            assert!(parsed(text).is_ok(), "{what}: {:?}", parsed(text));
        }
        assert_eq!(PATH, crate::cli::DEFAULT_CONFIG);
    }

    /// README.md's config is what a new operator copies first: every YAML block in it parses.
    #[test]
    fn the_readme_config_parses() {
        let readme = include_str!("../../README.md");
        let blocks: Vec<&str> = readme
            .split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split_once("```").map(|(yaml, _)| yaml))
            .collect();
        assert!(!blocks.is_empty(), "README.md shows no config");
        for text in blocks {
            assert!(parsed(text).is_ok(), "README.md: {:?}", parsed(text));
        }
    }

    #[test]
    fn examples_config_yaml_shows_every_key() {
        let example = include_str!("../../examples/config.yaml");
        // `key:` at the start of a line, commented out or not, in a list's entry or not.
        let shown: Vec<&str> = example
            .lines()
            .map(|l| l.trim_start_matches([' ', '#', '-']))
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        for map in MAPS {
            for key in map.keys {
                assert!(
                    shown.contains(&key.name),
                    "examples/config.yaml does not show {}",
                    map.key_path(key)
                );
            }
        }
    }

    #[test]
    fn the_man_page_says_everything_here() {
        // What build.rs rendered with this build, the way man shows it (roff writes `-` as
        // `\-`, `\` as `\\` and an apostrophe as a string).
        let page = include_str!(concat!(
            env!("OUT_DIR"),
            "/assets/man/failover-manager.yaml.5"
        ))
        .replace("\\-", "-")
        .replace("\\\\", "\\")
        .replace("\\*(Aq", "'");
        assert!(page.contains(".TH failover-manager.yaml 5 "), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "EXAMPLES",
            "FILES",
            "\"SEE ALSO\"",
        ] {
            assert!(page.contains(&format!("\n.SH {section}\n")), "no {section}");
        }
        let says = |text: &str| assert!(page.contains(text), "the page does not say {text:?}");
        says(SUMMARY);
        says(PATH);
        DESCRIPTION.iter().for_each(|p| says(p));
        says(MINIMAL.trim_end());
        for map in MAPS {
            // (roff quotes an argument with a space.)
            let heading = match map.heading() {
                h if h.contains(' ') => format!("\"{h}\""),
                h => h.to_owned(),
            };
            says(&format!("\n.SS {heading}\n"));
            says(map.about);
            for key in map.keys {
                says(&format!(
                    "\\fB{}:\\fR \\fI{}\\fR\n",
                    map.key_path(key),
                    key.value
                ));
                says(&format!("{}\n.br\n{}\n", key.about, key.omitted.sentence()));
            }
        }
        for (what, text) in EXAMPLES {
            says(what);
            says(text.trim_end());
        }
        for (file, what) in FILES {
            says(&format!("\\fI{file}\\fR\n{what}"));
        }
        says(&SEE_ALSO.join(", "));
    }
}
