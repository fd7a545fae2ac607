//! Config texts for the property tests and `make fuzz`: random documents made of YAML's
//! punctuation and this config's own keys and values (good and bad), and random mutations of
//! the shipped example. Self-contained (proptest and std only): the integration tests include
//! this file too, to feed the same inputs to the real binary.

use proptest::prelude::*;

/// The shipped example: every key there is, so mutations of it reach every check.
pub const EXAMPLE: &str = include_str!("../../examples/config.yaml");

/// What configs are made of, and what breaks them.
const TOKENS: &[&str] = &[
    // structure
    "\n",
    "\n  ",
    "\n    ",
    "\n      ",
    " ",
    "  ",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ",",
    "#",
    " # note",
    "\"",
    "'",
    "\\",
    "|\n  ",
    ">-\n  ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!!int ",
    "!x ",
    "<<: ",
    "---\n",
    "...\n",
    "--- ",
    "%YAML 1.2\n",
    "\t",
    "\r\n",
    "\r",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
    "\u{1}",
    "\u{1b}",
    "\u{7f}",
    "\u{9f}",
    "\u{fffe}",
    "é",
    "\u{1f600}",
    "\u{0}",
    // keys
    "check",
    "command",
    "timeout",
    "primary_exit_codes",
    "standby_exit_codes",
    "confirm",
    "confirm_interval",
    "fence_after",
    "defaults",
    "verify_timeout",
    "settle",
    "hooks",
    "on_promote",
    "on_demote",
    "on_failure",
    "metrics_file",
    "parallel",
    "units",
    "name",
    "when",
    "managed",
    // values
    "primary",
    "standby",
    "true",
    "false",
    "null",
    "~",
    "yes",
    "0",
    "1",
    "2",
    "10",
    "11",
    "-1",
    "255",
    "256",
    "99999999999999999999",
    "1.5",
    ".nan",
    "0x10",
    "10s",
    "0s",
    "500ms",
    "1m 30s",
    "1h",
    "2h",
    "61m",
    "999999999999999s",
    "soon",
    "/bin/true",
    "/usr/bin/check",
    "/var/lib/x/fm.prom",
    "fm.prom",
    "/x/fm.txt",
    "a",
    "app",
    "app.service",
    "web",
    "a@b",
    "a@",
    "@b",
    "a@b@c",
    ".service",
    "x.slice",
    "system.slice",
    "x.device",
    "x.scope",
    "x.timer",
    "x.mount",
    "-x",
    "--now",
    "a b",
    "a;b",
    "foo\\x2dbar",
];

fn token() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(TOKENS)
}

/// A random document of up to 300 pieces.
pub fn document() -> impl Strategy<Value = String> {
    proptest::collection::vec(token(), 0..300).prop_map(|t| t.concat())
}

/// One edit of a text; positions are taken modulo the text's length when applied.
#[derive(Debug, Clone)]
pub enum Mutation {
    Insert(usize, &'static str),
    Replace(usize, char),
    Delete(usize, usize),
    /// Repeats a stretch of text a number of times (large and deeply nested inputs).
    Repeat(usize, usize, usize),
    DuplicateLine(usize, usize),
    DeleteLine(usize),
    /// Sets a line's indentation to this many spaces.
    Indent(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), token()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        2 => (any::<usize>(), any::<char>()).prop_map(|(at, c)| Mutation::Replace(at, c)),
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<usize>(), 1..20usize, 2..200usize)
            .prop_map(|(at, n, times)| Mutation::Repeat(at, n, times)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(l, to)| Mutation::DuplicateLine(l, to)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => (any::<usize>(), 0..9usize).prop_map(|(l, n)| Mutation::Indent(l, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The example config after 1 to 8 random edits.
pub fn mutated_example() -> impl Strategy<Value = String> {
    proptest::collection::vec(mutation(), 1..8).prop_map(|edits| {
        let mut chars: Vec<char> = EXAMPLE.chars().collect();
        for m in edits {
            apply(&mut chars, m);
        }
        chars.into_iter().collect()
    })
}

fn apply(chars: &mut Vec<char>, m: Mutation) {
    let len = chars.len();
    let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Insert(i, t) => {
            let i = at(i);
            chars.splice(i..i, t.chars());
        }
        Mutation::Replace(i, c) if len > 0 => chars[i % len] = c,
        Mutation::Delete(i, n) => {
            let i = at(i);
            chars.drain(i..(i + n).min(len));
        }
        Mutation::Repeat(i, n, times) => {
            let i = at(i);
            let piece: Vec<char> = chars[i..(i + n).min(len)].to_vec();
            let copies: Vec<char> = piece
                .iter()
                .copied()
                .cycle()
                .take(piece.len() * times)
                .collect();
            chars.splice(i..i, copies);
        }
        Mutation::DuplicateLine(l, to) => {
            let lines = line_ranges(chars);
            let (s, e) = lines[l % lines.len()];
            let line: Vec<char> = chars[s..e].iter().copied().chain(['\n']).collect();
            let (to, _) = lines[to % lines.len()];
            chars.splice(to..to, line);
        }
        Mutation::DeleteLine(l) => {
            let lines = line_ranges(chars);
            let (s, e) = lines[l % lines.len()];
            chars.drain(s..(e + 1).min(len));
        }
        Mutation::Indent(l, n) => {
            let lines = line_ranges(chars);
            let (s, e) = lines[l % lines.len()];
            let indent = chars[s..e].iter().take_while(|c| **c == ' ').count();
            chars.splice(s..s + indent, std::iter::repeat_n(' ', n));
        }
        Mutation::Truncate(i) => chars.truncate(at(i)),
        Mutation::Replace(..) => {}
    }
}

/// Start and end (exclusive, before the '\n') of every line; at least one.
fn line_ranges(chars: &[char]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, c) in chars.iter().enumerate() {
        if *c == '\n' {
            ranges.push((start, i));
            start = i + 1;
        }
    }
    ranges.push((start, chars.len()));
    ranges
}

/// A random document repeated up to `size` characters, for inputs near the size limit.
pub fn large() -> impl Strategy<Value = String> {
    (document(), 1usize..=1 << 20).prop_map(|(piece, size)| {
        if piece.is_empty() {
            return piece;
        }
        piece.chars().cycle().take(size).collect()
    })
}

/// Mostly small texts, and now and then one near the size limit (they take longest).
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![500 => document(), 500 => mutated_example(), 1 => large()]
}

/// Inputs of about `size` bytes built to be slow: deep nesting of every kind, long flat lists,
/// long scalars, aliases, many documents.
pub fn hard(size: usize) -> Vec<(&'static str, String)> {
    let fill = |piece: &str| piece.repeat(size / piece.len());
    let head = "check: {command: [x]}\nunits:\n";
    // Lines indented one more each: n lines take about n * n / 2 bytes.
    let steps = (2.0 * size as f64).sqrt() as usize;
    let staircase: String = (0..steps)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    let distinct: String = (0..size / 12).map(|i| format!("  - u{i:07}\n")).collect();
    let aliases = format!(
        "check: {{command: &c [x{}]}}\nhooks: {{on_promote: {{command: *c}}, on_demote: {{command: *c}}}}\nunits: [&u a{}]\n",
        ", x".repeat(size / 8),
        ", *u".repeat(size / 8)
    );
    vec![
        ("flow sequences nested deep", fill("[")),
        ("flow maps nested deep", fill("{a: ")),
        ("block sequences nested deep", fill("- ")),
        ("complex keys nested deep", fill("? ")),
        ("block maps nested deep (indentation)", staircase),
        (
            "deep nesting at the end",
            format!("{head}{}  - {}", fill("  # a\n"), "[".repeat(4000)),
        ),
        ("distinct units (valid)", format!("{head}{distinct}")),
        (
            "the same unit 1 MiB long",
            format!("{head}{}", fill("  - a\n")),
        ),
        (
            "a flow list of units",
            format!("check: {{command: [x]}}\nunits: [{}]\n", fill("a, ")),
        ),
        (
            "a check command of many arguments",
            format!("check: {{command: [{}]}}\nunits: [a]\n", fill("x, ")),
        ),
        (
            "one long plain scalar",
            format!("{head}  - {}\n", fill("a")),
        ),
        (
            "one quoted scalar full of escapes",
            format!("{head}  - \"{}\"\n", fill("\\x41\\u00e9")),
        ),
        (
            "a multi-line plain scalar",
            format!("{head}  - a\n{}", fill("    b\n")),
        ),
        (
            "comments",
            format!("{}{head}  - a\n", fill("# [[[{{{{ \"'\n")),
        ),
        ("aliases", aliases),
        ("unknown keys", fill("a: 1\n")),
        ("a flow map of many keys", format!("{{{}}}", fill("a: 1, "))),
        ("simple keys on one long line", fill("a: b, ")),
        ("documents", fill("---\n")),
        ("document ends", fill("...\n")),
        ("anchors", format!("{head}{}", fill("  - &a a\n"))),
        ("tags", format!("{head}{}", fill("  - !!str a\n"))),
        ("blank lines", format!("{}{head}  - a\n", fill("\n"))),
        ("tabs and spaces", format!("{head}  - a{}\n", fill(" \t"))),
    ]
}
