//! Diagnostics on stderr through `log`: plain "error: …" on a terminal, and sd-daemon
//! priority prefixes ("<3>…") when stderr is the journal, so `journalctl -p err` finds failures.

use std::io::Write;

use log::{Level, LevelFilter};

/// True when stderr is the stream systemd connected to the journal (`JOURNAL_STREAM=dev:ino`).
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The sd-daemon(3) priority of a log level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::Error,
        (false, 0) => LevelFilter::Warn,
        (false, 1) => LevelFilter::Info,
        (false, _) => LevelFilter::Debug,
    };
    let journal = stderr_is_journal();
    let mut b = env_logger::Builder::new();
    // -v and -vv are about this tool's decisions: the libraries it uses (the HTTP client, TLS)
    // say only their warnings.
    b.filter_level(level.min(LevelFilter::Warn));
    b.filter_module("failover_manager", level);
    // RUST_LOG still wins for whoever debugs the tool itself.
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |f, record| {
        if journal {
            writeln!(f, "<{}>{}", priority(record.level()), record.args())
        } else {
            match record.level() {
                Level::Error => writeln!(f, "error: {}", record.args()),
                Level::Warn => writeln!(f, "warning: {}", record.args()),
                _ => writeln!(f, "{}", record.args()),
            }
        }
    });
    b.target(env_logger::Target::Stderr);
    // A second init (tests) is harmless; the first logger stays.
    let _ = b.try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
    }
}
