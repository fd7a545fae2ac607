//! etcd as the source of the role (examples/checks/etcd-key, examples/etcd/), against a real
//! three-member etcd 3.4 cluster: site A, site B and a witness W, each member in its own
//! sandbox, joined by veth pairs that can be cut.
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
/// Where the .deb puts them, as the example units say.
const CHECK: &str = "/usr/lib/failover-manager/checks/etcd-key";
const ETCD_DIR: &str = "/usr/lib/failover-manager/etcd";
pub const KEY: &str = "/failover-manager/primary-site";
const ETCD_UNIT: &str = "etcd-test.service";
const WATCH_UNIT: &str = "failover-manager-etcd-watch.service";

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
            // The host name is what etcd-ack files its acknowledgement under.
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
fn install(sb: &Sandbox, src: &str, dst: &str, mode: u32) {
    let src = format!("{EXAMPLES}/{src}");
    let body = std::fs::read(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let path = sb.path(dst);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir in sandbox");
    }
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {dst}: {e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The check and the etcd scripts, where the .deb puts them.
fn install_scripts(sb: &Sandbox) {
    install(sb, "checks/etcd-key", CHECK, 0o755);
    for s in ["watch-etcd-key", "etcd-ack", "switchover"] {
        install(sb, &format!("etcd/{s}"), &format!("{ETCD_DIR}/{s}"), 0o755);
    }
}

/// failover-manager on member `i` as the examples set it up, for site `site`: the shipped
/// service, the etcd drop-in (environment, acknowledgement), the watch unit, the example
/// environment file, and a config whose check is etcd-key; app.service runs on the primary.
/// app.service takes `start_delay` to start (an ExecStartPre sleep).
fn install_failover_manager(c: &Cluster, i: usize, site: &str, start_delay: &str) {
    let sb = c.member(i);
    install_scripts(sb);
    let service = std::fs::read_to_string(format!("{UNITS}/failover-manager.service"))
        .expect("shipped service");
    sb.install_unit("failover-manager.service", &service);
    let watch =
        std::fs::read_to_string(format!("{EXAMPLES}/etcd/{WATCH_UNIT}")).expect("watch unit");
    sb.install_unit(WATCH_UNIT, &watch);
    install(
        sb,
        "etcd/failover-manager.service.d/etcd.conf",
        "/etc/systemd/system/failover-manager.service.d/etcd.conf",
        0o644,
    );
    let env = std::fs::read_to_string(format!("{EXAMPLES}/etcd/failover-manager-etcd"))
        .expect("environment file");
    assert!(env.contains(&format!("\nFAILOVER_MANAGER_ETCD_KEY={KEY}\n")));
    let env = env.replace(
        "\nFAILOVER_MANAGER_SITE=dc1\n",
        &format!("\nFAILOVER_MANAGER_SITE={site}\n"),
    );
    sb.write("/etc/default/failover-manager-etcd", &env);
    // Records when it begins to start and when it has stopped (see app_times).
    let app = Unit::simple("app.service");
    sb.install_unit(
        "app.service",
        &app.body.replace(
            "[Service]\n",
            &format!(
                "[Service]\nExecStartPre=/bin/sh -c 'date +%%s%%N >> /run/fm-test/app.starting'\n\
                 ExecStartPre=/bin/sleep {start_delay}\n\
                 ExecStopPost=/bin/sh -c 'date +%%s%%N >> /run/fm-test/app.stopped'\n"
            ),
        ),
    );
    sb.write(
        crate::test::CONFIG,
        &format!(
            "check:\n  command: [\"{CHECK}\", \"{KEY}\", \"{site}\"]\n  timeout: 10s\n\
             defaults: {{ verify_timeout: 10s, settle: 0s }}\nunits:\n  - app.service\n"
        ),
    );
    sb.daemon_reload();
}

struct Ran {
    status: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(sb: &Sandbox, argv: &[&str]) -> Ran {
    let t = Instant::now();
    let out = sb.exec(argv);
    Ran {
        status: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        took: t.elapsed(),
    }
}

/// Runs the etcd-key check on member `i` for `site` and asserts its status and what it says
/// (for 0 and 1 one line on stdout, for 2 one line on stderr); returns what it said.
fn expect_check(c: &Cluster, i: usize, site: &str, status: i32, says: &str) -> Ran {
    let r = run(c.member(i), &[CHECK, KEY, site]);
    let ctx = format!(
        "etcd-key on {} for {site}\n--- status {}\n--- stdout\n{}--- stderr\n{}---",
        NAMES[i], r.status, r.stdout, r.stderr
    );
    assert_eq!(r.status, status, "exit status: {ctx}");
    let (said, quiet) = if status == 2 {
        (&r.stderr, &r.stdout)
    } else {
        (&r.stdout, &r.stderr)
    };
    assert_eq!(quiet, "", "{ctx}");
    assert_eq!(said.lines().count(), 1, "one line: {ctx}");
    assert!(said.contains(says), "lacks {says:?}: {ctx}");
    r
}

#[test]
fn etcd_key_is_primary_standby_or_unknown_and_a_cut_off_site_is_never_primary() {
    let Some(c) = Cluster::boot() else { return };
    for m in &c.members {
        install_scripts(m);
    }
    // Never written: no site is primary.
    expect_check(&c, A, "dc1", 1, &format!("standby: {KEY} does not exist"));

    c.put(W, KEY, "dc1");
    expect_check(
        &c,
        A,
        "dc1",
        0,
        &format!("primary: {KEY} names this site, dc1 (revision "),
    );
    expect_check(
        &c,
        B,
        "dc2",
        1,
        &format!("standby: {KEY} names \"dc1\", not this site (dc2)"),
    );
    // Read through another member, named with --endpoints.
    let r = run(
        c.member(B),
        &[
            CHECK,
            "--endpoints",
            &format!("http://{}:2379", member_addr(W)),
            KEY,
            "dc1",
        ],
    );
    assert_eq!((r.status, r.stderr.as_str()), (0, ""), "{}", r.stdout);

    // A value is compared whole: a prefix, another case, blank space, a newline are other
    // sites; an empty value names none.
    for (value, shown) in [
        ("dc1 ", "\"dc1 \""),
        ("DC1", "\"DC1\""),
        ("dc10", "\"dc10\""),
        ("dc1\ndc1", "\"dc1\\ndc1\""),
        ("", "\"\""),
    ] {
        c.put(W, KEY, value);
        expect_check(&c, A, "dc1", 1, &format!("names {shown}, not this site"));
    }
    c.etcdctl_ok(W, &["del", KEY]);
    expect_check(&c, A, "dc1", 1, "does not exist");

    // A site cut off from the other two cannot read the key at all: unknown, never primary,
    // while the majority (B and the witness) moves the role to B.
    c.put(W, KEY, "dc1");
    expect_check(&c, A, "dc1", 0, "primary: ");
    let cut = Instant::now();
    c.isolate(A);
    let unknown = expect_check(&c, A, "dc1", 2, "etcd-key: cannot tell: etcdctl get");
    assert!(
        unknown
            .stderr
            .contains("this member is cut off from the majority"),
        "{}",
        unknown.stderr
    );
    let unknown_after = cut.elapsed();
    c.put(B, KEY, "dc2");
    expect_check(&c, B, "dc2", 0, "primary: ");
    expect_check(&c, A, "dc1", 2, "cannot tell");
    expect_check(&c, A, "dc2", 2, "cannot tell");
    eprintln!(
        "measured: A cut off -> etcd-key on A unknown after {unknown_after:?} (the check took {:?}): {}",
        unknown.took, unknown.stderr
    );

    // Back in the cluster, A learns what happened meanwhile.
    c.rejoin(A);
    c.wait_healthy(A, Duration::from_secs(30));
    expect_check(&c, A, "dc1", 1, "names \"dc2\", not this site (dc1)");

    // One member down leaves a majority; two down leave none; the whole cluster down: unknown.
    c.stop(W);
    expect_check(&c, A, "dc2", 0, "primary: ");
    c.stop(B);
    expect_check(&c, A, "dc2", 2, "cannot tell: etcdctl get");
    c.stop(A);
    let down = expect_check(
        &c,
        A,
        "dc2",
        2,
        "cannot tell: etcdctl get /failover-manager/primary-site failed (exit 1)",
    );
    eprintln!(
        "measured: whole cluster down -> etcd-key unknown in {:?}: {}",
        down.took, down.stderr
    );

    // Mistakes in the arguments are unknown too, never standby.
    for (argv, says) in [
        (vec![CHECK], "usage: etcd-key [--endpoints URLS] KEY SITE"),
        (vec![CHECK, KEY], "usage: "),
        (vec![CHECK, KEY, "dc1", "x"], "usage: "),
        (vec![CHECK, "--endpoints"], "usage: "),
        (vec![CHECK, "-x", "dc1"], "KEY \"-x\" is not a key"),
        (vec![CHECK, "a key", "dc1"], "is not a key"),
        (vec![CHECK, KEY, ""], "SITE \"\" is not a site name"),
        (vec![CHECK, KEY, "dc1 "], "is not a site name"),
        (vec![CHECK, KEY, "\"dc1\""], "is not a site name"),
    ] {
        let r = run(c.member(A), &argv);
        assert_eq!(r.status, 2, "{argv:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.starts_with("etcd-key: cannot tell: ") && r.stderr.contains(says),
            "{argv:?}: {}",
            r.stderr
        );
    }
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

    // The watch dies (its etcdctl killed): systemd restarts it, and the restart runs
    // failover-manager, for what may have changed meanwhile.
    let restarts = || {
        a.systemctl(&["show", "-p", "NRestarts", "--value", WATCH_UNIT])
            .trim()
            .to_owned()
    };
    assert_eq!(restarts(), "0");
    let before = runs(a);
    a.ok(&["pkill", "-KILL", "-x", "etcdctl"]);
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

    // The member restarting under the watch: etcdctl reconnects and resumes; a change made
    // while it was down is delivered once it is back.
    settle(a);
    let restarted = restarts();
    c.stop(A);
    c.put(B, KEY, "dc1");
    std::thread::sleep(Duration::from_millis(500));
    c.start(A);
    c.wait_healthy(A, Duration::from_secs(30));
    assert!(
        a.wait_state("app.service", "active", Duration::from_secs(10)),
        "the change made while A's member was down did not reach A"
    );
    assert_eq!(
        restarts(),
        restarted,
        "the watch survived its member's restart"
    );

    // The cadence drop-in replaces the shipped timer's minute instead of adding to it.
    let timer =
        std::fs::read_to_string(format!("{UNITS}/failover-manager.timer")).expect("shipped timer");
    a.install_unit("failover-manager.timer", &timer);
    install(
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
fn switchover_moves_the_role_with_no_overlap_or_leaves_it() {
    let Some(c) = Cluster::boot() else { return };
    install_failover_manager(&c, A, "dc1", "0");
    install_failover_manager(&c, B, "dc2", "0");
    install_scripts(c.member(W));
    c.put(W, KEY, "dc1");
    for (i, role) in [(A, "primary"), (B, "standby")] {
        let sb = c.member(i);
        sb.systemctl(&["start", WATCH_UNIT]);
        let ack = format!("{KEY}/ack/dc{}/{}", i + 1, NAMES[i]);
        assert!(
            eventually(Duration::from_secs(15), || c
                .get(W, &ack)
                .ends_with(&format!(" {role}"))),
            "{} never acknowledged {role} ({ack})",
            NAMES[i]
        );
    }
    let (a, b) = (c.member(A), c.member(B));
    assert_eq!(a.state("app.service"), "active");
    assert_eq!(b.state("app.service"), "inactive");

    // Both sites sampled every 100 ms (or as fast as the machine manages) while the
    // switchover runs.
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
        let r = run(
            c.member(W),
            &[&format!("{ETCD_DIR}/switchover"), KEY, "dc1", "dc2"],
        );
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
        result.stdout.contains("switched from dc1 to dc2"),
        "{}",
        result.stdout
    );
    assert_eq!(c.get(W, KEY), "dc2");
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

    // Back again, but B is paused (maintenance): it never confirms its units stopped, so the
    // role goes back to B and A never starts anything.
    let a_starts = a.starts("app.service");
    b.ok(&[sandbox::BIN, "pause", "--reason", "switchover test"]);
    let r = run(
        c.member(W),
        &[
            &format!("{ETCD_DIR}/switchover"),
            "--timeout",
            "3",
            KEY,
            "dc2",
            "dc1",
        ],
    );
    assert_eq!(r.status, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "dc2 did not confirm its units stopped within 3s (no acknowledgement from: b); {KEY} = dc2 again"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(c.get(W, KEY), "dc2");
    settle(a);
    assert_eq!(a.starts("app.service"), a_starts, "A started app.service");
    assert_eq!(a.state("app.service"), "inactive");
    assert_eq!(b.state("app.service"), "active");

    // A switchover from a site that does not hold the role changes nothing.
    let r = run(
        c.member(W),
        &[&format!("{ETCD_DIR}/switchover"), KEY, "dc1", "dc2"],
    );
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains(&format!(
            "{KEY} holds \"dc2\", not \"dc1\"; nothing changed"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(c.get(W, KEY), "dc2");
}
