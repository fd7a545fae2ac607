//! Running a drill script (drill/*.sh) from a test: one quick round, its results (`--out -`, a
//! tab-separated table, one row per fault) read back for the test to assert safety on.

use std::collections::HashMap;
use std::process::Command;

use crate::sandbox;

pub type Row<'a> = HashMap<&'a str, &'a str>;

/// What a drill printed: its results table, and both streams for failure messages.
pub struct Results {
    stdout: String,
    pub ctx: String,
}

/// Runs `script ARGS… --out - BINARY` under the test's parent-death signal (the drill, and its
/// hosts with it, die with the test process). Never `None`: without root it panics (see
/// `sandbox::available`).
pub fn run(script: &str, args: &[&str]) -> Option<Results> {
    if !sandbox::available() {
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", script])
        .args(args)
        .args(["--out", "-"])
        .arg(env!("CARGO_BIN_EXE_failover-manager"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("\n--- results\n{stdout}--- log\n{stderr}---");
    assert!(out.status.success(), "the drill did not run{ctx}");
    Some(Results { stdout, ctx })
}

impl Results {
    pub fn rows(&self) -> Vec<Row<'_>> {
        let mut lines = self.stdout.lines().filter(|l| !l.starts_with('#'));
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        lines
            .map(|l| header.iter().copied().zip(l.split('\t')).collect())
            .collect()
    }

    /// The one row of `fault`.
    #[track_caller]
    pub fn find<'r, 'a>(&self, rows: &'r [Row<'a>], fault: &str) -> &'r Row<'a> {
        let found: Vec<&Row> = rows
            .iter()
            .filter(|r| r.get("fault") == Some(&fault))
            .collect();
        assert_eq!(found.len(), 1, "one row for {fault}{}", self.ctx);
        found[0]
    }
}

pub fn field<'a>(r: &Row<'a>, k: &str) -> &'a str {
    r.get(k).copied().unwrap_or("missing")
}
