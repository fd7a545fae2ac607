//! A Prometheus text-format file for node_exporter's textfile collector: "should this service
//! be running here right now, and is it?". Gauges only: a run is stateless, so are they.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::check::CheckResult;
use crate::domain::{Desired, Outcome, Role, StepResult, UnitState};
use crate::plan::Plan;
use crate::secure_fs::{self, FsError};
use crate::security::SecurityError;

/// What one run knew when it ended.
pub struct Snapshot<'a> {
    pub check: Option<&'a CheckResult>,
    pub plan: Option<&'a Plan>,
    /// Unit states after the run (re-observed when something was done), in config order.
    pub observed_after: Option<&'a [UnitState]>,
    /// What became of each step of the run.
    pub results: &'a [StepResult],
    pub success: bool,
    pub paused: bool,
    /// `site:`, a label on every sample.
    pub site: Option<&'a str>,
    /// Self-fencing, when `check.fence_after` is set.
    pub fence: Option<&'a crate::fence::View>,
    /// The open incident (`incident`), if a run needs a person.
    pub incident: Option<&'a crate::incident::Incident>,
    pub finished: SystemTime,
    pub duration: Duration,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="1"}` with the site's label in front: `{site="dc1",a="1"}`.
fn with_site(labels: &str, site: Option<&str>) -> String {
    let Some(site) = site else {
        return labels.to_owned();
    };
    let site = format!("site=\"{}\"", escape(site));
    match labels.strip_prefix('{') {
        Some(rest) => format!("{{{site},{rest}"),
        None => format!("{{{site}}}"),
    }
}

/// The text of the metrics file, every sample with the site's label.
struct Gauges<'a> {
    out: String,
    site: Option<&'a str>,
}

impl Gauges<'_> {
    fn gauge(&mut self, name: &str, help: &str, samples: &[(String, f64)]) {
        self.out
            .push_str(&format!("# HELP failover_manager_{name} {help}\n"));
        self.out
            .push_str(&format!("# TYPE failover_manager_{name} gauge\n"));
        for (labels, v) in samples {
            let labels = with_site(labels, self.site);
            self.out
                .push_str(&format!("failover_manager_{name}{labels} {v}\n"));
        }
    }

    /// One sample without labels.
    fn one(&mut self, name: &str, help: &str, v: f64) {
        self.gauge(name, help, &[(String::new(), v)]);
    }
}

fn b(x: bool) -> f64 {
    if x { 1.0 } else { 0.0 }
}

pub fn render(s: &Snapshot) -> String {
    let mut g = Gauges {
        out: String::new(),
        site: s.site,
    };
    run_gauges(&mut g, s);
    if let Some(c) = s.check {
        check_gauges(&mut g, c);
    }
    incident_gauges(&mut g, s.incident);
    g.one(
        "paused",
        "Whether this host is in maintenance mode (failover-manager pause).",
        b(s.paused),
    );
    if let Some(f) = s.fence {
        fence_gauges(&mut g, f);
    }
    if let Some(plan) = s.plan {
        unit_gauges(&mut g, plan, s.observed_after);
        failed_gauges(&mut g, plan, s.results);
    }
    g.out
}

fn run_gauges(g: &mut Gauges, s: &Snapshot) {
    let role = s.check.map_or(Role::Unknown, |c| c.role);
    g.gauge(
        "role",
        "The role as known by the last run (1 on the role it found).",
        &[Role::Primary, Role::Standby, Role::Unknown]
            .map(|r| (format!("{{role=\"{r}\"}}"), b(r == role))),
    );
    g.one(
        "last_run_success",
        "Whether the last run converged (1) or needs a human (0).",
        b(s.success),
    );
    let ts = s
        .finished
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    g.one(
        "last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        ts,
    );
    g.one(
        "last_run_duration_seconds",
        "How long the last run took.",
        s.duration.as_secs_f64(),
    );
}

fn incident_gauges(g: &mut Gauges, i: Option<&crate::incident::Incident>) {
    g.one(
        "incident_open",
        "Whether this host's runs need a person (an incident: from the first such run to the first run that does not).",
        b(i.is_some()),
    );
    g.one(
        "incident_paging",
        "Whether the open incident pages (docs/metrics-and-alerts.md): 1 from its first pageable run to its end.",
        b(i.is_some_and(|i| i.pageable)),
    );
    if let Some(i) = i {
        g.one(
            "incident_start_timestamp_seconds",
            "When the open incident started (Unix time).",
            i.since as f64,
        );
    }
}

fn check_gauges(g: &mut Gauges, c: &CheckResult) {
    g.one(
        "check_duration_seconds",
        "How long the primary check took.",
        c.duration.as_secs_f64(),
    );
    let code = c.exit_code().map_or(-1.0, f64::from);
    g.one(
        "check_exit_code",
        "The primary check's exit code (-1: no exit code: timeout, signal, not started).",
        code,
    );
    if let Some(a) = c.etcd() {
        g.one(
            "epoch",
            "The fencing token: the etcd revision at which this host's site took the role (0: not primary).",
            a.verdict.epoch.map_or(0.0, |e| e as f64),
        );
        if let Some(ttl) = a.ttl_left {
            g.one(
                "lease_ttl_left_seconds",
                "Seconds left on the primary site's etcd lease after this run renewed or took it.",
                ttl as f64,
            );
        }
    }
}

fn fence_gauges(g: &mut Gauges, f: &crate::fence::View) {
    g.one(
        "role_unknown_seconds",
        "How long the check has not given a definite answer (0: this run's did).",
        f.unknown_for().as_secs_f64(),
    );
    g.one(
        "fenced",
        "Whether this host fenced itself: role unknown for check.fence_after, primary units stopped.",
        b(f.fenced()),
    );
    if let crate::fence::Status::Waiting { remaining, .. } = f.status {
        g.one(
            "fence_in_seconds",
            "How long until this host fences itself if the role stays unknown.",
            remaining.as_secs_f64(),
        );
    }
    if let Some(c) = &f.last_confirmed {
        g.one(
            "last_confirmed_timestamp_seconds",
            "When the check last gave a definite answer (Unix time).",
            c.at_unix as f64,
        );
    }
}

fn unit_gauges(g: &mut Gauges, plan: &Plan, after: Option<&[UnitState]>) {
    let label = |u: &crate::plan::UnitPlan| {
        format!(
            "{{unit=\"{}\",when=\"{}\"}}",
            escape(&u.name),
            u.when.as_str()
        )
    };
    let desired: Vec<(String, f64)> = plan
        .units
        .iter()
        .filter_map(|u| u.desired.map(|d| (label(u), b(d == Desired::Running))))
        .collect();
    g.gauge(
        "unit_desired_running",
        "Whether the unit should be running on this host now (absent while the role is unknown).",
        &desired,
    );
    let observed: Vec<(String, f64)> = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let state = after.and_then(|a| a.get(i)).unwrap_or(&u.observed);
            // Running means up: a unit still `activating` (stuck, or crash-looping through
            // auto-restart) is not, or `desired != running` could never fire for it.
            (label(u), b(state.is_running()))
        })
        .collect();
    g.gauge(
        "unit_running",
        "Whether the unit was up (active or reloading) when the run ended.",
        &observed,
    );
}

/// Each unit whose step failed or was skipped, with why: a timeout is not a crash.
fn failed_gauges(g: &mut Gauges, plan: &Plan, results: &[StepResult]) {
    let failed: Vec<(String, f64)> = results
        .iter()
        .filter_map(|r| {
            let code = match &r.outcome {
                Outcome::Done { .. } => return None,
                Outcome::Failed { reason, .. } => reason.code(),
                Outcome::Skipped { reason } => reason.code(),
            };
            let when = plan.units.get(r.unit).map_or("", |u| u.when.as_str());
            Some((
                format!(
                    "{{unit=\"{}\",when=\"{when}\",reason=\"{code}\"}}",
                    escape(&r.name)
                ),
                1.0,
            ))
        })
        .collect();
    g.gauge(
        "unit_failed",
        "1 for each unit whose start or stop failed or was skipped in the last run; reason as in --output json's reason_code.",
        &failed,
    );
}

/// Writes the file as root writes any file (`secure_fs`): atomically, through a temporary
/// name that does not end in `.prom` (node_exporter would read it half-written), mode 0644 so
/// a node_exporter running as its own user can read it. Its directory must be root's alone.
pub fn write(path: &Path, text: &str) -> Result<(), FsError> {
    secure_fs::write_atomic("metrics file", path, text.as_bytes(), 0o644).map_err(|e| match e {
        FsError::Unsafe(e) => FsError::Unsafe(with_fix(e)),
        other => other,
    })
}

/// For `validate`: the part of the metrics file's directory that exists must be root's alone
/// (a missing one is reported by the run that cannot write there).
pub fn check_dir(path: &Path) -> Result<(), SecurityError> {
    let dir = path.parent().unwrap_or(path);
    crate::security::check("metrics file directory", dir).map_err(with_fix)
}

/// The usual cause is a directory that belongs to the exporter's user (Debian's
/// /var/lib/prometheus): moving the file is the fix, more than a chown.
fn with_fix(e: SecurityError) -> SecurityError {
    match e {
        SecurityError::Unsafe {
            what,
            path,
            problem,
            fix,
        } => SecurityError::Unsafe {
            what,
            path,
            problem,
            fix: format!(
                "{fix}; or write metrics_file to a directory only root can write, and point \
                 node_exporter's --collector.textfile.directory at it (docs/metrics-and-alerts.md)"
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Exit;
    use crate::config::UnitConfig;
    use crate::domain::When;
    use crate::plan::plan;

    fn snapshot_text(role: Role, exit: Exit, observed_after: Option<&[UnitState]>) -> String {
        snapshot_with(role, exit, observed_after, None, None)
    }

    fn snapshot_with(
        role: Role,
        exit: Exit,
        observed_after: Option<&[UnitState]>,
        site: Option<&str>,
        fence: Option<&crate::fence::View>,
    ) -> String {
        // An open incident: every gauge there is.
        let incident = crate::incident::Incident {
            id: 1_699_999_000_000,
            since: 1_699_999_000,
            kind: crate::incident::Kind::Failed,
            exit: 1,
            pageable: true,
            ended: None,
        };
        let units: Vec<UnitConfig> = [("app.service", When::Primary), ("re\"plica", When::Standby)]
            .iter()
            .map(|(n, w)| UnitConfig::for_test(n, *w))
            .collect();
        let p = plan(role, &units, &[UnitState::Inactive, UnitState::Active]);
        let c = CheckResult {
            role,
            answer: crate::check::Answer::Exit(exit),
            duration: Duration::from_millis(250),
            output: vec![],
            sent: crate::clock::at("boot", 0),
        };
        let failed = [StepResult {
            unit: 0,
            name: "app.service".into(),
            action: crate::domain::Action::Start,
            outcome: Outcome::Failed {
                reason: crate::domain::FailReason::Timeout {
                    sub: "start".into(),
                    job: None,
                    limit: Duration::from_secs(30),
                },
                state: UnitState::Activating,
                cause: String::new(),
                journal: Vec::new(),
                elapsed: Duration::from_secs(30),
            },
        }];
        render(&Snapshot {
            check: Some(&c),
            plan: Some(&p),
            observed_after,
            results: &failed,
            success: true,
            paused: false,
            site,
            fence,
            incident: Some(&incident),
            finished: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(1500),
        })
    }

    #[test]
    fn the_etcd_witness_shows_the_fencing_token_and_the_lease() {
        let answer = |epoch: Option<i64>, ttl: Option<i64>| crate::witness::Answer {
            verdict: crate::election::Verdict {
                role: Role::Primary,
                why: crate::election::Why::Holds,
                epoch,
                lease: Some(7),
            },
            endpoint: "http://127.0.0.1:2379".into(),
            key: "/k".into(),
            key_revision: 42,
            ttl_left: ttl,
            sent: crate::clock::at("boot", 0),
        };
        let render_with = |a: crate::witness::Answer| {
            let c = CheckResult {
                role: a.verdict.role,
                answer: crate::check::Answer::Etcd(a),
                duration: Duration::from_millis(3),
                output: vec![],
                sent: crate::clock::at("boot", 0),
            };
            render(&Snapshot {
                check: Some(&c),
                plan: None,
                observed_after: None,
                results: &[],
                success: true,
                paused: false,
                site: Some("dc1"),
                fence: None,
                incident: None,
                finished: SystemTime::UNIX_EPOCH,
                duration: Duration::ZERO,
            })
        };
        let t = render_with(answer(Some(42), Some(30)));
        assert!(
            t.contains("failover_manager_epoch{site=\"dc1\"} 42\n"),
            "{t}"
        );
        assert!(
            t.contains("failover_manager_lease_ttl_left_seconds{site=\"dc1\"} 30\n"),
            "{t}"
        );
        assert!(
            t.contains("failover_manager_check_exit_code{site=\"dc1\"} -1\n"),
            "{t}"
        );
        let t = render_with(answer(None, None));
        assert!(
            t.contains("failover_manager_epoch{site=\"dc1\"} 0\n"),
            "{t}"
        );
        assert!(!t.contains("lease_ttl_left"), "{t}");
    }

    #[test]
    fn the_site_labels_every_sample() {
        let t = snapshot_with(Role::Primary, Exit::Code(0), None, Some("dc1"), None);
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.contains("{site=\"dc1\""), "{l}");
        }
        assert!(t.contains("failover_manager_role{site=\"dc1\",role=\"primary\"} 1\n"));
        assert!(t.contains("failover_manager_paused{site=\"dc1\"} 0\n"));
    }

    /// The shipped alert rules only name metrics this file has: a renamed metric would
    /// silence an alert without a word.
    #[test]
    fn every_metric_the_alert_rules_use_is_rendered() {
        let view = crate::fence::View {
            after: Duration::from_secs(60),
            status: crate::fence::Status::Waiting {
                unknown_for: Duration::from_secs(1),
                remaining: Duration::from_secs(59),
            },
            last_confirmed: None,
            previous: None,
        };
        let t = snapshot_with(Role::Primary, Exit::Code(0), None, Some("a"), Some(&view));
        let rules = include_str!("../examples/prometheus/alerts.yml");
        let mut used: Vec<&str> = rules
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("failover_manager_"))
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 6, "{used:?}");
        for m in used {
            assert!(t.contains(&format!("\n{m}{{")), "{m} is not rendered:\n{t}");
        }
    }

    #[test]
    fn renders_every_gauge() {
        let after = [UnitState::Active, UnitState::Inactive];
        let t = snapshot_text(Role::Primary, Exit::Code(0), Some(&after));
        for line in [
            "# TYPE failover_manager_role gauge",
            "failover_manager_role{role=\"primary\"} 1",
            "failover_manager_role{role=\"standby\"} 0",
            "failover_manager_role{role=\"unknown\"} 0",
            "failover_manager_last_run_success 1",
            "failover_manager_last_run_timestamp_seconds 1700000000",
            "failover_manager_last_run_duration_seconds 1.5",
            "failover_manager_check_duration_seconds 0.25",
            "failover_manager_check_exit_code 0",
            "failover_manager_paused 0",
            "failover_manager_unit_desired_running{unit=\"app.service\",when=\"primary\"} 1",
            "failover_manager_unit_desired_running{unit=\"re\\\"plica\",when=\"standby\"} 0",
            "failover_manager_unit_running{unit=\"app.service\",when=\"primary\"} 1",
            "failover_manager_unit_running{unit=\"re\\\"plica\",when=\"standby\"} 0",
            "failover_manager_unit_failed{unit=\"app.service\",when=\"primary\",reason=\"timeout\"} 1",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
    }

    #[test]
    fn unknown_role_has_no_desired_state_and_no_exit_code() {
        let t = snapshot_text(Role::Unknown, Exit::TimedOut, None);
        assert!(t.contains("failover_manager_role{role=\"unknown\"} 1"));
        assert!(t.contains("failover_manager_check_exit_code -1"));
        assert!(!t.contains("failover_manager_unit_desired_running{"), "{t}");
        // Before any action, the observed states are the ones the run started from.
        assert!(
            t.contains("failover_manager_unit_running{unit=\"re\\\"plica\",when=\"standby\"} 1")
        );
    }

    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn write_is_atomic_and_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let Some(s) = crate::secure_fs::Scratch::new("metrics") else {
            return;
        };
        let path = s.path.join("failover_manager.prom");
        let r1 = write(&path, "a 1\n");
        let r2 = write(&path, "a 2\n");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        let entries = std::fs::read_dir(&s.path).map(|d| d.count()).unwrap_or(0);
        assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
        assert_eq!(text, "a 2\n");
        assert_eq!(mode, 0o644);
        assert_eq!(entries, 1, "no temp file left behind");
    }

    /// The attack: metrics_file in a directory a user owns; the user replaces the temporary
    /// name (it used to be `.NAME.PID.tmp`) with a symlink to a root-owned file.
    #[test]
    #[cfg_attr(fm_not_root, ignore = "needs root: writes files as root")]
    fn a_user_owned_directory_is_refused_and_a_planted_link_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let Some(s) = crate::secure_fs::Scratch::new("metrics-attack") else {
            return;
        };
        let shadow = s.path.join("shadow");
        let _ = std::fs::write(&shadow, "root:$y$secret:19000::::::\n");
        let _ = std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640));
        let dir = s.user_dir("node-exporter");
        let path = dir.join("failover_manager.prom");
        let planted = dir.join(format!(".failover_manager.prom.{}.tmp", std::process::id()));
        let _ = std::os::unix::fs::symlink(&shadow, &planted);
        let e = write(&path, "failover_manager_role 1\n")
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        assert!(
            e.contains(&format!(
                "metrics file directory {}: owned by uid 65534",
                dir.display()
            )),
            "{e}"
        );
        assert!(
            e.contains(&format!("fix: chown root {}", dir.display())),
            "{e}"
        );
        assert!(e.contains("--collector.textfile.directory"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&shadow).unwrap_or_default(),
            "root:$y$secret:19000::::::\n"
        );
        let mode = std::fs::metadata(&shadow).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o640));
        assert!(!path.exists());
    }

    #[test]
    fn the_incident_shows_whether_it_pages_and_since_when() {
        let render_with = |incident: Option<&crate::incident::Incident>| {
            render(&Snapshot {
                check: None,
                plan: None,
                observed_after: None,
                results: &[],
                success: false,
                paused: false,
                site: Some("dc2"),
                fence: None,
                incident,
                finished: SystemTime::UNIX_EPOCH,
                duration: Duration::ZERO,
            })
        };
        let t = render_with(None);
        assert!(
            t.contains("failover_manager_incident_open{site=\"dc2\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("failover_manager_incident_paging{site=\"dc2\"} 0\n"),
            "{t}"
        );
        assert!(!t.contains("incident_start_timestamp"), "{t}");
        let mut i = crate::incident::Incident {
            id: 1_700_000_000_000,
            since: 1_700_000_000,
            kind: crate::incident::Kind::RoleUnknown,
            exit: 3,
            pageable: false,
            ended: None,
        };
        let t = render_with(Some(&i));
        assert!(
            t.contains("failover_manager_incident_open{site=\"dc2\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("failover_manager_incident_paging{site=\"dc2\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "failover_manager_incident_start_timestamp_seconds{site=\"dc2\"} 1700000000\n"
            ),
            "{t}"
        );
        i.pageable = true;
        let t = render_with(Some(&i));
        assert!(
            t.contains("failover_manager_incident_paging{site=\"dc2\"} 1\n"),
            "{t}"
        );
    }
}
