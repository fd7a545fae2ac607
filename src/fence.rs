//! Self-fencing (`check.fence_after`): a primary that cannot confirm its role for long enough
//! stops its primary units, because by then the other site may have been promoted (Patroni's
//! leader demotes itself when it cannot renew its lease for `ttl`). The decision is a pure
//! function of the role, the last definite answer and the clock; the record of that answer is
//! kept across runs in a small root-owned file.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::secure_fs::{self, FsError};

pub const PATH: &str = "/var/lib/failover-manager/last-confirmed";

/// The last run whose check said primary or standby: what is kept across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    pub role: Role,
    /// Unix time, seconds (whole seconds: the file is read by people too, `at` says when).
    #[serde(rename = "unix")]
    pub at_unix: u64,
}

impl Confirmed {
    pub fn new(role: Role, at: SystemTime) -> Confirmed {
        Confirmed {
            role,
            at_unix: unix(at),
        }
    }

    pub fn at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.at_unix)
    }
}

/// What the file holds: the last definite answer, or, when there never was one that this host
/// remembers (first boot, a restore without the file, a file that could not be read), the time
/// the first unknown run saw that, so the wait for fencing starts there and is still bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Confirmed(Confirmed),
    UnknownSince {
        #[serde(rename = "unix")]
        at_unix: u64,
    },
}

impl Record {
    /// Since when the role has not been confirmed, as far as this host knows.
    pub fn unconfirmed_since(&self) -> SystemTime {
        match self {
            Record::Confirmed(c) => c.at(),
            Record::UnknownSince { at_unix } => {
                SystemTime::UNIX_EPOCH + Duration::from_secs(*at_unix)
            }
        }
    }

    pub fn last_confirmed(&self) -> Option<Confirmed> {
        match self {
            Record::Confirmed(c) => Some(*c),
            Record::UnknownSince { .. } => None,
        }
    }
}

/// The file as a text: one JSON object, with a human-readable time beside the number.
pub fn render(record: &Record) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        #[serde(flatten)]
        record: &'a Record,
        /// For people; the number is what is read back.
        at: String,
    }
    let at = humantime::format_rfc3339_seconds(record.unconfirmed_since()).to_string();
    serde_json::to_string(&File { record, at }).unwrap_or_default() + "\n"
}

/// Reads the file's text back; `None` for anything that is not a record (see `Record`).
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

/// The pure rule. `record` is what the file said before this run (after `next_record` was
/// applied for a missing file, it is never `None` while the role is unknown). A clock that went
/// backwards counts as no time passed.
pub fn status(
    role: Role,
    record: Option<&Record>,
    now: SystemTime,
    fence_after: Option<Duration>,
) -> Status {
    let Some(limit) = fence_after else {
        return Status::Off;
    };
    if role != Role::Unknown {
        return Status::Confirmed;
    }
    let unknown_for = record
        .and_then(|r| now.duration_since(r.unconfirmed_since()).ok())
        .unwrap_or_default();
    // Whole seconds: the record is kept in seconds, so the same run says the same thing twice.
    let unknown_for = Duration::from_secs(unknown_for.as_secs());
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
/// there; an unknown one keeps the old record, or starts one if there was none.
pub fn next_record(role: Role, old: Option<&Record>, now: SystemTime) -> Record {
    match (role, old) {
        (Role::Primary | Role::Standby, _) => Record::Confirmed(Confirmed::new(role, now)),
        (Role::Unknown, Some(old)) => *old,
        (Role::Unknown, None) => Record::UnknownSince { at_unix: unix(now) },
    }
}

/// What a run knows about fencing: for the words (report) and the numbers (metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// `check.fence_after`.
    pub after: Duration,
    pub status: Status,
    /// The last definite answer this host remembers (this run's, when it gave one).
    pub last_confirmed: Option<Confirmed>,
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

/// One run's fencing: where it stands, and the record to keep for the next run (`None` when
/// the old one stands). `None` view when `fence_after` is not set: nothing is read or kept.
pub fn assess(
    role: Role,
    old: Option<Record>,
    now: SystemTime,
    fence_after: Option<Duration>,
) -> (Option<View>, Option<Record>) {
    let Some(after) = fence_after else {
        return (None, None);
    };
    let next = next_record(role, old.as_ref(), now);
    let view = View {
        after,
        status: status(role, Some(&next), now, fence_after),
        last_confirmed: next.last_confirmed(),
    };
    (Some(view), (old != Some(next)).then_some(next))
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

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn confirmed(role: Role, secs: u64) -> Record {
        Record::Confirmed(Confirmed::new(role, at(secs)))
    }

    #[test]
    fn off_unless_configured() {
        let r = confirmed(Role::Primary, 0);
        assert_eq!(status(Role::Unknown, Some(&r), at(3600), None), Status::Off);
        assert_eq!(status(Role::Primary, Some(&r), at(3600), None), Status::Off);
    }

    #[test]
    fn a_definite_answer_is_never_fenced() {
        let r = confirmed(Role::Primary, 0);
        for role in [Role::Primary, Role::Standby] {
            assert_eq!(
                status(role, Some(&r), at(3600), Some(MIN)),
                Status::Confirmed
            );
        }
    }

    #[test]
    fn unknown_waits_until_fence_after_then_fences() {
        let r = confirmed(Role::Primary, 0);
        assert_eq!(
            status(Role::Unknown, Some(&r), at(59), Some(MIN)),
            Status::Waiting {
                unknown_for: Duration::from_secs(59),
                remaining: Duration::from_secs(1)
            }
        );
        assert_eq!(
            status(Role::Unknown, Some(&r), at(60), Some(MIN)),
            Status::Fence {
                unknown_for: Duration::from_secs(60)
            }
        );
        // Last confirmed standby: the primary units should not run anyway; fencing stops any
        // that do (started by hand, say) all the same.
        let s = confirmed(Role::Standby, 0);
        assert!(matches!(
            status(Role::Unknown, Some(&s), at(130), Some(MIN)),
            Status::Fence { .. }
        ));
    }

    #[test]
    fn a_clock_that_went_back_counts_no_time() {
        let r = confirmed(Role::Primary, 100);
        assert_eq!(
            status(Role::Unknown, Some(&r), at(40), Some(MIN)),
            Status::Waiting {
                unknown_for: Duration::ZERO,
                remaining: MIN
            }
        );
    }

    #[test]
    fn no_record_starts_the_wait_at_the_first_unknown_run() {
        // First boot or a restore without the file: the first unknown run starts the clock...
        let first = next_record(Role::Unknown, None, at(10));
        assert_eq!(
            first,
            Record::UnknownSince {
                at_unix: 1_700_000_010
            }
        );
        assert_eq!(first.last_confirmed(), None);
        // ...later unknown runs keep it, so fencing comes fence_after after that run...
        let later = next_record(Role::Unknown, Some(&first), at(50));
        assert_eq!(later, first);
        assert!(matches!(
            status(Role::Unknown, Some(&later), at(70), Some(MIN)),
            Status::Fence { .. }
        ));
        // ...and a definite answer replaces it.
        assert_eq!(
            next_record(Role::Standby, Some(&later), at(80)),
            confirmed(Role::Standby, 80)
        );
        assert_eq!(
            next_record(Role::Primary, Some(&confirmed(Role::Standby, 0)), at(90)),
            confirmed(Role::Primary, 90)
        );
    }

    #[test]
    fn assess_keeps_the_record_only_when_it_changes() {
        let old = confirmed(Role::Primary, 0);
        assert_eq!(assess(Role::Unknown, Some(old), at(10), None), (None, None));
        // Unknown with a record: nothing to write, ten seconds of fifty.
        let (view, write) = assess(
            Role::Unknown,
            Some(old),
            at(10),
            Some(Duration::from_secs(50)),
        );
        assert_eq!(write, None);
        let view = view.expect("a view when fence_after is set");
        assert_eq!(view.unknown_for(), Duration::from_secs(10));
        assert!(!view.fenced());
        assert_eq!(view.last_confirmed, old.last_confirmed());
        // A definite answer is written every time: its time is the point.
        let (view, write) = assess(Role::Standby, Some(old), at(10), Some(MIN));
        assert_eq!(write, Some(confirmed(Role::Standby, 10)));
        assert_eq!(view.map(|v| v.status), Some(Status::Confirmed));
        // No record and unknown: a record starts now.
        let (view, write) = assess(Role::Unknown, None, at(10), Some(MIN));
        assert_eq!(
            write,
            Some(Record::UnknownSince {
                at_unix: 1_700_000_010
            })
        );
        assert_eq!(view.and_then(|v| v.last_confirmed), None);
    }

    #[test]
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
            Record::UnknownSince { at_unix: 42 },
        ] {
            let text = render(&r);
            assert_eq!(parse(&text), Some(r), "{text}");
        }
        assert_eq!(
            render(&confirmed(Role::Standby, 0)),
            "{\"confirmed\":{\"role\":\"standby\",\"unix\":1700000000},\"at\":\"2023-11-14T22:13:20Z\"}\n"
        );
        for bad in [
            "",
            "{}",
            "garbage",
            "{\"confirmed\":{\"role\":\"x\",\"unix\":1}}",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
