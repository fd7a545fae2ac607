//! The shipped examples (config, checks, keepalived notify script) work as documented.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::sandbox::{BIN, Sandbox};
use crate::test::Test;
use crate::unit::Unit;

pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
/// Where the packages install the checks (the .deb layout), as `examples/config.yaml` says.
const CHECKS: &str = "/usr/lib/failover-manager/checks";
const NOTIFY: &str = "/usr/lib/failover-manager/keepalived/notify-failover-manager";
const ROLE: &str = "/run/failover-manager/role";

const SCRIPTS: &[(&str, &str)] = &[
    ("checks/primary-site-file", CHECKS),
    ("checks/dns-points-here", CHECKS),
    ("checks/vip-on-this-host", CHECKS),
    ("checks/role-file", CHECKS),
    ("checks/keepalived-vip", CHECKS),
    (
        "keepalived/notify-failover-manager",
        "/usr/lib/failover-manager/keepalived",
    ),
];

/// Copies every example script to where the packages put it, keeping its mode.
pub fn install_scripts(sb: &Sandbox) {
    for (src, dir) in SCRIPTS {
        let src = format!("{EXAMPLES}/{src}");
        let mode = std::fs::metadata(&src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{src} is not executable");
        let name = src.rsplit('/').next().unwrap_or_default();
        let dst = sb.path(&format!("{dir}/{name}"));
        std::fs::create_dir_all(sb.path(dir)).expect("mkdir in sandbox");
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {src}: {e}"));
    }
}

/// A sandbox with the scripts installed (never `None`: see `sandbox::available`).
fn host() -> Option<Sandbox> {
    let sb = Test::new().unit(Unit::simple("app.service")).setup()?;
    install_scripts(&sb);
    Some(sb)
}

/// Replaces a file inside the sandbox. Removed first from inside, so that a symlink there (say
/// /etc/resolv.conf) is replaced, never followed out of the sandbox.
fn replace(sb: &Sandbox, inside: &str, contents: &str) {
    sb.ok(&["rm", "-f", "--", inside]);
    sb.write(inside, contents);
}

pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(sb: &Sandbox, argv: &[&str]) -> Out {
    let out = sb.exec(argv);
    Out {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a check and asserts its exact exit status and what it says: for 0 and 1 a line on
/// stdout and nothing on stderr; for 2 exactly one line on stderr, "NAME: cannot tell: …".
pub fn expect(sb: &Sandbox, argv: &[&str], status: i32, says: &str) {
    let out = run(sb, argv);
    let ctx = format!(
        "{argv:?}\n--- status {}\n--- stdout\n{}--- stderr\n{}---",
        out.status, out.stdout, out.stderr
    );
    assert_eq!(out.status, status, "exit status{ctx}");
    if status == 2 {
        let name = argv[0].rsplit('/').next().unwrap_or_default();
        assert_eq!(out.stdout, "", "stdout{ctx}");
        assert_eq!(out.stderr.lines().count(), 1, "one line on stderr{ctx}");
        assert!(
            out.stderr.starts_with(&format!("{name}: cannot tell: ")),
            "stderr{ctx}"
        );
        assert!(out.stderr.contains(says), "stderr lacks {says:?}{ctx}");
    } else {
        assert_eq!(out.stderr, "", "stderr{ctx}");
        assert_eq!(out.stdout.lines().count(), 1, "one line on stdout{ctx}");
        assert!(out.stdout.contains(says), "stdout lacks {says:?}{ctx}");
    }
}

pub fn check(name: &str) -> String {
    format!("{CHECKS}/{name}")
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn example_config_is_valid_and_its_check_is_a_shipped_one_that_works() {
    let Some(sb) = host() else { return };
    // The units the example manages, so that a `validate` that asks systemd about them finds
    // them (static, as failover-manager wants them: never enabled at boot).
    for name in [
        "database@main.service",
        "web.service",
        "my-application.service",
        "replica-sync.service",
        "nightly-report.service",
    ] {
        sb.install_unit(name, &Unit::simple(name).body);
    }
    sb.install_unit(
        "nightly-report.timer",
        "[Unit]\nDescription=test timer\n\n[Timer]\nOnCalendar=daily\n",
    );
    sb.daemon_reload();
    let text = std::fs::read_to_string(format!("{EXAMPLES}/config.yaml")).expect("config.yaml");
    sb.write("/etc/failover-manager/example.yaml", &text);
    let out = run(
        &sb,
        &[BIN, "-c", "/etc/failover-manager/example.yaml", "validate"],
    );
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (
            0,
            "/etc/failover-manager/example.yaml: valid (5 units)\n",
            ""
        ),
    );

    // Every key the config format has today appears, uncommented.
    let code: Vec<&str> = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or(l))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for key in [
        "check:",
        "command:",
        "timeout:",
        "primary_exit_codes:",
        "standby_exit_codes:",
        "defaults:",
        "verify_timeout:",
        "settle:",
        "units:",
        "- name:",
        "when: standby",
        "when: primary",
    ] {
        assert!(
            code.iter().any(|l| l.trim_start().starts_with(key)),
            "examples/config.yaml does not show {key:?}"
        );
    }
    assert!(
        code.iter().any(|l| {
            let l = l.trim_start();
            l.starts_with("- ") && !l.contains(':')
        }),
        "examples/config.yaml does not show the shorthand unit form"
    );

    // Its check command is one of the shipped scripts, and runs as written.
    let line = code
        .iter()
        .find(|l| l.trim_start().starts_with("command:"))
        .expect("check.command");
    let argv: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    assert_eq!(
        argv,
        [check("primary-site-file").as_str(), "site-a"],
        "{line}"
    );
    sb.write("/etc/failover-manager/primary-site", "site-a\n");
    expect(&sb, &argv, 0, "names this site, site-a");
    sb.write("/etc/failover-manager/primary-site", "site-b\n");
    expect(&sb, &argv, 1, "names site-b, not this site (site-a)");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn primary_site_file_says_primary_standby_or_cannot_tell() {
    let Some(sb) = host() else { return };
    let cmd = check("primary-site-file");
    let file = "/etc/failover-manager/primary-site";
    let site_a = [cmd.as_str(), "site-a"];
    let site_b = [cmd.as_str(), "site-b"];

    expect(&sb, &site_a, 2, &format!("{file} does not exist"));

    sb.write(file, "site-a\n");
    expect(&sb, &site_a, 0, "primary: ");
    expect(&sb, &site_b, 1, "standby: ");

    // Blank space around the name, CRLF, no final newline: all the same name.
    sb.write(file, "  site-b\r\n\n");
    expect(&sb, &site_b, 0, "primary: ");
    expect(&sb, &site_a, 1, "names site-b");
    sb.write(file, "site-a");
    expect(&sb, &site_a, 0, "primary: ");
    // Case matters: "Site-A" is another site.
    expect(&sb, &[cmd.as_str(), "Site-A"], 1, "standby: ");

    sb.write(file, "");
    expect(&sb, &site_a, 2, "is empty");
    sb.write(file, " \n\t\n");
    expect(&sb, &site_a, 2, "is empty");
    sb.write(file, "site-a site-b\n");
    expect(&sb, &site_a, 2, "holds 2 words");
    // A glob in the file is a word, not a pattern.
    sb.write(file, "*\n");
    expect(&sb, &site_a, 1, "names *, not this site");

    // Another file, given as FILE.
    sb.write("/srv/dr/primary", "site-b\n");
    expect(
        &sb,
        &[cmd.as_str(), "site-b", "/srv/dr/primary"],
        0,
        "primary: ",
    );
    expect(
        &sb,
        &[cmd.as_str(), "site-a", "/srv/dr/primary"],
        1,
        "standby: ",
    );
    expect(
        &sb,
        &[cmd.as_str(), "site-a", "/srv/dr"],
        2,
        "is not a regular file",
    );
    expect(
        &sb,
        &[cmd.as_str(), "site-a", "/srv/none"],
        2,
        "does not exist",
    );

    expect(
        &sb,
        &[cmd.as_str()],
        2,
        "usage: primary-site-file SITE [FILE]",
    );
    expect(&sb, &[cmd.as_str(), ""], 2, "is not a site name");
    expect(&sb, &[cmd.as_str(), "a", "b", "c"], 2, "usage:");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn role_file_reads_primary_or_standby_and_nothing_else() {
    let Some(sb) = host() else { return };
    let cmd = check("role-file");
    let default = [cmd.as_str()];

    expect(&sb, &default, 2, &format!("{ROLE} does not exist"));
    sb.write(ROLE, "primary\n");
    expect(&sb, &default, 0, "primary: ");
    sb.write(ROLE, "standby");
    expect(&sb, &default, 1, "standby: ");
    sb.write(ROLE, " standby \r\n");
    expect(&sb, &default, 1, "standby: ");

    for (contents, says) in [
        ("", "is empty"),
        ("\n", "is empty"),
        (
            "PRIMARY\n",
            "holds \"PRIMARY\"; expected primary or standby",
        ),
        ("master\n", "holds \"master\""),
        ("unknown\n", "holds \"unknown\""),
        ("primary\nstandby\n", "holds 2 words"),
    ] {
        sb.write(ROLE, contents);
        expect(&sb, &default, 2, says);
    }

    sb.write("/var/lib/role", "primary\n");
    expect(&sb, &[cmd.as_str(), "/var/lib/role"], 0, "primary: ");
    expect(&sb, &[cmd.as_str(), "/var/lib"], 2, "is not a regular file");
    expect(&sb, &[cmd.as_str(), "a", "b"], 2, "usage: role-file [FILE]");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn vip_on_this_host_follows_the_address() {
    let Some(sb) = host() else { return };
    let cmd = check("vip-on-this-host");
    let vip = [cmd.as_str(), "192.0.2.10"];
    sb.ok(&["ip", "link", "set", "lo", "up"]);

    expect(&sb, &vip, 1, "192.0.2.10 is not on any interface");

    // What keepalived does on MASTER (here on lo: the sandbox has its own network namespace).
    sb.ok(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    expect(&sb, &vip, 0, "primary: 192.0.2.10 is on lo");
    expect(&sb, &[cmd.as_str(), "192.0.2.10/24"], 0, "is on lo");
    // The address must match, not merely share a prefix.
    expect(&sb, &[cmd.as_str(), "192.0.2.1"], 1, "standby: ");
    expect(&sb, &[cmd.as_str(), "192.0.2.100"], 1, "standby: ");

    sb.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8::10/128",
        "dev",
        "lo",
        "nodad",
    ]);
    // Any spelling of the IPv6 address.
    expect(&sb, &[cmd.as_str(), "2001:DB8:0:0::10"], 0, "is on lo");
    expect(&sb, &[cmd.as_str(), "2001:db8::11"], 1, "standby: ");

    // And on BACKUP, keepalived removes it.
    sb.ok(&["ip", "addr", "del", "192.0.2.10/32", "dev", "lo"]);
    expect(&sb, &vip, 1, "standby: ");

    // Words that `ip` reads as "every address", and short forms it would complete with zeros
    // ("192" is 192.0.0.0 to it), are refused, as is garbage.
    for bad in [
        "any",
        "default",
        "all",
        "cafe",
        "192",
        "192.0.2",
        "1.2.3.4.5",
        "1..2.3",
        "",
        "-4",
        "192.0.2.10 ",
    ] {
        expect(
            &sb,
            &[cmd.as_str(), bad],
            2,
            &format!("\"{bad}\" is not an IP address"),
        );
    }
    // What the script lets through, `ip` still checks.
    expect(
        &sb,
        &[cmd.as_str(), "300.1.1.1"],
        2,
        "ip -o addr show to 300.1.1.1 failed",
    );
    expect(&sb, &[cmd.as_str()], 2, "usage: vip-on-this-host ADDRESS");
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn dns_points_here_compares_what_the_name_resolves_to_with_this_hosts_addresses() {
    let Some(sb) = host() else { return };
    let cmd = check("dns-points-here");
    sb.ok(&["ip", "link", "set", "lo", "up"]);
    sb.ok(&["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"]);
    sb.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8::10/128",
        "dev",
        "lo",
        "nodad",
    ]);
    // Names come from /etc/hosts; anything else goes to a resolver that is not there, and
    // fails at once.
    replace(
        &sb,
        "/etc/hosts",
        "127.0.0.1 localhost\n\
         192.0.2.10 db-here.example.test\n\
         198.51.100.7 db-there.example.test\n\
         2001:db8::10 db6-here.example.test\n\
         2001:db8::99 db6-there.example.test\n\
         198.51.100.8 db-both.example.test\n\
         192.0.2.10 db-both.example.test\n\
         127.0.0.1 db-loop.example.test\n",
    );
    replace(
        &sb,
        "/etc/resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    );
    let go = |name: &str, status: i32, says: &str| expect(&sb, &[cmd.as_str(), name], status, says);

    go(
        "db-here.example.test",
        0,
        "primary: db-here.example.test resolves to 192.0.2.10, an address of this host",
    );
    go(
        "db-there.example.test",
        1,
        "standby: db-there.example.test resolves to 198.51.100.7, none of them this host's",
    );
    go(
        "db6-here.example.test",
        0,
        "resolves to 2001:db8::10, an address",
    );
    go("db6-there.example.test", 1, "standby: ");
    go("db-both.example.test", 0, "resolves to 192.0.2.10");
    go(
        "db-loop.example.test",
        2,
        "resolves to the loopback address 127.0.0.1, which every host has",
    );
    go("nxdomain.invalid", 2, "nxdomain.invalid does not resolve");
    go("-v", 2, "is not a host name");

    // DNS moved away: the same name now points elsewhere.
    sb.ok(&["ip", "addr", "del", "192.0.2.10/32", "dev", "lo"]);
    go("db-here.example.test", 1, "standby: ");
    expect(&sb, &[cmd.as_str()], 2, "usage: dns-points-here NAME");
}

fn ls(sb: &Sandbox, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sb.path(dir))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn inode(sb: &Sandbox, inside: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(sb.path(inside))
        .map(|m| m.ino())
        .unwrap_or(0)
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn keepalived_notify_writes_the_role_atomically_for_every_state() {
    let Some(sb) = host() else { return };
    assert!(ls(&sb, "/run/failover-manager").is_empty(), "fresh /run");
    let notify = |state: &str| run(&sb, &[NOTIFY, "INSTANCE", "VI_1", state, "100"]);

    let out = notify("MASTER");
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(sb.read(ROLE), "primary\n");
    assert!(
        out.stderr
            .contains("INSTANCE VI_1 is MASTER: wrote primary to /run/failover-manager/role"),
        "{}",
        out.stderr
    );
    let dir = std::fs::metadata(sb.path("/run/failover-manager")).expect("dir created");
    assert_eq!(dir.permissions().mode() & 0o777, 0o755);
    let file = std::fs::metadata(sb.path(ROLE)).expect("role file");
    assert_eq!(file.permissions().mode() & 0o777, 0o644);

    // Every state but MASTER leaves this host a standby; STOP above all, since a stopped
    // keepalived has released the VIP and must not leave `primary` behind.
    let mut previous = inode(&sb, ROLE);
    for (state, role) in [
        ("BACKUP", "standby\n"),
        ("MASTER", "primary\n"),
        ("FAULT", "standby\n"),
        ("MASTER", "primary\n"),
        ("STOP", "standby\n"),
        ("MASTER", "primary\n"),
        ("DELETED", "standby\n"),
        ("MASTER", "primary\n"),
        ("SOMETHING_NEW", "standby\n"),
    ] {
        let out = notify(state);
        assert_eq!(out.status, 0, "{state}: {}", out.stderr);
        assert_eq!(sb.read(ROLE), role, "after {state}");
        // Replaced by a rename (a new inode), never rewritten in place, and no temporary
        // file is left behind.
        let now = inode(&sb, ROLE);
        assert_ne!(
            now, previous,
            "{state}: the role file was rewritten in place"
        );
        previous = now;
        assert_eq!(ls(&sb, "/run/failover-manager"), ["role"], "after {state}");
    }
    let out = notify("SOMETHING_NEW");
    assert!(
        out.stderr
            .contains("unknown state \"SOMETHING_NEW\"; writing standby"),
        "{}",
        out.stderr
    );

    // A FILE given in keepalived.conf comes before keepalived's four arguments.
    let out = run(
        &sb,
        &[NOTIFY, "/run/site/vrrp/role", "GROUP", "G1", "MASTER", "90"],
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(sb.read("/run/site/vrrp/role"), "primary\n");

    // Wrong argument counts and relative paths change nothing and exit 1.
    for argv in [
        vec![NOTIFY],
        vec![NOTIFY, "INSTANCE", "VI_1", "MASTER"],
        vec![NOTIFY, "a", "b", "INSTANCE", "VI_1", "MASTER", "100"],
        vec![NOTIFY, "role", "INSTANCE", "VI_1", "MASTER", "100"],
    ] {
        let out = run(&sb, &argv);
        assert_eq!(out.status, 1, "{argv:?}: {}", out.stderr);
        assert_eq!(sb.read(ROLE), "standby\n", "{argv:?} changed the role");
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn keepalived_master_then_backup_moves_the_units_through_role_file() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .unit(Unit::simple("replica.service").standby())
        .check_command(&[&check("role-file")]);
    let Some(sb) = t.setup() else { return };
    install_scripts(&sb);
    let reconcile = || run(&sb, &[BIN, "reconcile"]);

    // Before keepalived has said anything (a fresh boot): unknown, nothing starts.
    let out = reconcile();
    assert_eq!(out.status, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("role-file: cannot tell: /run/failover-manager/role does not exist"),
        "the check's reason is shown: {}",
        out.stderr
    );
    assert_eq!(sb.state("app.service"), "inactive");
    assert_eq!(sb.state("replica.service"), "inactive");

    let out = run(&sb, &[NOTIFY, "INSTANCE", "VI_1", "MASTER", "100"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = reconcile();
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("started app.service"), "{}", out.stdout);
    assert_eq!(sb.state("app.service"), "active");
    assert_eq!(sb.state("replica.service"), "inactive");

    let out = run(&sb, &[NOTIFY, "INSTANCE", "VI_1", "BACKUP", "100"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = reconcile();
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("stopped app.service"), "{}", out.stdout);
    assert_eq!(sb.state("app.service"), "inactive");
    assert_eq!(sb.state("replica.service"), "active");

    // keepalived stopping keeps this host a standby: nothing to do.
    let out = run(&sb, &[NOTIFY, "INSTANCE", "VI_1", "STOP", "100"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = reconcile();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(sb.starts("app.service"), 1);
    assert_eq!(sb.starts("replica.service"), 1);
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn keepalived_notify_starts_a_reconcile_at_once_through_the_shipped_unit() {
    let t = Test::new()
        .unit(Unit::simple("app.service"))
        .check_command(&[&check("role-file")]);
    let Some(sb) = t.setup() else { return };
    install_scripts(&sb);
    let unit = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/units/failover-manager.service"
    );
    let body = std::fs::read_to_string(unit).expect("shipped unit");
    sb.install_unit("failover-manager.service", &body);
    sb.daemon_reload();

    let out = run(&sb, &[NOTIFY, "INSTANCE", "VI_1", "MASTER", "100"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    // No reconcile of ours, no timer: the notify script's own start of the service does it.
    assert!(
        sb.wait_state("app.service", "active", Duration::from_secs(10)),
        "the notify script did not start a reconcile"
    );
}
