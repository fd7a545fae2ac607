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

/// Where the auth tokens of one run are kept for the next: root's alone, in /run.
pub const TOKENS: &str = "/run/failover-manager/etcd-tokens";

/// Who the kept tokens belong to: the user and a digest of the password, so that new
/// credentials are never answered with an old token.
pub fn owner(user: &str, password: &str) -> String {
    let digest = password.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{user}/{digest:016x}")
}

/// The kept tokens of `user` (see `owner`), per endpoint: lines of `user endpoint token`.
pub fn parse_tokens(text: &str, user: &str, endpoints: &[String]) -> Vec<Option<String>> {
    endpoints
        .iter()
        .map(|e| {
            text.lines().find_map(|l| {
                let mut f = l.split(' ');
                match (f.next(), f.next(), f.next(), f.next()) {
                    (Some(u), Some(ep), Some(t), None) if u == user && ep == e && !t.is_empty() => {
                        Some(t.to_owned())
                    }
                    _ => None,
                }
            })
        })
        .collect()
}

pub fn render_tokens(user: &str, endpoints: &[String], tokens: &[Option<String>]) -> String {
    endpoints
        .iter()
        .zip(tokens)
        .filter_map(|(e, t)| t.as_ref().map(|t| format!("{user} {e} {t}\n")))
        .collect()
}

fn settings(cfg: &EtcdConfig) -> Result<Settings, String> {
    let credentials = cfg
        .credentials_file
        .as_ref()
        .map(|p| read_credentials(&p.0))
        .transpose()?;
    let tokens = match &credentials {
        Some((user, password)) => {
            let user = &owner(user, password);
            let kept = crate::secure_fs::read_small(
                "etcd tokens",
                std::path::Path::new(TOKENS),
                64 * 1024,
            )
            .unwrap_or_else(|e| {
                log::debug!("etcd tokens: {e}");
                None
            })
            .unwrap_or_default();
            parse_tokens(&String::from_utf8_lossy(&kept), user, &cfg.endpoints)
        }
        None => Vec::new(),
    };
    Ok(Settings {
        endpoints: cfg.endpoints.clone(),
        timeout: cfg.request_timeout,
        ca_file: cfg.ca_file.as_ref().map(|p| p.0.clone()),
        cert_file: cfg.cert_file.as_ref().map(|p| p.0.clone()),
        key_file: cfg.key_file.as_ref().map(|p| p.0.clone()),
        credentials,
        tokens,
    })
}

pub fn client(cfg: &EtcdConfig) -> Result<Client, String> {
    Client::new(settings(cfg)?).map_err(|e| e.to_string())
}

/// One run's question, over `client` (the run's one client, or why it could not be made).
/// `gate` runs `before_acquire` (Err: why not) and is asked only when this host is about to
/// take the role. Never fails: anything wrong is `Role::Unknown` with the reason.
pub fn ask(
    cfg: &EtcdConfig,
    client: Result<&Client, String>,
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
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            answer.verdict = Verdict::unknown(Why::Etcd(e));
            return answer;
        }
    };
    let kept = client.tokens();
    let result = exchange(client, cfg, me, until, gate, &mut answer);
    answer.endpoint = client.endpoint().to_owned();
    keep_tokens(cfg, &kept, &client.tokens());
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
    client: &Client,
    a: &crate::ack::Ack,
    budget: Duration,
) -> Result<bool, String> {
    let path = std::path::Path::new(crate::ack::PATH);
    if !crate::ack::due_at(path, a) {
        return Ok(false);
    }
    let until = Instant::now() + budget;
    let put = client
        .put_if_unchanged(&cfg.key, a.revision, &a.key, &a.value, until)
        .map_err(|e| e.to_string())?;
    if put {
        crate::ack::remember(path, a).map_err(|e| e.to_string())?;
    }
    Ok(put)
}

/// Keeps the run's auth tokens for the next run, when they changed.
fn keep_tokens(cfg: &EtcdConfig, before: &[Option<String>], now: &[Option<String>]) {
    if before == now {
        return;
    }
    let Some(Ok((user, password))) = cfg
        .credentials_file
        .as_ref()
        .map(|p| read_credentials(&p.0))
    else {
        return;
    };
    let path = std::path::Path::new(TOKENS);
    let text = render_tokens(&owner(&user, &password), &cfg.endpoints, now);
    let kept = path
        .parent()
        .map_or(Ok(()), |d| {
            crate::secure_fs::ensure_dir("runtime directory", d)
        })
        .and_then(|()| crate::secure_fs::write_atomic("etcd tokens", path, text.as_bytes(), 0o600));
    if let Err(e) = kept {
        log::debug!("cannot keep the etcd tokens: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_per_user_and_endpoint() {
        let eps = vec!["http://a:1".to_owned(), "http://b:1".to_owned()];
        let text = render_tokens("fm", &eps, &[Some("t1".into()), None]);
        assert_eq!(text, "fm http://a:1 t1\n");
        assert_eq!(parse_tokens(&text, "fm", &eps), [Some("t1".into()), None]);
        assert_eq!(parse_tokens(&text, "other", &eps), [None, None]);
        assert_eq!(
            parse_tokens("garbage\nfm http://b:1 x y\n", "fm", &eps),
            [None, None]
        );
        // An endpoint no longer listed is dropped; a new one has none yet.
        let moved = vec!["http://c:1".to_owned(), "http://a:1".to_owned()];
        assert_eq!(parse_tokens(&text, "fm", &moved), [None, Some("t1".into())]);
    }
}
