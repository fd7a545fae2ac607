//! The planner: a pure function of (role, config, observed states) to an ordered list of
//! actions. Dry-run, diff and reconcile all print or execute this one value.

use serde::Serialize;

use crate::config::UnitConfig;
use crate::domain::{Action, Class, Desired, Role, UnitState, When};

/// One managed unit as the planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitPlan {
    pub name: String,
    pub when: When,
    /// `None` when the role is unknown: nothing is desired, so nothing is done.
    pub desired: Option<Desired>,
    pub observed: UnitState,
    pub action: Option<Action>,
    /// The unit is already on its way (`activating` for a start, `deactivating` for a stop):
    /// no second job is queued, but the step is still verified, and still holds back the
    /// steps after it, so a unit stuck on its way is never mistaken for one that arrived.
    pub underway: bool,
    /// `managed: false` in the config: drift is shown, never acted on.
    pub managed: bool,
}

impl UnitPlan {
    /// Observed state disagrees with the desired one (drift), whether or not we act on it.
    pub fn in_sync(&self) -> bool {
        match self.desired {
            None => true,
            Some(d) => self.observed.settled() == Some(d),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub role: Role,
    /// The role the host looked like it held before this run, read off the units (for messages).
    pub observed_role: Option<Role>,
    pub units: Vec<UnitPlan>,
    /// Indexes into `units`, in execution order: all stops (reverse config order), then all
    /// starts (config order), so both roles' units never run at once.
    pub steps: Vec<usize>,
    /// The host fences itself (`check.fence_after`): the role is unknown, the primary units
    /// stop.
    pub fenced: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn in_sync(&self) -> bool {
        self.units.iter().all(UnitPlan::in_sync)
    }
}

fn desired_for(role: Role, when: When) -> Option<Desired> {
    match (role, when) {
        (Role::Unknown, _) => None,
        (Role::Primary, When::Primary) | (Role::Standby, When::Standby) => Some(Desired::Running),
        _ => Some(Desired::Stopped),
    }
}

/// The role the units' observed states point to, if they point to exactly one. A `failed`
/// unit says nothing (a crash, not a role), so any makes the answer `None`.
fn observed_role(units: &[UnitConfig], observed: &[UnitState]) -> Option<Role> {
    if observed.contains(&UnitState::Failed) {
        return None;
    }
    let running = |w: When| {
        units
            .iter()
            .zip(observed)
            .filter(|(u, _)| u.when == w)
            .map(|(_, s)| s.heading() == Some(Desired::Running))
            .collect::<Vec<_>>()
    };
    let (p, s) = (running(When::Primary), running(When::Standby));
    let all = |v: &[bool]| v.iter().all(|r| *r);
    let none = |v: &[bool]| !v.iter().any(|r| *r);
    if !p.is_empty() && all(&p) && none(&s) {
        Some(Role::Primary)
    } else if none(&p) && (s.is_empty() || all(&s)) {
        Some(Role::Standby)
    } else {
        None
    }
}

pub fn plan(role: Role, units: &[UnitConfig], observed: &[UnitState]) -> Plan {
    plan_with(role, units, observed, |when| desired_for(role, when))
}

/// The plan of a host that fences itself (`check.fence_after`): the role is unknown, so nothing
/// is started, but the primary units must stop; the standby units are left as they are.
pub fn fenced(units: &[UnitConfig], observed: &[UnitState]) -> Plan {
    Plan {
        fenced: true,
        ..plan_with(Role::Unknown, units, observed, |when| {
            (when == When::Primary).then_some(Desired::Stopped)
        })
    }
}

fn plan_with(
    role: Role,
    units: &[UnitConfig],
    observed: &[UnitState],
    desired_for: impl Fn(When) -> Option<Desired>,
) -> Plan {
    debug_assert_eq!(units.len(), observed.len());
    let items: Vec<UnitPlan> = units
        .iter()
        .zip(observed)
        .map(|(u, state)| {
            let desired = desired_for(u.when);
            // `activating` is already starting and `deactivating` already stopping: no second
            // job, but the step stays, to be verified like any other.
            let underway =
                u.managed && desired.is_some_and(|d| state.class() == Class::OnItsWay(d));
            let action = match (desired, state.heading()) {
                _ if !u.managed => None,
                _ if underway => desired.map(Action::towards),
                (Some(Desired::Running), Some(Desired::Stopped)) => Some(Action::Start),
                (Some(Desired::Stopped), Some(Desired::Running)) => Some(Action::Stop),
                _ => None,
            };
            UnitPlan {
                name: u.name.clone(),
                when: u.when,
                desired,
                observed: state.clone(),
                action,
                underway,
                managed: u.managed,
            }
        })
        .collect();
    let stops = (0..items.len())
        .rev()
        .filter(|&i| items[i].action == Some(Action::Stop));
    let starts = (0..items.len()).filter(|&i| items[i].action == Some(Action::Start));
    let steps = stops.chain(starts).collect();
    Plan {
        role,
        observed_role: observed_role(units, observed),
        units: items,
        steps,
        fenced: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::transition;

    #[test]
    fn a_fenced_host_stops_its_primary_units_and_starts_nothing() {
        let units = [
            unit("a", When::Primary),
            unit("b", When::Primary),
            unit("s", When::Standby),
            UnitConfig {
                managed: false,
                ..unit("m", When::Primary)
            },
        ];
        let p = fenced(
            &units,
            &[
                UnitState::Active,
                UnitState::Inactive,
                UnitState::Inactive,
                UnitState::Active,
            ],
        );
        assert_eq!(p.role, Role::Unknown);
        assert_eq!(transition(&p), "fenced");
        let actions: Vec<_> = p.units.iter().map(|u| u.action).collect();
        assert_eq!(actions, [Some(Action::Stop), None, None, None]);
        assert_eq!(p.steps, [0]);
        // The standby units are not its business: nothing desired, in sync whatever they are.
        assert_eq!(p.units[2].desired, None);
        assert!(!p.in_sync(), "the unmanaged primary unit still runs: drift");
    }

    fn unit(name: &str, when: When) -> UnitConfig {
        UnitConfig::for_test(name, when)
    }

    #[test]
    fn a_unit_on_its_way_is_a_verify_only_step_in_its_phase() {
        let units = [unit("p", When::Primary), unit("s", When::Standby)];
        let p = plan(
            Role::Primary,
            &units,
            &[UnitState::Activating, UnitState::Deactivating],
        );
        assert_eq!(p.steps, [1, 0], "the stop phase first");
        assert!(p.units.iter().all(|u| u.underway));
        assert!(!p.in_sync(), "on the way is not arrived");
    }

    const ALL_STATES: [&str; 9] = [
        "active",
        "reloading",
        "refreshing",
        "inactive",
        "failed",
        "activating",
        "deactivating",
        "maintenance",
        "bogus",
    ];

    /// Every role × when × observed state, against a table written out by hand.
    #[test]
    fn every_role_when_and_state() {
        use Action::{Start, Stop};
        let expect = |role: Role, when: When, state: &str| -> Option<Action> {
            let wants_running = match (role, when) {
                (Role::Unknown, _) => return None,
                (Role::Primary, When::Primary) | (Role::Standby, When::Standby) => true,
                _ => false,
            };
            match (wants_running, state) {
                // "activating" and "deactivating" (when wanted): already on the way, verified.
                (true, "inactive" | "failed" | "deactivating" | "activating") => Some(Start),
                (false, "active" | "reloading" | "refreshing" | "activating" | "deactivating") => {
                    Some(Stop)
                }
                _ => None,
            }
        };
        for role in [Role::Primary, Role::Standby, Role::Unknown] {
            for when in [When::Primary, When::Standby] {
                for state in ALL_STATES {
                    let p = plan(role, &[unit("a.service", when)], &[UnitState::parse(state)]);
                    let want = expect(role, when, state);
                    assert_eq!(p.units[0].action, want, "{role:?} {when:?} {state}");
                    assert_eq!(p.steps.len(), usize::from(want.is_some()));
                    let underway = matches!(
                        (want, state),
                        (Some(Start), "activating") | (Some(Stop), "deactivating")
                    );
                    assert_eq!(p.units[0].underway, underway, "{role:?} {when:?} {state}");
                    assert_eq!(
                        p.units[0].in_sync(),
                        // In sync: nothing to do and a known, settled state — or nothing
                        // desired at all (role unknown).
                        role == Role::Unknown
                            || (want.is_none() && state != "maintenance" && state != "bogus"),
                        "{role:?} {when:?} {state}"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_role_plans_nothing_and_desires_nothing() {
        let units = [unit("a", When::Primary), unit("b", When::Standby)];
        let p = plan(
            Role::Unknown,
            &units,
            &[UnitState::Inactive, UnitState::Active],
        );
        assert!(p.is_empty());
        assert!(p.units.iter().all(|u| u.desired.is_none()));
        assert!(p.in_sync(), "nothing is desired, so nothing is drift");
    }

    #[test]
    fn stops_first_in_reverse_then_starts_in_order() {
        let units = [
            unit("p1", When::Primary),
            unit("s1", When::Standby),
            unit("p2", When::Primary),
            unit("s2", When::Standby),
            unit("p3", When::Primary),
        ];
        let observed = [
            UnitState::Inactive,
            UnitState::Active,
            UnitState::Failed,
            UnitState::Active,
            UnitState::Active,
        ];
        let p = plan(Role::Primary, &units, &observed);
        let order: Vec<(&str, Action)> = p
            .steps
            .iter()
            .map(|&i| {
                (
                    p.units[i].name.as_str(),
                    p.units[i].action.unwrap_or(Action::Start),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("s2", Action::Stop),
                ("s1", Action::Stop),
                ("p1", Action::Start),
                ("p2", Action::Start)
            ]
        );
        assert_eq!(p.observed_role, None);
        assert!(!p.in_sync());
    }

    #[test]
    fn observed_role_and_transition() {
        let units = [unit("p", When::Primary), unit("s", When::Standby)];
        let p = plan(
            Role::Primary,
            &units,
            &[UnitState::Inactive, UnitState::Active],
        );
        assert_eq!(p.observed_role, Some(Role::Standby));
        assert_eq!(transition(&p), "standby\u{2192}primary");
        let p = plan(
            Role::Standby,
            &units,
            &[UnitState::Active, UnitState::Inactive],
        );
        assert_eq!(transition(&p), "primary\u{2192}standby");
        let p = plan(
            Role::Primary,
            &units,
            &[UnitState::Active, UnitState::Inactive],
        );
        assert_eq!(transition(&p), "primary");
        assert!(p.in_sync() && p.is_empty());
        // Only primary units, all stopped: the host looked like a standby.
        let only = [unit("p", When::Primary)];
        let p = plan(Role::Primary, &only, &[UnitState::Inactive]);
        assert_eq!(transition(&p), "standby\u{2192}primary");
        // A crashed unit is not a role: no arrow.
        let p = plan(Role::Primary, &only, &[UnitState::Failed]);
        assert_eq!(transition(&p), "primary");
        // Half-running primary: no clear previous role, so no arrow.
        let two = [unit("a", When::Primary), unit("b", When::Primary)];
        let p = plan(
            Role::Primary,
            &two,
            &[UnitState::Active, UnitState::Inactive],
        );
        assert_eq!(transition(&p), "primary");
    }

    #[test]
    fn unmanaged_units_show_drift_but_are_never_acted_on() {
        let mut units = [unit("a", When::Primary), unit("b", When::Standby)];
        units[0].managed = false;
        units[1].managed = false;
        let p = plan(
            Role::Primary,
            &units,
            &[UnitState::Inactive, UnitState::Active],
        );
        assert!(p.is_empty());
        assert!(!p.units[0].in_sync() && !p.units[1].in_sync());
    }

    #[test]
    fn unknown_states_are_drift_but_never_acted_on() {
        let units = [unit("a", When::Primary)];
        let p = plan(Role::Primary, &units, &[UnitState::Other("weird".into())]);
        assert!(p.is_empty());
        assert!(!p.in_sync());
    }
}
