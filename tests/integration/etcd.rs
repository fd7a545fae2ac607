//! etcd as the source of the role in manual mode (`check.etcd` without `lease_ttl`: the key
//! names the primary site, a person or `failover-manager switchover` moves it), with
//! `failover-manager watch` (units/failover-manager-watch.service), against a real three-member
//! etcd 3.4 cluster: site A, site B and a witness W, each member in its own sandbox, joined by
//! veth pairs that can be cut. The reads themselves, and automatic mode, are takeover.rs's.
//!
//! Topology: each member has one address, 10.98.0.N/32 on its loopback (A .1, B .2, W .3),
//! which its etcd advertises; every pair of members shares a link with its own /24 (A–B
//! 10.98.1.0, A–W 10.98.2.0, B–W 10.98.3.0: the lower member .1, the higher .2) and a host
//! route to the other's member address over it. Cutting a link (both ends down) removes the
//! routes with it; restoring it puts them back. All of it exists only inside the sandboxes'
//! network namespaces.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sandbox::{self, Sandbox};
use crate::unit::Unit;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units");
pub const KEY: &str = "/failover-manager/primary-site";
const ETCD_UNIT: &str = "etcd-test.service";
const WATCH_UNIT: &str = "failover-manager-watch.service";

pub const A: usize = 0;
pub const B: usize = 1;
pub const W: usize = 2;
pub const NAMES: [&str; 3] = ["a", "b", "w"];

/// The member address of member `i`.
pub fn member_addr(i: usize) -> String {
    format!("10.98.0.{}", i + 1)
}

/// The link between members `i` and `j`: its subnet's third octet.
fn link_net(i: usize, j: usize) -> usize {
    match (i.min(j), i.max(j)) {
        (A, B) => 1,
        (A, W) => 2,
        _ => 3,
    }
}

/// Member `i`'s address on its link to `j`.
fn link_addr(i: usize, j: usize) -> String {
    format!("10.98.{}.{}", link_net(i, j), if i < j { 1 } else { 2 })
}

/// A member's interface towards member `to`.
fn ifname(to: usize) -> String {
    format!("to-{}", NAMES[to])
}

pub struct Cluster {
    pub members: Vec<Sandbox>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Cluster {
    /// Boots A, B and W, links them, starts etcd on each and waits until the cluster answers
    /// quorum reads everywhere. None when the sandbox tests cannot run (not root).
    pub fn boot() -> Option<Cluster> {
        if !sandbox::available() {
            return None;
        }
        let members: Vec<Sandbox> = (0..3).map(|_| Sandbox::boot()).collect();
        let c = Cluster { members };
        for (i, j) in [(A, B), (A, W), (B, W)] {
            c.members[i].link(
                &ifname(j),
                &format!("{}/24", link_addr(i, j)),
                &c.members[j],
                &ifname(i),
                &format!("{}/24", link_addr(j, i)),
            );
        }
        for (i, m) in c.members.iter().enumerate() {
            // The host name is what a run files its acknowledgement under (KEY/ack/SITE/HOST).
            m.ok(&["hostname", NAMES[i]]);
            m.ok(&[
                "ip",
                "addr",
                "add",
                &format!("{}/32", member_addr(i)),
                "dev",
                "lo",
            ]);
            for j in (0..3).filter(|&j| j != i) {
                c.route(i, j);
            }
            m.write(&format!("/run/systemd/system/{ETCD_UNIT}"), &etcd_unit(i));
            m.daemon_reload();
        }
        // Not one by one: a member of a new cluster is ready only once a majority is up.
        for m in &c.members {
            m.systemctl(&["start", "--no-block", ETCD_UNIT]);
        }
        for i in 0..3 {
            c.wait_healthy(i, Duration::from_secs(30));
        }
        Some(c)
    }

    pub fn member(&self, i: usize) -> &Sandbox {
        &self.members[i]
    }

    /// Member i's host route to member j's address, over their link.
    fn route(&self, i: usize, j: usize) {
        self.members[i].ok(&[
            "ip",
            "route",
            "replace",
            &format!("{}/32", member_addr(j)),
            "via",
            &link_addr(j, i),
            "dev",
            &ifname(j),
            "src",
            &member_addr(i),
        ]);
    }

    /// etcdctl inside member `i`, against its local member.
    pub fn etcdctl(&self, i: usize, args: &[&str]) -> Output {
        let mut argv = vec!["etcdctl", "--command-timeout=3s"];
        argv.extend_from_slice(args);
        self.members[i].exec(&argv)
    }

    /// etcdctl that must succeed; its stdout.
    pub fn etcdctl_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.etcdctl(i, args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on {}: {}{}",
            NAMES[i],
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn put(&self, i: usize, key: &str, value: &str) {
        self.etcdctl_ok(i, &["put", "--", key, value]);
    }

    pub fn get(&self, i: usize, key: &str) -> String {
        self.etcdctl_ok(i, &["get", "--print-value-only", "--", key])
            .trim_end_matches('\n')
            .to_owned()
    }

    /// Until member `i` answers a quorum read.
    pub fn wait_healthy(&self, i: usize, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let out = self.etcdctl(i, &["endpoint", "health"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < end,
                "etcd on {} not healthy after {timeout:?}: {}\n{}",
                NAMES[i],
                text(&out.stderr),
                self.members[i]
                    .exec(&["journalctl", "-u", ETCD_UNIT, "-n", "20", "--no-pager"])
                    .stdout
                    .escape_ascii()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cuts the link between i and j (both ends down: their routes go with it).
    pub fn cut(&self, i: usize, j: usize) {
        self.members[i].ok(&["ip", "link", "set", &ifname(j), "down"]);
        self.members[j].ok(&["ip", "link", "set", &ifname(i), "down"]);
    }

    pub fn restore(&self, i: usize, j: usize) {
        self.members[i].ok(&["ip", "link", "set", &ifname(j), "up"]);
        self.members[j].ok(&["ip", "link", "set", &ifname(i), "up"]);
        self.route(i, j);
        self.route(j, i);
    }

    /// Cuts member i off from both others.
    pub fn isolate(&self, i: usize) {
        for j in (0..3).filter(|&j| j != i) {
            self.cut(i, j);
        }
    }

    pub fn rejoin(&self, i: usize) {
        for j in (0..3).filter(|&j| j != i) {
            self.restore(i, j);
        }
    }

    pub fn stop(&self, i: usize) {
        self.members[i].systemctl(&["stop", ETCD_UNIT]);
    }

    pub fn start(&self, i: usize) {
        self.members[i].systemctl(&["start", "--no-block", ETCD_UNIT]);
    }
}

/// etcd for member `i`: clients on its member address and its own loopback, peers on its
/// member address, data in the sandbox's overlay. Default Raft timing (100 ms heartbeat, 1 s
/// election).
fn etcd_unit(i: usize) -> String {
    let me = member_addr(i);
    let cluster: Vec<String> = (0..3)
        .map(|j| format!("{}=http://{}:2380", NAMES[j], member_addr(j)))
        .collect();
    format!(
        "[Unit]\nDescription=etcd member {name} (test)\n\n[Service]\nType=notify\n\
         ExecStart=/usr/bin/etcd --name {name} --data-dir /var/lib/etcd-test \
         --listen-client-urls http://{me}:2379,http://127.0.0.1:2379 \
         --advertise-client-urls http://{me}:2379 \
         --listen-peer-urls http://{me}:2380 --initial-advertise-peer-urls http://{me}:2380 \
         --initial-cluster {cluster} --initial-cluster-state new \
         --initial-cluster-token fm-test --logger zap --log-outputs stderr\n\
         TimeoutStartSec=60\n",
        name = NAMES[i],
        cluster = cluster.join(","),
    )
}

/// Copies a file of the repo into the sandbox with `mode`.
fn copy_example(sb: &Sandbox, src: &str, dst: &str, mode: u32) {
    let src = format!("{EXAMPLES}/{src}");
    let body = std::fs::read(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let path = sb.path(dst);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir in sandbox");
    }
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {dst}: {e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Every member, this host's own first (over loopback), as docs/etcd.md advises.
pub fn endpoints(i: usize) -> String {
    let mut e = vec!["http://127.0.0.1:2379".to_owned()];
    e.extend(
        (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("http://{}:2379", member_addr(j))),
    );
    format!("[{}]", e.join(", "))
}

/// How failover-manager is set up on a member (`install_fm`).
pub struct Setup<'a> {
    pub site: &'a str,
    /// The shipped timer too, every second (else runs come from the watch and by hand).
    pub timer: bool,
    /// More `[Service]` lines for app.service.
    pub app: &'a str,
    /// More lines under `check.etcd` (indented four spaces), and under `check` (two).
    pub etcd: &'a str,
    pub check: &'a str,
    pub verify_timeout: &'a str,
}

/// failover-manager on member `i`: the shipped service and watch unit (and timer), and a config
/// whose check is `check.etcd` (every member, this one's first); app.service runs on the
/// primary and records when it begins to start and when it has stopped (see app_times).
pub fn install_fm(c: &Cluster, i: usize, s: &Setup) {
    let sb = c.member(i);
    sb.ok(&["mkdir", "-p", "/run/fm-test"]);
    let timer = ["failover-manager.timer"];
    for unit in ["failover-manager.service", WATCH_UNIT]
        .iter()
        .chain(if s.timer { &timer[..] } else { &[] })
    {
        let body = std::fs::read_to_string(format!("{UNITS}/{unit}")).expect("shipped unit");
        sb.install_unit(unit, &body);
    }
    if s.timer {
        sb.write(
            "/etc/systemd/system/failover-manager.timer.d/cadence.conf",
            "[Timer]\nOnUnitActiveSec=\nOnActiveSec=0\nOnUnitActiveSec=1s\nAccuracySec=100ms\n",
        );
    }
    let app = Unit::simple("app.service");
    sb.install_unit(
        "app.service",
        &app.body.replace(
            "[Service]\n",
            &format!(
                "[Service]\nExecStartPre=/bin/sh -c 'date +%%s%%N >> /run/fm-test/app.starting'\n\
                 ExecStopPost=/bin/sh -c 'date +%%s%%N >> /run/fm-test/app.stopped'\n{}",
                s.app
            ),
        ),
    );
    sb.write(
        crate::test::CONFIG,
        &format!(
            "site: {}\ncheck:\n  etcd:\n    endpoints: {}\n    key: {KEY}\n    \
             request_timeout: 500ms\n{}  timeout: 3s\n{}\
             defaults: {{ verify_timeout: {}, settle: 0s }}\nunits:\n  - app.service\n",
            s.site,
            endpoints(i),
            s.etcd,
            s.check,
            s.verify_timeout
        ),
    );
    sb.daemon_reload();
}

/// Manual mode, no timer; app.service takes `start_delay` to start (an ExecStartPre sleep).
fn install_failover_manager(c: &Cluster, i: usize, site: &str, start_delay: &str) {
    install_fm(
        c,
        i,
        &Setup {
            site,
            timer: false,
            app: &format!("ExecStartPre=/bin/sleep {start_delay}\n"),
            etcd: "",
            check: "",
            verify_timeout: "10s",
        },
    );
}

pub struct Ran {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// failover-manager ARGS on `sb`.
pub fn run(sb: &Sandbox, args: &[&str]) -> Ran {
    let mut argv = vec![sandbox::BIN];
    argv.extend_from_slice(args);
    let t = Instant::now();
    let out = sb.exec(&argv);
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        took: t.elapsed(),
    }
}

/// The role member `i` (of `site`) acknowledged last and at which revision: the first two
/// fields of `KEY/ack/SITE/HOST` (more may follow them).
pub fn acked(c: &Cluster, i: usize, site: &str) -> Option<(i64, String)> {
    let value = c.get(W, &format!("{KEY}/ack/{site}/{}", NAMES[i]));
    let mut fields = value.split_whitespace();
    let revision = fields.next()?.parse().ok()?;
    Some((revision, fields.next()?.to_owned()))
}

/// The key's mod revision, as W's member has it.
pub fn key_revision(c: &Cluster) -> i64 {
    let out = c.etcdctl_ok(W, &["get", "-w", "fields", KEY]);
    out.lines()
        .find_map(|l| l.strip_prefix("\"ModRevision\" : "))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ModRevision in {out}"))
}

/// Polls until `f` holds; false if `timeout` passed first.
pub fn eventually(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Until no job is queued or running on `sb` (a run and everything it started are done).
fn settle(sb: &Sandbox) {
    assert!(
        eventually(Duration::from_secs(20), || sb.jobs().trim().is_empty()),
        "jobs did not finish: {}",
        sb.jobs()
    );
}

/// How many times failover-manager.service has run (each run of the oneshot is one start of
/// its main process).
fn runs(sb: &Sandbox) -> usize {
    sb.read("/run/fm-test/runs").lines().count()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn the_watch_starts_a_run_at_once_on_every_change_and_on_every_start() {
    let Some(c) = Cluster::boot() else { return };
    // app.service takes 1.5 s to start, so that a run can be caught in progress.
    install_failover_manager(&c, A, "dc1", "1.5");
    let a = c.member(A);
    // Counts the runs. No timer: every run here is the watch's doing.
    a.write(
        "/etc/systemd/system/failover-manager.service.d/count.conf",
        // `+`: outside the hardened service's sandbox, which may not write /run/fm-test.
        "[Service]\nExecStartPre=+/bin/sh -c 'echo run >> /run/fm-test/runs'\n",
    );
    a.daemon_reload();
    let out = a.exec(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        &format!("/usr/local/lib/systemd/system/{WATCH_UNIT}"),
    ]);
    let err = text(&out.stderr);
    assert!(
        out.status.success() && !err.contains("failover-manager"),
        "systemd-analyze verify: {err}"
    );
    c.put(W, KEY, "dc2");

    // Starting the watch runs failover-manager once: whatever changed before is read.
    a.systemctl(&["start", WATCH_UNIT]);
    assert!(
        eventually(Duration::from_secs(10), || runs(a) == 1),
        "no run when the watch started"
    );
    settle(a);
    assert_eq!(a.state("app.service"), "inactive");

    // A put anywhere in the cluster: a run on A at once.
    let mut latencies = Vec::new();
    for (value, state) in [("dc1", "active"), ("dc2", "inactive"), ("dc1", "active")] {
        let before = runs(a);
        let put = Instant::now();
        c.put(W, KEY, value);
        assert!(
            eventually(Duration::from_secs(10), || runs(a) > before),
            "no run after putting {value}"
        );
        latencies.push(put.elapsed());
        assert!(
            a.wait_state("app.service", state, Duration::from_secs(10)),
            "app.service not {state} after putting {value}"
        );
        settle(a);
    }
    eprintln!(
        "measured: put on the witness -> failover-manager.service started on A after {latencies:?}"
    );

    // A change while a run is in progress (app.service is starting, 1.5 s): that run read the
    // key before the change; the watch waits for it and runs again, so the change is not lost.
    c.put(W, KEY, "dc2");
    assert!(a.wait_state("app.service", "inactive", Duration::from_secs(10)));
    settle(a);
    let before = runs(a);
    c.put(W, KEY, "dc1");
    assert!(
        a.wait_state("app.service", "activating", Duration::from_secs(5)),
        "app.service is not starting"
    );
    c.put(W, KEY, "dc2");
    assert!(
        eventually(Duration::from_secs(15), || runs(a) >= before + 2
            && a.state("app.service") == "inactive"),
        "the change made during a run was lost: app.service is {}, {} runs",
        a.state("app.service"),
        runs(a) - before
    );
    settle(a);
    assert_eq!(a.state("app.service"), "inactive");

    // The watch dies (killed): systemd restarts it, and the restart runs failover-manager, for
    // what may have changed meanwhile.
    let restarts = || {
        a.systemctl(&["show", "-p", "NRestarts", "--value", WATCH_UNIT])
            .trim()
            .to_owned()
    };
    assert_eq!(restarts(), "0");
    let before = runs(a);
    let pid = a.systemctl(&["show", "-p", "MainPID", "--value", WATCH_UNIT]);
    a.ok(&["kill", "-KILL", pid.trim()]);
    c.put(W, KEY, "dc1");
    assert!(
        eventually(Duration::from_secs(10), || restarts() == "1"),
        "the watch was not restarted"
    );
    assert!(a.wait_state("app.service", "active", Duration::from_secs(10)));
    assert!(runs(a) > before);
    settle(a);
    assert_eq!(a.state(WATCH_UNIT), "active");

    // Stopped, then started after a change: the start alone brings A in line.
    a.systemctl(&["stop", WATCH_UNIT]);
    c.put(W, KEY, "dc2");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.state("app.service"), "active", "nothing watches");
    a.systemctl(&["start", WATCH_UNIT]);
    assert!(a.wait_state("app.service", "inactive", Duration::from_secs(10)));

    // A's own member down under the watch: the watch goes on through another member from the
    // last revision it saw, so a change made meanwhile reaches A before its member is back.
    settle(a);
    let restarted = restarts();
    c.stop(A);
    let put = Instant::now();
    c.put(B, KEY, "dc1");
    assert!(
        a.wait_state("app.service", "active", Duration::from_secs(10)),
        "the change made while A's member was down did not reach A"
    );
    eprintln!(
        "measured: A's member down, put on B -> app.service active on A after {:?}",
        put.elapsed()
    );
    c.start(A);
    c.wait_healthy(A, Duration::from_secs(30));
    settle(a);
    assert_eq!(a.state("app.service"), "active");
    assert_eq!(
        restarts(),
        restarted,
        "the watch survived its member's restart"
    );

    // The cadence drop-in replaces the shipped timer's minute instead of adding to it.
    let timer =
        std::fs::read_to_string(format!("{UNITS}/failover-manager.timer")).expect("shipped timer");
    a.install_unit("failover-manager.timer", &timer);
    copy_example(
        a,
        "etcd/failover-manager.timer.d/cadence.conf",
        "/etc/systemd/system/failover-manager.timer.d/cadence.conf",
        0o644,
    );
    a.daemon_reload();
    let timers = a.systemctl(&["show", "-p", "TimersMonotonic", "failover-manager.timer"]);
    assert!(
        timers.contains("OnUnitActiveUSec=5s") && !timers.contains("OnUnitActiveUSec=1min"),
        "{timers}"
    );
    assert!(timers.contains("OnActiveUSec=0"), "{timers}");
    let accuracy = a.systemctl(&[
        "show",
        "-p",
        "AccuracyUSec",
        "--value",
        "failover-manager.timer",
    ]);
    assert_eq!(accuracy.trim(), "1s");
}

/// The times (ns since the epoch: one clock for all sandboxes) app.service began to start, or
/// had stopped, on `sb`, as its ExecStartPre=/ExecStopPost= wrote them.
pub fn app_times(sb: &Sandbox, what: &str) -> Vec<u128> {
    sb.read(&format!("/run/fm-test/app.{what}"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn switchover_moves_the_role_with_no_overlap_or_leaves_it() {
    let Some(c) = Cluster::boot() else { return };
    install_failover_manager(&c, A, "dc1", "0");
    install_failover_manager(&c, B, "dc2", "0");
    c.put(W, KEY, "dc1");
    for (i, site, role) in [(A, "dc1", "primary"), (B, "dc2", "standby")] {
        c.member(i).systemctl(&["start", WATCH_UNIT]);
        assert!(
            eventually(Duration::from_secs(15), || acked(&c, i, site)
                .is_some_and(|(_, r)| r == role)),
            "{} never acknowledged {role}",
            NAMES[i]
        );
    }
    let (a, b) = (c.member(A), c.member(B));
    assert_eq!(a.state("app.service"), "active");
    assert_eq!(b.state("app.service"), "inactive");

    // Both sites sampled every 100 ms (or as fast as the machine manages) while the
    // switchover, run on B, moves the role there.
    let stop = AtomicBool::new(false);
    let (result, samples, widest) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut samples = Vec::new();
            let mut widest = Duration::ZERO;
            let mut previous: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if let Some(p) = previous {
                    widest = widest.max(now - p);
                }
                previous = Some(now);
                samples.push((a.state("app.service"), b.state("app.service")));
                std::thread::sleep(Duration::from_millis(100).saturating_sub(now.elapsed()));
            }
            (samples, widest)
        });
        let r = run(b, &["switchover", "dc2"]);
        stop.store(true, Ordering::Relaxed);
        let (samples, widest) = sampler.join().expect("sampler");
        (r, samples, widest)
    });
    assert_eq!(
        result.status, 0,
        "switchover failed:\n{}{}",
        result.stdout, result.stderr
    );
    assert!(
        result.stdout.contains("done: dc2 holds the role"),
        "{}",
        result.stdout
    );
    assert_eq!(c.get(W, KEY), "dc2");
    // The key without a lease, as manual mode has it.
    let fields = c.etcdctl_ok(W, &["get", "-w", "fields", KEY]);
    assert!(fields.contains("\"Lease\" : 0\n"), "{fields}");
    assert_eq!(a.state("app.service"), "inactive");
    assert_eq!(b.state("app.service"), "active");
    let both: Vec<_> = samples
        .iter()
        .filter(|(x, y)| x != "inactive" && y != "inactive")
        .collect();
    assert!(both.is_empty(), "both sites ran app.service: {samples:?}");
    assert!(samples.len() >= 3, "{samples:?}");
    // What the units recorded themselves: A's app had stopped before B's began to start.
    let a_stopped = app_times(a, "stopped");
    let b_starting = app_times(b, "starting");
    assert_eq!((a_stopped.len(), b_starting.len()), (1, 1));
    let (a_stopped, b_starting) = (a_stopped[0], b_starting[0]);
    assert!(
        b_starting > a_stopped,
        "B's app.service began to start {} us before A's had stopped",
        (a_stopped - b_starting) / 1000
    );
    eprintln!(
        "measured: switchover took {:?}; gap between A's app stopped and B's starting: {} ms; \
         {} samples, at most {widest:?} apart\n{}",
        result.took,
        (b_starting - a_stopped) / 1_000_000,
        samples.len(),
        result.stdout
    );

    // Back again, run on A, but B is paused (maintenance): it never confirms its units
    // stopped, so the role goes back to B and A never starts anything.
    let a_starts = app_times(a, "starting").len();
    let revision = key_revision(&c);
    assert!(
        eventually(Duration::from_secs(10), || acked(&c, A, "dc1")
            == Some((revision, "standby".into()))),
        "A did not acknowledge dc2's revision {revision} as a standby"
    );
    b.ok(&[sandbox::BIN, "pause", "--reason", "switchover test"]);
    let r = run(a, &["switchover", "dc1", "--timeout", "3s"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(
            "dc2 did not confirm its units stopped within 3s (no acknowledgement from: b);"
        ) && r.stderr.contains(&format!("{KEY} = dc2 again (revision ")),
        "{}",
        r.stderr
    );
    assert_eq!(c.get(W, KEY), "dc2");
    settle(a);
    assert_eq!(
        app_times(a, "starting").len(),
        a_starts,
        "A started app.service"
    );
    assert_eq!(a.state("app.service"), "inactive");
    assert_eq!(b.state("app.service"), "active");

    // Refused up front, nothing written: a site whose hosts have not acknowledged the key's
    // revision (A's watch stopped, the key put again by hand: A never saw it).
    a.systemctl(&["stop", WATCH_UNIT]);
    c.put(W, KEY, "dc2");
    let revision = key_revision(&c);
    assert!(acked(&c, A, "dc1").is_some_and(|(r, _)| r < revision));
    let r = run(b, &["switchover", "dc1"]);
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "a of dc1 not in step with {KEY} (revision {revision}): down, cut off or paused?"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(key_revision(&c), revision, "nothing written");
    assert_eq!(c.get(W, KEY), "dc2");
}
