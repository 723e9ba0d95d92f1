//! Keeps typed secrets (passwords) out of every record of a console: its echo is cut from the
//! console bytes before they reach the transcript (`.raw` included), the matcher, or a report.
//!
//! A console may echo what is typed at a password prompt (busybox login on a terminal in echo
//! mode does), and the echo may arrive split across reads, or with other output (a kernel
//! message) between its characters. [`Redactor`] handles both: right after a secret is typed it
//! expects the secret's bytes back in order and drops them, letting whole lines of other output
//! through between them, and for the rest of the session it replaces any whole occurrence of the secret, holding back a
//! read's last bytes while they could be the start of one. Each redaction leaves
//! [`REDACTED`] in its place.

/// What stands in the console stream where a secret was.
pub const REDACTED: &[u8] = b"[redacted]";

/// How many other bytes may come between the characters of an echoed secret before the rest of
/// the echo is no longer expected.
const INTERLEAVE_CAP: usize = 4096;

/// The echo of a secret just typed, being taken out of the stream.
#[derive(Debug)]
struct Echo {
    secret: Vec<u8>,
    /// How many of the secret's bytes have come back.
    matched: usize,
    /// Other bytes seen since the echo began.
    interleaved: usize,
    /// Inside a line of other output that came between the echo's characters; the echo
    /// resumes after its newline.
    in_other_line: bool,
}

/// Removes known secrets from a console byte stream; see the module documentation.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
    /// Bytes held back because they are the start of a secret.
    held: Vec<u8>,
    echo: Option<Echo>,
    /// Redactions since the last [`Redactor::take_redactions`].
    redactions: usize,
}

impl Redactor {
    /// A redactor that knows no secret yet and passes everything through.
    pub fn new() -> Self {
        Self::default()
    }

    /// Call just before typing `secret`: its echo, and any later occurrence, is redacted. An
    /// empty secret is nothing to hide.
    pub fn arm(&mut self, secret: &[u8]) {
        if secret.is_empty() {
            return;
        }
        self.know(secret);
        self.echo = Some(Echo {
            secret: secret.to_vec(),
            matched: 0,
            interleaved: 0,
            in_other_line: false,
        });
    }

    /// Makes `secret` known without typing it: any later occurrence is redacted, and no echo
    /// is expected (a restored shell, where another run typed it).
    pub fn know(&mut self, secret: &[u8]) {
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_vec());
        }
    }

    /// Whether any secret is known.
    pub fn is_armed(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// The console bytes that may be recorded, for `bytes` just read. Some bytes may be held
    /// back until the next call (or [`Redactor::flush`]) shows they are not a secret.
    pub fn filter(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len() + REDACTED.len());
        for &byte in bytes {
            if self.take_echo(byte, &mut out) {
                continue;
            }
            self.push(byte, &mut out);
        }
        out
    }

    /// The bytes held back at the end of the stream, with any secret among them redacted.
    pub fn flush(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while !self.held.is_empty() {
            self.emit_front(&mut out);
        }
        out
    }

    /// How many secrets were redacted since the last call.
    pub fn take_redactions(&mut self) -> usize {
        std::mem::take(&mut self.redactions)
    }

    /// Drops `byte` if it is the next byte of an expected echo; the echo's first byte leaves
    /// the marker.
    fn take_echo(&mut self, byte: u8, out: &mut Vec<u8>) -> bool {
        let Some(echo) = &mut self.echo else {
            return false;
        };
        if !echo.in_other_line && byte == echo.secret[echo.matched] {
            let first = echo.matched == 0;
            echo.matched += 1;
            if echo.matched == echo.secret.len() {
                self.echo = None;
            }
            if first {
                while !self.held.is_empty() {
                    self.emit_front(out);
                }
                out.extend_from_slice(REDACTED);
                self.redactions += 1;
            }
            return true;
        }
        // No echo at all (the usual login), or the rest of it never came.
        if echo.matched == 0 || echo.interleaved >= INTERLEAVE_CAP {
            self.echo = None;
        } else {
            echo.interleaved += 1;
            echo.in_other_line = byte != b'\n';
        }
        false
    }

    /// Passes `byte` on, holding back bytes while they may still grow into a secret.
    fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        self.held.push(byte);
        while !self.held.is_empty() {
            let held = &self.held;
            if self
                .secrets
                .iter()
                .any(|s| s.len() > held.len() && s.starts_with(held))
            {
                return;
            }
            self.emit_front(out);
        }
    }

    /// Emits the front of the held bytes: the marker for the longest secret they start with,
    /// else one byte.
    fn emit_front(&mut self, out: &mut Vec<u8>) {
        let held = &self.held;
        let secret = self
            .secrets
            .iter()
            .filter(|s| held.starts_with(s))
            .map(Vec::len)
            .max();
        match secret {
            Some(len) => {
                out.extend_from_slice(REDACTED);
                self.redactions += 1;
                self.held.drain(..len);
            }
            None => out.push(self.held.remove(0)),
        }
    }
}

/// An interactive console's password entry: after the console prints a line that mentions a
/// password and ends in `:` (`Password:`, `[sudo] password for ivy:`), the keys up to Enter
/// are the secret. Their log line shows [`REDACTED`], and console output is held back until
/// Enter, when the whole secret is known and its echo can be cut out.
#[derive(Debug, Default)]
pub struct PromptedSecrets {
    /// The end of the console's last line, lower-cased.
    tail: Vec<u8>,
    /// Keys are being typed at a password prompt.
    hiding: bool,
    /// The keys typed at the prompt so far.
    typed: Vec<u8>,
    /// Console output since the prompt, held until the secret is complete.
    pending: Vec<u8>,
    redactor: Redactor,
}

impl PromptedSecrets {
    /// How much of the last line is kept: enough for any password prompt.
    const TAIL: usize = 64;
    /// Output held back at a password prompt; past this it is released, redacting what has
    /// been typed so far.
    const PENDING_CAP: usize = 64 * 1024;
    /// The longest password kept whole; longer ones are cut here for matching their echo.
    const SECRET_CAP: usize = 1024;

    /// Creates a tracker that has seen no prompt yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The console output that may be recorded now, for `bytes` just read.
    pub fn output(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.hiding {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() > Self::PENDING_CAP {
                return self.release();
            }
            return Vec::new();
        }
        self.watch_prompt(bytes);
        self.redactor.filter(bytes)
    }

    /// What the log shows for the keys `typed`, and console output released by an Enter that
    /// ended a password.
    pub fn input(&mut self, typed: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut shown = Vec::with_capacity(typed.len());
        let mut released = Vec::new();
        for &b in typed {
            if !self.hiding {
                shown.push(b);
            } else if b == b'\r' || b == b'\n' {
                shown.extend_from_slice(REDACTED);
                shown.push(b);
                released.extend(self.release());
                self.hiding = false;
                self.tail.clear();
            } else if self.typed.len() < Self::SECRET_CAP {
                self.typed.push(b);
            }
        }
        (shown, released)
    }

    /// Held output at the end of the session, with what was typed redacted.
    pub fn flush(&mut self) -> Vec<u8> {
        let mut out = self.release();
        out.extend(self.redactor.flush());
        out
    }

    /// Arms the redactor with the keys typed so far and passes the held output through it.
    fn release(&mut self) -> Vec<u8> {
        self.redactor.arm(&std::mem::take(&mut self.typed));
        let pending = std::mem::take(&mut self.pending);
        self.redactor.filter(&pending)
    }

    fn watch_prompt(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.tail.clear();
            } else {
                self.tail.push(b.to_ascii_lowercase());
            }
        }
        if self.tail.len() > Self::TAIL {
            self.tail.drain(..self.tail.len() - Self::TAIL);
        }
        let line = self.tail.trim_ascii_end();
        if line.ends_with(b":") && line.windows(8).any(|w| w == b"password") {
            self.hiding = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `chunks` becomes, fed in order after `secret` was typed.
    fn redacted(secret: &[u8], chunks: &[&[u8]]) -> Vec<u8> {
        let mut r = Redactor::new();
        r.arm(secret);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(r.filter(chunk));
        }
        out.extend(r.flush());
        out
    }

    #[test]
    fn an_echoed_password_is_replaced_by_the_marker() {
        assert_eq!(
            redacted(b"r2s-fixture", &[b"r2s-fixture\r\n[root@ivy:~]# "]),
            b"[redacted]\r\n[root@ivy:~]# "
        );
    }

    #[test]
    fn a_known_secret_never_typed_is_cut_wherever_it_shows_and_nothing_else_is() {
        let mut r = Redactor::new();
        r.know(b"hunter2");
        let mut out = r.filter(b"# echo hun");
        out.extend(r.filter(b"ter2\r\nhunter3 hunter2\r\n# hun"));
        out.extend(r.flush());
        assert_eq!(out, b"# echo [redacted]\r\nhunter3 [redacted]\r\n# hun");
    }

    #[test]
    fn an_echo_split_across_reads_is_replaced_however_it_is_split() {
        let stream = b"hunter2\r\n# ";
        for cut in 0..=stream.len() {
            for cut2 in cut..=stream.len() {
                let out = redacted(b"hunter2", &[&stream[..cut], &stream[cut..cut2], &stream[cut2..]]);
                assert_eq!(out, b"[redacted]\r\n# ", "cut at {cut} and {cut2}");
            }
        }
    }

    #[test]
    fn an_echo_with_a_kernel_line_between_its_characters_is_removed_and_the_line_kept() {
        let out = redacted(
            b"hunter2",
            &[b"hun[   12.3] random: crng init done\r\nter2\r\n# "],
        );
        assert_eq!(out, b"[redacted][   12.3] random: crng init done\r\n\r\n# ");
    }

    #[test]
    fn without_an_echo_the_output_after_the_password_is_untouched() {
        let out = redacted(b"nixos", &[b"\r\nLogin incorrect\r\nivy login: "]);
        assert_eq!(out, b"\r\nLogin incorrect\r\nivy login: ");
    }

    #[test]
    fn a_later_occurrence_of_the_password_is_redacted_too_even_split() {
        let mut r = Redactor::new();
        r.arm(b"hunter2");
        let mut out = r.filter(b"\r\n# echo $PW\r\nhun");
        out.extend(r.filter(b"ter2\r\n# hunt"));
        out.extend(r.flush());
        assert_eq!(out, b"\r\n# echo $PW\r\n[redacted]\r\n# hunt");
        assert_eq!(r.take_redactions(), 1);
    }

    #[test]
    fn text_that_only_starts_like_the_password_is_released_when_it_stops_matching() {
        let mut r = Redactor::new();
        r.arm(b"hunter2");
        assert_eq!(r.filter(b"\r\nhunt"), b"\r\n");
        assert_eq!(r.filter(b"ing\r\n"), b"hunting\r\n");
    }

    #[test]
    fn with_no_secret_everything_passes_at_once() {
        let mut r = Redactor::new();
        r.arm(b"");
        assert!(!r.is_armed());
        assert_eq!(r.filter(b"abc"), b"abc");
    }

    #[test]
    fn keys_typed_at_a_password_prompt_are_redacted_up_to_enter() {
        let mut r = PromptedSecrets::new();
        assert_eq!(r.output(b"ivy login: "), b"ivy login: ");
        assert_eq!(r.input(b"root\r").0, b"root\r");
        assert_eq!(r.output(b"\r\nPassword: "), b"\r\nPassword: ");
        assert_eq!(r.input(b"hun").0, b"");
        assert_eq!(r.input(b"ter2\rls\r").0, b"[redacted]\rls\r");
        assert_eq!(r.output(b"\r\n[root@ivy:~]# "), b"\r\n[root@ivy:~]# ");
        assert_eq!(r.input(b"echo password:\r").0, b"echo password:\r");
    }

    #[test]
    fn sudo_style_prompts_are_recognised_too() {
        let mut r = PromptedSecrets::new();
        r.output(b"[sudo] password for ivy: ");
        assert_eq!(r.input(b"x\r").0, b"[redacted]\r");
        r.output(b"\r\nEnter Password:  ");
        assert_eq!(r.input(b"secret\n").0, b"[redacted]\n");
    }

    #[test]
    fn the_echo_of_keys_typed_at_a_prompt_is_held_and_released_redacted_at_enter() {
        let mut r = PromptedSecrets::new();
        r.output(b"Password: ");
        let mut recorded = Vec::new();
        for key in b"hunter2" {
            assert_eq!(r.input(&[*key]).0, b"");
            recorded.extend(r.output(&[*key]));
        }
        assert_eq!(recorded, b"");
        let (shown, released) = r.input(b"\r");
        assert_eq!(shown, b"[redacted]\r");
        assert_eq!(released, b"[redacted]");
        let mut rest = r.output(b"\r\n# echo hunter2\r\nhunter2\r\n");
        rest.extend(r.flush());
        assert_eq!(rest, b"\r\n# echo [redacted]\r\n[redacted]\r\n");
    }
}
