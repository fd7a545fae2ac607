//! systemd's D-Bus names (its bus name, object paths and interfaces) and the pure helpers
//! that translate to and from them: a unit's object path and back (systemd's
//! bus_label_escape), a job's id from its path, a unit type's own interface, and values as
//! systemctl prints them (time spans, hex). Separate because none of it touches a bus: the
//! connection ([`super::conn`]) and the manager ([`super::manager`]) build on it.

pub(super) const DEST: &str = "org.freedesktop.systemd1";
pub(super) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub(super) const MANAGER: &str = "org.freedesktop.systemd1.Manager";
pub(super) const UNIT: &str = "org.freedesktop.systemd1.Unit";
pub(super) const SERVICE: &str = "org.freedesktop.systemd1.Service";
pub(super) const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// The object path of a unit: systemd's bus_label_escape of its name.
pub fn unit_path(name: &str) -> String {
    let mut p = String::from(UNIT_PREFIX);
    if name.is_empty() {
        p.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            p.push(char::from(b));
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// The unit name of a unit's object path, or None for any other path.
pub fn unit_name(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?;
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = label.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A job's id from its object path (`/org/freedesktop/systemd1/job/1234`).
pub fn job_id(path: &str) -> Option<u32> {
    path.strip_prefix("/org/freedesktop/systemd1/job/")?
        .parse()
        .ok()
}

/// The D-Bus interface with a unit type's own properties (Result, …), from its suffix.
pub(super) fn type_interface(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "service" => SERVICE,
        "socket" => "org.freedesktop.systemd1.Socket",
        "timer" => "org.freedesktop.systemd1.Timer",
        "mount" => "org.freedesktop.systemd1.Mount",
        "automount" => "org.freedesktop.systemd1.Automount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// A time span in microseconds as systemctl show prints it ("15min", "1min 30s", "infinity").
pub fn format_timespan(usec: u64) -> String {
    const TABLE: [(&str, u64); 9] = [
        ("y", 31_557_600_000_000),
        ("month", 2_629_800_000_000),
        ("w", 604_800_000_000),
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("min", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ];
    if usec == u64::MAX {
        return "infinity".into();
    }
    if usec == 0 {
        return "0".into();
    }
    let mut parts = Vec::new();
    let mut t = usec;
    for (suffix, unit) in TABLE {
        if t == 0 {
            break;
        }
        if t < unit {
            continue;
        }
        let (a, b) = (t / unit, t % unit);
        // Under a minute, systemd writes the rest as a decimal fraction of this unit.
        if usec < 60_000_000 && b > 0 {
            let digits = unit.ilog10() as usize;
            let frac = format!("{b:0digits$}");
            parts.push(format!("{a}.{}{suffix}", frac.trim_end_matches('0')));
            break;
        }
        parts.push(format!("{a}{suffix}"));
        t = b;
    }
    parts.join(" ")
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_are_systemds_escaping_both_ways() {
        // What `systemctl show -p ObjectPath` prints for these.
        assert_eq!(
            unit_path("app.service"),
            "/org/freedesktop/systemd1/unit/app_2eservice"
        );
        assert_eq!(
            unit_path("bench-fast@001.service"),
            "/org/freedesktop/systemd1/unit/bench_2dfast_40001_2eservice"
        );
        assert_eq!(
            unit_path("0day.service"),
            "/org/freedesktop/systemd1/unit/_30day_2eservice"
        );
        for name in [
            "app.service",
            "a-b@x_y.timer",
            "0day.service",
            "dev-sda1.device",
        ] {
            assert_eq!(unit_name(&unit_path(name)).as_deref(), Some(name));
        }
        assert_eq!(unit_name("/org/freedesktop/systemd1/job/12"), None);
        assert_eq!(unit_name("/org/freedesktop/systemd1/unit/bad_4"), None);
        assert_eq!(job_id("/org/freedesktop/systemd1/job/1234"), Some(1234));
        assert_eq!(job_id("/org/freedesktop/systemd1/unit/x"), None);
    }

    #[test]
    fn timespans_print_like_systemctl_show() {
        assert_eq!(format_timespan(15 * 60_000_000), "15min");
        assert_eq!(format_timespan(90_000_000), "1min 30s");
        assert_eq!(format_timespan(u64::MAX), "infinity");
        assert_eq!(format_timespan(0), "0");
        assert_eq!(format_timespan(1_500_000), "1.5s");
        assert_eq!(format_timespan(3_600_000_000 + 1_000), "1h 1ms");
        assert_eq!(format_timespan(500_000), "500ms");
        // What validate parses back.
        assert!(humantime::parse_duration(&format_timespan(90_000_000)).is_ok());
    }

    #[test]
    fn type_interfaces_and_ids() {
        assert_eq!(type_interface("a.service"), Some(SERVICE));
        assert_eq!(
            type_interface("a.timer"),
            Some("org.freedesktop.systemd1.Timer")
        );
        assert_eq!(type_interface("a.target"), None);
        assert_eq!(hex(&[0x0a, 0xff, 0x00]), "0aff00");
    }
}
