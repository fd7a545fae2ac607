//! `failover-manager watch`: follows the etcd key (`check.etcd`) and starts a run of
//! failover-manager.service at once whenever the key changes, is deleted or its lease expires,
//! so that every host reacts within about a second; the timer stays the net for what a watch
//! cannot see. A reconnect resumes from the last revision seen, so nothing that changed while
//! the stream was down is missed; when etcd can no longer replay it (compacted), a run starts
//! anyway.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::domain::{Action, UnitState};
use crate::etcd::{EtcdError, WatchEvent};
use crate::exit::{Error, Status};
use crate::interrupt;
use crate::systemd::{Manager, Systemd};
use crate::witness;

/// A stream that says nothing for this long is taken for dead and made again (etcd sends a
/// progress notification every 10 minutes, so a live but quiet one is remade too, harmlessly).
const IDLE: Duration = Duration::from_secs(120);
/// Between attempts while no endpoint answers.
const RETRY: Duration = Duration::from_secs(1);
/// The longest a run already under way is waited for before the next is started.
const RUN_WAIT: Duration = Duration::from_secs(15 * 60);

pub fn run(config: &Config, unit: &str) -> Result<Status, Error> {
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "watch follows check.etcd, and this config has check.command".into(),
        ));
    };
    // A stop must not wait out a read of the stream (up to IDLE).
    interrupt::exit_on_signal()?;
    let systemd = Systemd::new();
    let client = witness::client(etcd).map_err(Error::Setup)?;
    // 0: from now. After a stream breaks: the revision after the last one seen.
    let mut from = 0;
    let mut trouble: Option<String> = None;
    // Every start runs once, for what changed while nobody watched: once the watch is in
    // place, so that nothing between that run's read and the watch's start is missed.
    let mut pending = true;
    while !interrupt::requested() {
        let mut stream = match client.watch(&etcd.key, from, IDLE) {
            Ok(s) => s,
            Err(e) => {
                say_trouble(&mut trouble, &e);
                interrupt::sleep(RETRY);
                continue;
            }
        };
        loop {
            match stream.next_event() {
                Ok(WatchEvent::Created { revision }) => {
                    if trouble.take().is_some() || from == 0 {
                        log::info!(
                            "watching {} via {} from revision {}",
                            etcd.key,
                            stream.endpoint(),
                            if from == 0 { revision + 1 } else { from }
                        );
                    }
                    if from == 0 {
                        from = revision + 1;
                    }
                    if std::mem::take(&mut pending) {
                        start_run(&systemd, unit);
                    }
                }
                Ok(WatchEvent::Changed { revision }) => {
                    log::info!(
                        "{} changed at revision {revision}: starting {unit}",
                        etcd.key
                    );
                    from = revision + 1;
                    start_run(&systemd, unit);
                }
                Ok(WatchEvent::Canceled { reason }) => {
                    // Compacted, no leader, or a stale token: start over (with new tokens),
                    // and run once, since changes may have been missed.
                    say_trouble(
                        &mut trouble,
                        &EtcdError::Unreachable(format!("watch canceled: {reason}")),
                    );
                    client.forget_tokens();
                    from = 0;
                    pending = true;
                    interrupt::sleep(RETRY);
                    break;
                }
                Ok(WatchEvent::Other) => {}
                Err(e) => {
                    if interrupt::requested() {
                        break;
                    }
                    // An answer that cannot be read (an event too large, say) would come back
                    // the same from the same revision: run once and watch from now.
                    if matches!(e, EtcdError::Malformed { .. }) {
                        from = 0;
                        pending = true;
                    }
                    say_trouble(&mut trouble, &e);
                    interrupt::sleep(RETRY);
                    break;
                }
            }
        }
    }
    Ok(Status::Converged)
}

/// One warning when the watch goes down, not one a second.
fn say_trouble(trouble: &mut Option<String>, e: &EtcdError) {
    if trouble.is_none() {
        log::warn!("cannot watch the etcd key: {e}; trying again every second");
    }
    *trouble = Some(e.to_string());
}

/// Starts a run. A run already under way may have read the key before the change, and a
/// start would only merge into it: wait for it to end first.
fn start_run(systemd: &Systemd, unit: &str) {
    let until = Instant::now() + RUN_WAIT;
    while Instant::now() < until && !interrupt::requested() {
        match systemd.is_active(&[unit]) {
            Ok(states) if states.first() == Some(&UnitState::Activating) => {
                interrupt::sleep(Duration::from_millis(50));
            }
            _ => break,
        }
    }
    if let Err(e) = systemd.queue(Action::Start, unit) {
        log::error!("cannot start {unit}: {e}");
    }
}
