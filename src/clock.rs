//! The clock that safety durations are counted on: CLOCK_BOOTTIME, which NTP, an operator's
//! `date -s` or a restored VM cannot step (it also counts a suspend), tagged with the kernel's
//! boot ID because it restarts at every boot. Fencing, the lease and the dead man's switch
//! compare two readings only when they come from the same boot.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One reading: since when this kernel booted, in milliseconds, and which boot that is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub boot_id: String,
    /// CLOCK_BOOTTIME, milliseconds.
    pub boottime_ms: u64,
}

impl Stamp {
    /// How long after `earlier` this reading was; `None` across a reboot (the two readings are
    /// of different clocks). A reading before `earlier` (impossible on one boot) counts as 0.
    pub fn since(&self, earlier: &Stamp) -> Option<Duration> {
        // An unknown boot (no /proc) is never the same boot as anything.
        let same = !self.boot_id.is_empty() && self.boot_id == earlier.boot_id;
        same.then(|| Duration::from_millis(self.boottime_ms.saturating_sub(earlier.boottime_ms)))
    }
}

/// A wall-clock reading in Unix seconds (0 before 1970): for people and records ("how long
/// ago", "at"), never for a decision.
pub fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This machine's clock now.
pub fn now() -> Stamp {
    Stamp {
        boot_id: boot_id(),
        boottime_ms: u64::try_from(crate::sys::read(crate::sys::Clock::Boot).as_millis())
            .unwrap_or(u64::MAX),
    }
}

/// The kernel's random ID of this boot. Unreadable (no /proc): an empty ID, which never equals
/// a real one, so a record from then counts as from another boot (the safe side: the wait for
/// fencing starts again at the first unknown run, and is still bounded).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
pub fn at(boot: &str, ms: u64) -> Stamp {
    Stamp {
        boot_id: boot.into(),
        boottime_ms: ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_compare_only_within_one_boot() {
        assert_eq!(
            at("b1", 5_000).since(&at("b1", 2_000)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            at("b1", 1_000).since(&at("b1", 2_000)),
            Some(Duration::ZERO)
        );
        assert_eq!(at("b2", 5_000).since(&at("b1", 2_000)), None);
        assert_eq!(at("", 5_000).since(&at("", 2_000)), None);
    }

    #[test]
    fn the_clock_runs_and_knows_its_boot() {
        let a = now();
        let b = now();
        assert!(!a.boot_id.is_empty(), "a Linux with /proc has a boot ID");
        assert!(b.since(&a).is_some());
    }
}
