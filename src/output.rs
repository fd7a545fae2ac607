//! Stdout: every line the tool prints there goes through here.

use std::io::Write;

use crate::exit::Error;

/// Every line the tool prints on stdout goes through here.
pub fn print_out(s: &str) -> Result<(), Error> {
    write_out(&mut std::io::stdout().lock(), s)
}

/// A reader that has gone (`failover-manager diff | head`: EPIPE) ends the output, not the
/// command, and is no error: what the command did or found still decides its exit status
/// (drift or in sync, for `diff`), as with any filter whose reader stops early.
fn write_out(out: &mut impl Write, s: &str) -> Result<(), Error> {
    let line_end: &[u8] = if s.ends_with('\n') { b"" } else { b"\n" };
    let written = out
        .write_all(s.as_bytes())
        .and_then(|()| out.write_all(line_end))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::io::Write;

    /// Takes writes until `fail_at` bytes, then fails every write (and flush) with `kind`.
    struct Sink {
        taken: Vec<u8>,
        fail_at: usize,
        kind: ErrorKind,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = self.fail_at.saturating_sub(self.taken.len());
            if room == 0 {
                return Err(self.kind.into());
            }
            let n = buf.len().min(room);
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            match self.taken.len() < self.fail_at {
                true => Ok(()),
                false => Err(self.kind.into()),
            }
        }
    }

    #[test]
    fn a_reader_that_has_gone_is_no_error_but_a_failed_write_is() {
        for (text, fail_at, kind, taken, ok) in [
            ("drift", usize::MAX, ErrorKind::BrokenPipe, "drift\n", true),
            ("a\nb\n", usize::MAX, ErrorKind::BrokenPipe, "a\nb\n", true),
            // `diff | head -1`: the reader goes after the first line, or before anything.
            ("a\nb", 2, ErrorKind::BrokenPipe, "a\n", true),
            ("a\nb", 0, ErrorKind::BrokenPipe, "", true),
            ("a", 1, ErrorKind::BrokenPipe, "a", true),
            // Anything else is still a failure (exit 1): a full disk under `> file`.
            ("a\nb", 2, ErrorKind::StorageFull, "a\n", false),
            ("a", 0, ErrorKind::PermissionDenied, "", false),
        ] {
            let mut sink = Sink {
                taken: Vec::new(),
                fail_at,
                kind,
            };
            let result = write_out(&mut sink, text);
            assert_eq!(
                String::from_utf8_lossy(&sink.taken),
                taken,
                "{text:?} {kind:?}"
            );
            assert_eq!(
                result.is_ok(),
                ok,
                "{text:?} at {fail_at} {kind:?}: {result:?}"
            );
            if let Err(e) = result {
                assert!(matches!(e, Error::Output(_)), "{e:?}");
            }
        }
    }
}
