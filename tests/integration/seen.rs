//! Seen and fast: metrics for node_exporter, event-driven takeover through the shipped path
//! unit, and `parallel: true`.

use std::time::{Duration, Instant};

use crate::sandbox::{BIN, Sandbox};
use crate::test::Test;
use crate::test::fixtures::host;
use crate::unit::Unit;

/// Where docs/metrics-and-alerts.md puts it: a directory only root can write.
const TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile_collector";
const PROM: &str = "/var/lib/node_exporter/textfile_collector/failover_manager.prom";

/// The value of the first sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn metrics_file_says_what_should_run_and_what_does() {
    let ran = host()
        .primary()
        .before(&["install", "-d", "-m", "0755", TEXTFILE_DIR])
        .args(&["reconcile", "--metrics-file", PROM])
        .stdout_has("started app.service")
        .active("app.service")
        .run();
    let Some(r) = ran else { return };
    let text = r.sandbox.read(PROM);
    assert_eq!(
        sample(&text, "failover_manager_role{role=\"primary\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "failover_manager_role{role=\"standby\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "failover_manager_last_run_success"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "failover_manager_check_exit_code"), Some(0.0));
    assert_eq!(sample(&text, "failover_manager_paused"), Some(0.0));
    let unit = |name: &str, when: &str| format!("{{unit=\"{name}\",when=\"{when}\"}}");
    assert_eq!(
        sample(
            &text,
            &format!(
                "failover_manager_unit_desired_running{}",
                unit("app.service", "primary")
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "failover_manager_unit_running{}",
                unit("app.service", "primary")
            )
        ),
        Some(1.0),
        "observed after the run"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "failover_manager_unit_desired_running{}",
                unit("replica.service", "standby")
            )
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "failover_manager_unit_running{}",
                unit("replica.service", "standby")
            )
        ),
        Some(0.0)
    );
    let ts = sample(&text, "failover_manager_last_run_timestamp_seconds").unwrap_or(0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    assert!((now - ts).abs() < 60.0, "timestamp {ts} vs now {now}");
    let mode = r.sandbox.ok(&["stat", "-c", "%a", PROM]);
    assert_eq!(mode.trim(), "644");
    let left = r.sandbox.ok(&["ls", "-A", TEXTFILE_DIR]);
    assert_eq!(left.trim(), "failover_manager.prom", "no temp files");

    // The role unknown: the run fails, and the metrics say so (no desired state).
    r.sandbox.write("/run/fm-test/check-exit", "9");
    r.then(&["reconcile", "--metrics-file", PROM])
        .status(3)
        .stderr_has("role unknown: the primary check exited 9")
        .check();
    let text = r.sandbox.read(PROM);
    assert_eq!(
        sample(&text, "failover_manager_role{role=\"unknown\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "failover_manager_last_run_success"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "failover_manager_check_exit_code"), Some(9.0));
    assert!(
        !text.contains("failover_manager_unit_desired_running{"),
        "{text}"
    );

    // Paused: still written, paused 1.
    r.sandbox.write("/run/fm-test/check-exit", "0");
    r.then(&["pause", "--reason", "test"])
        .stdout_has("paused by ")
        .check();
    r.then(&["reconcile", "--metrics-file", PROM]).check();
    assert_eq!(
        sample(&r.sandbox.read(PROM), "failover_manager_paused"),
        Some(1.0)
    );
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn metrics_file_from_the_config_is_served_by_a_real_node_exporter() {
    if !std::path::Path::new("/usr/bin/prometheus-node-exporter").exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but prometheus-node-exporter is not installed (.ci/run installs it)"
        );
        eprintln!(
            "\n*** SKIPPED: node_exporter test (apt-get install prometheus-node-exporter) ***\n"
        );
        return;
    }
    let t = host().primary().config(&format!(
        "check: {{command: [/bin/sh, -c, \"exit $(cat /run/fm-test/check-exit)\"]}}\n\
         metrics_file: {PROM}\nunits:\n  - app.service\n  - name: replica.service\n    when: standby\n"
    ));
    let Some(sb) = t.setup() else { return };
    sb.ok(&["install", "-d", "-m", "0755", TEXTFILE_DIR]);
    // A transient unit running node_exporter as its own unprivileged user, as packaged.
    sb.ok(&[
        "systemd-run",
        "--unit=node-exporter",
        "--property=DynamicUser=yes",
        "/usr/bin/prometheus-node-exporter",
        "--web.listen-address=127.0.0.1:9100",
        "--collector.disable-defaults",
        "--collector.textfile",
        &format!("--collector.textfile.directory={TEXTFILE_DIR}"),
    ]);
    let out = sb.exec(&[BIN, "reconcile"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scraped = scrape(&sb, Duration::from_secs(10));
    assert!(
        scraped.contains("failover_manager_role{role=\"primary\"} 1"),
        "{scraped}"
    );
    assert!(
        scraped.contains("failover_manager_unit_running{unit=\"app.service\",when=\"primary\"} 1"),
        "{scraped}"
    );
    // node_exporter's own word that it read the file without error.
    assert!(
        scraped.contains("node_textfile_scrape_error 0"),
        "{scraped}"
    );
}

/// The attack: metrics_file in a directory a non-root user owns (Debian's /var/lib/prometheus
/// belongs to user prometheus). The user cannot steer root's write: the run refuses, names
/// the fix, still reconciles, and a root file the user linked to is untouched.
#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn metrics_file_in_a_directory_a_user_owns_is_refused() {
    let Some(sb) = host().primary().setup() else {
        return;
    };
    sb.write("/etc/shadow-standin", "root:secret:0:\n");
    sb.ok(&["chmod", "0640", "/etc/shadow-standin"]);
    sb.ok(&[
        "install",
        "-d",
        "-o",
        "65534",
        "-m",
        "0755",
        "/var/lib/exporter",
    ]);
    sb.ok(&["install", "-d", "-m", "0755", "/var/lib/exporter/textfile"]);
    let prom = "/var/lib/exporter/textfile/failover_manager.prom";
    // Everything the old writer opened by a predictable name, planted as links (as the user
    // could after renaming the root-owned directory away and making their own).
    let mut plant =
        String::from("ln -s /etc/shadow-standin /var/lib/exporter/textfile/failover_manager.prom");
    for pid in 1..200 {
        plant.push_str(&format!(
            "; ln -s /etc/shadow-standin /var/lib/exporter/textfile/.failover_manager.prom.{pid}.tmp"
        ));
    }
    sb.ok(&["sh", "-c", &plant]);
    let out = sb.exec(&[BIN, "reconcile", "--metrics-file", prom]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "error: cannot write the metrics file: metrics file directory /var/lib/exporter/textfile: \
             its directory /var/lib/exporter is owned by uid 65534; refusing to use it as root \
             (fix: chown root /var/lib/exporter; or write metrics_file to a directory only root can \
             write, and point node_exporter's --collector.textfile.directory at it (docs/metrics-and-alerts.md))"
        ),
        "{err}"
    );
    assert_eq!(
        sb.state("app.service"),
        "active",
        "the run still did its work"
    );
    assert_eq!(sb.read("/etc/shadow-standin"), "root:secret:0:\n");
    let mode = sb.ok(&["stat", "-c", "%a %U", "/etc/shadow-standin"]);
    assert_eq!(mode.trim(), "640 root");
    // validate says so before any run has to.
    let out = sb.exec(&[BIN, "validate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no metrics_file in the config yet"
    );
    let config = sb.read(crate::test::CONFIG) + &format!("metrics_file: {prom}\n");
    sb.write(crate::test::CONFIG, &config);
    let out = sb.exec(&[BIN, "validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("its directory /var/lib/exporter is owned by uid 65534"),
        "{err}"
    );
}

fn scrape(sb: &Sandbox, within: Duration) -> String {
    let end = Instant::now() + within;
    loop {
        let out = sb.exec(&["curl", "-sf", "http://127.0.0.1:9100/metrics"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("failover_manager_role") || Instant::now() > end {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn install_shipped(sb: &Sandbox) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/units");
    for f in ["failover-manager.service", "failover-manager.path"] {
        let body = std::fs::read_to_string(format!("{dir}/{f}")).expect("shipped unit");
        sb.install_unit(f, &body);
    }
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/checks/role-file");
    std::fs::create_dir_all(sb.path("/usr/lib/failover-manager/checks")).expect("mkdir");
    std::fs::copy(check, sb.path("/usr/lib/failover-manager/checks/role-file"))
        .expect("copy check");
    sb.daemon_reload();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn writing_the_role_file_takes_over_within_a_second_through_the_path_unit() {
    let t = host().config(
        "check: {command: [/usr/lib/failover-manager/checks/role-file]}\n\
         defaults: {settle: 0s}\nunits:\n  - app.service\n  - name: replica.service\n    when: standby\n",
    );
    let Some(sb) = t.setup() else { return };
    install_shipped(&sb);
    sb.systemctl(&["start", "failover-manager.path"]);
    assert_eq!(sb.state("failover-manager.path"), "active");
    // A write while a run is in flight merges into it and goes unseen until the timer (see
    // docs/design.md), so make sure no run is in flight.
    idle(&sb);
    assert_eq!(sb.state("app.service"), "inactive");
    // No timer is running: only the path unit can react.
    let written = Instant::now();
    sb.ok(&["sh", "-c", "mkdir -p /run/failover-manager && echo primary > /run/failover-manager/role.tmp && mv /run/failover-manager/role.tmp /run/failover-manager/role"]);
    sb.wait_state("app.service", "active", Duration::from_secs(5));
    let took = written.elapsed();
    assert_eq!(sb.state("app.service"), "active");
    assert_eq!(sb.state("replica.service"), "inactive");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    eprintln!("path unit takeover: app.service active {took:?} after the role file was written");
    // And back: standby.
    idle(&sb);
    sb.ok(&["sh", "-c", "echo standby > /run/failover-manager/role"]);
    sb.wait_state("replica.service", "active", Duration::from_secs(5));
    assert_eq!(sb.state("replica.service"), "active");
    assert_eq!(sb.state("app.service"), "inactive");
}

fn idle(sb: &Sandbox) {
    std::thread::sleep(Duration::from_millis(100));
    sb.wait_state(
        "failover-manager.service",
        "!activating",
        Duration::from_secs(5),
    );
}

fn parallel_site(extra: &str) -> Test {
    Test::new()
        .unit(Unit::simple("a.service"))
        .unit(Unit::oneshot("b.service"))
        .unit(Unit::simple("c.service"))
        .unit(Unit::simple("replica.service").standby())
        .running(&["replica.service"])
        .config(&format!(
            "check: {{command: [/bin/sh, -c, \"exit $(cat /run/fm-test/check-exit)\"]}}\n\
             parallel: true\ndefaults: {{settle: 300ms}}\nunits:\n  - a.service\n  - b.service\n  - c.service\n\
             {extra}  - name: replica.service\n    when: standby\n"
        ))
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn parallel_starts_every_unit_in_one_batch_and_verifies_each() {
    parallel_site("")
        .primary()
        .status(0)
        .stdout_has("stopped replica.service")
        .stdout_has("started a.service")
        .stdout_has("started b.service")
        .stdout_has("started c.service")
        .active("a.service")
        .active("b.service")
        .active("c.service")
        .inactive("replica.service")
        .no_jobs()
        .run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn parallel_reports_each_failure_without_holding_back_the_others() {
    let t = parallel_site("  - name: bad.service\n    settle: 2s\n")
        .unit(Unit::dies_after_1s("bad.service"))
        .primary()
        .status(1)
        .stdout_has("started a.service")
        .stdout_has("started c.service")
        .stderr_has("bad.service did not start: went ")
        .stderr_has("bad.service | lost connection to database")
        .active("a.service")
        .active("c.service")
        .inactive("replica.service");
    t.run();
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn why_a_unit_failed_reaches_the_json_the_metrics_and_the_hooks_as_a_code() {
    // A start that never finishes, then one that is held back by it.
    let hook = "env | grep ^FAILOVER_MANAGER_REASONS= > /run/fm-test/reasons";
    let yaml = format!(
        "check:\n  command: [/bin/sh, -c, \"exit 0\"]\n  timeout: 5s\n\
         hooks:\n  on_failure: {{command: [/bin/sh, -c, {hook:?}]}}\n\
         defaults: {{ verify_timeout: 1s, settle: 0s }}\nunits:\n  - slow.service\n  - app.service\n"
    );
    let ran = Test::new()
        .unit(Unit::never_ready("slow.service"))
        .unit(Unit::simple("app.service"))
        .config(&yaml)
        .before(&["install", "-d", "-m", "0755", TEXTFILE_DIR])
        .args(&["reconcile", "--output", "json", "--metrics-file", PROM])
        .status(1)
        .any_stdout()
        .stderr_has("slow.service did not start: still activating")
        .run();
    let Some(r) = ran else { return };
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    let outcome = |i: usize| v["units"][i]["outcome"].clone();
    assert_eq!(outcome(0)["status"], "failed", "{v}");
    assert_eq!(outcome(0)["reason_code"], "timeout", "{v}");
    assert!(
        outcome(0)["reason"]
            .as_str()
            .is_some_and(|s| s.starts_with("still activating")),
        "the words stay: {v}"
    );
    assert_eq!(outcome(1)["status"], "skipped", "{v}");
    assert_eq!(outcome(1)["reason_code"], "earlier_start_failed", "{v}");
    assert_eq!(outcome(1)["reason"], "slow.service failed before it", "{v}");
    let text = r.sandbox.read(PROM);
    for series in [
        "failover_manager_unit_failed{unit=\"slow.service\",when=\"primary\",reason=\"timeout\"}",
        "failover_manager_unit_failed{unit=\"app.service\",when=\"primary\",reason=\"earlier_start_failed\"}",
    ] {
        assert_eq!(sample(&text, series), Some(1.0), "{series} in\n{text}");
    }
    assert_eq!(
        r.sandbox.read("/run/fm-test/reasons"),
        "FAILOVER_MANAGER_REASONS=slow.service=timeout app.service=earlier_start_failed\n"
    );
}
