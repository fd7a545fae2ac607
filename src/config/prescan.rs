//! One linear pass over the config with libyaml's own scanner (the one serde_norway parses
//! with), before serde_norway sees the text:
//!
//! - libyaml re-examines every open flow collection for each token it reads, so deep nesting
//!   costs quadratic time (a 1 MiB `{a: {a: …` parses for minutes, deaf to SIGTERM). Stopping
//!   at the first token nested deeper than [`MAX_DEPTH`] bounds that work to a constant per
//!   token; serde_norway then only ever sees shallow text.
//! - serde_norway reports a second document without a position; the scanner knows where it
//!   starts.
//!
//! It is libyaml's scanner rather than a scan of our own so that it can never disagree with the
//! parser about what is a bracket and what is text inside a quoted or plain scalar. Syntax
//! errors are left to serde_norway, which reports them with their position.
// libyaml (as unsafe-libyaml, a C translation) is bound here: its scanner is C-shaped.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use unsafe_libyaml_norway as unsafe_yaml;

/// The deepest a config goes is 4 (the top-level map, `hooks`, `on_promote`, `command`); four
/// times that is still a config written by hand, anything deeper is not a config.
pub const MAX_DEPTH: usize = 16;

/// What the scan refused, at 1-based line and column (in characters, as libyaml counts them).
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn check(text: &str) -> Result<(), Problem> {
    let mut scanner = Scanner::new(text);
    let mut depth = 0usize;
    let mut document = Document::NotStarted;
    while let Some((kind, line, column)) = scanner.next() {
        let problem = |message: String| Problem {
            line,
            column,
            message,
        };
        document = document.after(kind).map_err(problem)?;
        if opens(kind) {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(problem(format!(
                    "nested deeper than {MAX_DEPTH} levels; a config needs 4 at most"
                )));
            }
        } else if closes(kind) {
            depth = depth.saturating_sub(1);
        }
    }
    Ok(())
}

fn opens(kind: unsafe_yaml::yaml_token_type_t) -> bool {
    use unsafe_yaml::yaml_token_type_t::*;
    matches!(
        kind,
        YAML_BLOCK_SEQUENCE_START_TOKEN
            | YAML_BLOCK_MAPPING_START_TOKEN
            | YAML_FLOW_SEQUENCE_START_TOKEN
            | YAML_FLOW_MAPPING_START_TOKEN
    )
}

fn closes(kind: unsafe_yaml::yaml_token_type_t) -> bool {
    use unsafe_yaml::yaml_token_type_t::*;
    matches!(
        kind,
        YAML_BLOCK_END_TOKEN | YAML_FLOW_SEQUENCE_END_TOKEN | YAML_FLOW_MAPPING_END_TOKEN
    )
}

/// Where the stream is with respect to documents: one file holds one config.
#[derive(Clone, Copy)]
enum Document {
    NotStarted,
    Open,
    /// After `...`: only comments may follow.
    Ended,
}

impl Document {
    fn after(self, kind: unsafe_yaml::yaml_token_type_t) -> Result<Document, String> {
        use unsafe_yaml::yaml_token_type_t::*;
        match (self, kind) {
            (_, YAML_STREAM_START_TOKEN | YAML_STREAM_END_TOKEN) => Ok(self),
            // Leading `...` lines are skipped by libyaml; directives may open the first document.
            (Document::NotStarted, YAML_DOCUMENT_END_TOKEN) => Ok(self),
            (
                Document::NotStarted,
                YAML_VERSION_DIRECTIVE_TOKEN | YAML_TAG_DIRECTIVE_TOKEN,
            ) => Ok(self),
            (Document::Open | Document::Ended, YAML_DOCUMENT_START_TOKEN) => Err(
                "a second YAML document (---) is not allowed; one file holds one config".into(),
            ),
            (Document::Open, YAML_DOCUMENT_END_TOKEN) => Ok(Document::Ended),
            (Document::Ended, _) => Err(
                "text after the end of the document (...) is not allowed; one file holds one config"
                    .into(),
            ),
            _ => Ok(Document::Open),
        }
    }
}

/// libyaml's scanner over `text`, one token at a time. The parser is boxed because libyaml
/// keeps a pointer to it (its string reader's state), so it must not move once set up.
struct Scanner<'a> {
    parser: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>,
    ready: bool,
    done: bool,
    _text: std::marker::PhantomData<&'a str>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        let mut parser = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
        let p = parser.as_mut_ptr();
        // SAFETY: `p` points to writable memory for a parser, which yaml_parser_initialize
        // zeroes and sets up; only after it succeeded is the parser used (and deleted on drop).
        // The input pointer stays valid for 'a, which outlives the scanner. Encoding is UTF-8
        // (a &str), set before any read, as serde_norway does.
        let ready = unsafe {
            if unsafe_yaml::yaml_parser_initialize(p).ok {
                unsafe_yaml::yaml_parser_set_encoding(p, unsafe_yaml::YAML_UTF8_ENCODING);
                unsafe_yaml::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
                true
            } else {
                false
            }
        };
        Scanner {
            parser,
            ready,
            done: !ready,
            _text: std::marker::PhantomData,
        }
    }

    /// The next token's type and where it starts (1-based), or None at the end of the stream
    /// or at a syntax error (which serde_norway reports when it parses the same text).
    fn next(&mut self) -> Option<(unsafe_yaml::yaml_token_type_t, usize, usize)> {
        if self.done {
            return None;
        }
        let mut token = MaybeUninit::<unsafe_yaml::yaml_token_t>::uninit();
        // SAFETY: the parser was initialised (`done` is set otherwise) and is used by this
        // thread only. yaml_parser_scan zeroes the token first, so it is initialised whether or
        // not a token was produced, and yaml_token_delete frees whatever it holds (nothing,
        // for a zeroed token) exactly once.
        let scanned = unsafe {
            let t = token.as_mut_ptr();
            let ok = unsafe_yaml::yaml_parser_scan(self.parser.as_mut_ptr(), t).ok;
            let scanned = ((*t).type_, (*t).start_mark.line, (*t).start_mark.column);
            unsafe_yaml::yaml_token_delete(t);
            ok.then_some(scanned)
        };
        match scanned {
            Some((kind, line, column)) if kind != unsafe_yaml::YAML_NO_TOKEN => {
                self.done = kind == unsafe_yaml::YAML_STREAM_END_TOKEN;
                Some((kind, to_usize(line) + 1, to_usize(column) + 1))
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX - 1)
}

impl Drop for Scanner<'_> {
    fn drop(&mut self) {
        if self.ready {
            // SAFETY: initialised in `new` and not deleted before; deleted once, here.
            unsafe { unsafe_yaml::yaml_parser_delete(self.parser.as_mut_ptr()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Option<(usize, usize, String)> {
        check(text).err().map(|p| (p.line, p.column, p.message))
    }

    #[test]
    fn a_config_passes() {
        assert_eq!(problem(include_str!("../../examples/config.yaml")), None);
        assert_eq!(problem("---\na: [1, {b: [c]}]\n...\n# done\n"), None);
        assert_eq!(problem(""), None);
        // Syntax errors are serde_norway's to report.
        assert_eq!(problem("a: [b\n"), None);
    }

    #[test]
    fn nesting_is_limited_at_the_token_that_goes_too_deep() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(problem(&ok), None);
        // Two block maps deep, so the bracket that opens level MAX_DEPTH + 1 is the
        // (MAX_DEPTH - 1)th, at column 6 + MAX_DEPTH - 2.
        let deep = format!("a:\n  b: {}", "[".repeat(MAX_DEPTH));
        let (line, column, message) = problem(&deep).unwrap_or_default();
        assert_eq!((line, column), (2, 6 + MAX_DEPTH - 2), "{message}");
        let expected = format!("nested deeper than {MAX_DEPTH} levels");
        assert!(message.contains(&expected), "{message}");
        // Block nesting counts too, and brackets inside scalars and comments do not.
        assert!(problem(&"- ".repeat(40)).is_some());
        let text = format!("a: \"{0}\"\nb: '{0}'\nc: x{0}\n# {0}\n", "[".repeat(100));
        assert_eq!(problem(&text), None);
    }

    #[test]
    fn a_second_document_is_placed() {
        let (line, column, message) = problem("a: 1\n---\nb: 2\n").unwrap_or_default();
        assert_eq!((line, column), (2, 1));
        assert!(
            message.contains("a second YAML document (---)"),
            "{message}"
        );
        let (line, column, message) = problem("a: 1\n...\nb: 2\n").unwrap_or_default();
        assert_eq!((line, column), (3, 1));
        assert!(
            message.contains("after the end of the document"),
            "{message}"
        );
        assert!(problem("---\n---\n").is_some());
    }
}
