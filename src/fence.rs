//! Self-fencing (`check.fence_after`): a primary that cannot confirm its role for long enough
//! stops its primary units, because by then the other site may have been promoted (Patroni's
//! leader demotes itself when it cannot renew its lease for `ttl`). The decision is a pure
//! function of the role, the last definite answer and the clock; the record of that answer is
//! kept across runs in a small root-owned file.
//!
//! Time is counted on the boot clock (`clock`), from when the confirming request was *sent*:
//! a wall clock stepped back an hour (NTP, a restored VM) cannot postpone a fence, and a slow
//! answer cannot stretch the time its role is trusted. The dead man's switch (`deadline`)
//! enforces the same bound when no run comes at all.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::Stamp;
use crate::domain::Role;
use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/var/lib/failover-manager/last-confirmed";

/// The last run whose check said primary or standby: what is kept across runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    pub role: Role,
    /// When the confirming request was sent, on the boot clock.
    #[serde(flatten)]
    pub sent: Stamp,
    /// The wall clock then, in Unix seconds: for people and the metrics, never for a decision.
    #[serde(rename = "unix")]
    pub at_unix: u64,
}

impl Confirmed {
    pub fn new(role: Role, sent: Stamp, wall: SystemTime) -> Confirmed {
        Confirmed {
            role,
            sent,
            at_unix: crate::clock::unix(wall),
        }
    }

    pub fn at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.at_unix)
    }
}

/// What the file holds: the last definite answer, or, when there is none this boot (first
/// boot, a reboot, a restore without the file, a file that could not be read), the time the
/// first unknown run saw that, so the wait for fencing starts there and is still bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Confirmed(Confirmed),
    UnknownSince {
        #[serde(flatten)]
        since: Stamp,
        #[serde(rename = "unix")]
        at_unix: u64,
    },
}

impl Record {
    /// Since when the role has not been confirmed, as far as this host knows.
    pub fn unconfirmed_since(&self) -> &Stamp {
        match self {
            Record::Confirmed(c) => &c.sent,
            Record::UnknownSince { since, .. } => since,
        }
    }

    fn wall(&self) -> SystemTime {
        match self {
            Record::Confirmed(c) => c.at(),
            Record::UnknownSince { at_unix, .. } => {
                SystemTime::UNIX_EPOCH + Duration::from_secs(*at_unix)
            }
        }
    }

    pub fn last_confirmed(&self) -> Option<&Confirmed> {
        match self {
            Record::Confirmed(c) => Some(c),
            Record::UnknownSince { .. } => None,
        }
    }
}

/// The file as a text: one JSON object, with a human-readable time beside the numbers.
pub fn render(record: &Record) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        #[serde(flatten)]
        record: &'a Record,
        /// For people; the numbers are what is read back.
        at: String,
    }
    let at = humantime::format_rfc3339_seconds(record.wall()).to_string();
    serde_json::to_string(&File { record, at }).unwrap_or_default() + "\n"
}

/// Reads the file's text back; `None` for anything that is not a record (see `Record`), the
/// wall-clock records of earlier versions among them.
pub fn parse(text: &str) -> Option<Record> {
    #[derive(Deserialize)]
    struct File {
        #[serde(flatten)]
        record: Record,
    }
    serde_json::from_str::<File>(text).ok().map(|f| f.record)
}

/// Where a run stands with respect to fencing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `fence_after` is not set.
    Off,
    /// The check answered: the role is confirmed now.
    Confirmed,
    /// Unknown, but for less than `fence_after`: fences in `remaining` if it stays unknown.
    Waiting {
        unknown_for: Duration,
        remaining: Duration,
    },
    /// Unknown for `fence_after` or longer: this host must stop its primary units.
    Fence { unknown_for: Duration },
}

/// The pure rule. `record` is what is kept after this run (`next_record`): never of another
/// boot, and never `None` while the role is unknown.
pub fn status(
    role: Role,
    record: Option<&Record>,
    now: &Stamp,
    fence_after: Option<Duration>,
) -> Status {
    let Some(limit) = fence_after else {
        return Status::Off;
    };
    if role != Role::Unknown {
        return Status::Confirmed;
    }
    let unknown_for = record
        .and_then(|r| now.since(r.unconfirmed_since()))
        .unwrap_or_default();
    // Tenths of a second: enough for people, and two reports of one run agree.
    let unknown_for = Duration::from_millis(unknown_for.as_millis() as u64 / 100 * 100);
    if unknown_for >= limit {
        Status::Fence { unknown_for }
    } else {
        Status::Waiting {
            unknown_for,
            remaining: limit - unknown_for,
        }
    }
}

/// The record to keep after a run with this role: a definite answer replaces whatever was
/// there (timed at when its request was sent); an unknown one keeps the old record of this
/// boot, or starts one now.
pub fn next_record(
    role: Role,
    old: Option<&Record>,
    sent: &Stamp,
    now: &Stamp,
    wall: SystemTime,
) -> Record {
    match (role, old) {
        (Role::Primary | Role::Standby, _) => {
            Record::Confirmed(Confirmed::new(role, sent.clone(), wall))
        }
        (Role::Unknown, Some(old)) if now.since(old.unconfirmed_since()).is_some() => old.clone(),
        (Role::Unknown, _) => Record::UnknownSince {
            since: now.clone(),
            at_unix: crate::clock::unix(wall),
        },
    }
}

/// What a run knows about fencing: for the words (report) and the numbers (metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// `check.fence_after`.
    pub after: Duration,
    pub status: Status,
    /// The last definite answer this host remembers (this run's, when it gave one).
    pub last_confirmed: Option<Confirmed>,
    /// The role the last definite answer before this run gave.
    pub previous: Option<Role>,
}

impl View {
    pub fn fenced(&self) -> bool {
        matches!(self.status, Status::Fence { .. })
    }

    pub fn unknown_for(&self) -> Duration {
        match self.status {
            Status::Waiting { unknown_for, .. } | Status::Fence { unknown_for } => unknown_for,
            Status::Off | Status::Confirmed => Duration::ZERO,
        }
    }
}

/// One run's fencing: where it stands, and the record to keep for the next (`None` when
/// the old one stands). `None` view when `fence_after` is not set: nothing is read or kept.
pub fn assess(
    role: Role,
    old: Option<Record>,
    sent: &Stamp,
    now: &Stamp,
    wall: SystemTime,
    fence_after: Option<Duration>,
) -> (Option<View>, Option<Record>) {
    let Some(after) = fence_after else {
        return (None, None);
    };
    let next = next_record(role, old.as_ref(), sent, now, wall);
    let view = View {
        after,
        status: status(role, Some(&next), now, fence_after),
        last_confirmed: next.last_confirmed().cloned(),
        previous: old
            .as_ref()
            .and_then(Record::last_confirmed)
            .map(|c| c.role),
    };
    (Some(view), (old.as_ref() != Some(&next)).then_some(next))
}

/// The record, if there is one to be read. One that cannot be parsed counts as none: see
/// `Record` (the wait for fencing then starts at this run, and the run says so).
pub fn load(path: &Path) -> Result<Option<Record>, FsError> {
    let Some(bytes) = secure_fs::read_small("fencing record", path, 4096)? else {
        return Ok(None);
    };
    let record = parse(&String::from_utf8_lossy(&bytes));
    if record.is_none() {
        log::warn!(
            "{}: not a record of the last confirmed role; counting from now",
            path.display()
        );
    }
    Ok(record)
}

/// Written whole or not at all, in a directory only root can change.
pub fn store(path: &Path, record: &Record) -> Result<(), FsError> {
    if let Some(dir) = path.parent() {
        secure_fs::ensure_dir("state directory", dir)?;
    }
    secure_fs::write_atomic("fencing record", path, render(record).as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::at;

    const MIN: Duration = Duration::from_secs(60);

    fn wall(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn t(secs: u64) -> Stamp {
        at("boot", secs * 1000)
    }

    fn confirmed(role: Role, secs: u64) -> Record {
        Record::Confirmed(Confirmed::new(role, t(secs), wall(secs)))
    }

    #[test]
    fn off_unless_configured() {
        let r = confirmed(Role::Primary, 0);
        assert_eq!(status(Role::Unknown, Some(&r), &t(3600), None), Status::Off);
        assert_eq!(status(Role::Primary, Some(&r), &t(3600), None), Status::Off);
    }

    #[test]
    fn a_definite_answer_is_never_fenced() {
        let r = confirmed(Role::Primary, 0);
        for role in [Role::Primary, Role::Standby] {
            assert_eq!(
                status(role, Some(&r), &t(3600), Some(MIN)),
                Status::Confirmed
            );
        }
    }

    #[test]
    fn unknown_waits_until_fence_after_then_fences() {
        let r = confirmed(Role::Primary, 0);
        assert_eq!(
            status(Role::Unknown, Some(&r), &t(59), Some(MIN)),
            Status::Waiting {
                unknown_for: Duration::from_secs(59),
                remaining: Duration::from_secs(1)
            }
        );
        assert_eq!(
            status(Role::Unknown, Some(&r), &t(60), Some(MIN)),
            Status::Fence {
                unknown_for: Duration::from_secs(60)
            }
        );
        // Last confirmed standby: the primary units should not run anyway; fencing stops any
        // that do (started by hand, say) all the same.
        let s = confirmed(Role::Standby, 0);
        assert!(matches!(
            status(Role::Unknown, Some(&s), &t(130), Some(MIN)),
            Status::Fence { .. }
        ));
    }

    #[test]
    fn the_wall_clock_does_not_count_and_the_send_time_does() {
        // Confirmed by a request sent at 10 s whose answer came at 13 s: counted from 10 s.
        let r = next_record(Role::Primary, None, &t(10), &t(13), wall(13));
        assert!(matches!(
            status(Role::Unknown, Some(&r), &t(70), Some(MIN)),
            Status::Fence { .. }
        ));
        // The wall clock stepped back an hour between the runs: nothing changes, the boot
        // clock decides.
        let later = next_record(
            Role::Unknown,
            Some(&r),
            &t(69),
            &t(69),
            wall(69) - Duration::from_secs(3600),
        );
        assert_eq!(later, r);
        assert!(matches!(
            status(Role::Unknown, Some(&later), &t(69), Some(MIN)),
            Status::Waiting { .. }
        ));
    }

    #[test]
    fn a_record_of_another_boot_counts_from_the_first_unknown_run_of_this_one() {
        let old = Record::Confirmed(Confirmed::new(Role::Primary, at("before", 5_000), wall(0)));
        let now = at("this", 1_000);
        let first = next_record(Role::Unknown, Some(&old), &now, &now, wall(100));
        assert_eq!(
            first,
            Record::UnknownSince {
                since: now.clone(),
                at_unix: 1_700_000_100
            }
        );
        assert!(matches!(
            status(Role::Unknown, Some(&first), &at("this", 61_000), Some(MIN)),
            Status::Fence { .. }
        ));
    }

    #[test]
    fn no_record_starts_the_wait_at_the_first_unknown_run() {
        let first = next_record(Role::Unknown, None, &t(10), &t(10), wall(10));
        assert_eq!(first.last_confirmed(), None);
        let later = next_record(Role::Unknown, Some(&first), &t(50), &t(50), wall(50));
        assert_eq!(later, first);
        assert!(matches!(
            status(Role::Unknown, Some(&later), &t(70), Some(MIN)),
            Status::Fence { .. }
        ));
        assert_eq!(
            next_record(Role::Standby, Some(&later), &t(80), &t(80), wall(80)),
            confirmed(Role::Standby, 80)
        );
    }

    #[test]
    fn assess_keeps_the_record_only_when_it_changes() {
        let old = confirmed(Role::Primary, 0);
        assert_eq!(
            assess(
                Role::Unknown,
                Some(old.clone()),
                &t(10),
                &t(10),
                wall(10),
                None
            ),
            (None, None)
        );
        let (view, write) = assess(
            Role::Unknown,
            Some(old.clone()),
            &t(10),
            &t(10),
            wall(10),
            Some(Duration::from_secs(50)),
        );
        assert_eq!(write, None);
        let view = view.expect("a view when fence_after is set");
        assert_eq!(view.unknown_for(), Duration::from_secs(10));
        assert!(!view.fenced());
        assert_eq!(view.last_confirmed.as_ref(), old.last_confirmed());
        assert_eq!(view.previous, Some(Role::Primary));
        let (view, write) = assess(
            Role::Standby,
            Some(old),
            &t(10),
            &t(10),
            wall(10),
            Some(MIN),
        );
        assert_eq!(write, Some(confirmed(Role::Standby, 10)));
        assert_eq!(view.map(|v| v.status), Some(Status::Confirmed));
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn store_and_load_round_trip_as_root() {
        let Some(s) = crate::secure_fs::Scratch::new("fence") else {
            return;
        };
        let path = s.path.join("state").join("last-confirmed");
        assert!(matches!(load(&path), Ok(None)), "missing file: no record");
        let r = confirmed(Role::Primary, 7);
        assert!(store(&path, &r).is_ok());
        assert_eq!(load(&path).ok().flatten(), Some(r));
        assert!(std::fs::write(&path, "not json").is_ok());
        assert!(matches!(load(&path), Ok(None)), "garbage: no record");
    }

    #[test]
    fn the_file_round_trips_and_garbage_is_no_record() {
        for r in [
            confirmed(Role::Primary, 5),
            Record::UnknownSince {
                since: t(4),
                at_unix: 42,
            },
        ] {
            let text = render(&r);
            assert_eq!(parse(&text), Some(r), "{text}");
        }
        assert_eq!(
            render(&confirmed(Role::Standby, 0)),
            "{\"confirmed\":{\"role\":\"standby\",\"boot_id\":\"boot\",\"boottime_ms\":0,\"unix\":1700000000},\"at\":\"2023-11-14T22:13:20Z\"}\n"
        );
        for bad in [
            "",
            "{}",
            "garbage",
            "{\"confirmed\":{\"role\":\"x\",\"unix\":1}}",
            // An earlier version's wall-clock record: counted from now, like none.
            "{\"confirmed\":{\"role\":\"primary\",\"unix\":1700000000},\"at\":\"2023-11-14T22:13:20Z\"}",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
