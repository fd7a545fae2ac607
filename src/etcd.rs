//! etcd's v3 API as every etcd 3.4 member serves it: JSON over HTTP/1.1 (the gRPC gateway; keys
//! and values base64, int64 as strings). A small blocking client for what a run and the watch
//! need: a linearizable range, a transaction that creates a key only if it is absent, lease
//! grant, keep-alive and revoke, and a watch stream. No gRPC, no async runtime, no code
//! generated at build time: a run makes one to four small requests.
//!
//! Every request is bounded by `timeout` (connect, send and answer together). Endpoints are tried
//! in turn, starting with the one that answered last, so a member cut off from the majority
//! (whose linearizable reads time out) costs one timeout, not a run.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// The most a single answer may hold: a key, a lease, a header. A larger one (a huge value) is
/// refused rather than read.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub endpoints: Vec<String>,
    pub timeout: Duration,
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
    /// etcd user and password (from a root-only file).
    pub credentials: Option<(String, String)>,
    /// Auth tokens from an earlier run, per endpoint (authenticating is a raft write and a
    /// bcrypt on the member: not once per run).
    pub tokens: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered (each one's reason, in the order tried).
    #[error("no etcd endpoint answered: {0}")]
    Unreachable(String),
    /// A member answered with an error that is the cluster's, not the member's.
    #[error("{endpoint}: {message}")]
    Refused { endpoint: String, message: String },
    /// An answer that is not what etcd sends.
    #[error("{endpoint}: unexpected answer: {what}")]
    Malformed { endpoint: String, what: String },
    /// The TLS files could not be used.
    #[error("etcd TLS: {0}")]
    Tls(String),
    /// The time the caller allowed ran out before an endpoint could be asked.
    #[error("no time left to ask etcd (tried: {0})")]
    OutOfTime(String),
}

/// A key as etcd keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// 0: no lease.
    pub lease: i64,
}

/// What a range saw: the key (or none) at the store's `revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub revision: i64,
    pub kv: Option<Kv>,
}

/// A create-if-absent transaction: whether it created the key, at which revision, and (when it
/// did not) the key that was there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub succeeded: bool,
    pub revision: i64,
    pub existing: Option<Kv>,
}

/// One message of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The watch is in place (etcd's first message).
    Created { revision: i64 },
    /// The key changed (put or delete, an expiry among them) at `revision`.
    Changed { revision: i64 },
    /// etcd ended the watch (compacted past its start, or canceled).
    Canceled { reason: String },
    /// Progress or anything else that says nothing about the key.
    Other,
}

// ---- the wire ---------------------------------------------------------------------------------

/// etcd's int64s arrive as strings ("123"); a missing one is 0 (proto3 leaves zeros out).
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        I(i64),
    }
    match N::deserialize(d)? {
        N::I(n) => Ok(n),
        N::S(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an int64"))),
    }
}

fn base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default, deserialize_with = "int64")]
    revision: i64,
}

#[derive(Deserialize)]
struct WireKv {
    #[serde(default, deserialize_with = "base64")]
    value: Vec<u8>,
    #[serde(default, deserialize_with = "int64")]
    create_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    mod_revision: i64,
    #[serde(default, deserialize_with = "int64")]
    lease: i64,
}

impl From<WireKv> for Kv {
    fn from(w: WireKv) -> Kv {
        Kv {
            value: w.value,
            create_revision: w.create_revision,
            mod_revision: w.mod_revision,
            lease: w.lease,
        }
    }
}

#[derive(Deserialize)]
struct WireNamedKv {
    #[serde(default, deserialize_with = "base64")]
    key: Vec<u8>,
    #[serde(flatten)]
    kv: WireKv,
}

#[derive(Deserialize)]
struct WireRangeNamed {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<WireNamedKv>,
}

#[derive(Deserialize)]
struct WireRange {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    kvs: Vec<WireKv>,
}

#[derive(Deserialize)]
struct WireTxn {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    succeeded: bool,
    #[serde(default)]
    responses: Vec<WireOp>,
}

#[derive(Deserialize)]
struct WireOp {
    #[serde(default)]
    response_range: Option<WireRange>,
}

#[derive(Deserialize)]
struct WireGrant {
    #[serde(rename = "ID", default, deserialize_with = "int64")]
    id: i64,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct WireKeepAlive {
    result: WireKeepAliveResult,
}

#[derive(Deserialize)]
struct WireKeepAliveResult {
    #[serde(rename = "TTL", default, deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Deserialize)]
struct WireAuth {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct WireWatch {
    result: WireWatchResult,
}

#[derive(Deserialize)]
struct WireWatchResult {
    #[serde(default)]
    header: Header,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    canceled: bool,
    #[serde(default)]
    cancel_reason: String,
    #[serde(default, deserialize_with = "int64")]
    compact_revision: i64,
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

/// A gRPC error as the gateway writes it (`{"error": …, "code": N, "message": …}`).
#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error: String,
}

/// The words of a member's error answer, at most 200 characters of them.
fn error_message(status: u16, body: &str) -> String {
    let m = serde_json::from_str::<WireError>(body)
        .ok()
        .map(|e| {
            if e.message.is_empty() {
                e.error
            } else {
                e.message
            }
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body.trim().to_owned());
    let m: String = m.chars().take(200).collect();
    format!("HTTP {status}: {m}")
}

/// The error object a streamed answer can carry instead of a result.
fn stream_error(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct E {
        error: WireError,
    }
    let e = serde_json::from_str::<E>(line).ok()?.error;
    Some(if e.message.is_empty() {
        e.error
    } else {
        e.message
    })
}

/// Errors that are this member's alone (it cannot reach the leader, is not part of a quorum,
/// is shutting down): another member may answer. Anything else (a refused password, a
/// permission) is the cluster's answer and is the same everywhere.
fn member_trouble(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "timed out",
        "timeout",
        "leader",
        "unavailable",
        "stopped",
        "too many requests",
        "not capable",
        "deadline",
    ]
    .iter()
    .any(|w| m.contains(w))
}

// ---- the client -------------------------------------------------------------------------------

/// Resolves an endpoint's host. ureq resolves on every request, a reused connection's too, and
/// with a timeout set (always, here) its default resolver does it on a new thread, so that a
/// slow lookup can be abandoned: a thread per request. An IP address needs no lookup and is
/// used as it is; a name goes to ureq's resolver.
#[derive(Debug, Default)]
struct Resolver(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for Resolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        match ip_literal(uri) {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The address of a URL whose host is an IP address (`[…]` for IPv6), with its port or the
/// scheme's.
fn ip_literal(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: std::net::IpAddr = host.parse().ok()?;
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(p), _) => p,
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

pub struct Client {
    agent: ureq::Agent,
    settings: Settings,
    /// The endpoint to try first: the one that answered last.
    first: Cell<usize>,
    /// Per endpoint, the token its member gave (simple tokens are each member's own).
    tokens: RefCell<Vec<Option<String>>>,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, EtcdError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .max_idle_connections_per_host(2)
            .user_agent(concat!("failover-manager/", env!("CARGO_PKG_VERSION")));
        if settings.endpoints.iter().any(|e| e.starts_with("https:")) {
            config = config.tls_config(tls(&settings)?);
        }
        let n = settings.endpoints.len();
        let tokens = (0..n)
            .map(|i| settings.tokens.get(i).cloned().flatten())
            .collect();
        let agent = ureq::Agent::with_parts(
            config.build(),
            ureq::unversioned::transport::DefaultConnector::default(),
            Resolver::default(),
        );
        Ok(Client {
            agent,
            settings,
            first: Cell::new(0),
            tokens: RefCell::new(tokens),
        })
    }

    /// Forgets every auth token (a watch canceled for a stale one asks again).
    pub fn forget_tokens(&self) {
        self.tokens.borrow_mut().iter_mut().for_each(|t| *t = None);
    }

    /// The auth tokens now held, per endpoint, to keep for the next run.
    pub fn tokens(&self) -> Vec<Option<String>> {
        self.tokens.borrow().clone()
    }

    /// The endpoint that answered last.
    pub fn endpoint(&self) -> &str {
        self.settings
            .endpoints
            .get(self.first.get())
            .map_or("", String::as_str)
    }

    /// The key, read with a quorum (linearizable: the member confirms with a majority that it
    /// is current before it answers).
    pub fn range(&self, key: &str, until: Instant) -> Result<Range, EtcdError> {
        let r: WireRange = self.post("/v3/kv/range", &json!({ "key": B64.encode(key) }), until)?;
        Ok(range(r))
    }

    /// `key` and every key below `key/`, in one linearizable read: (name, key) pairs.
    pub fn range_tree(
        &self,
        key: &str,
        until: Instant,
    ) -> Result<(i64, Vec<(String, Kv)>), EtcdError> {
        // [key, key + "0"): key itself, and every key that continues it with '/' ('/' + 1 = '0').
        let mut end = key.as_bytes().to_vec();
        end.push(b'0');
        let r: WireRangeNamed = self.post(
            "/v3/kv/range",
            &json!({ "key": B64.encode(key), "range_end": B64.encode(&end) }),
            until,
        )?;
        let kvs = r
            .kvs
            .into_iter()
            .filter_map(|w| {
                let name = String::from_utf8(w.key).ok()?;
                (name == key || name.starts_with(&format!("{key}/")))
                    .then(|| (name, Kv::from(w.kv)))
            })
            .collect();
        Ok((r.header.revision, kvs))
    }

    /// Seconds left on `lease` (-1: it has expired or never was).
    pub fn time_to_live(&self, lease: i64, until: Instant) -> Result<i64, EtcdError> {
        #[derive(Deserialize)]
        struct Ttl {
            #[serde(rename = "TTL", default, deserialize_with = "int64")]
            ttl: i64,
        }
        let t: Ttl = self.post(
            "/v3/lease/timetolive",
            &json!({ "ID": lease.to_string() }),
            until,
        )?;
        Ok(t.ttl)
    }

    /// Creates `key` = `value` on `lease` only if the key does not exist; otherwise reads it.
    pub fn create(
        &self,
        key: &str,
        value: &str,
        lease: i64,
        until: Instant,
    ) -> Result<Created, EtcdError> {
        let k = B64.encode(key);
        let body = json!({
            "compare": [{ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
            "success": [{ "request_put": { "key": k, "value": B64.encode(value), "lease": lease.to_string() } }],
            "failure": [{ "request_range": { "key": k } }],
        });
        let t: WireTxn = self.post("/v3/kv/txn", &body, until)?;
        let existing = t
            .responses
            .into_iter()
            .filter_map(|op| op.response_range)
            .next()
            .and_then(|r| range(r).kv);
        Ok(Created {
            succeeded: t.succeeded,
            revision: t.header.revision,
            existing,
        })
    }

    /// Puts `key` = `value` only while `watched` still has mod revision `revision` (0: while it
    /// does not exist). Whether it did.
    pub fn put_if_unchanged(
        &self,
        watched: &str,
        revision: i64,
        key: &str,
        value: &str,
        until: Instant,
    ) -> Result<bool, EtcdError> {
        let body = json!({
            "compare": [{ "key": B64.encode(watched), "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string() }],
            "success": [{ "request_put": { "key": B64.encode(key), "value": B64.encode(value) } }],
        });
        let t: WireTxn = self.post("/v3/kv/txn", &body, until)?;
        Ok(t.succeeded)
    }

    /// Puts `key` = `value` (on `lease`, 0: none) only while its mod revision is still
    /// `revision`; the revision of the put, or `None` when the key had changed.
    pub fn replace(
        &self,
        key: &str,
        revision: i64,
        value: &str,
        lease: i64,
        until: Instant,
    ) -> Result<Option<i64>, EtcdError> {
        self.replace_and_put(key, revision, value, lease, &[], until)
    }

    /// `replace`, and in the same transaction `also` (key, value) put without a lease.
    pub fn replace_and_put(
        &self,
        key: &str,
        revision: i64,
        value: &str,
        lease: i64,
        also: &[(&str, &str)],
        until: Instant,
    ) -> Result<Option<i64>, EtcdError> {
        let k = B64.encode(key);
        let mut puts = vec![
            json!({ "request_put": { "key": k, "value": B64.encode(value), "lease": lease.to_string() } }),
        ];
        puts.extend(also.iter().map(
            |(k, v)| json!({ "request_put": { "key": B64.encode(k), "value": B64.encode(v) } }),
        ));
        let body = json!({
            "compare": [{ "key": k, "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string() }],
            "success": puts,
        });
        let t: WireTxn = self.post("/v3/kv/txn", &body, until)?;
        Ok(t.succeeded.then_some(t.header.revision))
    }

    /// A new lease of `ttl`; its ID.
    pub fn grant(&self, ttl: Duration, until: Instant) -> Result<i64, EtcdError> {
        let g: WireGrant = self.post(
            "/v3/lease/grant",
            &json!({ "TTL": ttl.as_secs().to_string() }),
            until,
        )?;
        if g.id == 0 || !g.error.is_empty() {
            return Err(EtcdError::Refused {
                endpoint: self.endpoint().to_owned(),
                message: format!("no lease granted: {}", g.error),
            });
        }
        Ok(g.id)
    }

    /// Renews `lease`; the seconds it has left (0: it has expired, or never was).
    pub fn keep_alive(&self, lease: i64, until: Instant) -> Result<i64, EtcdError> {
        // A stream in gRPC: the gateway answers one line per request sent, and ends when the
        // request body does.
        let k: WireKeepAlive = self.post(
            "/v3/lease/keepalive",
            &json!({ "ID": lease.to_string() }),
            until,
        )?;
        Ok(k.result.ttl)
    }

    /// Ends `lease` now (its keys go with it).
    pub fn revoke(&self, lease: i64, until: Instant) -> Result<(), EtcdError> {
        let _: serde_json::Value = self.post(
            "/v3/lease/revoke",
            &json!({ "ID": lease.to_string() }),
            until,
        )?;
        Ok(())
    }

    /// Watches `key` from `start_revision` (0: from now). The stream's reads give up after
    /// `idle` without a byte, so a dead connection is noticed.
    pub fn watch(
        &self,
        key: &str,
        start_revision: i64,
        idle: Duration,
    ) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": B64.encode(key),
            "start_revision": start_revision.to_string(),
            "progress_notify": true,
        }});
        let (endpoint, resp) = self.send("/v3/watch", &body, None, Some(idle))?;
        let reader = resp.into_body().into_reader();
        Ok(Watch {
            endpoint,
            lines: BufReader::new(reader),
        })
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        until: Instant,
    ) -> Result<T, EtcdError> {
        // A stream (keep-alive) answers 200 and then an error object when the member has
        // trouble of its own ("leader changed"): that one tries the next endpoint too.
        let mut tried = Vec::new();
        for _ in 0..self.settings.endpoints.len() {
            match self.post_once(path, body, until) {
                Err(EtcdError::Refused { endpoint, message }) if member_trouble(&message) => {
                    tried.push(format!("{endpoint}: {message}"));
                    let n = self.settings.endpoints.len();
                    self.first.set((self.first.get() + 1) % n);
                }
                other => return other,
            }
        }
        Err(EtcdError::Unreachable(tried.join("; ")))
    }

    fn post_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        until: Instant,
    ) -> Result<T, EtcdError> {
        let (endpoint, resp) = self.send(path, body, Some(until), None)?;
        let mut text = String::new();
        let read = resp
            .into_body()
            .into_reader()
            .take(MAX_ANSWER + 1)
            .read_to_string(&mut text);
        let malformed = |what: String| EtcdError::Malformed {
            endpoint: endpoint.clone(),
            what,
        };
        read.map_err(|e| malformed(format!("cannot read the answer: {e}")))?;
        if text.len() as u64 > MAX_ANSWER {
            return Err(malformed(format!("answer over {MAX_ANSWER} bytes")));
        }
        // A streamed answer (keep-alive) is one JSON object per line: the first is ours.
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.trim_start().starts_with('{') {
            let shown: String = first.chars().take(120).collect();
            return Err(malformed(format!("not a JSON object: {shown:?}")));
        }
        if let Some(message) = stream_error(first) {
            return Err(EtcdError::Refused { endpoint, message });
        }
        serde_json::from_str(first).map_err(|e| {
            let shown: String = first.chars().take(120).collect();
            malformed(format!("{e} in {shown:?}"))
        })
    }

    /// Sends to each endpoint in turn until one answers 200; the endpoint and its answer.
    fn send(
        &self,
        path: &str,
        body: &serde_json::Value,
        until: Option<Instant>,
        idle: Option<Duration>,
    ) -> Result<(String, ureq::http::Response<ureq::Body>), EtcdError> {
        let n = self.settings.endpoints.len();
        let mut tried = Vec::new();
        for k in 0..n {
            let i = (self.first.get() + k) % n;
            let endpoint = &self.settings.endpoints[i];
            let budget = match until {
                Some(u) => {
                    let left = u.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(EtcdError::OutOfTime(tried.join("; ")));
                    }
                    Some(left.min(self.settings.timeout))
                }
                None => None,
            };
            match self.send_one(i, path, body, budget, idle) {
                Ok(resp) => {
                    self.first.set(i);
                    return Ok((endpoint.clone(), resp));
                }
                Err(Attempt::Next(why) | Attempt::StaleToken(why)) => {
                    tried.push(format!("{endpoint}: {why}"));
                }
                Err(Attempt::Final(e)) => return Err(e),
            }
        }
        Err(EtcdError::Unreachable(tried.join("; ")))
    }

    fn send_one(
        &self,
        i: usize,
        path: &str,
        body: &serde_json::Value,
        budget: Option<Duration>,
        idle: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Attempt> {
        let fresh = self.tokens.borrow()[i].is_none();
        match self.send_with_token(i, path, body, budget, idle) {
            // A kept token the member no longer knows (expired, or the member restarted):
            // once more with a new one.
            Err(Attempt::StaleToken(_)) if !fresh => {
                match self.send_with_token(i, path, body, budget, idle) {
                    Err(Attempt::StaleToken(message)) => Err(Attempt::Next(message)),
                    other => other,
                }
            }
            Err(Attempt::StaleToken(message)) => Err(Attempt::Next(message)),
            other => other,
        }
    }

    fn send_with_token(
        &self,
        i: usize,
        path: &str,
        body: &serde_json::Value,
        budget: Option<Duration>,
        idle: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Attempt> {
        let endpoint = &self.settings.endpoints[i];
        let token = self.token(i, budget)?;
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let mut req = self.agent.post(&url);
        if let Some(t) = &token {
            req = req.header("Authorization", t);
        }
        if idle.is_some() {
            // A watch on a member that has lost its leader ends at once instead of staying
            // silent (gRPC metadata `hasleader`, through the gateway).
            req = req.header("Grpc-Metadata-hasleader", "true");
        }
        let req = match (budget, idle) {
            (Some(b), _) => req.config().timeout_global(Some(b)).build(),
            // A stream: no end, but each read must come within `idle`.
            (None, idle) => req
                .config()
                .timeout_global(None)
                .timeout_connect(Some(self.settings.timeout))
                .timeout_recv_response(Some(self.settings.timeout))
                .timeout_per_read(idle)
                .build(),
        };
        let resp = req
            .send(body.to_string())
            .map_err(|e| Attempt::Next(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(resp);
        }
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(4096)
            .read_to_string(&mut text);
        let message = error_message(status, &text);
        if token.is_some() && message.to_ascii_lowercase().contains("invalid auth token") {
            // Expired or from a restarted member: a new one is asked for.
            self.tokens.borrow_mut()[i] = None;
            return Err(Attempt::StaleToken(message));
        }
        if status >= 500 && member_trouble(&message) {
            return Err(Attempt::Next(message));
        }
        Err(Attempt::Final(EtcdError::Refused {
            endpoint: endpoint.clone(),
            message,
        }))
    }

    /// This endpoint's auth token, asked for once (none without credentials).
    fn token(&self, i: usize, budget: Option<Duration>) -> Result<Option<String>, Attempt> {
        let Some((name, password)) = &self.settings.credentials else {
            return Ok(None);
        };
        if let Some(t) = &self.tokens.borrow()[i] {
            return Ok(Some(t.clone()));
        }
        let endpoint = &self.settings.endpoints[i];
        let url = format!("{}/v3/auth/authenticate", endpoint.trim_end_matches('/'));
        let resp = self
            .agent
            .post(&url)
            .config()
            .timeout_global(budget.or(Some(self.settings.timeout)))
            .build()
            .send(json!({ "name": name, "password": password }).to_string())
            .map_err(|e| Attempt::Next(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(MAX_ANSWER)
            .read_to_string(&mut text);
        if status != 200 {
            let message = error_message(status, &text);
            return Err(if status >= 500 && member_trouble(&message) {
                Attempt::Next(message)
            } else {
                Attempt::Final(EtcdError::Refused {
                    endpoint: endpoint.clone(),
                    message: format!("authentication as {name:?} refused: {message}"),
                })
            });
        }
        let token = serde_json::from_str::<WireAuth>(&text)
            .map(|a| a.token)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(Attempt::Final(EtcdError::Malformed {
                endpoint: endpoint.clone(),
                what: "authentication gave no token".into(),
            }));
        }
        log::debug!("etcd: authenticated as {name} at {endpoint}");
        self.tokens.borrow_mut()[i] = Some(token.clone());
        Ok(Some(token))
    }
}

enum Attempt {
    /// This endpoint could not answer: try the next.
    Next(String),
    /// The member refused the token: ask for a new one.
    StaleToken(String),
    /// The cluster's answer: the same everywhere.
    Final(EtcdError),
}

fn range(r: WireRange) -> Range {
    Range {
        revision: r.header.revision,
        kv: r.kvs.into_iter().next().map(Kv::from),
    }
}

/// Trust `ca_file` and present `cert_file`/`key_file` (each optional but the CA).
fn tls(s: &Settings) -> Result<ureq::tls::TlsConfig, EtcdError> {
    use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig, TlsProvider};
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| EtcdError::Tls(format!("{}: {e}", p.display())))
    };
    let items = |p: &std::path::Path| -> Result<Vec<PemItem<'static>>, EtcdError> {
        let bytes = read(p)?;
        ureq::tls::parse_pem(&bytes)
            .map(|i| i.map_err(|e| EtcdError::Tls(format!("{}: {e}", p.display()))))
            .collect()
    };
    let certs = |p: &std::path::Path| -> Result<Vec<_>, EtcdError> {
        let c: Vec<_> = items(p)?
            .into_iter()
            .filter_map(|i| match i {
                PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        if c.is_empty() {
            return Err(EtcdError::Tls(format!(
                "{}: no certificate in it",
                p.display()
            )));
        }
        Ok(c)
    };
    let Some(ca) = &s.ca_file else {
        return Err(EtcdError::Tls(
            "an https endpoint needs check.etcd.ca_file (the CA that signed the members' certificates)"
                .into(),
        ));
    };
    // ring, not aws-lc-rs: no cmake or NASM in the build. (rustls marks ring's provider
    // deprecated for lacking post-quantum key exchange, which etcd 3.4's Go TLS lacks too.)
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut b = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::clone(&provider))
        .root_certs(RootCerts::new_with_certs(&certs(ca)?));
    if let (Some(cert), Some(key)) = (&s.cert_file, &s.key_file) {
        let chain = certs(cert)?;
        let key = items(key)?
            .into_iter()
            .find_map(|i| match i {
                PemItem::PrivateKey(k) => Some(k),
                _ => None,
            })
            .ok_or_else(|| EtcdError::Tls(format!("{}: no private key in it", key.display())))?;
        // ureq would panic on a certificate rustls refuses (an X.509 v1 one, a key that does
        // not match): ask rustls first, and say why.
        usable_client_cert(&provider, &chain, &key)
            .map_err(|e| EtcdError::Tls(format!("{}: {e}", cert.display())))?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

/// Whether rustls takes this chain and key as a client certificate.
fn usable_client_cert(
    provider: &Arc<rustls::crypto::CryptoProvider>,
    chain: &[ureq::tls::Certificate<'static>],
    key: &ureq::tls::PrivateKey<'static>,
) -> Result<(), String> {
    use rustls::pki_types::{
        CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
    };
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    // As ureq will take it: by the PEM label's kind, not by what the bytes are (a PKCS#8 key
    // under an "RSA PRIVATE KEY" label must be refused here, not panic there). ureq does not
    // export the kind's type; its name is all there is to go by.
    let der = key.der().to_vec();
    let key = match format!("{:?}", key.kind()).as_str() {
        "Pkcs1" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        "Pkcs8" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        "Sec1" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        other => {
            return Err(format!(
                "a kind of private key this build does not know ({other})"
            ));
        }
    };
    rustls::ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(|_| ())
        .map_err(|e| format!("not a usable client certificate and key: {e}"))
}

/// An open watch stream.
pub struct Watch {
    endpoint: String,
    lines: BufReader<ureq::BodyReader<'static>>,
}

impl Watch {
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next message; `Err` when the stream ended or broke (a read idle for too long too).
    pub fn next_event(&mut self) -> Result<WatchEvent, EtcdError> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = (&mut self.lines)
                .take(MAX_ANSWER + 1)
                .read_line(&mut line)
                .map_err(|e| EtcdError::Unreachable(format!("{}: watch: {e}", self.endpoint)))?;
            if n == 0 {
                return Err(EtcdError::Unreachable(format!(
                    "{}: the watch stream ended",
                    self.endpoint
                )));
            }
            if !line.trim().is_empty() {
                break;
            }
        }
        parse_watch(&line).map_err(|what| EtcdError::Malformed {
            endpoint: self.endpoint.clone(),
            what,
        })
    }
}

/// One line of a watch stream.
pub fn parse_watch(line: &str) -> Result<WatchEvent, String> {
    if let Ok(e) = serde_json::from_str::<serde_json::Value>(line)
        && e.get("error").is_some()
    {
        let e: WireError = serde_json::from_value(e).map_err(|e| e.to_string())?;
        return Ok(WatchEvent::Canceled {
            reason: if e.message.is_empty() {
                e.error
            } else {
                e.message
            },
        });
    }
    let w: WireWatch = serde_json::from_str(line).map_err(|e| {
        let shown: String = line.chars().take(120).collect();
        format!("{e} in {shown:?}")
    })?;
    let r = w.result;
    Ok(if r.canceled {
        WatchEvent::Canceled {
            reason: if r.compact_revision > 0 {
                format!("compacted past revision {}", r.compact_revision)
            } else {
                r.cancel_reason
            },
        }
    } else if r.created {
        WatchEvent::Created {
            revision: r.header.revision,
        }
    } else if !r.events.is_empty() {
        WatchEvent::Changed {
            revision: r.header.revision,
        }
    } else {
        WatchEvent::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_endpoint_is_used_as_it_is_and_a_name_is_looked_up() {
        let addr = |u: &str| ip_literal(&u.parse().unwrap()).map(|a| a.to_string());
        assert_eq!(
            addr("http://127.0.0.1:2379/v3/kv/range").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(
            addr("https://10.0.0.1/v3/kv/range").as_deref(),
            Some("10.0.0.1:443")
        );
        assert_eq!(addr("http://10.0.0.1/").as_deref(), Some("10.0.0.1:80"));
        assert_eq!(addr("http://[::1]:2379/").as_deref(), Some("[::1]:2379"));
        assert_eq!(addr("http://etcd.example:2379/"), None);
        assert_eq!(addr("http://localhost:2379/"), None);

        // Through the resolver: an address without a thread or a lookup, whatever the timeout.
        use ureq::unversioned::resolver::Resolver as _;
        use ureq::unversioned::transport::NextTimeout;
        let config = ureq::config::Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::from_secs(1),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        };
        let got = Resolver::default()
            .resolve(
                &"http://127.0.0.1:2379/x".parse().unwrap(),
                &config,
                timeout,
            )
            .unwrap();
        assert_eq!(
            got.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ["127.0.0.1:2379"]
        );
    }

    #[test]
    fn a_range_answer_reads_int64_strings_base64_and_missing_zeros() {
        let text = r#"{"header":{"cluster_id":"1","revision":"42"},"kvs":[{"key":"a2V5","create_revision":"40","mod_revision":"41","version":"2","value":"ZGMx","lease":"7587"}],"count":"1"}"#;
        let r = range(serde_json::from_str(text).expect("etcd's own answer"));
        assert_eq!(
            r,
            Range {
                revision: 42,
                kv: Some(Kv {
                    value: b"dc1".to_vec(),
                    create_revision: 40,
                    mod_revision: 41,
                    lease: 7587
                })
            }
        );
        // No key: etcd leaves kvs and count out.
        let r = range(serde_json::from_str(r#"{"header":{"revision":"9"}}"#).expect("no key"));
        assert_eq!(
            r,
            Range {
                revision: 9,
                kv: None
            }
        );
        // No lease, empty value: both left out.
        let r = range(
            serde_json::from_str(r#"{"header":{"revision":"9"},"kvs":[{"key":"a2V5","create_revision":"3","mod_revision":"3"}]}"#)
                .expect("key without lease"),
        );
        assert_eq!(r.kv.map(|k| (k.lease, k.value)), Some((0, Vec::new())));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for bad in [
            r#"{"header":{"revision":"x"}}"#,
            r#"{"kvs":[{"value":"***"}]}"#,
            r#"{"kvs":"no"}"#,
        ] {
            assert!(serde_json::from_str::<WireRange>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keep_alive_txn_and_grant_answers() {
        let k: WireKeepAlive = serde_json::from_str(
            r#"{"result":{"header":{"revision":"5"},"ID":"7587","TTL":"30"}}"#,
        )
        .expect("renewed");
        assert_eq!(k.result.ttl, 30);
        // An expired lease: TTL left out (zero).
        let k: WireKeepAlive =
            serde_json::from_str(r#"{"result":{"header":{"revision":"5"},"ID":"7587"}}"#)
                .expect("expired");
        assert_eq!(k.result.ttl, 0);
        let t: WireTxn = serde_json::from_str(
            r#"{"header":{"revision":"12"},"responses":[{"response_range":{"header":{"revision":"12"},"kvs":[{"key":"aw==","create_revision":"10","mod_revision":"10","value":"ZGMy","lease":"1"}],"count":"1"}}]}"#,
        )
        .expect("a failed txn");
        assert!(!t.succeeded);
        let g: WireGrant =
            serde_json::from_str(r#"{"header":{},"ID":"7587","TTL":"30"}"#).expect("grant");
        assert_eq!(g.id, 7587);
    }

    #[test]
    fn watch_lines() {
        assert_eq!(
            parse_watch(r#"{"result":{"header":{"revision":"7"},"created":true}}"#),
            Ok(WatchEvent::Created { revision: 7 })
        );
        assert_eq!(
            parse_watch(
                r#"{"result":{"header":{"revision":"8"},"events":[{"type":"DELETE","kv":{"key":"aw==","mod_revision":"8"}}]}}"#
            ),
            Ok(WatchEvent::Changed { revision: 8 })
        );
        assert_eq!(
            parse_watch(
                r#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"5"}}"#
            ),
            Ok(WatchEvent::Canceled {
                reason: "compacted past revision 5".into()
            })
        );
        assert_eq!(
            parse_watch(r#"{"result":{"header":{"revision":"9"}}}"#),
            Ok(WatchEvent::Other)
        );
        assert!(parse_watch("garbage").is_err());
        assert!(matches!(
            parse_watch(r#"{"error":{"grpc_code":14,"message":"etcdserver: no leader"}}"#),
            Ok(WatchEvent::Canceled { .. }) | Err(_)
        ));
    }

    #[test]
    fn an_error_inside_a_streamed_answer_is_an_error() {
        assert_eq!(
            stream_error(
                r#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: leader changed","http_status":"Service Unavailable"}}"#
            ),
            Some("etcdserver: leader changed".into())
        );
        assert_eq!(stream_error(r#"{"result":{"TTL":"30"}}"#), None);
    }

    #[test]
    fn member_errors_try_the_next_endpoint_cluster_errors_do_not() {
        assert!(member_trouble("etcdserver: request timed out"));
        assert!(member_trouble("etcdserver: leader changed"));
        assert!(member_trouble("etcdserver: no leader"));
        assert!(!member_trouble(
            "etcdserver: authentication failed, invalid user ID or password"
        ));
        assert!(!member_trouble("etcdserver: permission denied"));
        assert_eq!(
            error_message(
                503,
                r#"{"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"}"#
            ),
            "HTTP 503: etcdserver: no leader"
        );
        assert_eq!(
            error_message(404, "404 page not found\n"),
            "HTTP 404: 404 page not found"
        );
    }

    #[test]
    fn an_endpoint_that_accepts_and_never_answers_costs_one_timeout() {
        // A listener that accepts and says nothing, on loopback.
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            return;
        };
        let Ok(addr) = l.local_addr() else { return };
        let held = std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(2));
            drop(conns);
        });
        let c = Client::new(Settings {
            endpoints: vec![format!("http://{addr}"), format!("http://{addr}")],
            timeout: Duration::from_millis(300),
            ca_file: None,
            cert_file: None,
            key_file: None,
            credentials: None,
            tokens: Vec::new(),
        })
        .expect("plain http needs no TLS");
        let start = Instant::now();
        let e = c
            .range("/k", Instant::now() + Duration::from_secs(10))
            .expect_err("nobody answers");
        let took = start.elapsed();
        assert!(matches!(e, EtcdError::Unreachable(_)), "{e}");
        assert!(
            took < Duration::from_millis(1500),
            "two endpoints, 300 ms each: {took:?}"
        );
        let _ = held.join();
    }
}
