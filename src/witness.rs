//! `check.etcd`: asks the witness which site is primary, and in automatic mode renews or takes
//! the leased key (the decisions are `election`'s; this module makes the requests). No process
//! is spawned on a steady-state run: a standby makes one request, the holder three (read,
//! renew, read again).

use std::time::{Duration, Instant};

use crate::clock::{self, Stamp};
use crate::config::EtcdConfig;
use crate::domain::Role;
use crate::election::{self, Me, Step, Verdict, Why};
use crate::etcd::{Client, EtcdError, Settings};

/// What the witness said, and how the run got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verdict: Verdict,
    /// The endpoint that answered last.
    pub endpoint: String,
    /// The key's name.
    pub key: String,
    /// The key's mod revision as last read (0: no key), which the acknowledgement names.
    pub key_revision: i64,
    /// Seconds left on the lease after this run's renewal or take.
    pub ttl_left: Option<i64>,
    /// When the request that decided the role was sent: the read in manual mode, the renewal
    /// or the lease grant in automatic mode. Fencing counts from here.
    pub sent: Stamp,
}

/// The credentials file: `user:password` on its first line.
pub fn read_credentials(path: &std::path::Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    match line.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok((user.to_owned(), password.to_owned())),
        _ => Err(format!(
            "{}: the first line must be user:password",
            path.display()
        )),
    }
}

fn settings(cfg: &EtcdConfig) -> Result<Settings, String> {
    let credentials = cfg
        .credentials_file
        .as_ref()
        .map(|p| read_credentials(&p.0))
        .transpose()?;
    Ok(Settings {
        endpoints: cfg.endpoints.clone(),
        timeout: cfg.request_timeout,
        ca_file: cfg.ca_file.as_ref().map(|p| p.0.clone()),
        cert_file: cfg.cert_file.as_ref().map(|p| p.0.clone()),
        key_file: cfg.key_file.as_ref().map(|p| p.0.clone()),
        credentials,
    })
}

pub fn client(cfg: &EtcdConfig) -> Result<Client, String> {
    Client::new(settings(cfg)?).map_err(|e| e.to_string())
}

/// One run's question. `gate` runs `before_acquire` (Err: why not) and is asked only when
/// this host is about to take the role. Never fails: anything wrong is `Role::Unknown` with
/// the reason.
pub fn ask(
    cfg: &EtcdConfig,
    me: &Me,
    budget: Duration,
    gate: &dyn Fn() -> Result<(), String>,
) -> Answer {
    let until = Instant::now() + budget;
    let mut answer = Answer {
        verdict: Verdict::unknown(Why::Etcd(String::new())),
        endpoint: String::new(),
        key: cfg.key.clone(),
        key_revision: 0,
        ttl_left: None,
        sent: clock::now(),
    };
    let client = match client(cfg) {
        Ok(c) => c,
        Err(e) => {
            answer.verdict = Verdict::unknown(Why::Etcd(e));
            return answer;
        }
    };
    let result = exchange(&client, cfg, me, until, gate, &mut answer);
    answer.endpoint = client.endpoint().to_owned();
    match result {
        Ok(v) => answer.verdict = v,
        Err(e) => answer.verdict = Verdict::unknown(Why::Etcd(e.to_string())),
    }
    answer
}

fn exchange(
    client: &Client,
    cfg: &EtcdConfig,
    me: &Me,
    until: Instant,
    gate: &dyn Fn() -> Result<(), String>,
    answer: &mut Answer,
) -> Result<Verdict, EtcdError> {
    answer.sent = clock::now();
    let first = client.range(&cfg.key, until)?;
    answer.key_revision = first.kv.as_ref().map_or(0, |k| k.mod_revision);
    let mut step = election::after_read(me, first.kv.as_ref());
    let mut before = first.kv;
    // At most: take, then renew what another host of this site took meanwhile.
    for _ in 0..2 {
        match step {
            Step::Done(v) => return Ok(v),
            Step::Renew { lease } => {
                let Some(kv) = before.as_ref() else {
                    return Ok(Verdict::unknown(Why::Moved));
                };
                let sent = clock::now();
                let ttl = client.keep_alive(lease, until)?;
                let again = client.range(&cfg.key, until)?;
                answer.key_revision = again.kv.as_ref().map_or(0, |k| k.mod_revision);
                let v = election::after_renewal(me, kv, ttl, again.kv.as_ref());
                if v.role == Role::Primary {
                    answer.sent = sent;
                    answer.ttl_left = Some(ttl);
                }
                if let Why::LeaseTooShort { .. } = v.why {
                    // Nobody of this site acts on it, so nobody may keep it alive: let it go,
                    // and the next run takes the key again on a lease of its own TTL.
                    let _ = client.revoke(lease, until);
                }
                return Ok(v);
            }
            Step::Take => {
                if let Err(why) = gate() {
                    return Ok(Verdict::standby(Why::GateRefused(why)));
                }
                let ttl = cfg.lease_ttl.unwrap_or_default();
                let sent = clock::now();
                let lease = client.grant(ttl, until)?;
                // On an error it may or may not have gone through: the lease ends either way
                // unless a later run finds the key on it and renews it.
                let created = client.create(&cfg.key, me.site, lease, until)?;
                answer.key_revision = match &created.existing {
                    Some(kv) => kv.mod_revision,
                    None => created.revision,
                };
                step = election::after_take(me, lease, &created);
                if let Step::Done(v) = &step
                    && v.role == Role::Primary
                {
                    answer.sent = sent;
                    answer.ttl_left = i64::try_from(ttl.as_secs()).ok();
                } else {
                    // Lost the race: give the unused lease back (it would expire anyway).
                    let _ = client.revoke(lease, until);
                }
                before = created.existing;
            }
        }
    }
    Ok(Verdict::unknown(Why::Moved))
}

/// Writes the acknowledgement unless it was the last one written from here.
pub fn acknowledge(
    cfg: &EtcdConfig,
    a: &crate::ack::Ack,
    budget: Duration,
) -> Result<bool, String> {
    let path = std::path::Path::new(crate::ack::PATH);
    if crate::ack::written(path, a) {
        return Ok(false);
    }
    let until = Instant::now() + budget;
    let put = client(cfg)?
        .put_if_unchanged(&cfg.key, a.revision, &a.key, &a.value, until)
        .map_err(|e| e.to_string())?;
    if put {
        crate::ack::remember(path, a).map_err(|e| e.to_string())?;
    }
    Ok(put)
}
