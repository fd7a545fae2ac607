//! The shell of one page per incident (`incident` decides): what a run keeps, and the alert
//! unit's `page` command.

use std::path::Path;
use std::time::SystemTime;

use crate::incident::{
    Event, Incident, PAGED_PATH, PATH, Page, Run, Trouble, end_pager, load_paged, load_record,
    next, pages, sent, store_paged, store_record,
};
use crate::reconcile::Host as _;

/// What a reconcile run that got as far as a report found (see `trouble`).
pub fn of_report(r: &crate::reconcile::Report, exit: u8) -> Run {
    use crate::domain::{Desired, When};
    use crate::reconcile::End;
    let hooks_or_interrupt = matches!(
        &r.end,
        End::Failed(_)
            | End::Interrupted
            | End::Acted {
                interrupted: true,
                ..
            }
    ) || matches!(&r.end, End::Acted { hook_errors, .. } if !hook_errors.is_empty());
    Run {
        exit,
        role_unknown: r.check.role == crate::domain::Role::Unknown,
        fenced: r.plan.fenced,
        fence_pending: r
            .fence
            .as_ref()
            .is_some_and(|f| matches!(f.status, crate::fence::Status::Waiting { .. })),
        primary_running: r
            .plan
            .units
            .iter()
            .any(|u| u.when == When::Primary && u.observed.heading() == Some(Desired::Running)),
        was_primary: r
            .fence
            .as_ref()
            .and_then(|f| f.last_confirmed.as_ref())
            .is_some_and(|c| c.role == crate::domain::Role::Primary),
        broke: hooks_or_interrupt
            || r.results.iter().any(crate::domain::StepResult::failed)
            || r.record_lost
            || matches!(r.switch, Some(crate::deadline::Outcome::Failed(_))),
    }
}

/// A reconcile run that cannot load its config needs a person: it opens (or goes on with)
/// this host's incident (`incident`), which pages.
pub fn unusable_config(cli: &crate::cli::Cli, e: crate::exit::Error) -> crate::exit::Error {
    let reconcile = match &cli.command {
        None => true,
        Some(crate::cli::Command::Reconcile(args)) => !args.dry_run,
        _ => false,
    };
    if reconcile && crate::security::running_as_root() {
        let exit = crate::exit::ExitCode::of_error(&e).code();
        let run = Run {
            exit,
            broke: true,
            ..Default::default()
        };
        let host = crate::reconcile::System::new();
        after_run(
            crate::incident::trouble(&run),
            std::time::SystemTime::now(),
            host.manager(),
        );
    }
    e
}

/// Keeps this host's incident after a reconcile run (`incident`): what the run needed, from
/// its report, or the error it stopped on.
pub fn keep(
    run: &crate::reconcile::Run,
    status: Option<crate::exit::Status>,
    host: &dyn crate::reconcile::Host,
) -> Option<Incident> {
    use crate::exit::ExitCode;
    use crate::reconcile::{End, Run as Reconciled};
    let exit = match run {
        Reconciled::NotStarted(e) => ExitCode::of_error(e),
        Reconciled::Ran(r) => match (&r.end, status) {
            (End::Failed(e), _) => ExitCode::of_error(e),
            (_, Some(s)) => ExitCode::of(&Ok(s)),
            (_, None) => ExitCode::Failure,
        },
    };
    let run = match run {
        Reconciled::Ran(r) => of_report(r, exit.code()),
        Reconciled::NotStarted(_) => Run {
            exit: exit.code(),
            broke: true,
            ..Default::default()
        },
    };
    after_run(
        crate::incident::trouble(&run),
        std::time::SystemTime::now(),
        host.manager(),
    )
}

/// The metrics file could not be written: the run failed after all.
pub fn metrics_lost(host: &dyn crate::reconcile::Host) {
    let failed = Run {
        exit: 1,
        broke: true,
        ..Default::default()
    };
    after_run(
        crate::incident::trouble(&failed),
        SystemTime::now(),
        host.manager(),
    );
}

/// After a reconcile run (not a dry run, nor one skipped for the lock): keeps the incident
/// file, and when an incident whose start was paged ends, starts the alert unit that paged it
/// to page the end. Returns the open incident, for the metrics. Trouble with the file is
/// logged, never the run's failure: paging must not change what a run did.
pub fn after_run(
    run: Option<Trouble>,
    now: SystemTime,
    mgr: &dyn crate::systemd::Manager,
) -> Option<Incident> {
    let path = Path::new(PATH);
    let prev = load_record(path)
        .map_err(|e| log::error!("cannot read the incident file: {e}"))
        .unwrap_or_default();
    let (record, event) = next(&prev, now, run);
    if record != prev
        && let Err(e) = store_record(path, &record)
    {
        log::error!("cannot keep the incident file (one page per incident): {e}");
    }
    if let (Event::Ended, Some(ended)) = (&event, &record.ended) {
        let paged = load_paged(Path::new(PAGED_PATH)).unwrap_or_default();
        if let Some(unit) = end_pager(ended, &paged)
            && let Err(e) = mgr.queue(crate::domain::Action::Start, unit)
        {
            log::error!("cannot start {unit} to page the incident's end: {e}");
        }
    }
    record.open
}

/// `page`: sends what `pages` says, one page at a time, each marked sent once the pager took
/// it. Reads the run's file again after sending, in case a run ended the incident meanwhile
/// (its start of this unit then merged into this activation).
pub fn page(args: &crate::cli::PageArgs) -> Result<crate::exit::Status, crate::exit::Error> {
    let host = crate::ack::host_name();
    let mut paged = load_paged(Path::new(PAGED_PATH))?;
    for _ in 0..3 {
        let record = load_record(Path::new(PATH))?;
        let todo = pages(&record, &paged);
        if todo.is_empty() {
            break;
        }
        for p in &todo {
            let text = crate::report::page(p, &host, SystemTime::now());
            if let Err(e) = send(&args.pager, &text, p) {
                log::error!(
                    "the pager {:?} failed: {e}; not sent: {text}",
                    args.pager[0]
                );
                return Ok(crate::exit::Status::Failed);
            }
            paged = sent(&paged, p, args.unit.as_deref());
            store_paged(Path::new(PAGED_PATH), &paged)?;
        }
    }
    Ok(crate::exit::Status::Converged)
}

fn send(argv: &[String], text: &str, p: &Page) -> Result<(), String> {
    use std::io::Write;
    let (program, args) = argv.split_first().ok_or("no pager command")?;
    let event = match p {
        Page::Started(_) => "started",
        Page::Ended(_) => "ended",
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .env("FAILOVER_MANAGER_EVENT", event)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A pager that does not read its input may still page: its exit status decides.
        let _ = stdin.write_all(format!("{text}\n").as_bytes());
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(status.to_string())
    }
}
