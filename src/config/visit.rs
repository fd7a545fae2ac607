//! The validating visitors of single values (durations, commands, paths, etcd endpoints and
//! keys, the lease TTL, `metrics_file`, `site`, unit names) and of the `units:` list.
//!
//! Each check runs inside the visitor of the value it is about, so that serde_norway stamps the
//! error with that value's position and key path (an error raised after deserializing would
//! point at the enclosing entry, or nowhere). Separate from the types they fill in, which stay
//! free of validation code; the `check:` map, read by hand, has its own module (`check_map`).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::AbsolutePath;
use super::raw::RawUnit;
use super::unit_name::normalize_unit_name;
use crate::cli::values;
use crate::domain::When;

/// Parses inside the visitor (see the module's header).
struct DurationVisitor {
    allow_zero: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"10s\" or \"1m 30s\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
        values::duration(s, self.allow_zero).map_err(E::custom)
    }
    // A bare number has no unit, and guessing seconds is how typos go unnoticed.
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write \"{n}s\""
        )))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write \"{n}s\""
        )))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "duration {n} has no unit; write e.g. \"{n}s\""
        )))
    }
}

pub(super) fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: false })
}
pub(super) fn any_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: true })
}
pub(super) fn opt_positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    positive_duration(d).map(Some)
}
pub(super) fn opt_any_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    any_duration(d).map(Some)
}

/// A command: a non-empty list of strings whose first (the program) is not blank.
struct ArgvVisitor;

impl<'de> Visitor<'de> for ArgvVisitor {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence: the program and its arguments")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut argv = Vec::new();
        while let Some(arg) = seq.next_element::<String>()? {
            argv.push(arg);
        }
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(de::Error::custom(
                "is empty; give the program and its arguments, e.g. [\"/usr/local/bin/program\", \"argument\"]",
            ));
        }
        Ok(argv)
    }
}

pub(super) fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_seq(ArgvVisitor)
}

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AbsolutePath;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an absolute path")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<AbsolutePath, E> {
                if !s.starts_with('/') {
                    return Err(E::custom(format!("{s:?} is not an absolute path")));
                }
                Ok(AbsolutePath(PathBuf::from(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `http://host:port` or `https://…`, nothing after the authority: the client adds the API path.
pub(super) fn endpoints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of URLs such as http://10.0.0.1:2379")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out: Vec<String> = Vec::new();
            while let Some(e) = seq.next_element::<String>()? {
                let rest = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"))
                    .ok_or_else(|| {
                        de::Error::custom(format!("{e:?} must start with http:// or https://"))
                    })?;
                let authority = rest.trim_end_matches('/');
                let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
                if authority.is_empty() || !authority.chars().all(plain) {
                    return Err(de::Error::custom(format!(
                        "{e:?} must be scheme://host:port and nothing else"
                    )));
                }
                if out.contains(&e) {
                    return Err(de::Error::custom(format!("{e:?} is listed twice")));
                }
                out.push(e);
            }
            if out.is_empty() {
                return Err(de::Error::custom("is empty"));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

/// An etcd key: printable, no blank space, starting with `/`.
pub(super) fn etcd_key<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an etcd key such as /failover-manager/primary-site")
        }
        fn visit_str<E: de::Error>(self, k: &str) -> Result<String, E> {
            if !k.starts_with('/') || k.len() > 255 || !k.chars().all(|c| c.is_ascii_graphic()) {
                return Err(E::custom(format!(
                    "key {:?} must start with / and be up to 255 printable ASCII characters without spaces",
                    k.chars().take(64).collect::<String>()
                )));
            }
            Ok(k.to_owned())
        }
    }
    d.deserialize_str(V)
}

/// etcd counts a lease's TTL in whole seconds, and will not grant less than a couple.
pub(super) fn lease_ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("whole seconds such as \"30s\"")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
            let t = DurationVisitor { allow_zero: false }.visit_str::<E>(s)?;
            if t.subsec_nanos() != 0 || t < Duration::from_secs(3) {
                return Err(E::custom(format!(
                    "{} must be whole seconds, 3s or more (etcd counts a lease in seconds)",
                    humantime::format_duration(t)
                )));
            }
            Ok(t)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_u64(n)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_i64(n)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Duration, E> {
            DurationVisitor { allow_zero: false }.visit_f64(n)
        }
    }
    d.deserialize_any(V).map(Some)
}

pub(super) fn opt_argv<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    argv(d).map(Some)
}

/// `metrics_file:`, checked as `--metrics-file` is.
pub(super) struct MetricsFile(pub(super) PathBuf);

impl<'de> Deserialize<'de> for MetricsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MetricsFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an absolute path ending in .prom")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MetricsFile, E> {
                let path = PathBuf::from(s);
                values::metrics_file(&path).map_err(E::custom)?;
                Ok(MetricsFile(path))
            }
        }
        d.deserialize_str(V)
    }
}

/// `site:`, a metric label value: short and plain, so a typo or a stray quote cannot split one
/// site's series in two or break the text format.
pub(super) struct Site(pub(super) String);

impl<'de> Deserialize<'de> for Site {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Site;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a site name such as dc1")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Site, E> {
                values::site(s).map(Site).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

struct UnitNameVisitor;

impl Visitor<'_> for UnitNameVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a unit name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        normalize_unit_name(s).map_err(E::custom)
    }
}

pub(super) fn unit_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(UnitNameVisitor)
}

/// `units:`: not empty, and no unit twice (each entry is held against those before it as it is
/// read, so the error points at the repeat).
pub(super) struct RawUnits(pub(super) Vec<RawUnit>);

impl<'de> Deserialize<'de> for RawUnits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawUnits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of units")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawUnits, A::Error> {
                let mut seen = HashMap::new();
                let mut units = Vec::new();
                while let Some(u) = seq.next_element_seed(UnitEntry { seen: &mut seen })? {
                    units.push(u);
                }
                if units.is_empty() {
                    return Err(de::Error::custom(
                        "is empty; list the units this host manages",
                    ));
                }
                Ok(RawUnits(units))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One entry of `units:`: either a bare name (shorthand) or a map. Written by hand rather than
/// with `#[serde(untagged)]`, which would replace the precise error with "did not match any
/// variant".
struct UnitEntry<'a> {
    seen: &'a mut HashMap<String, When>,
}

impl<'de> DeserializeSeed<'de> for UnitEntry<'_> {
    type Value = RawUnit;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawUnit, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UnitEntry<'_> {
    type Value = RawUnit;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a unit name or a map with `name`")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawUnit, E> {
        let unit = RawUnit {
            name: normalize_unit_name(s).map_err(E::custom)?,
            when: None,
            verify_timeout: None,
            settle: None,
            managed: true,
        };
        self.admit(unit)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawUnit, A::Error> {
        let unit = RawUnit::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.admit(unit)
    }
}

impl UnitEntry<'_> {
    fn admit<E: de::Error>(self, unit: RawUnit) -> Result<RawUnit, E> {
        let when = unit.when.unwrap_or(When::Primary);
        match self.seen.get(&unit.name) {
            Some(&w) if w == when => Err(E::custom(format!("{} is listed twice", unit.name))),
            Some(_) => Err(E::custom(format!(
                "{} is listed for both roles; a unit runs on the primary or on the standby, not both",
                unit.name
            ))),
            None => {
                self.seen.insert(unit.name.clone(), when);
                Ok(unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{etcd_config, parse_err, parse_ok};

    #[test]
    fn check_etcd_bad_values_are_said_where_they_are() {
        for (etcd, says) in [
            (
                "    lease_ttl: 2s\n",
                "c.yaml:6:16: check.etcd.lease_ttl: 2s must be whole seconds, 3s or more",
            ),
            ("    lease_ttl: 3500ms\n", "must be whole seconds"),
            ("    lease_ttl: 30\n", "has no unit"),
            ("    request_timeout: 0s\n", "check.etcd.request_timeout"),
            ("    candidate: maybe\n", "check.etcd.candidate"),
            ("    before_acquire: []\n", "check.etcd.before_acquire"),
            (
                "    ca_file: etc/ca.pem\n",
                "\"etc/ca.pem\" is not an absolute path",
            ),
            ("    endpoint: http://x\n", "unknown field `endpoint`"),
        ] {
            let e = parse_err(&etcd_config(etcd, "", "  - app.service\n"));
            assert!(e.contains(says), "{etcd:?}: {e}");
        }
        for (endpoints, says) in [
            ("[]", "is empty"),
            ("[ftp://x:1]", "must start with http:// or https://"),
            (
                "[http://x:2379/v3/kv]",
                "must be scheme://host:port and nothing else",
            ),
            ("[http://]", "must be scheme://host:port"),
            ("[http://a:1, http://a:1]", "is listed twice"),
        ] {
            let e = parse_err(&format!(
                "site: a\ncheck:\n  etcd: {{endpoints: {endpoints}, key: /k}}\nunits: [a]\n"
            ));
            assert!(e.contains(says), "{endpoints}: {e}");
        }
        for key in ["k", "\"/a b\"", "\"\""] {
            let e = parse_err(&format!(
                "site: a\ncheck:\n  etcd: {{endpoints: [http://a:1], key: {key}}}\nunits: [a]\n"
            ));
            assert!(
                e.contains("must start with / and be up to 255 printable"),
                "{key}: {e}"
            );
        }
        let e = parse_err(&etcd_config(
            "    candidate: false\n",
            "",
            "  - app.service\n",
        ));
        assert!(
            e.starts_with(
                "c.yaml:6:5: check.etcd.candidate and before_acquire are for automatic mode"
            ),
            "{e}"
        );
        let e = parse_err(&etcd_config(
            "    cert_file: /etc/fm.pem\n",
            "",
            "  - app.service\n",
        ));
        assert!(
            e.starts_with("c.yaml:6:5: check.etcd.cert_file and key_file go together"),
            "{e}"
        );
        let e = parse_err(
            "site: a\ncheck:\n  command: [x]\n  etcd: {endpoints: [http://a:1], key: /k}\nunits: [a]\n",
        );
        assert!(e.contains("has both `command` and `etcd`"), "{e}");
        let e = parse_err(
            "site: a\ncheck:\n  etcd: {endpoints: [http://a:1], key: /k}\n  primary_exit_codes: [0]\nunits: [a]\n",
        );
        assert!(e.contains("are for check.command, not check.etcd"), "{e}");
    }

    #[test]
    fn empty_units_list() {
        let e = parse_err("check: {command: [x]}\nunits: []\n");
        assert!(e.starts_with("c.yaml:2:8: units: is empty"), "{e}");
    }

    #[test]
    fn duplicate_unit() {
        let e = parse_err("check: {command: [x]}\nunits:\n  - a.service\n  - b\n  - a\n");
        assert!(e.starts_with("c.yaml:5:"), "{e}");
        assert!(e.contains("units[2]: a.service is listed twice"), "{e}");
    }

    #[test]
    fn unit_in_both_roles() {
        let e = parse_err(
            "check: {command: [x]}\nunits:\n  - a.service\n  - name: a.service\n    when: standby\n",
        );
        assert!(e.starts_with("c.yaml:4:"), "{e}");
        assert!(e.contains("listed for both roles"), "{e}");
    }

    #[test]
    fn durations() {
        let unit =
            |extra: &str| format!("check: {{command: [x]}}\nunits:\n  - name: a\n    {extra}\n");
        assert!(parse_err(&unit("verify_timeout: 0s")).contains("must be greater than zero"));
        assert!(parse_err(&unit("verify_timeout: 2h")).contains("almost certainly a typo"));
        assert!(parse_err(&unit("verify_timeout: soon")).contains("invalid duration \"soon\""));
        assert!(parse_err(&unit("verify_timeout: 30")).contains("has no unit; write \"30s\""));
        assert!(parse_err(&unit("settle: 1.5")).contains("has no unit"));
        let e = parse_err(&unit("verify_timeout: 0s"));
        assert!(
            e.starts_with("c.yaml:4:") && e.contains("units[0].verify_timeout"),
            "{e}"
        );
        assert_eq!(
            parse_ok(&unit("settle: 0s")).units[0].settle,
            Duration::ZERO
        );
        assert_eq!(
            parse_ok(&unit("settle: 500ms")).units[0].settle,
            Duration::from_millis(500)
        );
        let e = parse_err("check: {command: [x], timeout: 0s}\nunits: [a]\n");
        assert!(
            e.contains("check.timeout: duration \"0s\" must be greater than zero"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\ndefaults: {verify_timeout: 0s}\nunits: [a]\n");
        assert!(e.contains("defaults.verify_timeout"), "{e}");
        let c = parse_ok("check: {command: [x], fence_after: 5m}\nunits: [a]\n");
        assert_eq!(c.check.fence_after, Some(Duration::from_secs(300)));
        assert_eq!(
            parse_ok("check: {command: [x]}\nunits: [a]\n")
                .check
                .fence_after,
            None
        );
        let e = parse_err("check: {command: [x], fence_after: 0s}\nunits: [a]\n");
        assert!(
            e.starts_with(
                "c.yaml:1:36: check.fence_after: duration \"0s\" must be greater than zero"
            ),
            "{e}"
        );
    }

    #[test]
    fn site_is_a_plain_label_value() {
        let c = parse_ok("check: {command: [x]}\nsite: dc-1.east_2\nunits: [a]\n");
        assert_eq!(c.site.as_deref(), Some("dc-1.east_2"));
        assert_eq!(parse_ok("check: {command: [x]}\nunits: [a]\n").site, None);
        for bad in ["\"\"", "\"dc 1\"", "dc\\\"1", "[dc1]"] {
            let e = parse_err(&format!(
                "check: {{command: [x]}}\nsite: {bad}\nunits: [a]\n"
            ));
            assert!(e.starts_with("c.yaml:2:7: "), "{bad}: {e}");
        }
    }

    #[test]
    fn metrics_file_and_parallel() {
        let c = parse_ok("check: {command: [x]}\nunits: [a]\n");
        assert_eq!(c.metrics_file, None);
        assert!(!c.parallel);
        let c = parse_ok(
            "check: {command: [x]}\nmetrics_file: /var/lib/node_exporter/fm.prom\nparallel: true\nunits: [a]\n",
        );
        assert_eq!(
            c.metrics_file,
            Some(PathBuf::from("/var/lib/node_exporter/fm.prom"))
        );
        assert!(c.parallel);
        let e = parse_err("check: {command: [x]}\nmetrics_file: fm.prom\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:15: metrics_file: fm.prom is not an absolute path"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nmetrics_file: /x/fm.txt\nunits: [a]\n");
        assert!(e.contains("must end in .prom"), "{e}");
        let e = parse_err("check: {command: [x]}\nparallel: yes please\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:") && e.contains("parallel: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_and_bad_when() {
        let e = parse_err("check: {command: [x]}\nunits:\n  - name: a\n    when: both\n");
        assert!(
            e.starts_with("c.yaml:4:") && e.contains("units[0].when: unknown variant `both`"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: a.service\n");
        assert!(e.contains("units: invalid type: string"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - [a]\n");
        assert!(e.contains("expected a unit name or a map"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits:\n  - when: standby\n");
        assert!(e.contains("missing field `name`"), "{e}");
    }
}
