//! Installable like a real tool: the man pages and completions build.rs generates from the clap
//! definition, `--version`, `make install` (into a directory, and into a real systemd), and the
//! .deb that `cargo deb` builds from Cargo.toml's metadata, installed with dpkg in a sandbox.
//!
//! Everything here uses the binary under test and the assets built with it
//! (`target/<profile>/assets/`): nothing is compiled again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::sandbox::Sandbox;
use crate::test::{CONFIG, Test};
use crate::unit::Unit;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_failover-manager");
const SUBCOMMANDS: [&str; 10] = [
    "reconcile",
    "diff",
    "validate",
    "pause",
    "resume",
    "watch",
    "status",
    "switchover",
    "promote",
    "page",
];

/// `target/<profile>`: the binary under test, and in `assets/` what build.rs generated with it.
fn artifacts() -> &'static Path {
    Path::new(BIN).parent().expect("the binary has a directory")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The long options `failover-manager [SUBCOMMAND] --help` lists, as `--name`.
fn long_options(sub: Option<&str>) -> Vec<String> {
    let mut argv: Vec<&str> = sub.into_iter().collect();
    argv.push("--help");
    let out = Command::new(BIN)
        .args(&argv)
        .output()
        .expect("run the binary");
    let help = succeeded("--help", &out);
    let mut opts: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_owned()
        })
        .collect();
    opts.sort();
    opts.dedup();
    assert!(opts.contains(&"--help".to_owned()), "{help}");
    opts
}

/// The text of every file under `dir`, relative path → mode, sorted.
fn tree(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.push((
                    format!("/{}", rel.display()),
                    meta.permissions().mode() & 0o7777,
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A directory of the host's, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("fm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{ROOT}/{dir}"))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// `make install` (or uninstall) of the build under test, without building: ARTIFACTS names it.
fn make(target: &str, vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("make");
    cmd.args(["-s", "-C", ROOT, target])
        .arg(format!("ARTIFACTS={}", artifacts().display()));
    for (k, v) in vars {
        cmd.arg(format!("{k}={v}"));
    }
    succeeded(&format!("make {target}"), &cmd.output().expect("run make"))
}

/// Completes `words` (the last one being typed) with the bash completion script at `script`,
/// the way bash does on TAB; `run` executes the bash command line (on the host, or in a sandbox).
fn bash_complete(run: impl Fn(&[&str]) -> Output, script: &str, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = format!(
        ". {script} && COMP_WORDS=({}) && COMP_CWORD={} && _failover__manager failover-manager '{}' '{}' \
         && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = run(&["bash", "-c", &line]);
    succeeded("bash completion", &out)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn man_pages_and_completions_cover_every_subcommand_and_option() {
    let assets = artifacts().join("assets");
    // roff writes a dash as `\-`; man shows it as `-`.
    let man = |name: &str| read(&assets.join("man").join(name)).replace("\\-", "-");

    let main = man("failover-manager.1");
    assert!(main.contains(".TH failover-manager 1"), "{main}");
    for section in [
        "SYNOPSIS",
        "OPTIONS",
        "SUBCOMMANDS",
        "\"EXIT STATUS\"",
        "FILES",
    ] {
        assert!(main.contains(&format!("\n.SH {section}\n")), "no {section}");
    }
    for opt in long_options(None) {
        assert!(main.contains(&opt), "failover-manager.1 lacks {opt}");
    }
    for code in ["75", "78"] {
        assert!(main.contains(&format!("\\fB{code}\\fR")), "no exit {code}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            main.contains(&format!("failover-manager-{sub}(1)")),
            "failover-manager.1 lacks {sub}"
        );
        let page = man(&format!("failover-manager-{sub}.1"));
        for opt in long_options(Some(sub)) {
            assert!(page.contains(&opt), "failover-manager-{sub}.1 lacks {opt}");
        }
        // What a package installs: the same page, gzipped.
        let gz = assets.join(format!("man/failover-manager-{sub}.1.gz"));
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(&gz)
            .output()
            .expect("gzip");
        assert_eq!(succeeded("gzip -dc", &out).replace("\\-", "-"), page);
    }
    // The config file's page (what it says is the crate's test: config::reference), named by
    // the main page, and gzipped as well.
    assert!(main.contains("failover-manager.yaml(5)"), "{main}");
    let page = man("failover-manager.yaml.5");
    assert!(page.contains(".TH failover-manager.yaml 5 "), "{page}");
    let gz = assets.join("man/failover-manager.yaml.5.gz");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .output()
        .expect("gzip");
    assert_eq!(succeeded("gzip -dc", &out).replace("\\-", "-"), page);

    let completions = assets.join("completions");
    for file in [
        "failover-manager.bash",
        "_failover-manager",
        "failover-manager.fish",
    ] {
        let script = read(&completions.join(file));
        for word in SUBCOMMANDS
            .iter()
            .copied()
            .chain(["config", "dry-run", "lock-wait", "reason"])
        {
            assert!(script.contains(word), "{file} lacks {word}");
        }
    }

    // The bash script really completes, subcommands and a subcommand's options alike.
    let bash = completions.join("failover-manager.bash");
    let host = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("bash")
    };
    let bash = bash.to_str().expect("utf-8 path");
    let top = bash_complete(host, bash, &["failover-manager", ""]);
    for sub in SUBCOMMANDS {
        assert!(top.contains(&sub.to_owned()), "{top:?}");
    }
    assert_eq!(
        bash_complete(host, bash, &["failover-manager", "reconcile", "--dr"]),
        ["--dry-run"]
    );
    assert_eq!(
        bash_complete(host, bash, &["failover-manager", "-q", "pause", "--re"]),
        ["--reason"]
    );
}

#[test]
fn version_names_the_package_version_and_the_git_revision() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    let version = succeeded("--version", &out);
    let want = format!("failover-manager {}", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&want), "{version:?}");
    // build.rs asks git the same question (and nothing when this is no checkout of ours).
    if Path::new(ROOT).join(".git").exists() {
        let rev = Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(ROOT)
            .output()
            .ok()
            .filter(|r| r.status.success());
        if let Some(rev) = rev {
            let rev = text(&rev.stdout);
            assert_eq!(version.trim(), format!("{want} (git {})", rev.trim()));
        }
    } else {
        assert_eq!(version.trim(), want);
    }
    // The man page says the same version.
    let man = read(&artifacts().join("assets/man/failover-manager.1"));
    assert!(man.contains(version.trim()), "{man}");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn make_install_installs_everything_and_uninstall_removes_it() {
    let dest = TempDir::new("make-install");
    let destdir = dest.0.to_str().expect("utf-8 temp dir");
    make("install", &[("DESTDIR", destdir)]);

    let mut want: Vec<(String, u32)> = vec![
        ("/usr/local/bin/failover-manager".into(), 0o755),
        ("/etc/failover-manager/config.yaml.example".into(), 0o644),
        (
            "/usr/local/lib/failover-manager/keepalived/notify-failover-manager".into(),
            0o755,
        ),
        (
            "/usr/local/lib/failover-manager/keepalived/keepalived.service.d/failover-manager.conf"
                .into(),
            0o644,
        ),
        (
            "/usr/local/share/bash-completion/completions/failover-manager".into(),
            0o644,
        ),
        (
            "/usr/local/share/zsh/site-functions/_failover-manager".into(),
            0o644,
        ),
        (
            "/usr/local/share/fish/vendor_completions.d/failover-manager.fish".into(),
            0o644,
        ),
        ("/usr/local/share/man/man1/failover-manager.1".into(), 0o644),
        (
            "/usr/local/share/man/man5/failover-manager.yaml.5".into(),
            0o644,
        ),
    ];
    for unit in file_names("units") {
        want.push((format!("/usr/local/lib/systemd/system/{unit}"), 0o644));
    }
    for check in file_names("examples/checks") {
        want.push((
            format!("/usr/local/lib/failover-manager/checks/{check}"),
            0o755,
        ));
    }
    for sub in SUBCOMMANDS {
        want.push((
            format!("/usr/local/share/man/man1/failover-manager-{sub}.1"),
            0o644,
        ));
    }
    want.sort();
    assert_eq!(tree(&dest.0), want);

    let service = read(
        &dest
            .0
            .join("usr/local/lib/systemd/system/failover-manager.service"),
    );
    assert!(
        service.contains("\nExecStart=/usr/local/bin/failover-manager reconcile\n"),
        "{service}"
    );

    make("uninstall", &[("DESTDIR", destdir)]);
    assert_eq!(tree(&dest.0), Vec::new(), "left behind by make uninstall");
}

/// Polls `f` for up to `secs` seconds.
fn eventually(secs: u64, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn is_enabled(sb: &Sandbox, unit: &str) -> String {
    text(&sb.exec(&["systemctl", "is-enabled", unit]).stdout)
        .trim()
        .to_owned()
}

/// A host the way `Test` sets one up (app.service managed, this host the primary, a config at
/// /etc/failover-manager/config.yaml), without the policy-rc.d of container images: it forbids
/// every start and stop by a maintainer script and would hide one that started a unit.
fn host() -> Option<Sandbox> {
    let sb = Test::new()
        .unit(Unit::simple("app.service"))
        .primary()
        .setup()?;
    sb.ok(&["rm", "-f", "/usr/sbin/policy-rc.d"]);
    Some(sb)
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn make_install_into_a_real_systemd_works_there() {
    let Some(sb) = host() else { return };
    let root = sb.path("/");
    make("install", &[("DESTDIR", root.to_str().expect("utf-8"))]);
    sb.daemon_reload();

    // Installed, not enabled, nothing started.
    assert_eq!(is_enabled(&sb, "failover-manager.timer"), "disabled");
    assert_eq!(is_enabled(&sb, "failover-manager.path"), "disabled");
    assert_eq!(sb.state("failover-manager.timer"), "inactive");
    // (Debian's /usr/local/man is a link to share/man, and man may name either.)
    let man = sb.ok(&["man", "-w", "failover-manager"]);
    let man = sb.ok(&["realpath", man.trim()]);
    assert_eq!(man.trim(), "/usr/local/share/man/man1/failover-manager.1");
    sb.ok(&["man", "-w", "failover-manager-reconcile"]);
    let man = sb.ok(&["man", "-w", "failover-manager.yaml"]);
    let man = sb.ok(&["realpath", man.trim()]);
    assert_eq!(
        man.trim(),
        "/usr/local/share/man/man5/failover-manager.yaml.5"
    );
    let version = sb.ok(&["/usr/local/bin/failover-manager", "--version"]);
    assert_eq!(
        version,
        text(&Command::new(BIN).arg("-V").output().expect("run").stdout)
    );
    let completed = bash_complete(
        |argv| sb.exec(argv),
        "/usr/local/share/bash-completion/completions/failover-manager",
        &["failover-manager", "diff", "--out"],
    );
    assert_eq!(completed, ["--output"]);

    // The installed service runs the installed binary, which reconciles.
    sb.systemctl(&["start", "failover-manager.service"]);
    assert_eq!(sb.state("app.service"), "active");
}

/// cargo-deb builds the .deb. Without it the build ignores the test (build.rs:
/// `cfg(fm_no_cargo_deb)`, never under CI=true); one that runs must run.
fn cargo_deb() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let found = Command::new(&cargo)
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "cargo-deb is not installed (cargo install cargo-deb --locked): the .deb cannot be tested"
    );
    let mut cmd = Command::new(cargo);
    cmd.arg("deb").current_dir(ROOT);
    cmd
}

/// cargo-deb deletes every failover-manager_*.deb in target/debian/ (what `make deb` made), even
/// when told to write elsewhere: this puts them back when dropped.
struct KeepDebs(Vec<(PathBuf, Vec<u8>)>);

impl KeepDebs {
    fn new() -> KeepDebs {
        let dir = artifacts().parent().map(|t| t.join("debian"));
        let debs = dir
            .and_then(|d| std::fs::read_dir(d).ok())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .filter_map(|p| Some((p.clone(), std::fs::read(&p).ok()?)))
            .collect();
        KeepDebs(debs)
    }
}

impl Drop for KeepDebs {
    fn drop(&mut self) {
        for (path, bytes) in &self.0 {
            if !path.exists() {
                let _ = std::fs::write(path, bytes);
            }
        }
    }
}

#[test]
#[cfg_attr(
    any(fm_not_root, fm_no_cargo_deb),
    ignore = "needs root (boots a real systemd sandbox) and cargo-deb (make setup)"
)]
fn deb_installs_units_disabled_and_not_started_and_works() {
    let mut cargo_deb = cargo_deb();
    let Some(sb) = host() else { return };

    // The package of the build under test, as `make deb` makes it from a release build.
    let profile = match artifacts().file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(p) => p,
        None => panic!("no profile directory: {}", artifacts().display()),
    };
    let deb = "/tmp/failover-manager.deb";
    let _kept = KeepDebs::new();
    let out = cargo_deb
        .args([
            "--locked",
            "--no-build",
            "--fast",
            "--profile",
            profile,
            "--output",
        ])
        .arg(sb.path(deb))
        .output()
        .expect("run cargo deb");
    succeeded("cargo deb", &out);

    // Debian's own checker finds no error in it (its one warning: CONTRIBUTING.md, Packaging).
    let out = sb.exec(&["lintian", deb]);
    let report = text(&out.stdout);
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty(), "lintian:\n{report}{}", text(&out.stderr));
    assert!(
        out.status.success(),
        "lintian:\n{report}{}",
        text(&out.stderr)
    );

    let dpkg = |argv: &[&str]| {
        let out = sb.exec(argv);
        succeeded(&argv.join(" "), &out)
    };
    dpkg(&["dpkg", "-i", deb]);
    // The binary links libsystemd (sd-bus): dpkg-shlibdeps ($auto) must have said so.
    let depends = dpkg(&["dpkg-query", "-W", "-f=${Depends}\n", "failover-manager"]);
    assert!(
        depends.contains("libsystemd0") && depends.contains("libc6"),
        "{depends}"
    );

    // Every shipped unit is installed; none is enabled, none started.
    for unit in file_names("units") {
        assert!(
            sb.path(&format!("/usr/lib/systemd/system/{unit}"))
                .is_file(),
            "{unit} not installed"
        );
    }
    assert_eq!(is_enabled(&sb, "failover-manager.timer"), "disabled");
    assert_eq!(is_enabled(&sb, "failover-manager.path"), "disabled");
    assert_eq!(is_enabled(&sb, "failover-manager.service"), "static");
    for unit in [
        "failover-manager.timer",
        "failover-manager.path",
        "failover-manager.service",
        "app.service",
    ] {
        assert_eq!(sb.state(unit), "inactive", "{unit} after install");
    }
    assert!(!sb.jobs().contains("failover-manager"), "{}", sb.jobs());

    // The rest of the package, where a Debian system looks for it.
    let man = sb.ok(&["man", "-w", "failover-manager"]);
    assert_eq!(man.trim(), "/usr/share/man/man1/failover-manager.1.gz");
    let man = sb.ok(&["man", "-w", "failover-manager.yaml"]);
    assert_eq!(man.trim(), "/usr/share/man/man5/failover-manager.yaml.5.gz");
    let version = sb.ok(&["failover-manager", "--version"]);
    assert_eq!(
        version,
        text(&Command::new(BIN).arg("-V").output().expect("run").stdout)
    );
    let listed = dpkg(&["dpkg", "-L", "failover-manager"]);
    for path in [
        "/usr/bin/failover-manager",
        "/usr/share/bash-completion/completions/failover-manager",
        "/usr/share/zsh/vendor-completions/_failover-manager",
        "/usr/share/fish/vendor_completions.d/failover-manager.fish",
        "/usr/share/man/man1/failover-manager-reconcile.1.gz",
        "/usr/lib/failover-manager/keepalived/notify-failover-manager",
        "/usr/share/doc/failover-manager/examples/etcd/failover-manager.timer.d/cadence.conf",
        "/usr/lib/failover-manager/keepalived/keepalived.service.d/failover-manager.conf",
        "/usr/share/doc/failover-manager/examples/prometheus/alerts.yml",
    ] {
        assert!(
            listed.lines().any(|l| l == path),
            "{path} not in:\n{listed}"
        );
    }
    // README.md and the docs it links to, where its relative links find them.
    let docs = file_names("docs");
    assert!(docs.iter().any(|d| d == "runbook.md"), "{docs:?}");
    for path in std::iter::once("/usr/share/doc/failover-manager/README.md".to_owned()).chain(
        docs.iter()
            .map(|d| format!("/usr/share/doc/failover-manager/docs/{d}")),
    ) {
        assert!(
            listed.lines().any(|l| l == path),
            "{path} not in:\n{listed}"
        );
    }
    for check in file_names("examples/checks") {
        let path = format!("/usr/lib/failover-manager/checks/{check}");
        assert!(
            listed.lines().any(|l| l == path),
            "{path} not in:\n{listed}"
        );
    }
    // The licence, as Cargo.toml and LICENSE-MIT say it, and this version's changelog entry.
    let copyright = sb.read("/usr/share/doc/failover-manager/copyright");
    let license = env!("CARGO_PKG_LICENSE").replace(" OR ", " or ");
    assert!(
        copyright.contains(&format!("\nLicense: {license}\n")),
        "{copyright}"
    );
    let mit = read(&Path::new(ROOT).join("LICENSE-MIT"));
    let (notice, terms) = mit
        .split_once("\n\n")
        .expect("LICENSE-MIT: notice, then terms");
    let holder = notice.trim().trim_start_matches("Copyright (c) ");
    assert!(
        copyright.contains(&format!("\nCopyright: {holder}\n")),
        "{copyright}"
    );
    for line in terms.lines().filter(|l| !l.is_empty()) {
        assert!(
            copyright.contains(&format!("\n {line}\n")),
            "{line:?} not in:\n{copyright}"
        );
    }
    assert!(
        copyright.contains("/usr/share/common-licenses/Apache-2.0"),
        "{copyright}"
    );
    let changelog = sb.ok(&[
        "zcat",
        "/usr/share/doc/failover-manager/changelog.Debian.gz",
    ]);
    let top = format!("failover-manager ({}-1) ", env!("CARGO_PKG_VERSION"));
    assert!(changelog.starts_with(&top), "{changelog}");
    let conffiles = dpkg(&["dpkg-query", "-W", "-f=${Conffiles}\n", "failover-manager"]);
    assert!(
        conffiles.contains("/etc/failover-manager/config.yaml.example "),
        "{conffiles}"
    );
    // The operator's config is theirs: the package neither ships nor touches it.
    assert!(!listed.lines().any(|l| l == CONFIG), "{listed}");
    let config = sb.read(CONFIG);

    // Enabled by the operator, the timer runs the packaged service, which reconciles.
    sb.systemctl(&["enable", "--now", "failover-manager.timer"]);
    assert!(
        eventually(10, || sb.state("app.service") == "active"),
        "the packaged timer did not reconcile"
    );

    // An upgrade (here: the same package again) keeps it enabled and running.
    dpkg(&["dpkg", "-i", deb]);
    assert_eq!(is_enabled(&sb, "failover-manager.timer"), "enabled");
    assert_eq!(sb.state("failover-manager.timer"), "active");

    // Removal stops and removes the units and keeps the conffile; purge removes that too; the
    // operator's config.yaml and what failover-manager started stay.
    dpkg(&["dpkg", "-r", "failover-manager"]);
    assert_eq!(sb.state("failover-manager.timer"), "inactive");
    assert!(!sb.path("/usr/bin/failover-manager").exists());
    assert!(
        !sb.path("/usr/lib/systemd/system/failover-manager.timer")
            .exists()
    );
    assert!(
        sb.path("/etc/failover-manager/config.yaml.example")
            .exists()
    );
    dpkg(&["dpkg", "--purge", "failover-manager"]);
    assert!(
        !sb.path("/etc/failover-manager/config.yaml.example")
            .exists()
    );
    assert_eq!(sb.read(CONFIG), config);
    assert_eq!(sb.state("app.service"), "active");
}
