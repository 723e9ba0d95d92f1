//! Counting bytes a person could not read, to tell a wrong baud rate from a silent board.
//!
//! At the wrong baud rate a UART delivers a steady stream of bytes that are neither printable
//! ASCII nor valid UTF-8. A report that says "the console printed 4 KiB of which 60 % was
//! garbage" sends the reader to the serial settings rather than to the image.

/// Totals over every byte the matcher was fed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteStats {
    /// Raw bytes seen.
    pub total: u64,
    /// Bytes that are not ASCII graphic characters, space, `\t`, `\r`, `\n` or `ESC`, and are
    /// not part of a valid UTF-8 sequence.
    pub non_printable: u64,
}

impl ByteStats {
    /// `non_printable / total`, or 0 when nothing was seen.
    pub fn non_printable_ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.non_printable as f64 / self.total as f64
        }
    }
}

use super::ansi::ByteJudge;

/// Streaming [`ByteStats`]: a UTF-8 sequence split across chunks is judged once it completes,
/// so the counts do not depend on how the stream was chunked. Fed as the [`ByteJudge`] of the
/// stripping pass; [`ByteCounter::update`] is the plain reference it is tested against.
#[derive(Clone, Debug, Default)]
pub(crate) struct ByteCounter {
    stats: ByteStats,
    /// A valid but unfinished UTF-8 prefix from the end of the previous chunk.
    pending: [u8; 4],
    pending_len: usize,
}

impl ByteCounter {
    pub(crate) fn stats(&self) -> ByteStats {
        self.stats
    }

    /// Counts `bytes` on their own: the reference for judging during stripping.
    #[cfg(test)]
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.stats.total += bytes.len() as u64;
        let mut rest = bytes;
        if self.pending_len > 0 {
            rest = self.finish_pending(rest);
        }
        self.count_run(rest);
    }

    /// Decodes the pending prefix together with the next bytes exactly as one contiguous
    /// stream would be decoded; returns the bytes left after the pending sequence.
    fn finish_pending<'a>(&mut self, rest: &'a [u8]) -> &'a [u8] {
        let held = self.pending_len;
        let mut joined = [0u8; 7];
        let take = rest.len().min(3);
        joined[..held].copy_from_slice(&self.pending[..held]);
        joined[held..held + take].copy_from_slice(&rest[..take]);
        let joined = &joined[..held + take];
        self.pending_len = 0;
        match std::str::from_utf8(joined) {
            Ok(_) => {
                self.stats.non_printable += count_unprintable_ascii(joined);
                &rest[take..]
            }
            Err(error) => {
                let valid = error.valid_up_to();
                if valid >= held {
                    // The held sequence completed; whatever follows is decoded with the rest.
                    self.stats.non_printable += count_unprintable_ascii(&joined[..valid]);
                    return &rest[valid - held..];
                }
                // A held prefix is valid, so decoding can only fail at its first byte.
                match error.error_len() {
                    Some(bad) => {
                        self.stats.non_printable += bad as u64;
                        &rest[bad.saturating_sub(held)..]
                    }
                    None => {
                        self.pending[..joined.len()].copy_from_slice(joined);
                        self.pending_len = joined.len();
                        &rest[take..]
                    }
                }
            }
        }
    }

    #[cfg(test)]
    fn count_run(&mut self, mut rest: &[u8]) {
        loop {
            match std::str::from_utf8(rest) {
                Ok(_) => {
                    self.stats.non_printable += count_unprintable_ascii(rest);
                    return;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    self.stats.non_printable += count_unprintable_ascii(&rest[..valid]);
                    match error.error_len() {
                        Some(bad) => {
                            self.stats.non_printable += bad as u64;
                            rest = &rest[valid + bad..];
                        }
                        None => {
                            let tail = &rest[valid..];
                            self.pending[..tail.len()].copy_from_slice(tail);
                            self.pending_len = tail.len();
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl ByteJudge for ByteCounter {
    fn begin(&mut self, input: &[u8]) -> usize {
        self.stats.total += input.len() as u64;
        if self.pending_len == 0 {
            return 0;
        }
        input.len() - self.finish_pending(input).len()
    }

    fn judge(&mut self, input: &[u8], at: usize) -> usize {
        let lead = input[at];
        if lead < 0x80 {
            self.stats.non_printable += count_unprintable_ascii(&input[at..=at]);
            return at + 1;
        }
        // Decoding is local: what starts at `at` is decided by at most four bytes, exactly as
        // a decoder running over the whole stream decides it.
        let window = &input[at..input.len().min(at + 4)];
        let error = match std::str::from_utf8(window) {
            Ok(_) => return at + valid_char_len(lead),
            Err(error) if error.valid_up_to() > 0 => return at + valid_char_len(lead),
            Err(error) => error,
        };
        match error.error_len() {
            Some(bad) => {
                self.stats.non_printable += bad as u64;
                at + bad
            }
            None => {
                // A valid start of a character cut off by the end of the input.
                self.pending[..window.len()].copy_from_slice(window);
                self.pending_len = window.len();
                input.len()
            }
        }
    }
}

/// Length of the valid UTF-8 character whose first byte is `lead` (≥ 0xc2).
fn valid_char_len(lead: u8) -> usize {
    match lead {
        ..0xe0 => 2,
        0xe0..0xf0 => 3,
        _ => 4,
    }
}

/// Counts unprintable ASCII controls in text already known to be valid UTF-8 (where every
/// byte ≥ 0x80 belongs to a valid character).
fn count_unprintable_ascii(text: &[u8]) -> u64 {
    // Branch-free comparisons summed into a byte-wide counter (flushed every 255 bytes, before
    // it can overflow) let the compiler vectorise this loop; it runs over every console byte.
    let mut total = 0;
    for block in text.chunks(255) {
        let mut count = 0u8;
        for &b in block {
            let control = (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r') & (b != 0x1b);
            count += u8::from(control | (b == 0x7f));
        }
        total += u64::from(count);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_in_chunks(input: &[u8], size: usize) -> ByteStats {
        let mut counter = ByteCounter::default();
        for chunk in input.chunks(size) {
            counter.update(chunk);
        }
        counter.stats()
    }

    #[test]
    fn console_text_with_colour_and_crlf_is_all_printable() {
        let input = "\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n\tGrüße ✓\n".as_bytes();
        let stats = stats_in_chunks(input, 4096);
        assert_eq!(
            stats,
            ByteStats {
                total: input.len() as u64,
                non_printable: 0
            }
        );
    }

    #[test]
    fn controls_and_invalid_utf8_are_non_printable() {
        // NUL, BEL, DEL, a lone continuation byte, 0xff, and a truncated 3-byte sequence
        // (one error for its two-byte valid prefix) followed by text.
        let stats = stats_in_chunks(b"a\x00\x07\x7f\x80\xff\xe2\x82b", 4096);
        assert_eq!(
            stats,
            ByteStats {
                total: 9,
                non_printable: 7
            }
        );
    }

    #[test]
    fn counts_do_not_depend_on_chunking() {
        let input: &[u8] =
            b"ok \xe2\x9c\x93 \xf0\x9f\x98\x80 \xf0\x90\x80A \xe0\x80\x80 \xc3 \xed\xa0\x80 \x00\xff\xfe\x1b[0m\r\n";
        let whole = stats_in_chunks(input, input.len());
        for size in 1..input.len() {
            assert_eq!(stats_in_chunks(input, size), whole, "chunk size {size}");
        }
    }

    #[test]
    fn garbage_at_a_wrong_baud_rate_has_a_high_ratio() {
        let garbage: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let stats = stats_in_chunks(&garbage, 37);
        assert!(stats.non_printable_ratio() > 0.3, "{stats:?}");
    }

    #[test]
    fn ratio_of_nothing_is_zero() {
        assert_eq!(ByteStats::default().non_printable_ratio(), 0.0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn counts_judged_while_stripping_equal_counts_of_the_whole_stream(
            input in crate::console::ansi::tests::console_bytes(),
            cuts in proptest::collection::vec(0..600usize, 0..12),
        ) {
            let mut counter = ByteCounter::default();
            let mut stripper = crate::console::ansi::Stripper::new();
            let mut text = Vec::new();
            for chunk in crate::console::ansi::tests::cut(&input, &cuts) {
                stripper.strip_judging_into(&chunk, &mut text, &mut counter);
            }
            proptest::prop_assert_eq!(counter.stats(), stats_in_chunks(&input, input.len().max(1)));
            proptest::prop_assert_eq!(text, crate::console::ansi::strip(&input));
        }
    }
}
