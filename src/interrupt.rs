//! SIGTERM/SIGINT (systemd stopping the oneshot, an operator's Ctrl-C) set a flag that every
//! wait loop polls, so a run stops waiting at once and reports what it did and did not do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Time and interrupts as every wait loop reads them (apply, systemd, process, the host):
/// `Real` is the process's own (the signal flag, the monotonic and the wall clock); a test
/// passes its own, to interrupt a wait at a chosen point.
pub trait Time {
    fn now(&self) -> Instant;
    fn wall(&self) -> SystemTime;
    /// SIGTERM or SIGINT came: stop waiting.
    fn interrupted(&self) -> bool;
    /// Sleeps up to `d`, waking early on an interrupt; false if interrupted.
    fn sleep(&self, d: Duration) -> bool;
}

/// This process's clocks and signals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Real;

impl Time for Real {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn interrupted(&self) -> bool {
        requested()
    }
    fn sleep(&self, d: Duration) -> bool {
        sleep(d)
    }
}

static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

pub fn install() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(flag()))?;
    }
    Ok(())
}

/// For a command with nothing to finish (`watch`, blocked in a read that a signal does not
/// end): SIGTERM and SIGINT end the process at once, with status 0.
pub fn exit_on_signal() -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 0, Arc::new(AtomicBool::new(true)))?;
    }
    Ok(())
}

pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}

/// Sleeps up to `d`, waking early on interrupt; returns false if interrupted.
pub fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if requested() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}
