//! Build-time generation from the one clap definition in src/cli.rs, so that none of it can
//! drift from `--help`:
//!
//! - the man pages: `failover-manager.1` and one per subcommand (`failover-manager-diff.1`, …),
//!   each also gzipped (`.1.gz`, what Debian policy wants in a package);
//! - the config file's page, `failover-manager.yaml.5` (and `.5.gz`), from the reference in
//!   src/config/reference.rs, which the crate's tests hold to the parser;
//! - the bash, zsh and fish completions;
//! - the version string: `0.1.0 (git abc1234)` in a git checkout, `0.1.0` elsewhere
//!   (`FM_VERSION`, and `FM_GIT_REV` alone, for the crate);
//! - `--cfg fm_not_root` when the build does not run as root: the tests that need root (real
//!   systemd sandboxes, files in root's directories) are then `#[ignore]`d, so `cargo test`
//!   reports them as ignored instead of counting a test that did nothing as passed. Not under
//!   `CI=true`: there they are compiled in, run, and fail without root. Likewise
//!   `--cfg fm_no_promtool` and `--cfg fm_no_cargo_deb` when those programs are not on PATH
//!   (`make setup` installs them): the tests that run them are ignored.
//!
//! Everything is written to OUT_DIR, then copied to `target/<profile>/assets/` (next to the
//! binary), a stable path for `make install` and cargo-deb:
//!
//! ```text
//! target/release/assets/man/failover-manager.1 (.1.gz), failover-manager-<subcommand>.1 (.1.gz),
//!                           failover-manager.yaml.5 (.5.gz)
//! target/release/assets/completions/failover-manager.bash, _failover-manager, failover-manager.fish
//! ```

use std::error::Error;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

// Compiled here as well as in the crate: it must stay self-contained (see its header). Its
// argument structs are only read by the crate.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

// Likewise self-contained; its tests (the crate's) hold it to the parser.
#[path = "src/config/reference.rs"]
mod reference;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const BIN: &str = "failover-manager";

fn main() -> Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-changed=src/config/reference.rs");
    root_only_tests();
    missing_programs();

    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);

    let mut version = env("CARGO_PKG_VERSION")?;
    if let Some(rev) = git_rev(&manifest_dir) {
        println!("cargo:rustc-env=FM_GIT_REV={rev}");
        version = format!("{version} (git {rev})");
    }
    println!("cargo:rustc-env=FM_VERSION={version}");
    // clap wants a &'static str (its `string` feature is off); this process ends right after.
    let version: &'static str = Box::leak(version.into_boxed_str());

    // What `failover-manager --help` shows, with the version the binary will print (cli.rs
    // cannot see FM_VERSION while it is compiled into this script).
    let mut cmd = cli::Cli::command()
        .version(version)
        .disable_help_subcommand(true);
    cmd.build();

    let generated = out_dir.join("assets");
    let man_dir = generated.join("man");
    let completions_dir = generated.join("completions");
    for dir in [&man_dir, &completions_dir] {
        fs::create_dir_all(dir).map_err(|e| context(e, "create", dir))?;
    }
    write_man_pages(&cmd, version, &man_dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        // failover-manager.bash, _failover-manager, failover-manager.fish
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN, &mut script);
        if shell == Shell::Bash {
            script = fix_bash_subcommand_arms(script)?;
        }
        write_if_changed(&completions_dir.join(shell.file_name(BIN)), &script)?;
    }

    match stable_assets_dir(&out_dir) {
        Some(stable) => copy_tree(&generated, &stable)?,
        None => println!(
            "cargo:warning=OUT_DIR {} is not target/<profile>/build/<pkg>-<hash>/out: man pages \
             and completions are only in {}",
            out_dir.display(),
            generated.display()
        ),
    }
    Ok(())
}

/// `cfg(fm_not_root)`: see the header. Who builds is not an input cargo tracks, so a build
/// reruns this when the user's name or CI changes (sudo, runuser and su set USER); whatever
/// else slips through (a build made as another user, then run as root) is caught by the tests
/// `built_for_the_user_that_runs_them` in the crate and in tests/integration/sandbox.rs.
fn root_only_tests() {
    println!("cargo::rustc-check-cfg=cfg(fm_not_root)");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=USER");
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !root && !ci {
        println!("cargo:rustc-cfg=fm_not_root");
    }
}

/// `cfg(fm_no_promtool)`, `cfg(fm_no_cargo_deb)`: see the header. Reruns when PATH changes, or
/// when a program found is replaced; one installed later on the same PATH needs a rebuild
/// (`touch build.rs`) before its tests run (until then they are ignored, never passed).
fn missing_programs() {
    println!("cargo::rustc-check-cfg=cfg(fm_no_promtool, fm_no_cargo_deb)");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // Where `cargo install` puts cargo-deb, and cargo looks for subcommands.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    dirs.extend(cargo_home.map(|h| h.join("bin")));
    for (program, cfg) in [
        ("promtool", "fm_no_promtool"),
        ("cargo-deb", "fm_no_cargo_deb"),
    ] {
        match dirs.iter().map(|d| d.join(program)).find(|p| p.is_file()) {
            Some(found) => println!("cargo:rerun-if-changed={}", found.display()),
            None if !ci => println!("cargo:rustc-cfg={cfg}"),
            None => {}
        }
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|e| format!("${name}: {e}").into())
}

fn context(e: impl std::fmt::Display, what: &str, path: &Path) -> Box<dyn Error> {
    format!("cannot {what} {}: {e}", path.display()).into()
}

/// `git rev-parse --short HEAD` of this crate's own checkout; None without git, outside a
/// checkout, or when the crate is a subdirectory of someone else's repository (a vendored or
/// unpacked source tree), whose revision would say nothing about this code.
fn git_rev(manifest_dir: &Path) -> Option<String> {
    let git_dir = manifest_dir.join(".git");
    if !git_dir.exists() {
        return None;
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    let rev = git(&["rev-parse", "--short", "HEAD"])?;
    if !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Rebuild when HEAD moves: a checkout rewrites HEAD, a commit rewrites the branch's ref
    // (loose, or in packed-refs). Only existing files: a missing one would rerun every build.
    // (.git is a file in a worktree or submodule: then the revision is read once per clean build.)
    if git_dir.is_dir() {
        let mut watch = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
        if let Ok(head) = fs::read_to_string(git_dir.join("HEAD"))
            && let Some(r) = head.trim().strip_prefix("ref: ")
        {
            watch.push(git_dir.join(r));
        }
        for p in watch.iter().filter(|p| p.is_file()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    Some(rev)
}

/// clap_complete 4.6 spells the bash `case` arms of a hyphenated binary's subcommands
/// `failover__subcmd__manager__subcmd__diff`, while its dispatch loop arrives at
/// `failover__manager__subcmd__diff`: no option of any subcommand ever completes
/// (clap-rs/clap#6421, open). Respell the arms the way the loop does; a no-op once fixed
/// upstream. tests/integration/packaging.rs completes a subcommand's option in a real bash.
fn fix_bash_subcommand_arms(script: Vec<u8>) -> Result<Vec<u8>> {
    let script = String::from_utf8(script)?;
    let broken = format!("{}__subcmd__", BIN.replace('-', "__subcmd__"));
    let loop_spelling = format!("{}__subcmd__", BIN.replace('-', "__"));
    Ok(script.replace(&broken, &loop_spelling).into_bytes())
}

/// `failover-manager.1` (with EXIT STATUS, FILES and SEE ALSO after what clap knows), a page
/// per subcommand, as clap_mangen names them, and the config file's; each also gzipped.
fn write_man_pages(cmd: &clap::Command, version: &str, dir: &Path) -> Result<()> {
    let mut pages = vec![
        (format!("{BIN}.1"), main_page(cmd)?),
        (format!("{BIN}.yaml.5"), config_page(version)?),
    ];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        pages.push((man.get_filename(), page));
    }
    for (name, page) in pages {
        let path = dir.join(&name);
        write_if_changed(&path, &page)?;
        let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
        gz.write_all(&page)?;
        write_if_changed(&dir.join(format!("{name}.gz")), &gz.finish()?)?;
    }
    Ok(())
}

fn main_page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let man = Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;

    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in cli::EXIT_STATUS {
        roff.control("TP", [] as [&str; 0]);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }
    roff.control("SH", ["FILES"]);
    let files = [
        (
            cli::DEFAULT_CONFIG.to_owned(),
            "The config file (see -c, and failover-manager.yaml(5) for its keys). Start from \
             config.yaml.example next to it.",
        ),
        (
            "/usr/lib/failover-manager/checks/".to_owned(),
            "Example primary checks (packaged installs; /usr/local/lib/... with make install).",
        ),
        (
            "failover-manager.service, failover-manager.timer".to_owned(),
            "The systemd units that run a reconcile every minute; installed disabled: \
             systemctl enable --now failover-manager.timer",
        ),
    ];
    for (file, what) in files {
        roff.control("TP", [] as [&str; 0]);
        roff.text([italic(file)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let see_also: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("{BIN}-{}(1)", s.get_name()))
        .chain([format!("{BIN}.yaml(5)")])
        .chain(["systemctl(1)", "systemd.timer(5)"].map(String::from))
        .collect();
    roff.text([roman(see_also.join(", "))]);
    roff.to_writer(&mut page)?;

    man.render_version_section(&mut page)?;
    Ok(page)
}

/// `failover-manager.yaml.5`: src/config/reference.rs, a section per map, a tagged paragraph
/// per key (its path and value, what it does, its default).
fn config_page(version: &str) -> Result<Vec<u8>> {
    let mut roff = Roff::new();
    // An empty date, as clap_mangen leaves it (a date would change the page every day).
    let source = format!("{BIN} {version}");
    roff.control("TH", [&*format!("{BIN}.yaml"), "5", "\"\"", &source]);
    roff.control("SH", ["NAME"]);
    roff.text([roman(format!("{BIN}.yaml - {}", reference::SUMMARY))]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold(reference::PATH)]);
    roff.control("SH", ["DESCRIPTION"]);
    for paragraph in reference::DESCRIPTION {
        roff.control("PP", [] as [&str; 0]);
        roff.text([roman(*paragraph)]);
    }
    example(&mut roff, reference::MINIMAL);
    roff.control("SH", ["KEYS"]);
    for map in reference::MAPS {
        roff.control("SS", [map.heading()]);
        roff.text([roman(map.about)]);
        for key in map.keys {
            roff.control("TP", [] as [&str; 0]);
            roff.text([
                bold(format!("{}:", map.key_path(key))),
                roman(" "),
                italic(key.value),
            ]);
            roff.text([roman(key.about)]);
            roff.control("br", [] as [&str; 0]);
            roff.text([roman(key.omitted.sentence())]);
        }
    }
    roff.control("SH", ["EXAMPLES"]);
    for (what, text) in reference::EXAMPLES {
        roff.control("PP", [] as [&str; 0]);
        roff.text([roman(*what)]);
        example(&mut roff, text);
    }
    roff.control("SH", ["FILES"]);
    for (file, what) in reference::FILES {
        roff.control("TP", [] as [&str; 0]);
        roff.text([italic(*file)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(reference::SEE_ALSO.join(", "))]);
    let mut page = Vec::new();
    roff.to_writer(&mut page)?;
    Ok(page)
}

/// A block of YAML, indented and as written (no filling).
fn example(roff: &mut Roff, text: &str) {
    roff.control("PP", [] as [&str; 0]);
    roff.control("RS", ["4"]);
    roff.control("nf", [] as [&str; 0]);
    roff.text([roman(text.trim_end())]);
    roff.control("fi", [] as [&str; 0]);
    roff.control("RE", [] as [&str; 0]);
}

/// `target/<profile>` (or `target/<triple>/<profile>`), from OUT_DIR =
/// `<that>/build/<pkg>-<hash>/out`, joined with `assets`; None for any other layout.
fn stable_assets_dir(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir.parent()?.parent()?;
    (out_dir.file_name()? == "out" && build.file_name()? == "build")
        .then(|| build.parent().map(|profile| profile.join("assets")))
        .flatten()
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| context(e, "create", to))?;
    for entry in fs::read_dir(from).map_err(|e| context(e, "read", from))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            let bytes = fs::read(entry.path()).map_err(|e| context(e, "read", &entry.path()))?;
            write_if_changed(&dest, &bytes)?;
        }
    }
    Ok(())
}

/// Writes atomically (a temporary file, then rename), so a concurrent build of the same profile
/// (`cargo build` next to `cargo clippy`) or a running `make install` never sees half a file,
/// and leaves an identical file alone (its mtime too).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let name = path.file_name().ok_or("no file name")?.to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| context(e, "write", &tmp))?;
    fs::rename(&tmp, path).map_err(|e| context(e, "rename to", path))?;
    Ok(())
}
