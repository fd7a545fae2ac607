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
    use crate::switchover::{self, BackEnd, Said, Silent};
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
    let view = match client.range_tree(key, std::time::Instant::now() + budget) {
        Ok((_, kvs)) => crate::status::assess(key, &kvs, None),
        Err(e) => {
            log::error!("switchover: {}", report::cannot_read(key, &e.to_string()));
            return Ok(Status::Failed);
        }
    };
    let plan = match switchover::plan(&view, &args.site) {
        Ok(Some(p)) => p,
        Ok(None) => {
            print_out(&report::nothing_to_do(&args.site))?;
            return Ok(Status::Converged);
        }
        Err(r) => {
            log::error!(
                "switchover: {}",
                report::switchover_refusal(key, &r, view.revision)
            );
            return Ok(Status::Failed);
        }
    };
    let words = |said: &Said| format!("switchover: {}", report::switchover_said(key, &plan, said));
    let say = |said: Said| print_out(&words(&said));
    let failed = |said: Said| {
        log::error!("{}", words(&said));
        Ok(Status::Failed)
    };
    if args.dry_run {
        say(Said::WouldMove)?;
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
    let silent = |hosts: Vec<String>| Silent {
        hosts,
        timeout: args.timeout,
    };
    // 1: nobody holds the role.
    let neutral = switchover::neutral(&plan.from, &plan.to);
    let r1 = match client.replace(key, plan.revision, &neutral, 0, until()) {
        Ok(Some(r)) => r,
        Ok(None) => return failed(Said::ChangedMeanwhile),
        Err(e) => return failed(Said::CannotWrite(e.to_string())),
    };
    say(Said::Neutral { revision: r1 })?;
    // 2: the old site stopped.
    let stopped = switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.from, &plan.from_hosts, r1, Role::Standby)
    });
    if let Err(left) = stopped {
        return failed(Said::NotStopped {
            silent: silent(left),
            back: give(r1, &plan.from).ok().flatten(),
        });
    }
    // 3: the new site holds the role.
    let r2 = match give(r1, &plan.to) {
        Ok(Some(r)) => r,
        Ok(None) => return failed(Said::MovedMeanwhile),
        Err(e) => return failed(Said::NotGiven(e)),
    };
    say(Said::Given { revision: r2 })?;
    // 4: the new site runs it.
    let left = match switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.to, &plan.to_hosts, r2, Role::Primary)
    }) {
        Ok(()) => {
            say(Said::Done { revision: r2 })?;
            return Ok(Status::Converged);
        }
        Err(left) if left.len() < plan.to_hosts.len() => {
            return failed(Said::PartlyRunning(silent(left)));
        }
        Err(left) => left,
    };
    // It runs nowhere: back to FROM, without overlap (TO stops first).
    say(Said::GoingBack(silent(left.clone())))?;
    let back = |end: BackEnd| {
        failed(Said::Back {
            silent: silent(left.clone()),
            end,
        })
    };
    let r3 = match client.replace(
        key,
        r2,
        &switchover::neutral(&plan.to, &plan.from),
        0,
        until(),
    ) {
        Ok(Some(r)) => r,
        Ok(None) => return back(BackEnd::Changed),
        Err(e) => return back(BackEnd::NotNeutral(e.to_string())),
    };
    if let Err(hosts) = switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.to, &plan.to_hosts, r3, Role::Standby)
    }) {
        return back(BackEnd::Stuck {
            revision: r3,
            hosts,
        });
    }
    let r4 = match give(r3, &plan.from) {
        Ok(Some(r)) => r,
        Ok(None) => return back(BackEnd::Changed),
        Err(e) => return back(BackEnd::NotGiven(e)),
    };
    let home = switchover::wait(args.timeout, read, |v| {
        switchover::waiting_for(v, &plan.from, &plan.from_hosts, r4, Role::Primary)
    });
    back(BackEnd::Home {
        revision: r4,
        silent: home.err().unwrap_or_default(),
    })
}

/// `promote SITE` (see `promote`).
pub fn promote(config: &Config, args: &crate::cli::PromoteArgs) -> Result<Status, Error> {
    use crate::promote::{self, Record, Said};
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
        Err(e) => {
            log::error!("promote: {}", report::cannot_read(key, &e.to_string()));
            return Ok(Status::Failed);
        }
    };
    let plan = match promote::plan(
        &view,
        &args.site,
        crate::ack::fence_seconds(config),
        args.force,
    ) {
        Ok(Some(p)) => p,
        Ok(None) => {
            print_out(&report::nothing_to_do(&args.site))?;
            return Ok(Status::Converged);
        }
        Err(r) => {
            log::error!("promote: {}", report::promote_refusal(key, &r));
            return Ok(Status::Failed);
        }
    };
    let words = |said: &Said| format!("promote: {}", report::promote_said(key, &plan, said));
    let say = |said: Said| print_out(&words(&said));
    let failed = |said: Said| {
        log::error!("{}", words(&said));
        Ok(Status::Failed)
    };
    if args.dry_run {
        say(Said::WouldPromote)?;
        return Ok(Status::Converged);
    }
    let host = crate::ack::host_name();
    let mut record = Record {
        to: plan.to.clone(),
        from: plan.from.clone().unwrap_or_default(),
        by: promote::by(&crate::maintenance::who(), &host),
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
        say(Said::Resuming {
            revision: view.revision,
            by: record.by.clone(),
        })?;
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
            Ok(None) => return failed(Said::ChangedMeanwhile),
            Err(e) => return failed(Said::CannotWrite(e.to_string())),
        }
    };
    if args.force {
        log::warn!("{}", words(&Said::Forced));
        record.state = "forced".into();
    } else {
        say(Said::Neutral { revision: r1 })?;
        // 2: the countdown, on etcd's clock, granted after the marker was written.
        if record.lease == 0 {
            let granted = client.grant(plan.wait, until()).and_then(|l| {
                record.lease = l;
                client.put_if_unchanged(key, r1, &record_key, &record.render(), until())
            });
            match granted {
                Ok(true) => {}
                Ok(false) => return failed(Said::MovedMeanwhile),
                Err(e) => return failed(Said::NoCountdown(e.to_string())),
            }
        }
        match countdown(&client, &read, &plan, r1, record.lease, args.no_wait) {
            promote::Waited::Safe(safe) => say(Said::Safe(safe))?,
            promote::Waited::Left(seconds) => {
                say(Said::NotYet { seconds })?;
                return Ok(Status::NotYet);
            }
            promote::Waited::Stopped(stop) => return failed(Said::Stopped(stop)),
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
        Ok(None) => return failed(Said::MovedMeanwhile),
        Err(e) => return failed(Said::NotGiven(e.to_string())),
    };
    let to_hosts: Vec<String> = view
        .rows
        .iter()
        .filter(|r| r.site == plan.to)
        .map(|r| r.host.clone())
        .collect();
    say(Said::Given {
        revision: r2,
        hosts: to_hosts.clone(),
    })?;
    let started = crate::switchover::wait(
        args.timeout,
        || read().ok().map(|(v, _)| v),
        |v| crate::switchover::waiting_for(v, &plan.to, &to_hosts, r2, Role::Primary),
    );
    match started {
        Ok(()) => {
            say(Said::Done { revision: r2 })?;
            Ok(Status::Converged)
        }
        Err(hosts) => failed(Said::NotRunning {
            hosts,
            timeout: args.timeout,
        }),
    }
}

/// Waits until the countdown's lease has expired or every host of the old site acknowledged
/// the marker as a standby (the time left on a terminal); else why it stopped, or (`--no-wait`)
/// the seconds left.
fn countdown(
    client: &crate::etcd::Client,
    read: &dyn Fn()
        -> Result<(crate::status::View, Option<crate::etcd::Kv>), crate::etcd::EtcdError>,
    plan: &crate::promote::Plan,
    marker: i64,
    lease: i64,
    no_wait: bool,
) -> crate::promote::Waited {
    use crate::promote::{Safe, Stop, Waited};
    let tty = std::io::stdout().is_terminal();
    let mut last_error = String::new();
    loop {
        let until = Instant::now() + Duration::from_secs(2);
        match (client.time_to_live(lease, until), read()) {
            (_, Ok((view, _))) if view.revision != marker => {
                return Waited::Stopped(Stop::KeyChanged);
            }
            (_, Ok((view, _))) if crate::promote::all_stopped(&view, plan, marker) => {
                end_line(tty);
                return Waited::Safe(Safe::Stopped);
            }
            // The lease is gone: etcd counted the whole wait. (0 is not gone: etcd rounds
            // the time left down to whole seconds.)
            (Ok(ttl), Ok(_)) if ttl < 0 => {
                end_line(tty);
                return Waited::Safe(Safe::Passed);
            }
            (Ok(ttl), Ok(_)) if no_wait => return Waited::Left(ttl),
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
                    return Waited::Stopped(Stop::Unreadable(last_error));
                }
            }
        }
        if !crate::interrupt::sleep(Duration::from_secs(1)) {
            end_line(tty);
            return Waited::Stopped(Stop::Interrupted);
        }
    }
}

fn end_line(tty: bool) {
    if tty {
        let _ = print_out("");
    }
}

fn unix_now() -> u64 {
    crate::clock::unix(std::time::SystemTime::now())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
