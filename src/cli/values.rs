//! Values a user can give both on the command line and in the config file, each checked by one
//! function so that the two can never disagree. Declared inside `cli` because build.rs compiles
//! src/cli.rs on its own: std and humantime only, no `crate::` paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Durations above this are typos ("30m" for "30s"): a run that waits an hour blocks the timer.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// A humantime duration (`500ms`, `10s`, `1m 30s`) of at most [`MAX_DURATION`], and above
/// zero unless `allow_zero`.
pub fn duration(s: &str, allow_zero: bool) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. \"10s\" or \"1m 30s\""))?;
    if !allow_zero && d.is_zero() {
        return Err(format!("duration {s:?} must be greater than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!(
            "duration {s:?} is longer than {}; that is almost certainly a typo",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// A site's name (`site:`, `switchover SITE`): short and plain, so that it can be a metric
/// label and part of an etcd key.
pub fn site(s: &str) -> Result<String, String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if s.is_empty() || s.len() > 63 || !s.chars().all(plain) {
        return Err(format!(
            "site {:?} must be 1 to 63 ASCII letters, digits, '.', '_' or '-'",
            s.chars().take(64).collect::<String>()
        ));
    }
    Ok(s.to_owned())
}

/// `--timeout` of a switchover.
pub fn positive(s: &str) -> Result<Duration, String> {
    duration(s, false)
}

/// `--lock-wait`: zero means "do not wait".
pub fn lock_wait(s: &str) -> Result<Duration, String> {
    duration(s, true)
}

/// Where node_exporter's textfile collector will find the metrics: an absolute path (a relative
/// one would depend on the directory the run happened to start in) ending in `.prom` (the
/// collector ignores every other name).
pub fn metrics_file(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    if path.extension().is_none_or(|e| e != "prom") {
        return Err(format!(
            "{} must end in .prom, or node_exporter's textfile collector ignores it",
            path.display()
        ));
    }
    Ok(())
}

/// `--metrics-file`, checked as `metrics_file:` is.
pub fn metrics_file_arg(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    metrics_file(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(duration("1m 30s", false), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h", false), Ok(MAX_DURATION));
        assert_eq!(lock_wait("0s"), Ok(Duration::ZERO));
        assert!(duration("0s", false).is_err_and(|e| e.contains("greater than zero")));
        assert!(duration("61m", true).is_err_and(|e| e.contains("almost certainly a typo")));
        // What once overflowed `Instant + Duration` in the lock wait.
        assert!(lock_wait("999999999999999s").is_err_and(|e| e.contains("longer than 1h")));
        assert!(lock_wait("30").is_err_and(|e| e.contains("invalid duration")));
    }

    #[test]
    fn metrics_file_must_be_absolute_and_end_in_prom() {
        assert_eq!(
            metrics_file_arg("/var/lib/node_exporter/fm.prom"),
            Ok(PathBuf::from("/var/lib/node_exporter/fm.prom"))
        );
        assert!(metrics_file_arg("fm.prom").is_err_and(|e| e.contains("not an absolute path")));
        assert!(metrics_file_arg("").is_err_and(|e| e.contains("not an absolute path")));
        assert!(metrics_file_arg("/x/fm.txt").is_err_and(|e| e.contains("must end in .prom")));
        assert!(metrics_file_arg("/x/.prom").is_err_and(|e| e.contains("must end in .prom")));
    }
}
