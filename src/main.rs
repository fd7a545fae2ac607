//! failover-manager: runs this role's systemd units on this host, and only those.
//! `main` only wires: parse, run, map the result to an exit code.

// `unsafe` only where C is bound: `sys` (libc) and `sdbus` (sd-bus).
#![deny(unsafe_code)]

mod ack;
mod apply;
mod check;
mod cli;
mod clock;
mod config;
mod deadline;
mod domain;
mod election;
mod epoch;
mod etcd;
mod exit;
mod fence;
mod fleet;
mod hooks;
mod incident;
mod interrupt;
mod lock;
mod logging;
mod maintenance;
mod metrics;
mod note;
mod output;
mod paging;
mod plan;
mod printer;
mod process;
mod promote;
mod reconcile;
mod report;
mod run;
#[allow(unsafe_code)]
mod sdbus;
mod secure_fs;
mod security;
mod status;
mod switchover;
#[allow(unsafe_code)]
mod sys;
mod systemd;
mod validate;
mod verify;
mod watch;
mod witness;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before anything is created: a caller's `umask 000` must not reach our files.
    secure_fs::set_umask();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::ExitCode::Usage.into()
            } else {
                exit::ExitCode::Success.into()
            };
        }
    };
    logging::init(cli.verbose, cli.quiet);
    if let Err(e) = interrupt::install() {
        log::warn!("cannot handle SIGTERM/SIGINT: {e}");
    }
    let result = run::run(&cli);
    let code = exit::ExitCode::of(&result);
    if let Err(e) = &result {
        // A skipped minute (lock busy) is expected now and then: not an error in the journal.
        if code == exit::ExitCode::Locked {
            log::warn!("{e}");
        } else {
            log::error!("{e}");
        }
    }
    code.into()
}
