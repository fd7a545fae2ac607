//! The few calls into libc that std does not offer, each behind a safe, typed function: with
//! `sdbus` (sd-bus), the only module allowed `unsafe` (main.rs denies it everywhere else).

use std::time::Duration;

/// A clock `clock_gettime(2)` reads.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// CLOCK_BOOTTIME: monotonic, counts a suspend, restarts at boot.
    Boot,
}

/// `clock`'s reading now (zero if the kernel refused, which no Linux that runs systemd 252
/// does: a zero reading would only shorten waits).
pub fn read(clock: Clock) -> Duration {
    let id = match clock {
        Clock::Boot => libc::CLOCK_BOOTTIME,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and `id` a clock the kernel has.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The real user ID.
pub fn uid() -> u32 {
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The effective user ID.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Sets the file creation mask (umask(2) cannot fail).
pub fn set_umask(mask: u32) {
    // SAFETY: umask(2) only changes this process's file creation mask.
    unsafe {
        libc::umask(mask);
    }
}

/// A process group a child of ours leads: never group 0 or 1, never a negative number, so
/// `signal_group` cannot signal every process or our own group by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessGroup(libc::pid_t);

impl ProcessGroup {
    /// The group of a child spawned as its leader (`process_group(0)`): its pid.
    pub fn led_by(pid: u32) -> Option<ProcessGroup> {
        libc::pid_t::try_from(pid)
            .ok()
            .filter(|p| *p > 1)
            .map(ProcessGroup)
    }
}

/// The signals this tool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to every process of `group` (kill(2) with the group's negative id); a group
/// that has gone is no error.
pub fn signal_group(group: ProcessGroup, signal: Signal) {
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) touches no memory; `group.0 > 1`, so `-group.0` names one process
    // group, a child's own.
    unsafe {
        libc::kill(-group.0, sig);
    }
}

/// Creates a FIFO at `path` (tests: files that would block a careless open).
#[cfg(test)]
pub fn mkfifo(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path; mkfifo(3) only creates a file.
    match unsafe { libc::mkfifo(c.as_ptr(), mode) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_group_that_would_signal_everyone_or_ourselves() {
        assert_eq!(ProcessGroup::led_by(0), None);
        assert_eq!(ProcessGroup::led_by(1), None);
        assert_eq!(ProcessGroup::led_by(u32::MAX), None);
        assert!(ProcessGroup::led_by(4242).is_some());
        let a = read(Clock::Boot);
        assert!(read(Clock::Boot) >= a && a > Duration::ZERO);
    }
}
