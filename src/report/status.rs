//! The fleet's `status` in words and as JSON: who holds the key, one row per host with its
//! acknowledgement, and the flags (what to look at) with their codes. Separate because it
//! speaks of the whole fleet as read from etcd, not of one host's run.

use super::Style;
use super::etcd::moving;

fn holder_text(h: &crate::election::Holder) -> String {
    use crate::election::Holder;
    match h {
        Holder::Site(s) => s.clone(),
        Holder::Nobody => "(no key: no site holds the role)".into(),
        Holder::Switching(v) => format!("{v:?} ({})", moving(v)),
        Holder::Garbage(v) => format!("\"{v}\" (names no site)"),
    }
}

fn flag_text(f: &crate::status::Flag) -> String {
    use crate::status::Flag;
    match f {
        Flag::PrimaryOnSites(sites) => format!(
            "hosts of {} all say they run the primary units",
            sites.join(" and ")
        ),
        Flag::NoHolder => "no site holds the role: the application runs nowhere".into(),
        Flag::HolderNotRunning(site) => {
            format!(
                "no host of {site} has acknowledged running the primary units at the key's revision"
            )
        }
        Flag::Behind { host, acked } => format!(
            "{host} acknowledged revision {acked} last: behind the key (down, cut off, paused, or a stop or start that failed)"
        ),
        Flag::Unreadable { host } => format!("{host}: its acknowledgement is not one"),
        Flag::OutOfSync { host, units } => format!(
            "{host}: {} did not reach {} state (see journalctl -u failover-manager there)",
            units.join(", "),
            if units.len() == 1 { "its" } else { "their" }
        ),
        Flag::Silent { host, seconds } => format!(
            "{host} not heard from for {} (down, cut off from etcd, its timer stopped, or its clock off)",
            ago(*seconds)
        ),
    }
}

/// Seconds as "42s", "3m12s", "2h5m": how long ago, for a table.
fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn flag_code(f: &crate::status::Flag) -> &'static str {
    use crate::status::Flag;
    match f {
        Flag::PrimaryOnSites(_) => "primary_on_two_sites",
        Flag::NoHolder => "no_holder",
        Flag::HolderNotRunning(_) => "holder_not_running",
        Flag::Behind { .. } => "behind",
        Flag::Unreadable { .. } => "unreadable",
        Flag::OutOfSync { .. } => "not_in_sync",
        Flag::Silent { .. } => "not_heard_from",
    }
}

/// `status` for people: the key, one row per host, then what to look at.
pub fn status_text(key: &str, v: &crate::status::View, ttl: Option<i64>, style: Style) -> String {
    use crate::status::Acked;
    let mut out = format!("{key}: {}", holder_text(&v.holder));
    if v.revision > 0 {
        out.push_str(&format!(" (revision {}", v.revision));
        if let Some(l) = v.lease {
            out.push_str(&format!(", lease {l:x}"));
            if let Some(t) = ttl {
                out.push_str(&format!(": {t}s left"));
            }
        }
        out.push(')');
    }
    out.push('\n');
    if let Some(p) = &v.promotion {
        out.push_str(&format!("last promotion: {p}\n"));
    }
    let rows: Vec<[String; 5]> = v
        .rows
        .iter()
        .map(|r| {
            let (role, rev) = match &r.ack {
                Acked::Role {
                    revision,
                    role,
                    pending,
                } if pending.is_empty() => (role.to_string(), revision.to_string()),
                Acked::Role { revision, role, .. } => {
                    (format!("{role} (not in sync)"), revision.to_string())
                }
                Acked::Garbage(g) => (format!("? \"{g}\""), "-".into()),
            };
            let when = match (r.at, v.now) {
                (Some(at), Some(now)) => format!("{} ago", ago(now.saturating_sub(at))),
                _ => "-".into(),
            };
            [r.site.clone(), r.host.clone(), role, rev, when]
        })
        .collect();
    let head = ["SITE", "HOST", "ROLE", "ACKNOWLEDGED", "WHEN"].map(String::from);
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&head))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2), width(3)];
    for r in std::iter::once(&head).chain(&rows) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        ));
    }
    if v.rows.is_empty() {
        out.push_str("(no host has acknowledged anything yet)\n");
    }
    for f in &v.flags {
        let line = format!("! {}", flag_text(f));
        let code = if matches!(f, crate::status::Flag::PrimaryOnSites(_)) {
            "1;31"
        } else {
            "1"
        };
        out.push_str(&style.paint(code, &line));
        out.push('\n');
    }
    out
}

/// `status --output json`.
pub fn status_json(
    key: &str,
    v: Option<&crate::status::View>,
    ttl: Option<i64>,
    error: Option<&str>,
) -> String {
    use crate::status::Acked;
    let value = match v {
        None => serde_json::json!({ "version": 1, "key": key, "healthy": false, "error": error }),
        Some(v) => serde_json::json!({
            "version": 1,
            "key": key,
            "healthy": v.healthy(),
            "holder": match &v.holder {
                crate::election::Holder::Site(s) => Some(s.as_str()),
                _ => None,
            },
            "value": holder_text(&v.holder),
            "revision": v.revision,
            "lease": v.lease,
            "ttl_left_s": ttl,
            "promotion": v.promotion,
            "hosts": v.rows.iter().map(|r| match &r.ack {
                Acked::Role { revision, role, pending } => serde_json::json!({
                    "site": r.site, "host": r.host, "role": role, "revision": revision,
                    "in_sync": pending.is_empty(), "units_not_in_state": pending,
                    "behind": *revision < v.revision,
                    "at": r.at,
                    "ago_s": r.at.zip(v.now).map(|(at, now)| now.saturating_sub(at)),
                    "fence_s": match r.fence {
                        crate::status::Fence::Within(s) => serde_json::json!(s),
                        crate::status::Fence::Never => serde_json::json!("never"),
                        crate::status::Fence::Unknown => serde_json::Value::Null,
                    },
                }),
                Acked::Garbage(g) => serde_json::json!({
                    "site": r.site, "host": r.host, "role": null, "revision": null, "unreadable": g,
                }),
            }).collect::<Vec<_>>(),
            "flags": v.flags.iter().map(|f| serde_json::json!({
                "code": flag_code(f), "text": flag_text(f),
            })).collect::<Vec<_>>(),
        }),
    };
    serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
