//! The parser against random and mutated texts (`inputs`): it never panics, and answers either
//! a config that keeps every rule or an error whose position is inside the text (the binary
//! turns those into exit 0 or 78). `make test` runs a few thousand cases (PROPTEST_CASES
//! overrides); `make fuzz` runs [`fuzz_long`]: a million, in an optimised build that keeps
//! overflow checks, timing every input and a list of inputs built to be slow.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use super::inputs;
use super::text::lines;
use super::unit_name::normalize_unit_name;
use super::{Config, ConfigError, parse};
use crate::cli::values::{self, MAX_DURATION};

/// Whether `answer` is one `parse` may give for `text`.
fn sound(text: &str, answer: Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match answer {
        Ok(c) => keeps_the_rules(&c),
        Err(ConfigError::Invalid {
            line,
            column,
            message,
            ..
        }) => {
            // Positions are in the text without its byte-order mark, as an editor shows it.
            let lines = lines(text.strip_prefix('\u{feff}').unwrap_or(text));
            prop_assert!(
                (1..=lines.len()).contains(&line),
                "line {} of {}: {}",
                line,
                lines.len(),
                message
            );
            let width = lines[line - 1].chars().count();
            prop_assert!(
                (1..=width + 1).contains(&column),
                "column {} of line {} ({} characters): {}",
                column,
                line,
                width,
                message
            );
            prop_assert!(!message.trim().is_empty());
            Ok(())
        }
        Err(ConfigError::NotText { .. }) => {
            prop_assert!(text.contains('\0'));
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("parse cannot answer {e}"))),
    }
}

/// Everything that validation promises about a config it accepted.
fn keeps_the_rules(c: &Config) -> Result<(), TestCaseError> {
    let argv_ok = |argv: &[String]| argv.first().is_some_and(|p| !p.trim().is_empty());
    let duration_ok = |d: Duration| !d.is_zero() && d <= MAX_DURATION;
    prop_assert!(c.check.command().is_none_or(argv_ok));
    prop_assert!(duration_ok(c.check.timeout) && duration_ok(c.check.confirm_interval));
    prop_assert!((1..=10).contains(&c.check.confirm));
    prop_assert!(c.check.fence_after.is_none_or(duration_ok));
    for codes in [&c.check.primary_exit_codes, &c.check.standby_exit_codes] {
        prop_assert!(!codes.is_empty() && codes.iter().all(|c| (0..=255).contains(c)));
    }
    let p = &c.check.primary_exit_codes;
    prop_assert!(!c.check.standby_exit_codes.iter().any(|s| p.contains(s)));
    for (_, hook) in c.hooks.all() {
        prop_assert!(argv_ok(&hook.command) && duration_ok(hook.timeout));
    }
    if let Some(m) = &c.metrics_file {
        prop_assert!(values::metrics_file(m).is_ok());
    }
    prop_assert!(!c.units.is_empty());
    let mut names = HashSet::new();
    for u in &c.units {
        let again = normalize_unit_name(&u.name);
        prop_assert_eq!(again.as_deref(), Ok(u.name.as_str()));
        prop_assert!(names.insert(u.name.as_str()), "{} twice", u.name);
        prop_assert!(duration_ok(u.verify_timeout) && u.settle <= MAX_DURATION);
    }
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    sound(text, parse(Path::new("c.yaml"), text))
}

/// A runner for `cases` cases unless PROPTEST_CASES says otherwise; failures are printed
/// (shrunk), not saved to files.
fn runner(cases: u32) -> TestRunner {
    let mut config = RunnerConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    TestRunner::new(config)
}

#[test]
fn random_documents_get_a_sound_answer() {
    if let Err(e) = runner(2000).run(&inputs::document(), |t| check(&t)) {
        panic!("{e}");
    }
}

#[test]
fn mutations_of_the_example_get_a_sound_answer() {
    if let Err(e) = runner(1000).run(&inputs::mutated_example(), |t| check(&t)) {
        panic!("{e}");
    }
}

#[test]
fn the_example_itself_is_valid() {
    assert!(parse(Path::new("c.yaml"), inputs::EXAMPLE).is_ok());
}

#[test]
fn inputs_built_to_be_slow_get_a_sound_answer() {
    // No time is asserted here (a shared machine is noisy): without the pre-scan, the first
    // few would not finish at all. `make fuzz` times them.
    for (what, text) in inputs::hard(64 * 1024) {
        if let Err(e) = check(&text) {
            panic!("{what}: {e}");
        }
    }
}

/// `make fuzz`: the built inputs at the size limit (1 MiB), then FUZZ_CASES random ones (default
/// a million), each timed; fails on any unsound answer or any input that takes a second or
/// more. The slowest random input is written to target/fuzz-slowest.yaml.
#[test]
#[ignore = "long: run by `make fuzz`"]
fn fuzz_long() {
    let limit = Duration::from_secs(1);
    let mut worst = (Duration::ZERO, "");
    for (what, text) in inputs::hard(1024 * 1024) {
        let started = Instant::now();
        let answer = parse(Path::new("c.yaml"), &text);
        let took = started.elapsed();
        let summary = match &answer {
            Ok(c) => format!("valid, {} units", c.units.len()),
            Err(e) => e.to_string().chars().take(100).collect(),
        };
        println!("{took:>10.3?}  {what} ({} bytes): {summary}", text.len());
        if let Err(e) = sound(&text, answer) {
            panic!("{what}: {e}");
        }
        worst = worst.max((took, what));
    }
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let count = Cell::new(0u64);
    let slowest = RefCell::new((Duration::ZERO, String::new()));
    let started = Instant::now();
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&inputs::any_text(), |text| {
        let t = Instant::now();
        let answer = parse(Path::new("c.yaml"), &text);
        let took = t.elapsed();
        count.set(count.get() + 1);
        if took > slowest.borrow().0 {
            *slowest.borrow_mut() = (took, text.clone());
        }
        sound(&text, answer)
    });
    let (took, text) = slowest.into_inner();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fuzz-slowest.yaml");
    let _ = std::fs::write(file, &text);
    println!(
        "fuzz: {} inputs in {:.1?}; slowest random input {took:.3?} ({} bytes, {file}); slowest built input {:.3?} ({})",
        count.get(),
        started.elapsed(),
        text.len(),
        worst.0,
        worst.1
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        took < limit && worst.0 < limit,
        "an input took a second or more"
    );
}
