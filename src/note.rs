//! What a run tells a person besides the changes, as values: the reconcile records them in
//! its report in the order they happened; `report::note` makes their words and levels, and the
//! printer writes them.

use crate::check::CheckResult;
use crate::deadline;
use crate::domain::UnitState;
use crate::fence;

/// Something a run tells a person, as a value: `report::note` makes its words and its level.
#[derive(Debug, Clone)]
pub enum Note {
    /// SIGTERM/SIGINT while the check ran (`confirming`: a confirming one): nothing changed.
    Interrupted { confirming: bool },
    /// The role is unknown: why, from the check that said so.
    RoleUnknown(Box<CheckResult>),
    /// Where fencing stands while the role is unknown.
    Fence(fence::View),
    /// A managed unit in a state not acted on.
    NotActionable { unit: String, state: UnitState },
    /// What this run did with the dead man's switch.
    Switch(deadline::Outcome, Box<deadline::Spec>),
    /// The time of the last confirmed role could not be kept.
    RecordNotKept(String),
    /// The lease could not be given back.
    LeaseNotReleased(String),
    /// The acknowledgement could not be written.
    NotAcknowledged {
        key: String,
        value: String,
        error: String,
    },
    /// The fencing token could not be kept.
    EpochNotKept(String),
    /// Started units for long and could not arm the switch again.
    NotRearmed(String),
}
