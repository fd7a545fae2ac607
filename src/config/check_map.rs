//! The `check:` map, read by hand: where the role comes from (`command` or `etcd`), its
//! timeout, confirmation and fencing, and the two exit-code lists, each held against the other
//! while it is read so that a code in both is said at the element that repeats it. Also the
//! lenient first look at the text ([`lone_exit_code_list`]) that tells the visitor whether a
//! list given alone can be held against the other's default at once. Separate from the other
//! visitors because it is the one map read by hand, its keys depending on one another.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::raw::{
    default_check_timeout, default_confirm, default_confirm_interval, default_primary_codes,
    default_standby_codes,
};
use super::visit::{argv, positive_duration};
use super::{CheckConfig, EtcdConfig, Source};

/// `check:`. Written by hand rather than derived so that each exit-code list can be held
/// against the other while it is read, at the element that repeats a code.
pub(super) fn check<'de, const LONE_LIST: bool, D: Deserializer<'de>>(
    d: D,
) -> Result<CheckConfig, D::Error> {
    d.deserialize_struct(
        "check",
        CHECK_KEYS,
        CheckVisitor {
            lone_list: LONE_LIST,
        },
    )
}

const CHECK_KEYS: &[&str] = &[
    "command",
    "etcd",
    "timeout",
    "primary_exit_codes",
    "standby_exit_codes",
    "confirm",
    "confirm_interval",
    "fence_after",
];

#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum CheckKey {
    Command,
    Etcd,
    Timeout,
    PrimaryExitCodes,
    StandbyExitCodes,
    Confirm,
    ConfirmInterval,
    FenceAfter,
}

/// The list read second is held against the first. A list given alone is held against the
/// other's default, at its elements only when it is known not to be followed by the other list
/// (`lone_list`, from `lone_exit_code_list`: see `parse`); else at the end of the map, said at
/// `check:`.
struct CheckVisitor {
    lone_list: bool,
}

impl CheckVisitor {
    /// What a list is held against as it is read: the other list, once read.
    fn other<'a>(
        &self,
        role: &'static str,
        read: Option<&'a [i32]>,
        default: &'a [i32],
    ) -> Option<Other<'a>> {
        match read {
            Some(codes) => Some(Other::given(role, codes)),
            None => self.lone_list.then(|| Other::defaulted(role, default)),
        }
    }
}

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CheckConfig;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map with `command` or `etcd`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckConfig, A::Error> {
        let mut command = None;
        let mut etcd = None;
        let (mut primary, mut standby): (Option<Vec<i32>>, Option<Vec<i32>>) = (None, None);
        let mut timeout = default_check_timeout();
        let mut confirm = default_confirm();
        let mut confirm_interval = default_confirm_interval();
        let mut fence_after = None;
        let mut seen = Vec::new();
        let (primary_default, standby_default) = (default_primary_codes(), default_standby_codes());
        while let Some(key) = map.next_key::<CheckKey>()? {
            if seen.contains(&key) {
                // CHECK_KEYS lists the keys in CheckKey's order.
                return Err(de::Error::duplicate_field(CHECK_KEYS[key as usize]));
            }
            seen.push(key);
            match key {
                CheckKey::Command => command = Some(map.next_value::<Argv>()?.0),
                CheckKey::Etcd => etcd = Some(map.next_value::<EtcdConfig>()?),
                CheckKey::Timeout => timeout = map.next_value::<Positive>()?.0,
                CheckKey::PrimaryExitCodes => {
                    let other = self.other("standby", standby.as_deref(), &standby_default);
                    primary = Some(map.next_value_seed(ExitCodes { other })?);
                }
                CheckKey::StandbyExitCodes => {
                    let other = self.other("primary", primary.as_deref(), &primary_default);
                    standby = Some(map.next_value_seed(ExitCodes { other })?);
                }
                CheckKey::Confirm => confirm = map.next_value::<Confirm>()?.0,
                CheckKey::ConfirmInterval => confirm_interval = map.next_value::<Positive>()?.0,
                CheckKey::FenceAfter => fence_after = Some(map.next_value::<Positive>()?.0),
            }
        }
        let source = match (command, etcd) {
            (Some(argv), None) => Source::Command(argv),
            (None, Some(e)) => {
                if primary.is_some() || standby.is_some() {
                    return Err(de::Error::custom(
                        "primary_exit_codes and standby_exit_codes are for check.command, not check.etcd",
                    ));
                }
                Source::Etcd(e)
            }
            (Some(_), Some(_)) => {
                return Err(de::Error::custom(
                    "has both `command` and `etcd`; the role comes from one of them",
                ));
            }
            (None, None) => return Err(de::Error::missing_field("command")),
        };
        // Without `lone_list`, a list given alone was held against nothing while it was read.
        let lone = match (&primary, &standby) {
            (Some(p), None) => Some((p, Other::defaulted("standby", &standby_default))),
            (None, Some(s)) => Some((s, Other::defaulted("primary", &primary_default))),
            _ => None,
        };
        if let Some((given, other)) = lone
            && let Some(&c) = given.iter().find(|c| other.codes.contains(c))
        {
            return Err(de::Error::custom(other.clash(c)));
        }
        Ok(CheckConfig {
            source,
            timeout,
            primary_exit_codes: primary.unwrap_or(primary_default),
            standby_exit_codes: standby.unwrap_or(standby_default),
            confirm,
            confirm_interval,
            fence_after,
        })
    }
}

struct Argv(Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        argv(d).map(Argv)
    }
}

struct Positive(Duration);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        positive_duration(d).map(Positive)
    }
}

/// `check.confirm`: 1 to 10 results in a row.
struct Confirm(u32);

impl<'de> Deserialize<'de> for Confirm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Confirm;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number from 1 to 10")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Confirm, E> {
                match u32::try_from(n) {
                    Ok(n @ 1..=10) => Ok(Confirm(n)),
                    _ => Err(E::custom(format!("{n} must be between 1 and 10"))),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Confirm, E> {
                match u32::try_from(n) {
                    Ok(n @ 1..=10) => Ok(Confirm(n)),
                    _ => Err(E::custom(format!("{n} must be between 1 and 10"))),
                }
            }
        }
        d.deserialize_u64(V)
    }
}

/// The other exit-code list, as each code read is held against it.
#[derive(Clone, Copy)]
struct Other<'a> {
    role: &'static str,
    codes: &'a [i32],
    /// `codes` is that list's default: the file does not give it.
    default: bool,
}

impl<'a> Other<'a> {
    fn given(role: &'static str, codes: &'a [i32]) -> Self {
        Other {
            role,
            codes,
            default: false,
        }
    }
    fn defaulted(role: &'static str, codes: &'a [i32]) -> Self {
        Other {
            role,
            codes,
            default: true,
        }
    }
    /// Why `code` cannot be in both lists.
    fn clash(&self, code: i32) -> String {
        let role = self.role;
        match self.default {
            false => format!("{code} is also a {role} exit code"),
            true => format!(
                "{code} is also a {role} exit code ({role}_exit_codes defaults to {:?}); set {role}_exit_codes",
                self.codes
            ),
        }
    }
}

/// An exit-code list: not empty, each code 0 to 255 and not in the `other` list.
struct ExitCodes<'a> {
    other: Option<Other<'a>>,
}

impl<'de> DeserializeSeed<'de> for ExitCodes<'_> {
    type Value = Vec<i32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<i32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ExitCodes<'_> {
    type Value = Vec<i32>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence of exit codes (0 to 255)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i32>, A::Error> {
        let mut codes = Vec::new();
        while let Some(c) = seq.next_element_seed(ExitCode { other: self.other })? {
            codes.push(c);
        }
        if codes.is_empty() {
            return Err(de::Error::custom("is empty"));
        }
        Ok(codes)
    }
}

struct ExitCode<'a> {
    other: Option<Other<'a>>,
}

impl<'de> DeserializeSeed<'de> for ExitCode<'_> {
    type Value = i32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i32, D::Error> {
        d.deserialize_i64(self)
    }
}

impl Visitor<'_> for ExitCode<'_> {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an exit code (0 to 255)")
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<i32, E> {
        let code = match i32::try_from(n) {
            Ok(c @ 0..=255) => c,
            _ => return Err(E::custom(format!("{n} is not an exit code (0 to 255)"))),
        };
        match self.other {
            Some(other) if other.codes.contains(&code) => Err(E::custom(other.clash(code))),
            _ => Ok(code),
        }
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<i32, E> {
        match i64::try_from(n) {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(E::custom(format!("{n} is not an exit code (0 to 255)"))),
        }
    }
}

/// Whether `check:` gives one exit-code list and not the other: a lenient look at the text
/// (every other rule is left to the real read; a text it cannot read gives `false`). A key
/// counts as given whatever its value, `null` included.
pub(super) fn lone_exit_code_list(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Doc {
        check: Lists,
    }
    #[derive(Deserialize)]
    struct Lists {
        #[serde(default)]
        primary_exit_codes: Given,
        #[serde(default)]
        standby_exit_codes: Given,
    }
    #[derive(Default)]
    struct Given(bool);
    impl<'de> Deserialize<'de> for Given {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            de::IgnoredAny::deserialize(d).map(|_| Given(true))
        }
    }
    serde_yaml::from_str::<Doc>(text)
        .is_ok_and(|d| d.check.primary_exit_codes.0 != d.check.standby_exit_codes.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::parse;
    use crate::config::raw::RawConfig;
    use crate::config::tests::{parse_err, parse_ok};

    #[test]
    fn unknown_top_level_and_check_keys() {
        let e = parse_err("check: {command: [x]}\nunits: [a]\nunit: [b]\n");
        assert!(
            e.starts_with("c.yaml:3:") && e.contains("unknown field `unit`"),
            "{e}"
        );
        let e = parse_err("check:\n  command: [x]\n  timout: 3s\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:") && e.contains("check: unknown field `timout`"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\ndefaults: {setle: 1s}\nunits: [a]\n");
        assert!(e.contains("defaults: unknown field `setle`"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  timeout: 1s\n  timeout: 2s\nunits: [a]\n");
        assert!(e.contains("check: duplicate field `timeout`"), "{e}");
        let e = parse_err("check:\n  timeout: 1s\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:2:3: check: missing field `command`"),
            "{e}"
        );
        let e = parse_err("check: [x]\nunits: [a]\n");
        assert!(
            e.contains("check: invalid type: sequence, expected a map with `command`"),
            "{e}"
        );
    }

    #[test]
    fn check_command_and_exit_codes() {
        let e = parse_err("check:\n  command: []\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:2:12: check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: [\"\"]\nunits: [a]\n");
        assert!(e.contains("check.command: is empty"), "{e}");
        let e = parse_err("check:\n  command: /bin/true\nunits: [a]\n");
        assert!(e.contains("check.command: invalid type: string"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  standby_exit_codes: [256]\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:3:24: check.standby_exit_codes[0]: 256 is not an exit code"),
            "{e}"
        );
        // Two given lists: the repeated code, in the list read second.
        let e = parse_err(
            "check:\n  command: [x]\n  standby_exit_codes: [1, 2]\n  primary_exit_codes: [0, 3, 2]\nunits: [a]\n",
        );
        assert!(
            e.starts_with(
                "c.yaml:4:30: check.primary_exit_codes[2]: 2 is also a standby exit code"
            ),
            "{e}"
        );
        let e = parse_err("check: {command: [x], primary_exit_codes: [-1]}\nunits: [a]\n");
        assert!(e.contains("-1 is not an exit code"), "{e}");
        let e = parse_err("check:\n  command: [x]\n  primary_exit_codes: []\nunits: [a]\n");
        assert!(e.contains("check.primary_exit_codes: is empty"), "{e}");
        let c = parse_ok(
            "check:\n  command: [x]\n  primary_exit_codes: [0, 10]\n  standby_exit_codes: [1, 11]\nunits: [a]\n",
        );
        assert_eq!(c.check.primary_exit_codes, vec![0, 10]);
    }

    #[test]
    fn a_code_in_both_lists_is_said_at_the_element_in_either_order() {
        let check = |lists: &str| format!("check:\n  command: [x]\n{lists}units: [a]\n");
        let given = |p: &[i32], s: &[i32]| Ok::<_, &str>((p.to_vec(), s.to_vec()));
        for (lists, expected) in [
            // One list given: held against the other's default, at the element.
            (
                "  primary_exit_codes: [0, 1]\n",
                Err(
                    "c.yaml:3:27: check.primary_exit_codes[1]: 1 is also a standby exit code (standby_exit_codes defaults to [1]); set standby_exit_codes",
                ),
            ),
            (
                "  standby_exit_codes: [2, 0]\n",
                Err(
                    "c.yaml:3:27: check.standby_exit_codes[1]: 0 is also a primary exit code (primary_exit_codes defaults to [0]); set primary_exit_codes",
                ),
            ),
            // The other list, given later, wins over its default: no clash.
            (
                "  primary_exit_codes: [0, 1]\n  standby_exit_codes: [2]\n",
                given(&[0, 1], &[2]),
            ),
            (
                "  standby_exit_codes: [2, 0]\n  primary_exit_codes: [1]\n",
                given(&[1], &[2, 0]),
            ),
            // ... and is held against the list given first.
            (
                "  primary_exit_codes: [0, 1]\n  standby_exit_codes: [2, 1]\n",
                Err("c.yaml:4:27: check.standby_exit_codes[1]: 1 is also a primary exit code\n"),
            ),
            (
                "  standby_exit_codes: [1, 3]\n  primary_exit_codes: [0, 3]\n",
                Err("c.yaml:4:27: check.primary_exit_codes[1]: 3 is also a standby exit code\n"),
            ),
            // A list written as null is given (and wrong): not held against a default.
            (
                "  standby_exit_codes: [0]\n  primary_exit_codes: null\n",
                Err("c.yaml:4:23: check.primary_exit_codes: invalid type"),
            ),
            ("", given(&[0], &[1])),
        ] {
            let text = check(lists);
            let got = parse(Path::new("c.yaml"), &text)
                .map(|c| (c.check.primary_exit_codes, c.check.standby_exit_codes))
                .map_err(|e| e.to_string() + "\n");
            match (&got, expected) {
                (Err(e), Err(want)) => assert!(e.starts_with(want), "{lists}: {e}"),
                (got, want) => assert_eq!(*got, want.map_err(String::from), "{lists}"),
            }
        }
        // On one line, too.
        let e = parse_err("check: {command: [x], primary_exit_codes: [1, 0]}\nunits: [a]\n");
        assert!(
            e.starts_with("c.yaml:1:44: check.primary_exit_codes[0]: 1 is also a standby"),
            "{e}"
        );
    }

    #[test]
    fn without_the_first_look_a_lone_list_is_still_held_against_the_default() {
        // What the first read (told nothing) finds; `parse` reads again to point at the code.
        let text = "check:\n  command: [x]\n  primary_exit_codes: [0, 1]\nunits: [a]\n";
        let e = serde_yaml::from_str::<RawConfig<false>>(text)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "check: 1 is also a standby exit code (standby_exit_codes defaults to [1]); set standby_exit_codes at line 2 column 3"
            )
        );
        assert!(lone_exit_code_list(text));
        assert!(!lone_exit_code_list("check: {command: [x]}\nunits: [a]\n"));
        assert!(!lone_exit_code_list("check: [\n"));
    }
}
