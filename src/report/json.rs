//! The `--output json` shapes of a run: the schema scripts parse (add fields, never rename or
//! remove them), the check, each unit and its outcome, fencing and the confirmation as they
//! are serialised, and [`json`], which fills them from a run. Separate because its field
//! names are a promise to scripts, which the words for people are not.

use std::time::Duration;

use serde::Serialize;

use super::{etcd_code, etcd_why, rfc3339};
use crate::check::CheckResult;
use crate::domain::{Action, Desired, Outcome, Role, StepResult, UnitState, When};
use crate::fence::{self, View};
use crate::plan::Plan;

pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The check as the JSON shows it.
#[derive(Debug, Serialize)]
pub struct JsonCheck<'a> {
    pub role: Role,
    /// Null when the check did not exit (timeout, signal, spawn failure).
    pub exit_code: Option<i32>,
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    pub output: &'a [String],
    /// What etcd said (`check.etcd`); left out for a check command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<JsonEtcd<'a>>,
}

#[derive(Debug, Serialize)]
pub struct JsonEtcd<'a> {
    pub key: &'a str,
    pub endpoint: &'a str,
    pub reason: String,
    pub reason_code: &'static str,
    /// The fencing token while this site holds the role.
    pub epoch: Option<i64>,
    pub lease: Option<i64>,
    pub ttl_left_s: Option<i64>,
}

fn json_check(c: &CheckResult) -> JsonCheck<'_> {
    JsonCheck {
        role: c.role,
        exit_code: c.exit_code(),
        duration: c.duration,
        output: &c.output,
        etcd: c.etcd().map(|a| JsonEtcd {
            key: &a.key,
            endpoint: &a.endpoint,
            reason: etcd_why(a),
            reason_code: etcd_code(&a.verdict.why),
            epoch: a.verdict.epoch,
            lease: a.verdict.lease,
            ttl_left_s: a.ttl_left,
        }),
    }
}

/// One step's outcome as the JSON shows it: `reason` in words as ever, `reason_code` for
/// scripts.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum JsonOutcome<'a> {
    Done {
        #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Failed {
        reason: String,
        reason_code: &'static str,
        state: &'a UnitState,
        cause: &'a str,
        journal: &'a [String],
        #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
        elapsed: Duration,
    },
    Skipped {
        reason: String,
        reason_code: &'static str,
    },
}

fn json_outcome(o: &Outcome) -> JsonOutcome<'_> {
    match o {
        Outcome::Done { elapsed } => JsonOutcome::Done { elapsed: *elapsed },
        Outcome::Failed {
            reason,
            state,
            cause,
            journal,
            elapsed,
        } => JsonOutcome::Failed {
            reason: reason.words(state),
            reason_code: reason.code(),
            state,
            cause,
            journal,
            elapsed: *elapsed,
        },
        Outcome::Skipped { reason } => JsonOutcome::Skipped {
            reason: reason.words(),
            reason_code: reason.code(),
        },
    }
}

/// The schema scripts parse (`--output json`). Add fields; never rename or remove them.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub version: u32,
    pub command: &'static str,
    pub role: Role,
    pub previous_role: Option<Role>,
    pub check: JsonCheck<'a>,
    pub dry_run: bool,
    /// Maintenance mode: who paused, why and since when; null when not paused.
    pub paused: Option<&'a crate::maintenance::Pause>,
    pub in_sync: bool,
    pub units: Vec<JsonUnit<'a>>,
    /// The checks run again before acting (`check.confirm`); null when none was.
    pub confirmation: Option<&'a Confirmation>,
    /// Why the units' states are not known (systemd unreachable); null when they are.
    pub error: Option<&'a str>,
    /// Self-fencing (`check.fence_after`); null when it is off.
    pub fence: Option<JsonFence>,
}

#[derive(Debug, Serialize)]
pub struct JsonFence {
    #[serde(serialize_with = "ser_ms", rename = "after_ms")]
    pub after: Duration,
    /// This run fenced the host (or found it fenced): its primary units are stopped.
    pub fenced: bool,
    /// How long the check has not given a definite answer; 0 when this run's did.
    #[serde(serialize_with = "ser_ms", rename = "unknown_for_ms")]
    pub unknown_for: Duration,
    /// How long until the host fences itself if the role stays unknown; null unless waiting.
    #[serde(serialize_with = "ser_opt_ms", rename = "fences_in_ms")]
    pub fences_in: Option<Duration>,
    /// The last definite answer this host remembers; null when it remembers none.
    pub last_confirmed: Option<JsonConfirmed>,
}

#[derive(Debug, Serialize)]
pub struct JsonConfirmed {
    pub role: Role,
    /// RFC 3339, UTC.
    pub at: String,
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_ms(d, s),
        None => s.serialize_none(),
    }
}

fn json_fence(v: &View) -> JsonFence {
    JsonFence {
        after: v.after,
        fenced: v.fenced(),
        unknown_for: v.unknown_for(),
        fences_in: match v.status {
            fence::Status::Waiting { remaining, .. } => Some(remaining),
            _ => None,
        },
        last_confirmed: v.last_confirmed.as_ref().map(|c| JsonConfirmed {
            role: c.role,
            at: rfc3339(c.at()),
        }),
    }
}

/// Every answer the check gave in one run when a change had to be confirmed, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confirmation {
    pub required: u32,
    pub roles: Vec<Role>,
}

#[derive(Debug, Serialize)]
pub struct JsonUnit<'a> {
    pub name: &'a str,
    pub when: When,
    pub desired: Option<Desired>,
    pub observed: &'a UnitState,
    pub action: Option<Action>,
    /// The unit was already on its way: the action is verified, no job is queued.
    pub underway: bool,
    pub managed: bool,
    /// Null when nothing was done (no action, dry run, or `diff`).
    pub outcome: Option<JsonOutcome<'a>>,
}

/// What a run knew, for `--output json`.
pub struct Json<'a> {
    pub command: &'static str,
    pub check: &'a CheckResult,
    pub plan: &'a Plan,
    pub results: &'a [StepResult],
    pub dry_run: bool,
    pub paused: Option<&'a crate::maintenance::Pause>,
    pub confirmation: Option<&'a Confirmation>,
    pub error: Option<&'a str>,
    pub fence: Option<&'a View>,
}

pub fn json(j: &Json) -> String {
    let plan = j.plan;
    let report = JsonReport {
        version: 1,
        command: j.command,
        role: plan.role,
        previous_role: plan.observed_role,
        check: json_check(j.check),
        dry_run: j.dry_run,
        paused: j.paused,
        in_sync: plan.in_sync(),
        units: plan
            .units
            .iter()
            .enumerate()
            .map(|(i, u)| JsonUnit {
                name: &u.name,
                when: u.when,
                desired: u.desired,
                observed: &u.observed,
                action: u.action,
                underway: u.underway,
                managed: u.managed,
                outcome: j
                    .results
                    .iter()
                    .find(|r| r.unit == i)
                    .map(|r| json_outcome(&r.outcome)),
            })
            .collect(),
        confirmation: j.confirmation,
        error: j.error,
        fence: j.fence.map(json_fence),
    };
    // Serialising plain structs of strings and numbers cannot fail; fall back rather than panic.
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{check, takeover, waiting};

    #[test]
    fn json_is_stable_and_complete() {
        let p = takeover();
        let results = vec![StepResult {
            unit: 2,
            name: "replica.service".into(),
            action: Action::Stop,
            outcome: Outcome::Done {
                elapsed: Duration::from_millis(5),
            },
        }];
        let j = json(&Json {
            command: "reconcile",
            check: &check(Role::Primary, 0),
            plan: &p,
            results: &results,
            dry_run: false,
            paused: None,
            confirmation: None,
            error: None,
            fence: None,
        });
        let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(v["version"], 1);
        assert_eq!(v["role"], "primary");
        assert_eq!(v["check"]["exit_code"], 0);
        assert_eq!(v["check"]["duration_ms"], 12);
        assert_eq!(v["units"][0]["name"], "app.service");
        assert_eq!(v["units"][0]["desired"], "running");
        assert_eq!(v["units"][0]["observed"], "inactive");
        assert_eq!(v["units"][0]["action"], "start");
        assert_eq!(v["units"][0]["outcome"], serde_json::Value::Null);
        assert_eq!(v["units"][2]["outcome"]["status"], "done");
        assert_eq!(v["units"][2]["outcome"]["elapsed_ms"], 5);
        assert_eq!(v["units"][1]["action"], serde_json::Value::Null);
        assert_eq!(v["units"][1]["managed"], true);
        assert_eq!(v["paused"], serde_json::Value::Null);
        assert_eq!(v["confirmation"], serde_json::Value::Null);
        assert_eq!(v["error"], serde_json::Value::Null);
        let confirmed = Confirmation {
            required: 2,
            roles: vec![Role::Primary, Role::Unknown],
        };
        let j = json(&Json {
            command: "reconcile",
            check: &check(Role::Unknown, 9),
            plan: &p,
            results: &[],
            dry_run: false,
            paused: None,
            confirmation: Some(&confirmed),
            error: Some("systemd unreachable"),
            fence: Some(&waiting()),
        });
        let v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
        assert_eq!(
            v["confirmation"],
            serde_json::json!({"required": 2, "roles": ["primary", "unknown"]})
        );
        assert_eq!(v["error"], "systemd unreachable");
        assert_eq!(
            v["fence"],
            serde_json::json!({
                "after_ms": 120_000, "fenced": false, "unknown_for_ms": 70_000,
                "fences_in_ms": 50_000,
                "last_confirmed": {"role": "primary", "at": "2023-11-14T22:13:20Z"}
            })
        );
    }
}
