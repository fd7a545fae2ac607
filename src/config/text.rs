//! The text as libyaml reads it: its lines and line breaks, the characters its reader refuses,
//! positions in it (a key's, for errors raised after the read; one inside the text, for an
//! error libyaml places past the end), and the tidying of serde_norway's messages (their
//! trailing mark, their length). Separate because it is about characters and positions, not
//! about what the config means, and `parse` and the fuzz tests share it.

/// Where `key:` first stands in the text (1-based), for errors raised after deserialising;
/// the top of the file when it is not found (a flow mapping, say).
pub(super) fn key_position(text: &str, key: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start_matches([' ', '-', '{']);
            let rest = t.strip_prefix(key)?;
            rest.trim_start()
                .starts_with(':')
                .then(|| (i + 1, l.len() - t.len() + 1))
        })
        .unwrap_or((1, 1))
}

/// serde_norway says " at line L column C" after the problem; we print the position in front
/// instead. (A second position, of the context, is kept: "while parsing a flow mapping at …".)
pub(super) fn strip_mark(message: &str, (line, column): (usize, usize)) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

/// Messages quote the offending value; one a megabyte long would flood the journal.
pub(super) fn shorten(mut message: String) -> String {
    const MAX: usize = 1000;
    if let Some((cut, _)) = message.char_indices().nth(MAX) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Whether `c` ends a line, as libyaml counts lines (so that positions agree with its marks).
fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The 1-based position of the first character that libyaml's reader refuses (YAML allows
/// tab, line breaks and printable characters only), with its line and column counted as
/// libyaml counts them. NUL is left to the caller (a binary file).
pub(super) fn forbidden_character(text: &str) -> Option<((usize, usize), char)> {
    let (mut line, mut column) = (1, 1);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = matches!(c,
            '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}'
            | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        if !allowed {
            return Some(((line, column), c));
        }
        if is_break(c) && !(c == '\r' && chars.peek() == Some(&'\n')) {
            line += 1;
            column = 1;
        } else if !is_break(c) {
            column += 1;
        }
    }
    None
}

/// A position inside the text: libyaml places an error at the very end (an unclosed bracket)
/// one line below the last when the text ends with a line break; an editor shows no such line,
/// so it becomes the end of the last line.
pub(super) fn within(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = lines(text);
    match lines.get(line.max(1) - 1) {
        Some(_) => (line.max(1), column.max(1)),
        None => (
            lines.len(),
            lines.last().map_or(0, |l| l.chars().count()) + 1,
        ),
    }
}

/// The text's lines as libyaml counts them (a break is \n, \r\n, \r, NEL, LS or PS); a final
/// break does not start another line, and an empty text has one, empty line.
pub(super) fn lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if !is_break(c) {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r'
            && let Some(&(j, '\n')) = iter.peek()
        {
            iter.next();
            end = j + 1;
        }
        start = end;
    }
    if start < text.len() || lines.is_empty() {
        lines.push(&text[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{parse_err, parse_ok};

    #[test]
    fn byte_order_mark_control_characters_and_second_documents() {
        assert_eq!(
            parse_ok("\u{feff}check:\n  command: [x]\nunits: [a]\n")
                .units
                .len(),
            1
        );
        // Columns as an editor shows them, without the mark.
        let e = parse_err("\u{feff}check: {command: [x], confirm: 0}\nunits: [a]\n");
        assert!(e.starts_with("c.yaml:1:32:"), "{e}");
        let e = parse_err("check: {command: [x]}\nunits: [a\u{1}]\n");
        assert!(
            e.starts_with("c.yaml:2:10: control character U+0001 is not allowed in YAML"),
            "{e}"
        );
        // Columns count characters, as libyaml does.
        let e = parse_err("check: {command: [x]}\r\nunits: [\"\u{e9}\u{7f}\"]\r\n");
        assert!(
            e.starts_with("c.yaml:2:11: control character U+007F"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: [a]\n---\nunits: [b]\n");
        assert!(
            e.starts_with("c.yaml:3:1: a second YAML document (---) is not allowed"),
            "{e}"
        );
        let e = parse_err("check: {command: [x]}\nunits: [a]\n...\nunits: [b]\n");
        assert!(
            e.starts_with("c.yaml:4:1: text after the end of the document (...)"),
            "{e}"
        );
        // Markers around the one document are fine.
        parse_ok("---\ncheck: {command: [x]}\nunits: [a]\n...\n# end\n");
    }

    #[test]
    fn an_error_at_the_end_points_into_the_text() {
        // libyaml places it below the final line break, on a line no editor shows.
        let e = parse_err("check: {command: [x]}\nunits: [a\n");
        assert!(e.starts_with("c.yaml:2:10: "), "{e}");
        // The problem's position is said once, in front; the context's stays.
        let e = parse_err("check: {command: [x]\nunits: [a]\n");
        assert_eq!(
            e,
            "c.yaml:2:1: did not find expected ',' or '}', while parsing a flow mapping at line 1 column 8"
        );
        assert_eq!(lines("a\r\nb\rc\u{2028}d\n"), ["a", "b", "c", "d"]);
        assert_eq!(lines(""), [""]);
    }

    #[test]
    fn a_huge_value_is_not_quoted_whole() {
        let long = "a".repeat(100_000);
        let e = parse_err(&format!("check: {{command: [x]}}\nunits: [\"{long}\"]\n"));
        assert!(e.contains("\"… is longer than 255 characters"), "{e}");
        assert!(e.len() < 200, "{} bytes", e.len());
        // Messages that serde_norway writes are cut short too.
        let e = parse_err(&format!(
            "check: {{command: [x], timeout: {long}}}\nunits: [a]\n"
        ));
        assert!(
            e.ends_with('…') && e.len() < 1100,
            "{} bytes: {e:.200}",
            e.len()
        );
    }
}
