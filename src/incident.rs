//! One page per incident. A run that needs a person exits non-zero every time (truthful, in
//! `systemctl --failed`), but people are paged once when an incident starts and once when it
//! ends. An incident, per host: from the first reconcile run that needs a person to the first
//! run after it that does not. Runs skipped for the lock and dry runs leave it as it is.
//!
//! Pageable (docs/metrics-and-alerts.md, "One page per incident"): a run that failed to do something (a unit, a hook, systemd,
//! the config, the fence record, the dead man's switch), a fenced host that was primary (a
//! primary unit to stop, or its last definite role primary), and a host whose role is unknown while a primary unit runs there and no fencing
//! will stop it (no `check.fence_after`; with it, the incident pages when the host fences). Not
//! pageable: a host whose role is unknown (or that is fenced) and runs no primary unit: it has
//! nothing to stop and nothing it could start; it did nothing wrong (a standby cut off from
//! the witness). Once pageable, an incident stays so until it ends.
//!
//! Two files under /run/failover-manager, each with one writer: `incident`, the run's (the
//! open incident and the last one that ended), and `paged`, the alert unit's (`page`: what it
//! has sent). The decisions are pure (`next`, `pages`); the shell that acts on them is
//! `paging`, the words are in `report`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/run/failover-manager/incident";
pub const PAGED_PATH: &str = "/run/failover-manager/paged";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Something that should have been done was not (or the run could not run at all).
    Failed,
    /// The check could not tell the role; nothing changed.
    RoleUnknown,
    /// The role unknown for `fence_after`: the primary units stopped.
    Fenced,
}

/// What one run needs, as far as people go: `None` is nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trouble {
    pub kind: Kind,
    pub exit: u8,
    pub pageable: bool,
}

/// What a run found that decides whether it needs a person, and whether that is a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Run {
    pub exit: u8,
    pub role_unknown: bool,
    pub fenced: bool,
    /// Fencing is set and has not fenced yet: it will stop the primary units on its own.
    pub fence_pending: bool,
    /// A primary unit ran (or was on its way up) when the run began.
    pub primary_running: bool,
    /// The last definite answer of the check said primary (`check.fence_after` keeps it):
    /// fenced, this host lost the role, whoever stopped its units (the dead man's switch
    /// may have, before the run that fences).
    pub was_primary: bool,
    /// A step, hook, record or the dead man's switch failed, or the run stopped on an error.
    pub broke: bool,
}

/// The pure rule: which runs need a person, and which of those page (see the module's text).
pub fn trouble(r: &Run) -> Option<Trouble> {
    if r.exit == 0 {
        return None;
    }
    let (kind, pageable) = if r.fenced {
        (Kind::Fenced, r.primary_running || r.was_primary || r.broke)
    } else if r.role_unknown && !r.broke {
        (Kind::RoleUnknown, r.primary_running && !r.fence_pending)
    } else {
        (Kind::Failed, true)
    };
    Some(Trouble {
        kind,
        exit: r.exit,
        pageable,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Unique on this host: the start, in Unix milliseconds.
    pub id: u64,
    /// The start, in Unix seconds.
    pub since: u64,
    /// What the last run of it found.
    pub kind: Kind,
    pub exit: u8,
    /// Whether it pages: set by the first run that was pageable, kept until the end.
    pub pageable: bool,
    /// When it ended, in Unix seconds (only in `Record::ended`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
}

/// The run's file: the open incident, and the last one that ended (so that the alert unit can
/// still send its end when it runs later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<Incident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Incident>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    None,
    /// A new incident (pageable or not).
    Started,
    /// The open incident became pageable.
    Pageable,
    /// It ended.
    Ended,
}

fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The pure step: the record before a run and what the run needs, to the record after it and
/// what changed.
pub fn next(prev: &Record, now: SystemTime, run: Option<Trouble>) -> (Record, Event) {
    let ms = unix_ms(now);
    match (&prev.open, run) {
        (None, None) => (prev.clone(), Event::None),
        (Some(open), None) => (
            Record {
                open: None,
                ended: Some(Incident {
                    ended: Some(ms / 1000),
                    ..open.clone()
                }),
            },
            Event::Ended,
        ),
        (None, Some(t)) => (
            Record {
                open: Some(Incident {
                    // Never the id of the last one, even with a clock stepped back.
                    id: ms.max(prev.ended.as_ref().map_or(0, |e| e.id + 1)),
                    since: ms / 1000,
                    kind: t.kind,
                    exit: t.exit,
                    pageable: t.pageable,
                    ended: None,
                }),
                ended: prev.ended.clone(),
            },
            Event::Started,
        ),
        (Some(open), Some(t)) => {
            let event = match (open.pageable, t.pageable) {
                (false, true) => Event::Pageable,
                _ => Event::None,
            };
            let open = Incident {
                kind: t.kind,
                exit: t.exit,
                pageable: open.pageable || t.pageable,
                ..open.clone()
            };
            (
                Record {
                    open: Some(open),
                    ended: prev.ended.clone(),
                },
                event,
            )
        }
    }
}

/// The alert unit's file: the incident whose start it sent, whether it sent its end, and its
/// own unit name (which a run starts when an incident it paged for ends).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Incident>,
    #[serde(default)]
    pub ended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One page to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Started(Incident),
    /// The incident paged for, with its end when the run's file still has it.
    Ended(Incident),
}

/// The pure rule of the alert unit: the end of the incident it paged for, once that is over
/// (even if another began since), then the start of the open one if it pages and was not sent.
pub fn pages(record: &Record, paged: &Paged) -> Vec<Page> {
    let mut out = Vec::new();
    let open_id = record.open.as_ref().map(|o| o.id);
    if let Some(s) = paged.started.as_ref().filter(|_| !paged.ended)
        && open_id != Some(s.id)
    {
        let ended = match &record.ended {
            Some(e) if e.id == s.id => e.clone(),
            _ => s.clone(),
        };
        out.push(Page::Ended(ended));
    }
    if let Some(o) = record.open.as_ref().filter(|o| o.pageable)
        && paged.started.as_ref().map(|s| s.id) != Some(o.id)
    {
        out.push(Page::Started(o.clone()));
    }
    out
}

/// What the alert unit keeps after sending `page`.
pub fn sent(paged: &Paged, page: &Page, unit: Option<&str>) -> Paged {
    let unit = unit.map(str::to_owned).or_else(|| paged.unit.clone());
    match page {
        Page::Started(i) => Paged {
            started: Some(i.clone()),
            ended: false,
            unit,
        },
        Page::Ended(i) => Paged {
            started: Some(i.clone()),
            ended: true,
            unit,
        },
    }
}

/// The alert unit to start when an incident ends: the one that paged its start, if any.
pub fn end_pager<'a>(ended: &Incident, paged: &'a Paged) -> Option<&'a str> {
    let s = paged.started.as_ref()?;
    (s.id == ended.id && !paged.ended)
        .then_some(paged.unit.as_deref())
        .flatten()
}

/// How long an incident lasted (to its end, or to `now`).
pub fn lasted(i: &Incident, now: SystemTime) -> Duration {
    let end = i.ended.unwrap_or_else(|| unix_ms(now) / 1000);
    Duration::from_secs(end.saturating_sub(i.since))
}

fn load<T: for<'de> Deserialize<'de> + Default>(what: &str, path: &Path) -> Result<T, FsError> {
    Ok(secure_fs::read_small(what, path, 8192)?
        // A file this version cannot read counts as none: at worst one page more.
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn store<T: Serialize>(what: &str, path: &Path, value: &T) -> Result<(), FsError> {
    if let Some(dir) = path.parent() {
        secure_fs::ensure_dir("runtime directory", dir)?;
    }
    let text = serde_json::to_string(value).unwrap_or_default() + "\n";
    secure_fs::write_atomic(what, path, text.as_bytes(), 0o644)
}

pub fn load_record(path: &Path) -> Result<Record, FsError> {
    load("incident file", path)
}

pub fn store_record(path: &Path, r: &Record) -> Result<(), FsError> {
    store("incident file", path, r)
}

pub fn load_paged(path: &Path) -> Result<Paged, FsError> {
    load("paged file", path)
}

pub fn store_paged(path: &Path, p: &Paged) -> Result<(), FsError> {
    store("paged file", path, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn run(exit: u8) -> Run {
        Run {
            exit,
            ..Run::default()
        }
    }

    #[test]
    fn which_runs_need_a_person_and_which_page() {
        let unknown = Run {
            role_unknown: true,
            ..run(3)
        };
        let fenced = Run {
            fenced: true,
            ..run(1)
        };
        for (r, want) in [
            (run(0), None),
            (run(1), Some((Kind::Failed, true))),
            (run(78), Some((Kind::Failed, true))),
            // A cut-off standby: nothing runs, nothing to stop.
            (unknown, Some((Kind::RoleUnknown, false))),
            // A primary whose role is unknown, nothing will stop it: a person decides.
            (
                Run {
                    primary_running: true,
                    ..unknown
                },
                Some((Kind::RoleUnknown, true)),
            ),
            // ... unless fencing will (then the fence pages, if it comes).
            (
                Run {
                    primary_running: true,
                    fence_pending: true,
                    ..unknown
                },
                Some((Kind::RoleUnknown, false)),
            ),
            (
                Run {
                    broke: true,
                    ..unknown
                },
                Some((Kind::Failed, true)),
            ),
            (
                Run {
                    primary_running: true,
                    ..fenced
                },
                Some((Kind::Fenced, true)),
            ),
            // A fenced standby that never ran the application.
            (fenced, Some((Kind::Fenced, false))),
            // A primary whose units the dead man's switch stopped before this run fenced.
            (
                Run {
                    was_primary: true,
                    ..fenced
                },
                Some((Kind::Fenced, true)),
            ),
            (
                Run {
                    broke: true,
                    ..fenced
                },
                Some((Kind::Fenced, true)),
            ),
        ] {
            let got = trouble(&r).map(|t| (t.kind, t.pageable));
            assert_eq!(got, want, "{r:?}");
        }
    }

    fn tr(kind: Kind, pageable: bool) -> Option<Trouble> {
        Some(Trouble {
            kind,
            exit: 1,
            pageable,
        })
    }

    /// Runs in a row: the events, and what the alert unit (started after every failed run, and
    /// by the run at the end of an incident it paged) sends.
    fn drive(runs: &[Option<Trouble>]) -> (Vec<Event>, Vec<&'static str>) {
        let mut record = Record::default();
        let mut paged = Paged::default();
        let (mut events, mut sent_pages) = (Vec::new(), Vec::new());
        for (i, r) in runs.iter().enumerate() {
            let (next_record, e) = next(&record, t(100 + i as u64 * 10), *r);
            let alert = r.is_some()
                || (e == Event::Ended
                    && next_record
                        .ended
                        .as_ref()
                        .and_then(|x| end_pager(x, &paged))
                        .is_some());
            record = next_record;
            events.push(e);
            if alert {
                for p in pages(&record, &paged) {
                    sent_pages.push(match p {
                        Page::Started(_) => "started",
                        Page::Ended(_) => "ended",
                    });
                    paged = sent(&paged, &p, Some("alert@x.service"));
                }
            }
        }
        (events, sent_pages)
    }

    #[test]
    fn one_page_when_an_incident_starts_and_one_when_it_ends() {
        use Event as E;
        let f = tr(Kind::Failed, true);
        let quiet = tr(Kind::RoleUnknown, false);
        let fence = tr(Kind::Fenced, true);
        for (runs, events, want) in [
            (vec![None, None], vec![E::None, E::None], vec![]),
            (
                vec![None, f, f, f, f, None, None],
                vec![
                    E::None,
                    E::Started,
                    E::None,
                    E::None,
                    E::None,
                    E::Ended,
                    E::None,
                ],
                vec!["started", "ended"],
            ),
            // A standby cut off: failed runs, no page at all.
            (
                vec![quiet, quiet, quiet, None],
                vec![E::Started, E::None, E::None, E::Ended],
                vec![],
            ),
            // Unknown, then fenced: one page, when it fences; still one when it is only
            // fenced (nothing left to stop: the incident stays pageable).
            (
                vec![quiet, quiet, fence, tr(Kind::Fenced, false), None],
                vec![E::Started, E::None, E::Pageable, E::None, E::Ended],
                vec!["started", "ended"],
            ),
            // Two incidents: two pairs.
            (
                vec![f, None, f, f, None],
                vec![E::Started, E::Ended, E::Started, E::None, E::Ended],
                vec!["started", "ended", "started", "ended"],
            ),
        ] {
            let (got_events, got_pages) = drive(&runs);
            assert_eq!(got_events, events, "{runs:?}");
            assert_eq!(got_pages, want, "{runs:?}");
        }
    }

    #[test]
    fn an_end_the_alert_unit_missed_is_still_sent_before_the_next_start() {
        let f = tr(Kind::Failed, true);
        let (r1, _) = next(&Record::default(), t(100), f);
        let paged = sent(
            &Paged::default(),
            &Page::Started(r1.open.clone().unwrap()),
            Some("a.service"),
        );
        // It ends and a second one starts before the alert unit runs again.
        let (r2, _) = next(&r1, t(110), None);
        let (r3, _) = next(&r2, t(120), f);
        let got = pages(&r3, &paged);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[0], Page::Ended(i) if i.ended == Some(110)));
        assert!(matches!(&got[1], Page::Started(i) if i.since == 120));
        assert_ne!(r1.open.as_ref().unwrap().id, r3.open.as_ref().unwrap().id);
        // Sent: nothing more.
        let paged = got.iter().fold(paged, |p, g| sent(&p, g, None));
        assert_eq!(pages(&r3, &paged), vec![]);
        assert_eq!(paged.unit.as_deref(), Some("a.service"));
    }

    #[test]
    fn a_run_starts_the_alert_unit_only_for_an_end_it_paged() {
        let f = tr(Kind::Failed, true);
        let (r1, _) = next(&Record::default(), t(100), f);
        let (r2, _) = next(&r1, t(110), None);
        let ended = r2.ended.as_ref().unwrap();
        assert_eq!(end_pager(ended, &Paged::default()), None);
        let p = sent(
            &Paged::default(),
            &Page::Started(r1.open.clone().unwrap()),
            Some("a.service"),
        );
        assert_eq!(end_pager(ended, &p), Some("a.service"));
        let p = sent(&p, &Page::Ended(ended.clone()), None);
        assert_eq!(end_pager(ended, &p), None);
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn files_round_trip_and_unreadable_ones_count_as_none() {
        let Some(s) = secure_fs::Scratch::new("incident") else {
            return;
        };
        let path = s.path.join("run").join("incident");
        assert_eq!(load_record(&path).unwrap(), Record::default());
        let (r, _) = next(&Record::default(), t(100), tr(Kind::Fenced, true));
        store_record(&path, &r).unwrap();
        assert_eq!(load_record(&path).unwrap(), r);
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(load_record(&path).unwrap(), Record::default());
    }
}
