//! The fleet commands, from any host that reaches etcd (check.etcd): `status`, `switchover`
//! and `promote`. Each reads the key and every acknowledgement in one request; what they mean
//! is decided by `status`, `switchover` and `promote` (pure), and the key moves only by
//! transactions that compare its revision.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::cli::Format;
use crate::config::Config;
use crate::domain::Role;
use crate::exit::{Error, Status};
use crate::output::print_out;
use crate::report;

/// `status`: the key and the acknowledgements, in one read (and the lease's time left).
pub fn status(config: &Config, format: Format) -> Result<Status, Error> {
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "status reads check.etcd, and this config has check.command".into(),
        ));
    };
    let client = crate::witness::client(etcd).map_err(Error::Setup)?;
    let until = std::time::Instant::now() + config.check.timeout;
    let read = client.range_tree(&etcd.key, until);
    let (view, ttl, error) = match read {
        Ok((_, kvs)) => {
            let view = crate::status::assess(&etcd.key, &kvs, Some(unix_now()));
            let ttl = view.lease.and_then(|l| client.time_to_live(l, until).ok());
            (Some(view), ttl, None)
        }
        Err(e) => (None, None, Some(e.to_string())),
    };
    crate::printer::Printer::new(format, false).status(
        &etcd.key,
        view.as_ref(),
        ttl,
        error.as_deref(),
    )?;
    Ok(match view {
        Some(v) if v.healthy() => Status::Healthy,
        _ => Status::Degraded,
    })
}

/// `switchover SITE` (see `switchover`).
pub fn switchover(config: &Config, args: &crate::cli::SwitchoverArgs) -> Result<Status, Error> {
    use crate::switchover;
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "switchover moves check.etcd's key, and this config has check.command".into(),
        ));
    };
    let key = etcd.key.as_str();
    let client = crate::witness::client(etcd).map_err(Error::Setup)?;
    let budget = config.check.timeout;
    let read = || {
        client
            .range_tree(key, std::time::Instant::now() + budget)
            .ok()
            .map(|(_, kvs)| crate::status::assess(key, &kvs, None))
    };
    let failed = |message: String| {
        log::error!("switchover: {message}");
        Ok(Status::Failed)
    };
    let view = match client.range_tree(key, std::time::Instant::now() + budget) {
        Ok((_, kvs)) => crate::status::assess(key, &kvs, None),
        Err(e) => return failed(format!("cannot read {key}: {e}; nothing changed")),
    };
    let plan = match switchover::plan(&view, &args.site) {
        Ok(Some(p)) => p,
        Ok(None) => {
            print_out(&report::nothing_to_do(&args.site))?;
            return Ok(Status::Converged);
        }
        Err(r) => return failed(report::switchover_refusal(key, &r, view.revision)),
    };
    let say = |s: String| print_out(&format!("switchover: {s}"));
    if args.dry_run {
        say(format!(
            "would move {key} from {} (revision {}) to {}, waiting for {} of {} to stop, then {} of {} to start",
            plan.from,
            plan.revision,
            plan.to,
            plan.from_hosts.join(", "),
            plan.from,
            plan.to_hosts.join(", "),
            plan.to
        ))?;
        return Ok(Status::Converged);
    }
    let until = || std::time::Instant::now() + budget;
    // The key to `site`, only while it is still at `revision`: in automatic mode on a fresh
    // lease, which that site's hosts then renew.
    let give = |revision: i64, site: &str| -> Result<Option<i64>, String> {
        let lease = match etcd.lease_ttl {
            Some(ttl) => client.grant(ttl, until()).map_err(|e| e.to_string())?,
            None => 0,
        };
        client
            .replace(key, revision, site, lease, until())
            .map_err(|e| e.to_string())
    };
    // 1: nobody holds the role.
    let neutral = switchover::neutral(&plan.from, &plan.to);
    let r1 = match client.replace(key, plan.revision, &neutral, 0, until()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(format!(
                "{key} changed meanwhile (another switchover?); nothing changed"
            ));
        }
        Err(e) => return failed(format!("cannot write {key}: {e}; nothing changed")),
    };
    say(format!(
        "{key} = {neutral} (revision {r1}); waiting for {} to stop: {}",
        plan.from,
        plan.from_hosts.join(", ")
    ))?;
    // 2: the old site stopped.
    let stopped = switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.from, &plan.from_hosts, r1, Role::Standby)
    });
    if let Err(left) = stopped {
        let back = give(r1, &plan.from);
        return failed(match back {
            Ok(Some(r)) => format!(
                "{} did not confirm its units stopped within {} (no acknowledgement from: {}); {key} = {} again (revision {r}): {} never had the role",
                plan.from,
                humantime::format_duration(args.timeout),
                left.join(", "),
                plan.from,
                plan.to
            ),
            _ => format!(
                "{} did not confirm its units stopped within {} (no acknowledgement from: {}), and {key} could not be set back (changed meanwhile, or etcd unreachable): it may still hold {neutral}, which names no site (every host a standby)",
                plan.from,
                humantime::format_duration(args.timeout),
                left.join(", ")
            ),
        });
    }
    // 3: the new site holds the role.
    let r2 = match give(r1, &plan.to) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(format!(
                "{key} changed after {} stopped: it no longer holds {neutral}; not moved",
                plan.from
            ));
        }
        Err(e) => {
            return failed(format!(
                "cannot give the role to {}: {e}; {key} may still hold {neutral}, which names no site (every host a standby): run the switchover again",
                plan.to
            ));
        }
    };
    say(format!(
        "{key} = {} (revision {r2}); waiting for {} to start: {}",
        plan.to,
        plan.to,
        plan.to_hosts.join(", ")
    ))?;
    // 4: the new site runs it.
    match switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.to, &plan.to_hosts, r2, Role::Primary)
    }) {
        Ok(()) => {
            say(format!("done: {} holds the role (revision {r2})", plan.to))?;
            Ok(Status::Converged)
        }
        Err(left) if left.len() < plan.to_hosts.len() => failed(format!(
            "{key} = {}, but {} of its hosts did not confirm their units running within {} \
             (no acknowledgement from: {}); the others run them, so the role stays: see \
             `failover-manager status`",
            plan.to,
            left.len(),
            humantime::format_duration(args.timeout),
            left.join(", ")
        )),
        // It runs nowhere: back to FROM, without overlap (TO stops first).
        Err(left) => {
            let why = format!(
                "{} did not confirm its units running within {} (no acknowledgement from: {})",
                plan.to,
                humantime::format_duration(args.timeout),
                left.join(", ")
            );
            say(format!("{why}; moving the role back to {}", plan.from))?;
            let back = switchover::neutral(&plan.to, &plan.from);
            let r3 = match client.replace(key, r2, &back, 0, until()) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return failed(format!("{why}, and {key} changed meanwhile: left as it is"));
                }
                Err(e) => {
                    return failed(format!(
                        "{why}, and {key} could not be moved back: {e}; it holds {} or {back} \
                         (every host a standby)",
                        plan.to
                    ));
                }
            };
            if let Err(still) = switchover::wait(args.timeout, read, |v| {
                switchover::waiting_for(v, &plan.to, &plan.to_hosts, r3, Role::Standby)
            }) {
                return failed(format!(
                    "{why}; {key} = {back} (revision {r3}): every host a standby, and the \
                     application runs nowhere, because {} did not confirm its units stopped \
                     (no acknowledgement from: {}): see `failover-manager status`, then \
                     `failover-manager switchover` to either site",
                    plan.to,
                    still.join(", ")
                ));
            }
            let r4 = match give(r3, &plan.from) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return failed(format!("{why}, and {key} changed meanwhile: left as it is"));
                }
                Err(e) => {
                    return failed(format!(
                        "{why}; cannot give the role back to {}: {e}; {key} = {back} (every \
                         host a standby): `failover-manager switchover {}`",
                        plan.from, plan.from
                    ));
                }
            };
            let home = switchover::wait(args.timeout, read, |v| {
                switchover::waiting_for(v, &plan.from, &plan.from_hosts, r4, Role::Primary)
            });
            failed(match home {
                Ok(()) => format!(
                    "{why}; {key} = {} again (revision {r4}) and it runs the application",
                    plan.from
                ),
                Err(left) => format!(
                    "{why}; {key} = {} again (revision {r4}), but it did not confirm its units \
                     running either (no acknowledgement from: {}): see `failover-manager status`",
                    plan.from,
                    left.join(", ")
                ),
            })
        }
    }
}

/// `promote SITE` (see `promote`).
pub fn promote(config: &Config, args: &crate::cli::PromoteArgs) -> Result<Status, Error> {
    use crate::promote::{self, Record};
    let Some(etcd) = config.check.etcd() else {
        return Err(Error::Setup(
            "promote moves check.etcd's key, and this config has check.command".into(),
        ));
    };
    if etcd.lease_ttl.is_some() {
        return Err(Error::Setup(
            "promote is for manual mode: with check.etcd.lease_ttl the key is taken by a \
             candidate site on its own once the old site's lease has expired (a planned move \
             is `switchover`)"
                .into(),
        ));
    }
    let key = etcd.key.as_str();
    let record_key = format!("{key}/{}", promote::RECORD);
    let client = crate::witness::client(etcd).map_err(Error::Setup)?;
    let budget = config.check.timeout;
    let until = || Instant::now() + budget;
    let failed = |message: String| {
        log::error!("promote: {message}");
        Ok(Status::Failed)
    };
    let say = |s: String| print_out(&format!("promote: {s}"));
    let read = || {
        client.range_tree(key, until()).map(|(_, kvs)| {
            let record = kvs
                .iter()
                .find(|(n, _)| *n == record_key)
                .map(|(_, kv)| kv.clone());
            (crate::status::assess(key, &kvs, Some(unix_now())), record)
        })
    };
    let (view, kept) = match read() {
        Ok(v) => v,
        Err(e) => return failed(format!("cannot read {key}: {e}; nothing changed")),
    };
    let own = config.check.fence_after.map(|after| {
        crate::ack::fence_seconds(&crate::config::Budget::of(config, after, Duration::ZERO))
    });
    let plan = match promote::plan(&view, &args.site, own, args.force) {
        Ok(Some(p)) => p,
        Ok(None) => {
            print_out(&report::nothing_to_do(&args.site))?;
            return Ok(Status::Converged);
        }
        Err(r) => return failed(report::promote_refusal(key, &r)),
    };
    let from = plan.from.as_deref().unwrap_or("no site");
    let wait = humantime::format_duration(plan.wait);
    if args.dry_run {
        say(format!(
            "would set {key} = {} (revision {}), wait {wait} for {} to fence {} (less if \
             they all acknowledge they stopped), then give the role to {}",
            promote::neutral(plan.from.as_deref(), &plan.to),
            plan.revision,
            if plan.hosts.is_empty() {
                from.to_owned()
            } else {
                plan.hosts.join(", ")
            },
            if plan.hosts.len() == 1 {
                "itself"
            } else {
                "themselves"
            },
            plan.to
        ))?;
        return Ok(Status::Converged);
    }
    let host = crate::ack::host_name();
    let mut record = Record {
        to: plan.to.clone(),
        from: plan.from.clone().unwrap_or_default(),
        by: promote::who(&host),
        at: now_rfc3339(),
        state: "waiting".into(),
        lease: 0,
        wait: plan.wait.as_secs(),
    };
    let marker = promote::neutral(plan.from.as_deref(), &plan.to);
    // 1: nobody holds the role; a countdown already under way is kept (written with the
    // marker, or after it).
    let r1 = if plan.resume {
        if let Some(r) = kept
            .filter(|kv| kv.mod_revision >= view.revision)
            .and_then(|kv| Record::parse(&String::from_utf8_lossy(&kv.value)))
            .filter(|r| r.to == plan.to)
        {
            record = r;
        }
        say(format!(
            "{key} = {marker} already (revision {}): resuming the promotion {} started",
            view.revision, record.by
        ))?;
        view.revision
    } else {
        let put = client.replace_and_put(
            key,
            plan.revision,
            &marker,
            0,
            &[(&record_key, &record.render())],
            until(),
        );
        match put {
            Ok(Some(r)) => r,
            Ok(None) => {
                return failed(format!(
                    "{key} changed meanwhile (a switchover, another promote?); nothing changed"
                ));
            }
            Err(e) => {
                return failed(format!(
                    "cannot write {key}: {e}; it may hold {marker} (every host a standby) or \
                     still {from}: run promote again"
                ));
            }
        }
    };
    if args.force {
        log::warn!(
            "promote --force: giving the role to {} without waiting for {} to fence itself: \
             the application may run on both sites until it does (up to {wait})",
            plan.to,
            from
        );
        record.state = "forced".into();
    } else {
        say(format!(
            "{key} = {marker} (revision {r1}): {from} stops where it still reaches etcd; \
             waiting up to {wait} for the rest of it to fence itself"
        ))?;
        // 2: the countdown, on etcd's clock, granted after the marker was written.
        if record.lease == 0 {
            let granted = client.grant(plan.wait, until()).and_then(|l| {
                record.lease = l;
                client.put_if_unchanged(key, r1, &record_key, &record.render(), until())
            });
            match granted {
                Ok(true) => {}
                Ok(false) => {
                    return failed(format!(
                        "{key} changed meanwhile: it no longer holds {marker}; not moved"
                    ));
                }
                Err(e) => {
                    return failed(format!(
                        "cannot start the countdown: {e}; {key} = {marker} (every host a \
                         standby): run promote again"
                    ));
                }
            }
        }
        match countdown(&client, &read, &plan, r1, record.lease, args.no_wait) {
            Wait::Safe(why) => say(why)?,
            Wait::Left(seconds) => {
                say(format!(
                    "not safe yet: {from} may run the primary units for {seconds} s more; \
                     {key} = {marker} (every host a standby) and the countdown goes on in \
                     etcd: run `failover-manager promote {}` again then",
                    plan.to
                ))?;
                return Ok(Status::NotYet);
            }
            Wait::Stopped(why) => {
                return failed(format!(
                    "{why}; {key} = {marker} (every host a standby) unless it changed: run \
                     promote again to finish"
                ));
            }
        }
        record.state = "done".into();
    }
    // 3: the new site holds the role.
    record.at = now_rfc3339();
    let r2 = match client.replace_and_put(
        key,
        r1,
        &plan.to,
        0,
        &[(&record_key, &record.render())],
        until(),
    ) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(format!(
                "{key} changed meanwhile: it no longer holds {marker}; not moved"
            ));
        }
        Err(e) => {
            return failed(format!(
                "cannot give the role to {}: {e}; {key} may still hold {marker} (every host \
                 a standby): run promote again",
                plan.to
            ));
        }
    };
    let to_hosts: Vec<String> = view
        .rows
        .iter()
        .filter(|r| r.site == plan.to)
        .map(|r| r.host.clone())
        .collect();
    say(format!(
        "{key} = {} (revision {r2}), recorded in {record_key}; waiting for {} to start: {}",
        plan.to,
        plan.to,
        to_hosts.join(", ")
    ))?;
    let started = crate::switchover::wait(
        args.timeout,
        || read().ok().map(|(v, _)| v),
        |v| crate::switchover::waiting_for(v, &plan.to, &to_hosts, r2, Role::Primary),
    );
    match started {
        Ok(()) => {
            say(format!("done: {} holds the role (revision {r2})", plan.to))?;
            Ok(Status::Converged)
        }
        Err(left) => failed(format!(
            "{key} = {}, but {} did not confirm its units running within {} (no \
             acknowledgement from: {}): see `failover-manager status`",
            plan.to,
            plan.to,
            humantime::format_duration(args.timeout),
            left.join(", ")
        )),
    }
}

/// How the wait for the old site ended.
enum Wait {
    /// Safe to move the key: why (words).
    Safe(String),
    /// `--no-wait`: seconds left.
    Left(i64),
    /// Interrupted, or the key moved meanwhile: why.
    Stopped(String),
}

/// Waits until the countdown's lease has expired or every host of the old site acknowledged
/// the marker as a standby; the time left on a terminal.
fn countdown(
    client: &crate::etcd::Client,
    read: &dyn Fn()
        -> Result<(crate::status::View, Option<crate::etcd::Kv>), crate::etcd::EtcdError>,
    plan: &crate::promote::Plan,
    marker: i64,
    lease: i64,
    no_wait: bool,
) -> Wait {
    let tty = std::io::stdout().is_terminal();
    let mut last_error = String::new();
    loop {
        let until = Instant::now() + Duration::from_secs(2);
        match (client.time_to_live(lease, until), read()) {
            (_, Ok((view, _))) if view.revision != marker => {
                return Wait::Stopped("the key changed meanwhile".into());
            }
            (_, Ok((view, _))) if crate::promote::all_stopped(&view, plan, marker) => {
                end_line(tty);
                return Wait::Safe(format!(
                    "every host of {} acknowledged it stopped",
                    plan.from.as_deref().unwrap_or("the old site")
                ));
            }
            // The lease is gone: etcd counted the whole wait. (0 is not gone: etcd rounds
            // the time left down to whole seconds.)
            (Ok(ttl), Ok(_)) if ttl < 0 => {
                end_line(tty);
                return Wait::Safe(format!(
                    "{} passed: the old site has fenced itself",
                    humantime::format_duration(plan.wait)
                ));
            }
            (Ok(ttl), Ok(_)) if no_wait => return Wait::Left(ttl),
            (Ok(ttl), Ok(_)) => {
                if tty {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "\rpromote: safe in {ttl} s (Ctrl-C: stop waiting)   ");
                    let _ = out.flush();
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                let e = e.to_string();
                if e != last_error {
                    log::warn!("promote: cannot read the countdown: {e}; trying again");
                    last_error = e;
                }
                if no_wait {
                    return Wait::Stopped(format!("cannot read the countdown: {last_error}"));
                }
            }
        }
        if !crate::interrupt::sleep(Duration::from_secs(1)) {
            end_line(tty);
            return Wait::Stopped("interrupted".into());
        }
    }
}

fn end_line(tty: bool) {
    if tty {
        let _ = print_out("");
    }
}

/// The wall clock in Unix seconds: for "how long ago" and records, never for a decision.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
