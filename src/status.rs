//! `failover-manager status`: where the application runs, from any host that reaches etcd.
//! The key and every host's latest acknowledgement (`ack`) are read in one request; what they
//! mean together is this module's pure `assess`, what it says is `report`'s.

use crate::domain::Role;
use crate::election::{self, Holder};
use crate::etcd::Kv;

/// What one host acknowledged last (`KEY/ack/SITE/HOST` = `REVISION ROLE AT FENCE`, see `ack`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub site: String,
    pub host: String,
    pub ack: Acked,
    /// When it was written, by the host's wall clock (Unix seconds); `None` from older versions.
    pub at: Option<u64>,
    pub fence: Fence,
}

/// How long the host may go on running its primary units after it last read the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// At most this many seconds.
    Within(u64),
    /// Never stops on its own: it has no `check.fence_after`.
    Never,
    /// Not said (an older version's acknowledgement, or garbage).
    Unknown,
}

/// A host is "not heard from" once its acknowledgement is this old: three heartbeats missed.
pub const SILENT_AFTER: u64 = 3 * crate::ack::HEARTBEAT.as_secs();

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    /// Acted on `role` while the key was at `revision`; `pending`: the units that did not
    /// reach their state (none: in sync).
    Role {
        revision: i64,
        role: Role,
        pending: Vec<String>,
    },
    /// Not an acknowledgement (at most 40 characters of it, escaped).
    Garbage(String),
}

/// Something a person should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// Hosts of more than one site say they run the primary units.
    PrimaryOnSites(Vec<String>),
    /// No site holds the role (no key, or a value that names none).
    NoHolder,
    /// The holding site has no host that acknowledged running it at the key's revision.
    HolderNotRunning(String),
    /// A host acknowledged an older revision than the key's: it has not caught up (down, cut
    /// off, paused, or a stop or start that failed).
    Behind { host: String, acked: i64 },
    /// A host's acknowledgement is not one.
    Unreadable { host: String },
    /// A host acted on the key's revision, but these units did not reach their state.
    OutOfSync { host: String, units: Vec<String> },
    /// A host has not written its acknowledgement for `seconds` (down, cut off from etcd, its
    /// timer stopped, or its clock far off).
    Silent { host: String, seconds: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub holder: Holder,
    /// The key's mod revision (the epoch while a site holds it); 0 without a key.
    pub revision: i64,
    pub lease: Option<i64>,
    pub rows: Vec<Row>,
    pub flags: Vec<Flag>,
    /// The wall clock of the reader when read (Unix seconds): "how long ago" counts from it.
    pub now: Option<u64>,
    /// The last `promote`'s record (`KEY/promotion`), as written (escaped, at most 200
    /// characters).
    pub promotion: Option<String>,
}

impl Acked {
    /// In sync with `role` at `revision`: every unit in its state.
    pub fn in_sync(&self, revision: i64, role: Role) -> bool {
        matches!(self, Acked::Role { revision: r, role: o, pending } if *r == revision && *o == role && pending.is_empty())
    }
}

impl View {
    pub fn healthy(&self) -> bool {
        self.flags.is_empty()
    }
}

/// `REVISION ROLE [AT FENCE [UNITS]]`.
fn parse_ack(value: &[u8]) -> (Acked, Option<u64>, Fence) {
    let text = String::from_utf8_lossy(value);
    let garbage = || {
        (
            Acked::Garbage(
                text.chars()
                    .take(40)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
            ),
            None,
            Fence::Unknown,
        )
    };
    let fields: Vec<&str> = text.split(' ').collect();
    let (revision, role, at, fence, pending) = match fields[..] {
        [revision, role] => (revision, role, None, None, None),
        [revision, role, at, fence] => (revision, role, Some(at), Some(fence), None),
        [revision, role, at, fence, units] if !units.is_empty() => {
            (revision, role, Some(at), Some(fence), Some(units))
        }
        _ => return garbage(),
    };
    let pending = pending.map_or_else(Vec::new, |u| u.split(',').map(str::to_owned).collect());
    let role = match role {
        "primary" => Role::Primary,
        "standby" => Role::Standby,
        _ => return garbage(),
    };
    let Ok(revision) = revision.parse() else {
        return garbage();
    };
    let at = match at.map(str::parse::<u64>) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return garbage(),
    };
    let fence = match fence {
        None => Fence::Unknown,
        Some("-") => Fence::Never,
        Some(f) => match f.parse() {
            Ok(s) => Fence::Within(s),
            Err(_) => return garbage(),
        },
    };
    (
        Acked::Role {
            revision,
            role,
            pending,
        },
        at,
        fence,
    )
}

/// The view of key `/k` and these `(name, value, revision)` entries (tests).
#[cfg(test)]
pub fn view_of(entries: &[(&str, &str, i64)]) -> View {
    let kvs: Vec<(String, Kv)> = entries
        .iter()
        .map(|(n, v, r)| {
            (
                (*n).to_owned(),
                Kv {
                    value: v.as_bytes().to_vec(),
                    create_revision: *r,
                    mod_revision: *r,
                    lease: 0,
                },
            )
        })
        .collect();
    assess("/k", &kvs, None)
}

/// The key (`name` = `key`) and the acknowledgements below `key/ack/`, as read together at
/// `now` (the reader's wall clock, Unix seconds; `None`: no host is judged silent).
pub fn assess(key: &str, kvs: &[(String, Kv)], now: Option<u64>) -> View {
    let own = kvs.iter().find(|(n, _)| n == key).map(|(_, kv)| kv);
    let holder = election::holder(own);
    let revision = own.map_or(0, |k| k.mod_revision);
    let prefix = format!("{key}/ack/");
    let mut rows: Vec<Row> = kvs
        .iter()
        .filter_map(|(name, kv)| {
            let (site, host) = name.strip_prefix(&prefix)?.split_once('/')?;
            let (ack, at, fence) = parse_ack(&kv.value);
            Some(Row {
                site: site.to_owned(),
                host: host.to_owned(),
                ack,
                at,
                fence,
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.site, &a.host).cmp(&(&b.site, &b.host)));

    let mut flags = Vec::new();
    let mut primary_sites: Vec<String> = rows
        .iter()
        .filter(|r| {
            matches!(
                r.ack,
                Acked::Role {
                    role: Role::Primary,
                    ..
                }
            )
        })
        .map(|r| r.site.clone())
        .collect();
    primary_sites.dedup();
    if primary_sites.len() > 1 {
        flags.push(Flag::PrimaryOnSites(primary_sites));
    }
    match &holder {
        Holder::Site(site) => {
            let running = rows
                .iter()
                .any(|r| r.site == *site && r.ack.in_sync(revision, Role::Primary));
            if !running {
                flags.push(Flag::HolderNotRunning(site.clone()));
            }
        }
        // A switchover or a promotion under way is no fault; it ends in a site.
        Holder::Switching(_) => {}
        Holder::Nobody | Holder::Garbage(_) => flags.push(Flag::NoHolder),
    }
    for r in &rows {
        match &r.ack {
            Acked::Role {
                revision: acked, ..
            } if *acked < revision => flags.push(Flag::Behind {
                host: format!("{}/{}", r.site, r.host),
                acked: *acked,
            }),
            Acked::Role { pending, .. } if !pending.is_empty() => flags.push(Flag::OutOfSync {
                host: format!("{}/{}", r.site, r.host),
                units: pending.clone(),
            }),
            Acked::Garbage(_) => flags.push(Flag::Unreadable {
                host: format!("{}/{}", r.site, r.host),
            }),
            Acked::Role { .. } => {}
        }
    }
    if let Some(now) = now {
        for r in &rows {
            if let Some(seconds) = r.at.map(|at| now.saturating_sub(at))
                && seconds > SILENT_AFTER
            {
                flags.push(Flag::Silent {
                    host: format!("{}/{}", r.site, r.host),
                    seconds,
                });
            }
        }
    }
    let promotion = kvs
        .iter()
        .find(|(n, _)| *n == format!("{key}/{}", crate::election::PROMOTION))
        .map(|(_, kv)| {
            String::from_utf8_lossy(&kv.value)
                .chars()
                .take(200)
                .collect::<String>()
                .escape_debug()
                .to_string()
        });
    View {
        holder,
        revision,
        lease: own.map(|k| k.lease).filter(|l| *l != 0),
        rows,
        flags,
        now,
        promotion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assess(key: &str, kvs: &[(String, Kv)]) -> View {
        super::assess(key, kvs, None)
    }

    fn assess_at(key: &str, kvs: &[(String, Kv)]) -> View {
        assess(key, kvs)
    }

    fn kv(value: &str, rev: i64) -> Kv {
        Kv {
            value: value.as_bytes().to_vec(),
            create_revision: rev,
            mod_revision: rev,
            lease: 0,
        }
    }

    fn tree(entries: &[(&str, &str, i64)]) -> Vec<(String, Kv)> {
        entries
            .iter()
            .map(|(n, v, r)| ((*n).to_owned(), kv(v, *r)))
            .collect()
    }

    #[test]
    fn a_healthy_fleet_has_no_flag() {
        let v = assess(
            "/k",
            &tree(&[
                ("/k", "dc1", 42),
                ("/k/ack/dc1/a", "42 primary", 43),
                ("/k/ack/dc2/b", "42 standby", 44),
                ("/k/ack/dc2/c", "42 standby", 45),
            ]),
        );
        assert!(v.healthy(), "{:?}", v.flags);
        assert_eq!(v.holder, Holder::Site("dc1".into()));
        assert_eq!(v.rows.len(), 3);
        assert_eq!(v.rows[1].host, "b");
    }

    #[test]
    fn what_a_person_must_look_at() {
        let v = assess(
            "/k",
            &tree(&[
                ("/k", "dc2", 50),
                // The old primary has not acknowledged since the key moved: still primary.
                ("/k/ack/dc1/a", "42 primary", 43),
                ("/k/ack/dc2/b", "42 standby", 44),
                ("/k/ack/dc2/x", "garbage\n", 45),
                ("/k/ack/odd", "1 primary", 46),
                ("/k-other", "dc1", 47),
            ]),
        );
        assert_eq!(
            v.flags,
            [
                Flag::HolderNotRunning("dc2".into()),
                Flag::Behind {
                    host: "dc1/a".into(),
                    acked: 42
                },
                Flag::Behind {
                    host: "dc2/b".into(),
                    acked: 42
                },
                Flag::Unreadable {
                    host: "dc2/x".into()
                },
            ]
        );
        assert_eq!(
            v.rows.len(),
            3,
            "a key that is no host's acknowledgement is left out"
        );
        let both = assess(
            "/k",
            &tree(&[
                ("/k", "dc2", 50),
                ("/k/ack/dc1/a", "42 primary", 43),
                ("/k/ack/dc2/b", "50 primary", 51),
            ]),
        );
        assert_eq!(
            both.flags[0],
            Flag::PrimaryOnSites(vec!["dc1".into(), "dc2".into()])
        );
        assert_eq!(assess_at("/k", &[]).flags, [Flag::NoHolder]);
        assert!(assess_at("/k", &tree(&[("/k", "switching:dc1->dc2", 3)])).healthy());
    }

    #[test]
    fn said_as_a_table_with_what_to_look_at_last() {
        let v = assess(
            "/k",
            &tree(&[
                ("/k", "dc2", 50),
                ("/k/ack/dc1/a", "42 primary", 43),
                ("/k/ack/dc2/b", "50 primary", 51),
            ]),
        );
        let text =
            crate::report::status_text("/k", &v, Some(27), crate::report::Style { color: false });
        assert_eq!(
            text,
            "/k: dc2 (revision 50)\n\
             SITE  HOST  ROLE     ACKNOWLEDGED  WHEN\n\
             dc1   a     primary  42            -\n\
             dc2   b     primary  50            -\n\
             ! hosts of dc1 and dc2 all say they run the primary units\n\
             ! dc1/a acknowledged revision 42 last: behind the key (down, cut off, paused, or a stop or start that failed)\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&crate::report::status_json("/k", Some(&v), None, None))
                .expect("JSON");
        assert_eq!(json["healthy"], false);
        assert_eq!(json["flags"][0]["code"], "primary_on_two_sites");
        assert_eq!(json["hosts"][0]["behind"], true);
    }

    #[test]
    fn how_long_ago_and_who_has_not_been_heard_from() {
        let kvs = tree(&[
            ("/k", "dc1", 50),
            ("/k/ack/dc1/a", "50 primary 10000 12", 51),
            ("/k/ack/dc2/b", "50 standby 9800 -", 52),
            ("/k/ack/dc2/c", "50 standby", 53),
            ("/k/ack/dc2/d", "50 standby soon 12", 54),
            ("/k/ack/dc2/e", "50 standby 10020 12 replica.service", 56),
            (
                "/k/promotion",
                "to=dc1 from=dc2 by=ops@w at=T state=done wait=31s",
                55,
            ),
        ]);
        let v = super::assess("/k", &kvs, Some(10_030));
        assert_eq!(
            v.flags,
            [
                Flag::Unreadable {
                    host: "dc2/d".into()
                },
                Flag::OutOfSync {
                    host: "dc2/e".into(),
                    units: vec!["replica.service".into()]
                },
                Flag::Silent {
                    host: "dc2/b".into(),
                    seconds: 230
                },
            ]
        );
        assert_eq!(v.rows[0].fence, Fence::Within(12));
        assert_eq!(v.rows[1].fence, Fence::Never);
        assert_eq!((v.rows[2].at, v.rows[2].fence), (None, Fence::Unknown));
        let text =
            crate::report::status_text("/k", &v, None, crate::report::Style { color: false });
        assert!(
            text.starts_with(
                "/k: dc1 (revision 50)\n\
                 last promotion: to=dc1 from=dc2 by=ops@w at=T state=done wait=31s\n\
                 SITE  HOST  ROLE                    ACKNOWLEDGED  WHEN\n\
                 dc1   a     primary                 50            30s ago\n\
                 dc2   b     standby                 50            3m50s ago\n\
                 dc2   c     standby                 50            -\n\
                 dc2   d     ? \"50 standby soon 12\"  -             -\n\
                 dc2   e     standby (not in sync)   50            10s ago\n"
            ),
            "{text}"
        );
        assert!(text.contains("! dc2/b not heard from for 3m50s"), "{text}");
        // Without the reader's clock nobody is judged silent.
        assert_eq!(super::assess("/k", &kvs, None).flags.len(), 2);
        assert!(!v.rows[4].ack.in_sync(50, Role::Standby));
        assert!(v.rows[2].ack.in_sync(50, Role::Standby));
    }
}
