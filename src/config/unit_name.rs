//! Unit names: systemd's own grammar for them (unit_name_is_valid), the `.service` that
//! systemctl adds to a name without a type, and what this tool refuses beyond the grammar (the
//! slices and scopes systemd owns, units a start cannot act on). Separate because it is plain
//! string checking with its own table of systemd's units, independent of YAML and serde: the
//! `units:` visitors call [`normalize_unit_name`] for each name.

/// systemd's unit types (unit_type_from_string in src/basic/unit-name.c).
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// systemd's UNIT_NAME_MAX is 256 including the terminating NUL.
const UNIT_NAME_MAX: usize = 255;

/// Validates a unit name with systemd's own grammar (unit_name_is_valid) and appends
/// `.service` to a name without a unit type, as systemctl itself would. Refused beyond that
/// grammar: the slices and scopes that systemd itself owns, a leading `-` (it could be read
/// as an option), a template without an instance, and units that `systemctl start` cannot act
/// on (device, scope).
pub fn normalize_unit_name(raw: &str) -> Result<String, String> {
    let q = quoted(raw);
    let name = raw.trim();
    if name.is_empty() {
        return Err("unit name is empty".into());
    }
    // First: `-.slice` would otherwise be refused as an option, which hides what it is.
    refuse_systemds_own(raw, name)?;
    if name.starts_with('-') {
        return Err(format!(
            "unit name {q} starts with '-' (looks like an option)"
        ));
    }
    let full = match name.rsplit_once('.') {
        Some((_, suffix)) if UNIT_TYPES.contains(&suffix) => name.to_owned(),
        _ => format!("{name}.service"),
    };
    let (stem, unit_type) = full.rsplit_once('.').unwrap_or((&full, "service"));
    if stem.is_empty() {
        return Err(format!("unit name {q} has no name before .{unit_type}"));
    }
    if full.len() > UNIT_NAME_MAX {
        return Err(format!(
            "unit name {q} is longer than {UNIT_NAME_MAX} characters"
        ));
    }
    if let Some(bad) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "unit name {q} contains {bad:?}; systemd allows only ASCII letters, digits and \":-_.\\@\""
        ));
    }
    // Everything after the first '@' is the instance, which may itself contain '@'.
    if let Some((prefix, instance)) = stem.split_once('@') {
        if prefix.is_empty() {
            return Err(format!("unit name {q} has nothing before '@'"));
        }
        if instance.is_empty() {
            return Err(format!(
                "unit name {q} is a template; name an instance, e.g. {prefix}@main.{unit_type}"
            ));
        }
    }
    refuse_unstartable(raw, unit_type)?;
    Ok(full)
}

/// Units that are valid names but that a start or stop cannot act on.
/// A slice is accepted: `systemctl start` sets it up and `stop` stops every unit in it, which
/// is what "the whole application" means on a host (an `app.slice` of several services).
fn refuse_unstartable(raw: &str, unit_type: &str) -> Result<(), String> {
    let q = quoted(raw);
    match unit_type {
        "device" => Err(format!(
            "unit name {q} is a device unit: systemd creates it when the kernel reports the device, and systemctl cannot start or stop one"
        )),
        "scope" => Err(format!(
            "unit name {q} is a scope unit: the program that runs its processes creates it (systemd-run --scope, a login), and systemctl cannot start one"
        )),
        _ => Ok(()),
    }
}

/// The slices and scopes that systemd itself creates and owns (systemd.special(7)), each with
/// what it is and what a stop of it would take down with it.
const SYSTEMDS_OWN: &[(&str, &str, &str)] = &[
    ("-.slice", "root slice", "every unit on the host"),
    (
        "system.slice",
        "slice of every system service",
        "the host's own services",
    ),
    (
        "user.slice",
        "slice of every login session",
        "every login and user manager on the host",
    ),
    (
        "machine.slice",
        "slice of every virtual machine and container (systemd-machined)",
        "every VM and container on the host",
    ),
    (
        "capsule.slice",
        "slice of every capsule (systemd-capsule@.service)",
        "every capsule's service manager and services",
    ),
    (
        "init.scope",
        "scope of PID 1, the service manager",
        "systemd itself",
    ),
];

/// Refuses a slice or scope that systemd owns: the table above, and logind's slice of one
/// user, `user-UID.slice` (user@.service(5)), the only kind of slice systemd names after a UID.
fn refuse_systemds_own(raw: &str, name: &str) -> Result<(), String> {
    let q = quoted(raw);
    if let Some(&(_, what, stops)) = SYSTEMDS_OWN.iter().find(|(n, _, _)| *n == name) {
        return Err(format!(
            "unit name {q} is systemd's own {what}: stopping it would stop {stops}"
        ));
    }
    let uid = name
        .strip_prefix("user-")
        .and_then(|n| n.strip_suffix(".slice"))
        .filter(|uid| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()));
    match uid {
        Some(uid) => Err(format!(
            "unit name {q} is systemd-logind's slice of user {uid}: stopping it would stop every login and the user manager of user {uid}"
        )),
        None => Ok(()),
    }
}

/// A value as a message quotes it: at most 64 characters of it (a name a megabyte long is
/// refused for its length, not repeated).
fn quoted(raw: &str) -> String {
    match raw.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
        None => format!("{raw:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse_err;

    #[test]
    fn invalid_unit_names() {
        for (name, why) in [
            ("--foo", "looks like an option"),
            ("-x.service", "looks like an option"),
            ("a b.service", "contains ' '"),
            ("app;reboot", "contains ';'"),
            ("foo@.service", "is a template"),
            ("\"@x.service\"", "nothing before '@'"),
            ("\".service\"", "no name before .service"),
            ("\"@.service\"", "nothing before '@'"),
            ("sda.device", "is a device unit"),
            ("session-3.scope", "is a scope unit"),
            ("-x.slice", "looks like an option"),
            // systemd's own slices and scopes: each says what a stop would take down.
            (
                "\"-.slice\"",
                "is systemd's own root slice: stopping it would stop every unit on the host",
            ),
            (
                "system.slice",
                "slice of every system service: stopping it would stop the host's own services",
            ),
            (
                "user.slice",
                "slice of every login session: stopping it would stop every login",
            ),
            (
                "machine.slice",
                "stopping it would stop every VM and container on the host",
            ),
            (
                "capsule.slice",
                "stopping it would stop every capsule's service manager",
            ),
            (
                "init.scope",
                "scope of PID 1, the service manager: stopping it would stop systemd itself",
            ),
            (
                "user-1000.slice",
                "systemd-logind's slice of user 1000: stopping it would stop every login",
            ),
            ("\" machine.slice \"", "every VM and container"),
            ("a#b.service", "contains '#'"),
            ("café", "contains 'é'"),
            ("\"\"", "empty"),
        ] {
            let e = parse_err(&format!("check: {{command: [x]}}\nunits:\n  - {name}\n"));
            assert!(e.starts_with("c.yaml:3:"), "{name}: {e}");
            assert!(e.contains(why), "{name}: expected {why:?} in {e}");
        }
        let long = "a".repeat(260);
        let e = parse_err(&format!("check: {{command: [x]}}\nunits: [{long}]\n"));
        assert!(e.contains("longer than 255"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - name: \"x y\"\n");
        assert!(e.contains("units[0].name: unit name"), "{e}");
    }

    #[test]
    fn every_slice_and_scope_of_systemds_own_is_refused_with_what_it_would_stop() {
        for &(name, what, stops) in SYSTEMDS_OWN {
            let e = normalize_unit_name(name).err().unwrap_or_default();
            assert_eq!(
                e,
                format!(
                    "unit name {name:?} is systemd's own {what}: stopping it would stop {stops}"
                )
            );
        }
    }

    #[test]
    fn unit_name_normalization() {
        assert_eq!(normalize_unit_name("app").as_deref(), Ok("app.service"));
        assert_eq!(normalize_unit_name("app.timer").as_deref(), Ok("app.timer"));
        assert_eq!(normalize_unit_name("a@b").as_deref(), Ok("a@b.service"));
        assert_eq!(
            normalize_unit_name("db-replica@main.service").as_deref(),
            Ok("db-replica@main.service")
        );
        // A dotted name whose last part is not a unit type is a service, as for systemctl.
        assert_eq!(
            normalize_unit_name("app.v2").as_deref(),
            Ok("app.v2.service")
        );
        assert_eq!(
            normalize_unit_name("foo\\x2dbar.mount").as_deref(),
            Ok("foo\\x2dbar.mount")
        );
        // systemd's grammar: every real unit type keeps its suffix (a slice can be started
        // and stopped); anything else after the last dot is part of a service's name, as for
        // systemctl; an instance may contain '@'.
        for name in [
            "app.slice",
            // Below a slice of systemd's, but a site's own: only user-UID.slice is logind's.
            "system-app.slice",
            "machine-app.slice",
            "user-app.slice",
            "a.socket",
            "a.target",
            "a.automount",
            "a.swap",
            "a.path",
        ] {
            assert_eq!(normalize_unit_name(name).as_deref(), Ok(name));
        }
        assert_eq!(
            normalize_unit_name("app.Service").as_deref(),
            Ok("app.Service.service")
        );
        assert_eq!(normalize_unit_name("a@b@c").as_deref(), Ok("a@b@c.service"));
        let longest = format!("{}.service", "a".repeat(255 - ".service".len()));
        assert_eq!(normalize_unit_name(&longest), Ok(longest.clone()));
        assert!(normalize_unit_name(&format!("a{longest}")).is_err());
    }
}
