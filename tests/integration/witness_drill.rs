//! The etcd drill (drill/etcd.sh): sites A and B and a witness W, each a host with one member
//! of a real three-member etcd cluster, failover-manager on A and B with `check.etcd` (no lease),
//! `check.fence_after`, the watch and a short timer. CI runs one quick round of each fault
//! that has a safety property and asserts that property only; the figures are the drill's
//! business (DRILL.md), never asserted here. The same in automatic mode (`--mode automatic`:
//! `check.etcd` with a lease, no person acts): the faults with a safety property.

use crate::drill::{self, Row, field};

const DRILL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/drill/etcd.sh");

/// A time the drill measured, in seconds from the fault; None when it did not happen ("-").
fn seconds(r: &Row, k: &str, ctx: &str) -> Option<f64> {
    match field(r, k) {
        "-" => None,
        v => Some(
            v.parse()
                .unwrap_or_else(|_| panic!("{k} is not a number: {v:?}{ctx}")),
        ),
    }
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn with_a_witness_no_fault_runs_the_application_on_both_sites() {
    let faults = [
        "switchover",
        "switchback",
        "partition",
        "witness-lost",
        "cluster-down",
    ];
    let joined = faults.join(",");
    let Some(drill) = drill::run(DRILL, &["--rounds", "1", "--faults", &joined]) else {
        return;
    };
    let rows = drill.rows();
    let find = |fault: &str| drill.find(&rows, fault);
    let ctx = &drill.ctx;
    let never_both = |r: &Row| {
        assert_eq!(
            field(r, "dual"),
            "0.000",
            "{}: both sites ran the application at once{ctx}",
            field(r, "fault")
        );
    };
    let ends = |r: &Row, a: &str, b: &str| {
        assert_eq!(
            (field(r, "end_a"), field(r, "end_b")),
            (a, b),
            "{}: expected the application running on A {a}, on B {b} (1 = running){ctx}",
            field(r, "fault")
        );
    };

    // A planned switchover, both ways: the role moves, never through both sites at once.
    for (fault, a, b) in [("switchover", "0", "1"), ("switchback", "1", "0")] {
        let r = find(fault);
        assert_eq!(field(r, "exit"), "0", "{fault}: the switchover failed{ctx}");
        never_both(r);
        ends(r, a, b);
    }

    // A cut off, B promoted by hand after the documented wait: A had fenced itself first.
    let r = find("partition");
    never_both(r);
    let promote = seconds(r, "promote", ctx).expect("the promotion's time");
    let stopped = seconds(r, "stopped", ctx);
    assert!(
        stopped.is_some_and(|s| s < promote),
        "A's application had not stopped when B was promoted ({stopped:?} s, promoted at \
         {promote} s){ctx}"
    );
    assert_ne!(field(r, "fenced_a"), "0", "A never fenced itself{ctx}");
    ends(r, "0", "1");

    // The witness lost: A and B still make a majority; nothing changes.
    let r = find("witness-lost");
    assert_eq!(
        (field(r, "flips_a"), field(r, "flips_b")),
        ("0", "0"),
        "the application started or stopped somewhere when the witness was lost{ctx}"
    );
    ends(r, "1", "0");
    assert_eq!(
        (field(r, "fenced_a"), field(r, "fenced_b")),
        ("0", "0"),
        "a host fenced itself while a majority answered{ctx}"
    );

    // The whole cluster down: no site can tell, the primary fences itself, nothing runs.
    let r = find("cluster-down");
    never_both(r);
    ends(r, "0", "0");
    assert_ne!(field(r, "fenced_a"), "0", "A never fenced itself{ctx}");
}

/// Whether libfaketime is installed (the clock-step fault needs it; tests/setup.sh installs it).
fn libfaketime() -> bool {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| d.path().join("faketime/libfaketime.so.1").exists())
        || std::path::Path::new("/usr/lib/faketime/libfaketime.so.1").exists()
}

#[test]
#[cfg_attr(fm_not_root, ignore = "needs root: boots a real systemd sandbox")]
fn automatic_takeover_never_runs_the_application_on_both_sites() {
    let mut faults = vec!["cutoff", "timer-stopped", "link-cut", "cluster-down"];
    if libfaketime() {
        faults.push("clock-step");
    } else {
        eprintln!("libfaketime is not installed: clock-step left out (tests/setup.sh installs it)");
    }
    let joined = faults.join(",");
    let Some(drill) = drill::run(
        DRILL,
        &["--mode", "automatic", "--rounds", "1", "--faults", &joined],
    ) else {
        return;
    };
    let rows = drill.rows();
    let ctx = &drill.ctx;
    let n = |r: &Row, k: &str| -> u32 {
        field(r, k)
            .parse()
            .unwrap_or_else(|_| panic!("{k} is not a count: {:?}{ctx}", field(r, k)))
    };
    for fault in &faults {
        let r = drill.find(&rows, fault);
        // Never both, in any of them (the freeze is the one fault where a frozen host's
        // application outlives the lease; it is not run here).
        assert_eq!(
            field(r, "dual"),
            "0.000",
            "{fault}: both sites ran the application at once{ctx}"
        );
        let (a, b) = (field(r, "end_a"), field(r, "end_b"));
        match *fault {
            // Every member stopped: nobody can tell, A fences itself, B starts nothing.
            "cluster-down" => assert_eq!(
                (a, b),
                ("0", "0"),
                "{fault}: the application runs somewhere while no etcd member answers{ctx}"
            ),
            // The A-B link only: the role may stay or move, but it is on exactly one site.
            "link-cut" => assert!(
                (a, b) == ("1", "0") || (a, b) == ("0", "1"),
                "{fault}: the application is not on exactly one site (A {a}, B {b}){ctx}"
            ),
            // A cut off (its runs stopped, its clock stepped): B took over on its own.
            _ => {
                assert_eq!(
                    (a, b),
                    ("0", "1"),
                    "{fault}: B did not take over (A {a}, B {b} at the end){ctx}"
                );
                assert_ne!(field(r, "verified"), "-", "{fault}: B never verified{ctx}");
            }
        }
    }
    // A rejoined after the cutoff and stayed a standby: its application stopped once and
    // never started again (no failback).
    let r = drill.find(&rows, "cutoff");
    assert_eq!(
        (n(r, "stops_a"), n(r, "flips_a")),
        (1, 1),
        "cutoff: A's application started again after A rejoined{ctx}"
    );
    // No run on A at all: only the dead man's switch can have stopped A's application.
    let r = drill.find(&rows, "timer-stopped");
    assert!(
        n(r, "deadline_a") >= 1,
        "timer-stopped: the dead man's switch never fired on A{ctx}"
    );
}
