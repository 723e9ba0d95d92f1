//! Removal of terminal control sequences from a console byte stream.
//!
//! Console output colours banners (NixOS stage 2 prints `\e[1;32m<<< NixOS Stage 2 >>>\e[0m`),
//! systemd moves the cursor, and serial lines end in `\r\n`. Patterns are written against the
//! text a person reads, so the matcher and the transcript both see the stream through a
//! [`Stripper`].

use memchr::memchr2;

const ESC: u8 = 0x1b;
const CR: u8 = b'\r';
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

/// Where the stripper is inside an escape sequence; kept between chunks because a serial read
/// can end anywhere, including between `ESC` and `[`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Text,
    /// After `ESC`.
    Escape,
    /// After `ESC` and one or more intermediate bytes (`ESC ( B` selects a character set).
    EscIntermediate,
    /// Inside `ESC [ … final`.
    Csi,
    /// Inside a string sequence (OSC `ESC ]`, DCS `ESC P`, SOS, PM, APC) until BEL or `ESC \`.
    String,
}

/// Removes ANSI escape sequences and carriage returns from a byte stream fed in arbitrary chunks.
///
/// Removed: CSI sequences (`ESC [` parameters, intermediates, final byte), string sequences
/// (OSC, DCS, SOS, PM, APC, ended by BEL or `ESC \`), other escape sequences (`ESC` with
/// optional intermediates and a final byte) and every `\r`. Everything else, invalid UTF-8
/// included, passes through byte for byte. A sequence interrupted by a byte that cannot belong
/// to it is abandoned and that byte is kept, so a stray `ESC` or line noise cannot swallow a
/// newline; string sequences also end at a newline so an unterminated OSC hides at most the rest
/// of one line.
#[derive(Clone, Debug, Default)]
pub struct Stripper {
    state: State,
}

impl Stripper {
    /// A stripper at the start of a stream (outside any sequence).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the text of `input` to `out`, continuing any sequence left open by the previous
    /// call. The output never depends on how the stream was split into calls.
    pub fn strip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Text {
                // Plain text is the common case: copy whole runs between special bytes.
                match memchr2(ESC, CR, &input[i..]) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        return;
                    }
                    Some(run) => {
                        out.extend_from_slice(&input[i..i + run]);
                        i += run;
                        if input[i] == ESC {
                            self.state = State::Escape;
                        }
                        i += 1;
                    }
                }
            } else if self.step(input[i]) {
                i += 1;
            }
            // Otherwise the sequence was abandoned and the byte is read again as text.
        }
    }

    /// Whether the stream so far ends inside an escape sequence.
    pub fn in_sequence(&self) -> bool {
        self.state != State::Text
    }

    /// Advances the sequence state by one byte; returns false when the byte does not belong to
    /// the sequence and must be handled as text.
    fn step(&mut self, byte: u8) -> bool {
        let (next, consumed) = match (self.state, byte) {
            (_, ESC) => (State::Escape, true),
            (State::Escape, b'[') => (State::Csi, true),
            (State::Escape, b']' | b'P' | b'X' | b'^' | b'_') => (State::String, true),
            (State::Escape | State::EscIntermediate, 0x20..=0x2f) => (State::EscIntermediate, true),
            (State::Escape | State::EscIntermediate, 0x30..=0x7e) => (State::Text, true),
            (State::Csi, 0x20..=0x3f) => (State::Csi, true),
            (State::Csi, 0x40..=0x7e) => (State::Text, true),
            (State::String, BEL | CAN | SUB) => (State::Text, true),
            (State::String, b'\n') => (State::Text, false),
            (State::String, _) => (State::String, true),
            _ => (State::Text, false),
        };
        self.state = next;
        consumed
    }
}

/// The text of a complete byte string: [`Stripper::strip_into`] on a fresh stripper.
pub fn strip(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    Stripper::new().strip_into(input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_in_chunks(input: &[u8], size: usize) -> Vec<u8> {
        let mut stripper = Stripper::new();
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            stripper.strip_into(chunk, &mut out);
        }
        out
    }

    #[test]
    fn colour_codes_around_the_stage_2_banner_are_removed() {
        assert_eq!(
            strip(b"\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n"),
            b"<<< NixOS Stage 2 >>>\n"
        );
    }

    #[test]
    fn carriage_returns_are_removed_everywhere() {
        assert_eq!(strip(b"a\r\nb\rc\r"), b"a\nbc");
    }

    #[test]
    fn osc_ended_by_bel_is_removed() {
        assert_eq!(strip(b"x\x1b]0;title\x07y"), b"xy");
    }

    #[test]
    fn osc_ended_by_string_terminator_is_removed() {
        assert_eq!(strip(b"x\x1b]8;;http://a\x1b\\link\x1b]8;;\x1b\\y"), b"xlinky");
    }

    #[test]
    fn two_byte_and_charset_sequences_are_removed() {
        assert_eq!(strip(b"a\x1b7b\x1b8c\x1b(Bd\x1b=e"), b"abcde");
    }

    #[test]
    fn private_mode_csi_is_removed() {
        assert_eq!(strip(b"\x1b[?25l\x1b[2J\x1b[Hlogin: \x1b[?25h"), b"login: ");
    }

    #[test]
    fn sequences_split_at_every_byte_give_the_same_text() {
        let input = b"\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n\x1b]0;t\x1b\\ok\x1b(B\r\n";
        let whole = strip(input);
        assert_eq!(whole, b"<<< NixOS Stage 2 >>>\nok\n");
        for size in 1..input.len() {
            assert_eq!(strip_in_chunks(input, size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn an_open_sequence_is_reported_between_chunks() {
        let mut stripper = Stripper::new();
        let mut out = Vec::new();
        stripper.strip_into(b"a\x1b[1;3", &mut out);
        assert!(stripper.in_sequence());
        stripper.strip_into(b"2mb", &mut out);
        assert!(!stripper.in_sequence());
        assert_eq!(out, b"ab");
    }

    #[test]
    fn invalid_utf8_passes_through_untouched() {
        assert_eq!(
            strip(b"\xff\xfe ok \xc3\x28 \xe2\x82"),
            b"\xff\xfe ok \xc3\x28 \xe2\x82"
        );
    }

    #[test]
    fn multibyte_utf8_split_across_chunks_is_kept_intact() {
        let input = "Grüße – ✓\r\n".as_bytes();
        for size in 1..input.len() {
            assert_eq!(strip_in_chunks(input, size), "Grüße – ✓\n".as_bytes());
        }
    }

    #[test]
    fn newline_inside_a_csi_abandons_it_and_is_kept() {
        assert_eq!(strip(b"a\x1b[12\nb"), b"a\nb");
    }

    #[test]
    fn unterminated_osc_hides_at_most_the_rest_of_its_line() {
        assert_eq!(strip(b"a\x1b]garbage\nKernel panic\n"), b"a\nKernel panic\n");
    }

    #[test]
    fn lone_escape_before_text_byte_drops_only_the_escape_sequence() {
        // ESC followed by a final byte is a complete two-byte sequence.
        assert_eq!(strip(b"a\x1bMb"), b"ab");
        // ESC followed by a byte that cannot continue a sequence keeps that byte.
        assert_eq!(strip(b"a\x1b\xc3\xa9b"), "aéb".as_bytes());
    }

    #[test]
    fn escape_inside_csi_starts_a_new_sequence() {
        assert_eq!(strip(b"a\x1b[1\x1b[0mb"), b"ab");
    }
}
