//! The one printer (as xh's `Printer`): a reconcile's value (`reconcile::Run`) becomes what the
//! user sees: stdout (the changes, the plan of a dry run or `diff`, or one JSON object), stderr
//! (what needs a person, one log record per line so each keeps its journal priority) and the
//! metrics file's text; and `status`'s table or JSON. The words are `report`'s; nothing else of
//! a run writes to the user.

use std::io::IsTerminal;

use crate::cli::Format;
use crate::exit::{Error, Status};
use crate::output::print_out;
use crate::reconcile::{End, Report, Run};
use crate::report;

pub struct Printer {
    json: bool,
    /// Changes are not printed (`--quiet`); what needs a person still is.
    quiet: bool,
    color: bool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Printer {
        Printer {
            json: format == Format::Json,
            quiet,
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// `reconcile` and `--dry-run`: the changes on stdout (the plan, for a dry run), failures
    /// on stderr, and with `--output json` one object on every path that got as far as a check.
    pub fn reconcile(&self, run: &Run, dry_run: bool) -> Result<(), Error> {
        let Run::Ran(r) = run else {
            return Ok(());
        };
        notes(r);
        match &r.end {
            End::Paused if dry_run && !self.json => {
                if let Some(p) = &r.paused {
                    print_out(&format!(
                        "{}: reconcile changes nothing while paused",
                        p.describe()
                    ))?;
                }
                print_out(&report::dry_run(&r.plan))?;
            }
            End::DryRun if !self.json => print_out(&report::dry_run(&r.plan))?,
            End::Acted {
                interrupted,
                hook_errors,
            } => {
                let (changes, errors) = report::changes(&r.plan, &r.results);
                if !self.json && !self.quiet && !changes.is_empty() {
                    print_out(&(changes.join("\n") + "\n"))?;
                }
                for e in &errors {
                    log::error!("{e}");
                }
                if *interrupted {
                    log::error!(
                        "interrupted: stopped waiting; the lines above say what was and was not done"
                    );
                }
                for line in hook_errors.iter().flat_map(|m| m.lines()) {
                    log::error!("{line}");
                }
            }
            _ => {}
        }
        if self.json {
            print_out(&json(r, "reconcile", dry_run))?;
        }
        Ok(())
    }

    /// `diff`: desired against observed per unit (the fence plan included), and where fencing
    /// stands; the run's notes are not repeated (a `diff` acts on nothing).
    pub fn diff(&self, run: &Run) -> Result<(), Error> {
        let Run::Ran(r) = run else {
            return Ok(());
        };
        if self.json {
            return print_out(&json(r, "diff", true));
        }
        if matches!(r.end, End::Failed(_)) {
            return Ok(());
        }
        if let Some(p) = &r.paused {
            print_out(&format!("{}: reconcile changes nothing", p.describe()))?;
        }
        print_out(&report::diff(
            &r.plan,
            &r.check,
            report::Style { color: self.color },
        ))?;
        if let Some(line) = r.fence.as_ref().and_then(report::fence_status) {
            print_out(&line)?;
        }
        Ok(())
    }

    /// `status`: the key and one row per host (`status_text`), or the JSON; when etcd could
    /// not be read, why, on stderr (the JSON says it too).
    pub fn status(
        &self,
        key: &str,
        view: Option<&crate::status::View>,
        ttl: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        if self.json {
            return print_out(&report::status_json(key, view, ttl, error));
        }
        match (view, error) {
            (Some(v), _) => print_out(&report::status_text(
                key,
                v,
                ttl,
                report::Style { color: self.color },
            )),
            (None, Some(e)) => {
                log::error!("cannot read {key} from etcd: {e}");
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    /// The metrics file's text after a run (`success`: it converged, and everything after it
    /// too).
    pub fn metrics(&self, m: &Metrics) -> String {
        let r = m.run.report();
        crate::metrics::render(&crate::metrics::Snapshot {
            check: r.map(|r| &r.check),
            // Units whose states are not known are not shown as down.
            plan: r.filter(|r| r.unobserved.is_none()).map(|r| &r.plan),
            observed_after: r.and_then(|r| r.observed_after.as_deref()),
            results: r.map_or(&[], |r| &r.results),
            success: m.status == Some(Status::Converged),
            paused: r.is_some_and(|r| r.paused.is_some()),
            site: m.site,
            fence: r.and_then(|r| r.fence.as_ref()),
            incident: m.incident,
            finished: std::time::SystemTime::now(),
            duration: m.duration,
        })
    }
}

/// What the metrics file says besides the run itself.
pub struct Metrics<'a> {
    pub run: &'a Run,
    pub status: Option<Status>,
    pub site: Option<&'a str>,
    pub incident: Option<&'a crate::incident::Incident>,
    pub duration: std::time::Duration,
}

/// The run's notes on stderr, each line at its level.
fn notes(r: &Report) {
    for (level, line) in r.notes.iter().flat_map(report::note) {
        log::log!(level, "{line}");
    }
}

fn json(r: &Report, command: &'static str, dry_run: bool) -> String {
    report::json(&report::Json {
        command,
        check: &r.check,
        plan: &r.plan,
        results: &r.results,
        dry_run,
        paused: r.paused.as_ref(),
        confirmation: r.confirmation.as_ref(),
        error: r.unobserved.as_deref(),
        fence: r.fence.as_ref(),
    })
}
