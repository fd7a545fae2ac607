//! `check.etcd`: the binary speaks to a real three-member etcd 3.4 cluster (site A, site B and
//! a witness W, as in etcd.rs). Manual mode reads the key; automatic mode holds it on a lease,
//! and the DR site takes over on its own when the primary site is cut off, with the primary
//! fenced first by the dead man's switch even when no run of its own comes.

use std::time::{Duration, Instant};

use crate::etcd::{A, B, Cluster, KEY, NAMES, Ran, Setup, W, app_times, eventually, run};
use crate::sandbox::Sandbox;
use crate::unit::Unit;
const WATCH: &str = "failover-manager-watch.service";

/// failover-manager on member `i` for `site`, the shipped timer every second, and app.service
/// stopping within a second. `etcd_extra` goes into `check.etcd`, `check_extra` into `check`.
fn install(c: &Cluster, i: usize, site: &str, etcd_extra: &str, check_extra: &str) {
    crate::etcd::install_fm(
        c,
        i,
        &Setup {
            site,
            timer: true,
            app: "TimeoutStopSec=1s\n",
            etcd: etcd_extra,
            check: check_extra,
            verify_timeout: "1s",
        },
    );
}

fn json(r: &Ran) -> serde_json::Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}\n{}", r.stdout, r.stderr))
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn manual_mode_reads_the_key_through_any_member_and_bad_values_are_unknown() {
    let Some(c) = Cluster::boot() else { return };
    install(&c, A, "dc1", "", "");
    let a = c.member(A);

    // No key: standby, nothing to do.
    let r = run(a, &["reconcile", "--output", "json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(v["role"], "standby");
    assert_eq!(v["check"]["etcd"]["reason_code"], "no_key");
    assert_eq!(v["check"]["exit_code"], serde_json::Value::Null);

    c.put(W, KEY, "dc1");
    let r = run(a, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("started app.service"), "{}", r.stdout);
    assert_eq!(a.state("app.service"), "active");
    // The fencing token: the revision that gave dc1 the role.
    let v = json(&run(a, &["diff", "--output", "json"]));
    let epoch = v["check"]["etcd"]["epoch"]
        .as_i64()
        .expect("an epoch while primary");
    assert_eq!(a.read("/run/failover-manager/epoch"), format!("{epoch}\n"));
    // The run acknowledged what it verified, for a switchover to wait on; a steady-state run
    // writes nothing more.
    let ack = format!("{KEY}/ack/dc1/a");
    // REVISION ROLE AT FENCE: no fence_after here, so `-`.
    let fields: Vec<String> = c.get(W, &ack).split(' ').map(str::to_owned).collect();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(fields[..2], [epoch.to_string(), "primary".to_owned()]);
    assert_eq!(fields[3], "-");
    let written = c.etcdctl_ok(W, &["get", "-w", "fields", &ack]);
    assert_eq!(run(a, &[]).status, 0);
    assert_eq!(
        c.etcdctl_ok(W, &["get", "-w", "fields", &ack]),
        written,
        "rewritten"
    );

    // Another site: standby, the app stops; the token goes with the role.
    c.put(W, KEY, "dc2");
    let r = run(a, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("stopped app.service"), "{}", r.stdout);
    assert!(!a.path("/run/failover-manager/epoch").exists());
    assert!(c.get(W, &ack).contains(" standby "), "{}", c.get(W, &ack));

    // A value that names no site: unknown, exit 3, one line of reason, nothing changed.
    c.put(W, KEY, "dc1");
    assert_eq!(run(a, &[]).status, 0);
    for bad in ["dc 1", "\"dc1\"", ""] {
        c.put(W, KEY, bad);
        let r = run(a, &[]);
        assert_eq!(r.status, 3, "{bad:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("which names no site"),
            "{bad:?}: {}",
            r.stderr
        );
        assert_eq!(a.state("app.service"), "active", "{bad:?}: nothing changed");
    }
    // A key far larger than any site name: refused unread, unknown.
    let huge = "x".repeat(100_000);
    c.put(W, KEY, &huge);
    let r = run(a, &[]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(r.stderr.contains("answer over 65536 bytes"), "{}", r.stderr);

    // The watch, with no timer: every change starts a run.
    c.put(W, KEY, "dc1");
    assert_eq!(run(a, &[]).status, 0);
    a.systemctl(&["start", WATCH]);
    for (value, state) in [("dc2", "inactive"), ("dc1", "active")] {
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        c.put(W, KEY, value);
        assert!(
            eventually(Duration::from_secs(10), || a.state("app.service") == state),
            "the watch did not start a run after {value}"
        );
        eprintln!(
            "measured: put {value} on W -> app.service {state} on A after {:?}",
            t.elapsed()
        );
    }
    let t = Instant::now();
    a.systemctl(&["stop", WATCH]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the watch stops at once"
    );

    // A's own member cut off from the majority: its linearizable read times out and the run
    // reads through the witness instead, which A still reaches.
    c.cut(A, B);
    let t = Instant::now();
    let r = run(a, &["diff", "--output", "json"]);
    let v = json(&r);
    assert_eq!(v["role"], "primary", "{}", r.stderr);
    eprintln!(
        "measured: A-B cut, read through {} in {:?}",
        v["check"]["etcd"]["endpoint"],
        t.elapsed()
    );
    c.restore(A, B);

    // Cut off from both: every endpoint fails within the request timeouts; unknown.
    c.isolate(A);
    let t = Instant::now();
    let r = run(a, &[]);
    let took = t.elapsed();
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no etcd endpoint answered"),
        "{}",
        r.stderr
    );
    assert!(
        took < Duration::from_secs(4),
        "bounded by check.timeout: {took:?}"
    );
    assert_eq!(a.state("app.service"), "active", "unknown changes nothing");
    let r = run(a, &["validate"]);
    assert_eq!(r.status, 1, "a warning: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot read the etcd key"),
        "{}",
        r.stderr
    );
    c.rejoin(A);
    c.wait_healthy(A, Duration::from_secs(30));
    let r = run(a, &["validate"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn automatic_mode_takes_over_when_the_primary_site_is_cut_off_and_never_runs_twice() {
    let Some(c) = Cluster::boot() else { return };
    // lease 6 s; fence_after 3 s + stop 1 s + clock 0.12 s < 6 s.
    let lease = "    lease_ttl: 6s\n";
    let fence = "  fence_after: 3s\n";
    install(&c, A, "dc1", lease, fence);
    install(&c, B, "dc2", lease, fence);
    let (a, b) = (c.member(A), c.member(B));
    for sb in [a, b] {
        let r = run(sb, &["validate", "--config-only"]);
        assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    }

    // A runs first and takes the free key; B then finds it held.
    let r = run(a, &[]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("started app.service"), "{}", r.stdout);
    let v = json(&run(a, &["diff", "--output", "json"]));
    assert_eq!(v["role"], "primary");
    let lease_id = v["check"]["etcd"]["lease"]
        .as_i64()
        .expect("held on a lease");
    assert!(lease_id != 0);
    let r = run(b, &["reconcile", "--output", "json"]);
    assert_eq!(
        json(&r)["check"]["etcd"]["reason_code"],
        "held_by_other_site"
    );
    assert_eq!(c.get(W, KEY), "dc1");
    let switches = a.exec(&[
        "systemctl",
        "list-timers",
        "--all",
        "--no-legend",
        "failover-manager-deadline-*",
    ]);
    assert!(
        String::from_utf8_lossy(&switches.stdout).contains("failover-manager-deadline-"),
        "the run armed the dead man's switch"
    );

    // validate holds each primary unit's stop timeout against its verify_timeout, the stop
    // time the lease inequality counts on...
    let dropin = "/etc/systemd/system/app.service.d/slow-stop.conf";
    a.write(dropin, "[Service]\nTimeoutStopSec=90s\n");
    a.daemon_reload();
    let r = run(a, &["validate"]);
    assert_eq!(r.status, 78, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("app.service: TimeoutStopSec=1min 30s is longer than its verify_timeout 1s"),
        "{}",
        r.stderr
    );
    a.ok(&["rm", dropin]);
    a.daemon_reload();
    // ...and the timer's period against the switch: the drill's second passes, the
    // shipped minute would fence a healthy primary between two runs.
    let r = run(a, &["validate"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    let cadence = "/etc/systemd/system/failover-manager.timer.d/cadence.conf";
    let kept = a.read(cadence);
    a.ok(&["rm", cadence]);
    a.daemon_reload();
    let r = run(a, &["validate"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("failover-manager.timer runs every 1min, but the dead man's switch"),
        "{}",
        r.stderr
    );
    a.write(cadence, &kept);
    a.daemon_reload();

    // Timers and watches on both sites; then A's timer stops (a wedged or masked run) and A
    // is cut off from both others. Nobody acts by hand.
    for sb in [a, b] {
        sb.systemctl(&["start", "failover-manager.timer", WATCH]);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(a.state("app.service"), "active", "renewed, still primary");
    assert_eq!(b.state("app.service"), "inactive");
    let stop = Instant::now();
    a.systemctl(&["stop", "failover-manager.timer", WATCH]);
    assert!(
        stop.elapsed() < Duration::from_secs(2),
        "the watch stops at once: {:?}",
        stop.elapsed()
    );
    let cut = Instant::now();
    c.isolate(A);
    assert_eq!(
        b.state("app.service"),
        "inactive",
        "A held the role until the cut"
    );
    assert!(
        eventually(Duration::from_secs(20), || b.state("app.service")
            == "active"),
        "B never took over"
    );
    let took_over = cut.elapsed();
    assert!(
        eventually(Duration::from_secs(5), || a.state("app.service")
            == "inactive"),
        "A never fenced"
    );
    // A's app stopped before B's started: never both.
    let a_stopped = *app_times(a, "stopped").last().expect("A's app stopped");
    let b_started = *app_times(b, "starting").last().expect("B's app started");
    assert!(
        a_stopped < b_started,
        "both ran for {} ms",
        (a_stopped - b_started) / 1_000_000
    );
    let fenced_by = a.exec(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-u",
        "failover-manager-deadline-*",
    ]);
    assert!(
        !String::from_utf8_lossy(&fenced_by.stdout).is_empty(),
        "the dead man's switch stopped A's app, with no run on A"
    );
    eprintln!(
        "measured: A cut off (no runs on A) -> B's app verified after {took_over:?}; A's app \
         stopped {} ms before B's started",
        (b_started - a_stopped) / 1_000_000
    );

    // A comes back: the key is B's, so A stays a standby. No automatic failback.
    c.rejoin(A);
    c.wait_healthy(A, Duration::from_secs(30));
    a.systemctl(&["start", "failover-manager.timer", WATCH]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(a.state("app.service"), "inactive");
    assert_eq!(b.state("app.service"), "active");
    assert_eq!(c.get(W, KEY), "dc2");
    // `status`, from either site: the key and both hosts' acknowledgements, in step.
    let r = run(a, &["status", "--output", "json"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    let v = json(&r);
    assert_eq!(v["holder"], "dc2");
    assert_eq!(v["healthy"], true, "{v}");
    let hosts = v["hosts"].as_array().expect("hosts");
    let role_of = |h: &str| {
        hosts
            .iter()
            .find(|x| x["host"] == h)
            .map(|x| x["role"].clone())
    };
    assert_eq!(role_of("a"), Some("standby".into()), "{v}");
    assert_eq!(role_of("b"), Some("primary".into()), "{v}");
    assert!(v["ttl_left_s"].as_i64().is_some_and(|t| t > 0), "{v}");
    // Garbage among the acknowledgements is shown as such: degraded, never a crash.
    c.put(W, &format!("{KEY}/ack/dc1/zz"), "\u{1}nonsense");
    let r = run(b, &["status"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("dc1/zz: its acknowledgement is not one"),
        "{}",
        r.stdout
    );
    c.etcdctl_ok(W, &["del", &format!("{KEY}/ack/dc1/zz")]);
    // A fleet of 100 hosts: one read all the same (measured, not asserted).
    let mut txn = String::new();
    for n in 0..100 {
        txn.push_str(&format!(
            "put {KEY}/ack/dc{}/h{n} \"1 standby\"\n",
            1 + n % 2
        ));
    }
    let out = c
        .member(W)
        .command(&["etcdctl", "txn"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(format!("\n{txn}\n\n").as_bytes())?;
            }
            child.wait()
        });
    assert!(
        out.is_ok_and(|s| s.success()),
        "100 acknowledgements written"
    );
    let t = Instant::now();
    let r = run(a, &["status", "--output", "json"]);
    let took = t.elapsed();
    assert_eq!(
        json(&r)["hosts"].as_array().map(Vec::len),
        Some(102),
        "{}",
        r.stderr
    );
    eprintln!(
        "measured: status of a fleet of 102 hosts (a process, one read, the lease's TTL) in {took:?}"
    );
    c.etcdctl_ok(W, &["del", "--prefix", &format!("{KEY}/ack/dc1/h")]);
    c.etcdctl_ok(W, &["del", "--prefix", &format!("{KEY}/ack/dc2/h")]);

    // A planned move back, from B: A's hosts are in step, so B stops first, then A starts, on a
    // lease of its own.
    let r = run(b, &["switchover", "dc1", "--dry-run"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("waiting for b of dc2 to stop, then a of dc1 to start"),
        "{}",
        r.stdout
    );
    let r = run(b, &["switchover", "dc3"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no host of dc3 has ever acknowledged"),
        "{}",
        r.stderr
    );
    let r = run(b, &["switchover", "dc1", "--timeout", "20s"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("done: dc1 holds the role"),
        "{}",
        r.stdout
    );
    assert!(
        eventually(Duration::from_secs(10), || a.state("app.service")
            == "active"),
        "A runs it"
    );
    assert_eq!(b.state("app.service"), "inactive");
    let b_stopped = *app_times(b, "stopped").last().expect("B's app stopped");
    let a_started = *app_times(a, "starting").last().expect("A's app started");
    assert!(b_stopped < a_started, "no overlap");
    let r = run(a, &["switchover", "dc1"]);
    assert_eq!(
        (r.status, r.stdout.trim()),
        (0, "dc1 holds the role already: nothing to do")
    );
    // Back to B for what follows.
    let r = run(a, &["switchover", "dc2", "--timeout", "20s"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(eventually(Duration::from_secs(10), || b
        .state("app.service")
        == "active"));
    for (i, sb) in [(A, a), (B, b)] {
        let failed = sb.exec(&["systemctl", "is-failed", "failover-manager.service"]);
        eprintln!(
            "{}: failover-manager.service {}",
            NAMES[i],
            String::from_utf8_lossy(&failed.stdout).trim()
        );
    }

    // A key put by hand without a lease: unknown on the site it names, never acted on.
    for sb in [a, b] {
        sb.systemctl(&["stop", "failover-manager.timer", WATCH]);
    }
    assert_eq!(run(b, &[]).status, 0, "B confirms its role just before");
    c.put(W, KEY, "dc2");
    let r = run(b, &[]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(r.stderr.contains("holds no lease"), "{}", r.stderr);
    assert_eq!(b.state("app.service"), "active", "nothing changed");
    // A site marked never to take the role on its own stays a standby with no key.
    c.etcdctl_ok(W, &["del", KEY]);
    a.write(
        crate::test::CONFIG,
        &a.read(crate::test::CONFIG)
            .replace(lease, &format!("{lease}    candidate: false\n")),
    );
    let r = run(a, &["reconcile", "--output", "json"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(json(&r)["check"]["etcd"]["reason_code"], "not_candidate");
    assert_eq!(c.get(W, KEY), "", "nobody took the key");
}

/// A single etcd member inside `sb` that speaks only TLS on 127.0.0.1:2479 and wants a client
/// certificate signed by its CA; users and roles with auth enabled: `root`, and `fm` (password
/// `pw`) who may read KEY. The certificates are made with openssl inside the sandbox; the
/// client's has no CN, which etcd's JSON gateway refuses while auth is on.
fn tls_etcd(sb: &Sandbox) {
    sb.ok(&[
        "sh",
        "-ec",
        "mkdir -p /etc/etcd-tls && cd /etc/etcd-tls
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca 2>/dev/null
         openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=etcd 2>/dev/null
         printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile server.ext 2>/dev/null
         openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /O=failover-manager 2>/dev/null
         printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > client.ext
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 1 -extfile client.ext 2>/dev/null
         # An X.509 v1 certificate (no extensions), which rustls refuses.
         openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client-v1.pem -days 1 2>/dev/null
         chmod 600 client.key",
    ]);
    sb.ok(&[
        "systemd-run",
        "--unit",
        "etcd-tls",
        "-p",
        "Type=notify",
        "/usr/bin/etcd",
        "--name",
        "tls",
        "--data-dir",
        "/var/lib/etcd-tls",
        "--listen-client-urls",
        "https://127.0.0.1:2479",
        "--advertise-client-urls",
        "https://127.0.0.1:2479",
        "--listen-peer-urls",
        "http://127.0.0.1:2480",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:2480",
        "--initial-cluster",
        "tls=http://127.0.0.1:2480",
        "--cert-file",
        "/etc/etcd-tls/server.pem",
        "--key-file",
        "/etc/etcd-tls/server.key",
        "--client-cert-auth",
        "--trusted-ca-file",
        "/etc/etcd-tls/ca.pem",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]);
    let ctl = |args: &[&str]| {
        let mut argv = vec![
            "etcdctl",
            "--endpoints=https://127.0.0.1:2479",
            "--cacert=/etc/etcd-tls/ca.pem",
            "--cert=/etc/etcd-tls/client.pem",
            "--key=/etc/etcd-tls/client.key",
        ];
        argv.extend_from_slice(args);
        sb.ok(&argv)
    };
    ctl(&["put", KEY, "dc1"]);
    ctl(&["user", "add", "root:rootpw"]);
    ctl(&["user", "add", "fm:pw"]);
    ctl(&["role", "add", "fm-read"]);
    ctl(&["role", "grant-permission", "fm-read", "read", KEY]);
    ctl(&["user", "grant-role", "fm", "fm-read"]);
    ctl(&["auth", "enable"]);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn tls_with_a_client_certificate_and_a_password_and_refusals_are_unknown_or_unsafe() {
    if !crate::sandbox::available() {
        return;
    }
    let sb = Sandbox::boot();
    tls_etcd(&sb);
    sb.install_unit("app.service", &Unit::simple("app.service").body);
    let config = |extra: &str| {
        format!(
            "site: dc1\ncheck:\n  etcd:\n    endpoints: [https://127.0.0.1:2479]\n    key: {KEY}\n{extra}\
             units: [app.service]\n"
        )
    };
    let tls = "    ca_file: /etc/etcd-tls/ca.pem\n    cert_file: /etc/etcd-tls/client.pem\n    \
               key_file: /etc/etcd-tls/client.key\n    credentials_file: /etc/fm-etcd-user\n";
    sb.write(crate::test::CONFIG, &config(tls));
    sb.write("/etc/fm-etcd-user", "fm:pw\n");
    sb.ok(&["chmod", "600", "/etc/fm-etcd-user"]);
    sb.daemon_reload();

    let r = run(&sb, &["-vv", "reconcile"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("started app.service"), "{}", r.stdout);
    assert!(
        r.stderr.contains("etcd: authenticated as fm"),
        "{}",
        r.stderr
    );
    // The token is kept for the next run (root's alone): authenticating is a raft write and a
    // bcrypt on the member, not something to do every few seconds.
    let mode = sb.ok(&["stat", "-c", "%a", "/run/failover-manager/etcd-tokens"]);
    assert_eq!(mode.trim(), "600");
    let r = run(&sb, &["-vv", "reconcile"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("etcd: authenticated"), "{}", r.stderr);
    // A token the member does not know (expired, or from before a restart): the run asks for
    // a new one and goes on.
    sb.write(
        "/run/failover-manager/etcd-tokens",
        &sb.read("/run/failover-manager/etcd-tokens")
            .split(' ')
            .take(2)
            .chain(["notatoken.1\n"])
            .collect::<Vec<_>>()
            .join(" "),
    );
    let r = run(&sb, &["-vv", "reconcile"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("etcd: authenticated as fm"),
        "{}",
        r.stderr
    );

    // A wrong password: the cluster's answer, not an endpoint's; unknown, nothing changes.
    sb.write("/etc/fm-etcd-user", "fm:wrong\n");
    let r = run(&sb, &[]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("authentication as \"fm\" refused"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.state("app.service"), "active");

    // A password anyone may read is refused before anything is asked.
    sb.write("/etc/fm-etcd-user", "fm:pw\n");
    sb.ok(&["chmod", "644", "/etc/fm-etcd-user"]);
    let r = run(&sb, &[]);
    assert_eq!(r.status, 78, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("readable by others than root"),
        "{}",
        r.stderr
    );
    sb.ok(&["chmod", "600", "/etc/fm-etcd-user"]);

    // No client certificate: the member refuses the handshake; unknown.
    sb.write(
        crate::test::CONFIG,
        &config("    ca_file: /etc/etcd-tls/ca.pem\n    credentials_file: /etc/fm-etcd-user\n"),
    );
    let r = run(&sb, &[]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(sb.state("app.service"), "active");
    // A CA that did not sign the member's certificate: unknown.
    sb.write(
        crate::test::CONFIG,
        &config(&tls.replace("/etc/etcd-tls/ca.pem", "/etc/etcd-tls/client.pem")),
    );
    let r = run(&sb, &[]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no etcd endpoint answered"),
        "{}",
        r.stderr
    );
    // A certificate rustls cannot use: said, unknown, never a crash.
    sb.write(
        crate::test::CONFIG,
        &config(&tls.replace("client.pem", "client-v1.pem")),
    );
    let r = run(&sb, &[]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not a usable client certificate"),
        "{}",
        r.stderr
    );
}

/// Whether member `i` (of `site`) acknowledged `role` at the key's current revision.
fn acked(c: &Cluster, i: usize, site: &str, role: &str) -> bool {
    crate::etcd::acked(c, i, site) == Some((crate::etcd::key_revision(c), role.to_owned()))
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn manual_mode_promote_after_a_site_is_lost_and_a_switchover_that_goes_back() {
    let Some(c) = Cluster::boot() else { return };
    // FENCE: fence_after 3 s + stopping app.service 1 s, + 2 % = 5 s.
    let fence = "  fence_after: 3s\n";
    install(&c, A, "dc1", "", fence);
    install(&c, B, "dc2", "", fence);
    let (a, b) = (c.member(A), c.member(B));
    c.put(W, KEY, "dc1");
    for sb in [a, b] {
        sb.systemctl(&["start", "failover-manager.timer", WATCH]);
    }
    assert!(
        eventually(Duration::from_secs(15), || acked(&c, A, "dc1", "primary")
            && acked(&c, B, "dc2", "standby")),
        "both acknowledged"
    );
    assert!(
        c.get(W, &format!("{KEY}/ack/dc1/a")).ends_with(" 5"),
        "FENCE"
    );

    // A switchover to a site whose application cannot start: the role comes back to A, with
    // no overlap, and the command says so.
    let broken = "/etc/systemd/system/app.service.d/broken.conf";
    b.write(broken, "[Service]\nExecStartPre=/bin/false\n");
    b.daemon_reload();
    let r = run(a, &["switchover", "dc2", "--timeout", "8s"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("dc2 did not confirm its units running")
            && r.stderr.contains("dc1 again")
            && r.stderr.contains("it runs the application"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(c.get(W, KEY), "dc1");
    assert_eq!(a.state("app.service"), "active");
    assert_ne!(b.state("app.service"), "active", "it never started");
    b.ok(&["rm", broken]);
    b.daemon_reload();

    // promote while the old site is still there: it stops when it reads the neutral value, and
    // the wait ends as soon as it acknowledged so.
    let r = run(b, &["promote", "dc3"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("no host of dc3 has ever acknowledged"),
        "{}",
        r.stderr
    );
    let r = run(b, &["promote", "dc2", "--dry-run"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("wait 5s for dc1/a to fence itself"),
        "{}",
        r.stdout
    );
    assert_eq!(c.get(W, KEY), "dc1", "a dry run changes nothing");
    let r = run(b, &["promote", "dc2"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("every host of dc1 acknowledged it stopped")
            && r.stdout.contains("done: dc2 holds the role"),
        "{}",
        r.stdout
    );
    assert_eq!(b.state("app.service"), "active");
    assert_eq!(a.state("app.service"), "inactive");
    let a_stopped = *app_times(a, "stopped").last().expect("A's app stopped");
    let b_started = *app_times(b, "starting").last().expect("B's app started");
    assert!(a_stopped < b_started, "no overlap");

    // B's site is lost: cut off from every member. From A: --no-wait starts the countdown and
    // says how long is left; then promote waits it out, and B has fenced itself before A
    // starts.
    assert!(
        eventually(Duration::from_secs(10), || acked(&c, B, "dc2", "primary")),
        "B acknowledged"
    );
    c.isolate(B);
    let lost = Instant::now();
    // If B's member led, the other two elect a leader first.
    c.wait_healthy(A, Duration::from_secs(30));
    let r = run(a, &["promote", "dc1", "--no-wait"]);
    assert_eq!(r.status, 75, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("not safe yet: dc2 may run the primary units for"),
        "{}",
        r.stdout
    );
    assert_eq!(c.get(W, KEY), "promoting:dc2->dc1");
    let record = c.get(W, &format!("{KEY}/promotion"));
    assert!(
        record.starts_with("to=dc1 from=dc2 by=") && record.contains("state=waiting"),
        "{record}"
    );
    let r = run(a, &["status"]);
    assert!(
        r.stdout.contains("(a promotion is under way)") && r.stdout.contains("last promotion:"),
        "{}",
        r.stdout
    );
    let r = run(a, &["promote", "dc1"]);
    let done = lost.elapsed();
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("passed: the old site has fenced itself")
            && r.stdout.contains("done: dc1 holds the role"),
        "{}",
        r.stdout
    );
    assert!(
        done >= Duration::from_secs(5),
        "waited the whole FENCE: {done:?}"
    );
    assert_eq!(a.state("app.service"), "active");
    assert_eq!(b.state("app.service"), "inactive", "B fenced itself");
    let b_stopped = *app_times(b, "stopped").last().expect("B's app stopped");
    let a_started = *app_times(a, "starting").last().expect("A's app started");
    assert!(b_stopped < a_started, "no overlap: B fenced itself first");
    let record = c.get(W, &format!("{KEY}/promotion"));
    assert!(record.contains("state=done"), "{record}");
    eprintln!(
        "measured: B cut off -> promote dc1 --no-wait, promote dc1 -> done after {done:?}; B's app stopped {:.1} s before A's started",
        (a_started - b_stopped) as f64 / 1e9
    );
    // B back: it reads dc1 and stays a standby.
    c.rejoin(B);
    c.wait_healthy(B, Duration::from_secs(30));
    assert!(
        eventually(Duration::from_secs(15), || acked(&c, B, "dc2", "standby")),
        "B in step again"
    );
    let r = run(a, &["status"]);
    assert_eq!(r.status, 0, "{}{}", r.stdout, r.stderr);
    let r = run(b, &["promote", "dc1"]);
    assert_eq!(
        (r.status, r.stdout.trim()),
        (0, "dc1 holds the role already: nothing to do")
    );
    for sb in [a, b] {
        sb.systemctl(&["stop", "failover-manager.timer", WATCH]);
    }
}
