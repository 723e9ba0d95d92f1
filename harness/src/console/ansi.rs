//! Removal of terminal control sequences from a console byte stream.
//!
//! Console output colours banners (NixOS stage 2 prints `\e[1;32m<<< NixOS Stage 2 >>>\e[0m`),
//! systemd moves the cursor, and serial lines end in `\r\n`. Patterns are written against the
//! text a person reads, so the matcher and the transcript both see the stream through a
//! [`Stripper`].

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

/// The vector text loop as a method, for one vector width and its intrinsics (the SSE2 and
/// AVX2 loops differ in nothing else).
///
/// Safety, for the unsafe blocks it expands to: `strip_judging_into` reserved room for all of
/// `input` past the text `out` held when it began, and stripping keeps at most as many bytes
/// as it has read: `len` is at most that start plus `i`. So each store ends inside the
/// capacity: the block at `len` (while `i + block <= input.len()`), the bytes after a `\r` at
/// `len + cut` (while `i + 2 * block < input.len()`, which also keeps their load inside
/// `input`), and the judged bytes from `at` to `to`, copied to `len <= start + at`. Every other
/// load reads one block inside `input`.
#[cfg(target_arch = "x86_64")]
macro_rules! text_blocks_fn {
    (
        $(#[$doc:meta])*
        $name:ident,
        feature: $feature:literal,
        block: $block:literal,
        set1: $set1:ident,
        load: $load:ident,
        store: $store:ident,
        or: $or:ident,
        andnot: $andnot:ident,
        cmpgt: $cmpgt:ident,
        cmpeq: $cmpeq:ident,
        movemask: $movemask:ident
    ) => {
        $(#[$doc])*
        #[target_feature(enable = $feature)]
        unsafe fn $name(
            &mut self,
            input: &[u8],
            from: usize,
            out: &mut Vec<u8>,
            judge: &mut impl ByteJudge,
            judged_to: &mut usize,
        ) -> usize {
            use std::arch::x86_64::*;
            const BLOCK: usize = $block;
            let mut i = from;
            let mut len = out.len();
            // SAFETY: see the macro's comment.
            unsafe {
                // Below a space (bytes from 0x80 are negative, so below too) or above a tilde.
                let below = $set1(0x20);
                let tilde = $set1(0x7e);
                let tab = $set1(b'\t' as i8);
                let newline = $set1(b'\n' as i8);
                let carriage_return = $set1(CR as i8);
                let dst = out.as_mut_ptr();
                while i + BLOCK <= input.len() {
                    let bytes = $load(input.as_ptr().add(i).cast());
                    $store(dst.add(len).cast(), bytes);
                    let outside = $or($cmpgt(below, bytes), $cmpgt(bytes, tilde));
                    let allowed = $or($cmpeq(bytes, tab), $cmpeq(bytes, newline));
                    let notable = $movemask($andnot(allowed, outside)) as u32;
                    let returns = $movemask($cmpeq(bytes, carriage_return)) as u32;
                    if notable == returns
                        && returns & returns.wrapping_sub(1) == 0
                        && i + 2 * BLOCK < input.len()
                    {
                        // Text with at most one `\r`, not near the end: the bytes after the `\r`
                        // (after the block, if none) are stored over it, and the next block starts
                        // a block on whatever the text holds, so where lines end decides no branch
                        // and no load address. What is stored past the kept bytes is overwritten by
                        // the next block.
                        let cut = (u64::from(returns) | 1 << BLOCK).trailing_zeros() as usize;
                        let rest = $load(input.as_ptr().add(i + cut + 1).cast());
                        $store(dst.add(len + cut).cast(), rest);
                        len += BLOCK - usize::from(returns != 0);
                        i += BLOCK;
                        continue;
                    }
                    if notable == 0 {
                        i += BLOCK;
                        len += BLOCK;
                        continue;
                    }
                    let ahead = notable.trailing_zeros() as usize;
                    let at = i + ahead;
                    len += ahead;
                    match input[at] {
                        CR => i = at + 1,
                        ESC => {
                            self.state = State::Escape;
                            i = at + 1;
                            break;
                        }
                        _ => {
                            let to = if at < *judged_to {
                                at + 1
                            } else {
                                *judged_to = judge.judge(input, at);
                                *judged_to
                            };
                            std::ptr::copy_nonoverlapping(input.as_ptr().add(at), dst.add(len), to - at);
                            len += to - at;
                            i = to;
                        }
                    }
                }
                out.set_len(len);
            }
            i
        }
    };
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
#[derive(Clone, Debug)]
pub struct Stripper {
    state: State,
    /// Whether the text loop reads 32 bytes at a time with AVX2: the CPU's answer, asked once.
    /// Tests turn it off to run the SSE2 loop, which CPUs without AVX2 take, over whole inputs.
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

impl Default for Stripper {
    fn default() -> Self {
        Stripper {
            state: State::Text,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
        }
    }
}

impl Stripper {
    /// A stripper at the start of a stream (outside any sequence).
    pub fn new() -> Self {
        Self::default()
    }

    /// A stripper whose text loop is SSE2's alone, as on a CPU without AVX2.
    #[cfg(all(test, target_arch = "x86_64"))]
    fn without_avx2() -> Self {
        Stripper {
            avx2: false,
            ..Self::default()
        }
    }

    /// Appends the text of `input` to `out`, continuing any sequence left open by the previous
    /// call. The output never depends on how the stream was split into calls.
    pub fn strip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.strip_judging_into(input, out, &mut Unjudged);
    }

    /// [`Stripper::strip_into`], showing `judge` every byte that is not printable ASCII, `\t`
    /// or `\n` on the way, so statistics over the raw bytes cost no pass of their own.
    pub(crate) fn strip_judging_into(&mut self, input: &[u8], out: &mut Vec<u8>, judge: &mut impl ByteJudge) {
        out.reserve(input.len());
        // Bytes before this offset have been judged.
        let mut judged_to = judge.begin(input);
        let mut i = 0;
        while i < input.len() {
            if self.state != State::Text {
                if i >= judged_to {
                    judged_to = judge.judge(input, i);
                }
                if self.step(input[i]) {
                    i += 1;
                }
                // Otherwise the sequence was abandoned and the byte is read again as text.
                continue;
            }
            i = self.copy_text_blocks(input, i, out, judge, &mut judged_to);
            if self.state != State::Text || i >= input.len() {
                continue;
            }
            // Plain text is the common case: copy whole runs up to the next CR or ESC.
            let run_start = i;
            loop {
                let at = next_notable(input, i);
                let Some(&byte) = input.get(at) else {
                    out.extend_from_slice(&input[run_start..]);
                    return;
                };
                if byte == CR || byte == ESC {
                    out.extend_from_slice(&input[run_start..at]);
                    if byte == ESC {
                        self.state = State::Escape;
                    }
                    i = at + 1;
                    break;
                }
                i = if at < judged_to {
                    at + 1
                } else {
                    judged_to = judge.judge(input, at);
                    judged_to
                };
            }
        }
    }

    /// The text loop of [`Stripper::strip_judging_into`] a vector at a time: each block is
    /// stored to `out` as it is scanned and kept up to its first notable byte, so a line costs
    /// no call to copy it. Thirty-two bytes at a time with AVX2 where the CPU has it, then (and
    /// elsewhere) sixteen with SSE2, part of every x86-64 CPU. Returns where it stopped: at the
    /// start of a sequence (the state is no longer text) or with less than a block left.
    #[cfg(target_arch = "x86_64")]
    fn copy_text_blocks(
        &mut self,
        input: &[u8],
        from: usize,
        out: &mut Vec<u8>,
        judge: &mut impl ByteJudge,
        judged_to: &mut usize,
    ) -> usize {
        let mut i = from;
        if self.avx2 {
            // SAFETY: `avx2` is set only when the CPU has AVX2.
            i = unsafe { self.copy_text_blocks_avx2(input, i, out, judge, judged_to) };
            if self.state != State::Text {
                return i;
            }
        }
        // SAFETY: SSE2 is in the x86-64 baseline.
        unsafe { self.copy_text_blocks_sse2(input, i, out, judge, judged_to) }
    }

    text_blocks_fn!(
        /// [`Stripper::copy_text_blocks`] thirty-two bytes at a time.
        ///
        /// # Safety
        /// The CPU must have AVX2.
        copy_text_blocks_avx2,
        feature: "avx2",
        block: 32,
        set1: _mm256_set1_epi8,
        load: _mm256_loadu_si256,
        store: _mm256_storeu_si256,
        or: _mm256_or_si256,
        andnot: _mm256_andnot_si256,
        cmpgt: _mm256_cmpgt_epi8,
        cmpeq: _mm256_cmpeq_epi8,
        movemask: _mm256_movemask_epi8
    );

    text_blocks_fn!(
        /// [`Stripper::copy_text_blocks`] sixteen bytes at a time.
        ///
        /// # Safety
        /// The CPU must have SSE2, as every x86-64 CPU has.
        copy_text_blocks_sse2,
        feature: "sse2",
        block: 16,
        set1: _mm_set1_epi8,
        load: _mm_loadu_si128,
        store: _mm_storeu_si128,
        or: _mm_or_si128,
        andnot: _mm_andnot_si128,
        cmpgt: _mm_cmpgt_epi8,
        cmpeq: _mm_cmpeq_epi8,
        movemask: _mm_movemask_epi8
    );

    /// Elsewhere the run loop does it all.
    #[cfg(not(target_arch = "x86_64"))]
    fn copy_text_blocks(
        &mut self,
        _input: &[u8],
        from: usize,
        _out: &mut Vec<u8>,
        _judge: &mut impl ByteJudge,
        _judged_to: &mut usize,
    ) -> usize {
        from
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

/// Sees the raw bytes [`Stripper::strip_judging_into`] passes that are not printable ASCII,
/// `\t` or `\n`.
pub(crate) trait ByteJudge {
    /// Called first with each input; returns how many of its first bytes need no judging
    /// (they completed something the previous input left open).
    fn begin(&mut self, input: &[u8]) -> usize;
    /// Judges the byte at `at` and returns the offset after the bytes judged with it (at least
    /// `at + 1`; only bytes ≥ 0x80 may follow in that span).
    fn judge(&mut self, input: &[u8], at: usize) -> usize;
}

/// No judging: plain stripping.
struct Unjudged;

impl ByteJudge for Unjudged {
    fn begin(&mut self, _input: &[u8]) -> usize {
        0
    }

    fn judge(&mut self, _input: &[u8], at: usize) -> usize {
        at + 1
    }
}

/// Whether a byte is one the stripper or a [`ByteJudge`] must look at: anything but printable
/// ASCII, `\t` and `\n`. Branch-free, so a block of them compiles to vector compares.
fn is_notable(byte: u8) -> bool {
    (byte.wrapping_sub(0x20) >= 0x5f) & (byte != b'\n') & (byte != b'\t')
}

/// Offset of the first notable byte at or after `from`, or `input.len()`.
fn next_notable(input: &[u8], from: usize) -> usize {
    let at = notable_in_blocks(input, from);
    notable_in_words(input, at)
}

/// [`next_notable`] sixteen bytes at a time with SSE2 (part of every x86-64 CPU), one compare
/// and a mask that gives the position directly; stops at the first notable byte or before
/// the last partial block.
#[cfg(target_arch = "x86_64")]
fn notable_in_blocks(input: &[u8], from: usize) -> usize {
    use std::arch::x86_64::*;
    const BLOCK: usize = 16;
    let mut at = from;
    // SAFETY: SSE2 is in the x86-64 baseline, so these intrinsics are always available; each
    // unaligned load reads the sixteen bytes at `at`, which the loop condition keeps in `input`.
    unsafe {
        // As signed bytes, everything below space (controls) and everything from 0x80 on is
        // less than 0x20, and only DEL is greater than `~`.
        let space = _mm_set1_epi8(0x20);
        let tilde = _mm_set1_epi8(0x7e);
        let tab = _mm_set1_epi8(b'\t' as i8);
        let newline = _mm_set1_epi8(b'\n' as i8);
        while at + BLOCK <= input.len() {
            let bytes = _mm_loadu_si128(input.as_ptr().add(at).cast());
            let outside = _mm_or_si128(_mm_cmplt_epi8(bytes, space), _mm_cmpgt_epi8(bytes, tilde));
            let allowed = _mm_or_si128(_mm_cmpeq_epi8(bytes, tab), _mm_cmpeq_epi8(bytes, newline));
            let notable = _mm_movemask_epi8(_mm_andnot_si128(allowed, outside)) as u32;
            if notable != 0 {
                return at + notable.trailing_zeros() as usize;
            }
            at += BLOCK;
        }
    }
    at
}

/// [`next_notable`] on blocks where no vector instructions are assumed: a block is tested with
/// branch-free compares the compiler vectorises, and one holding a notable byte is left to
/// [`notable_in_words`].
#[cfg(not(target_arch = "x86_64"))]
fn notable_in_blocks(input: &[u8], from: usize) -> usize {
    const BLOCK: usize = 32;
    let mut at = from;
    while let Some(block) = input.get(at..at + BLOCK) {
        if block.iter().fold(false, |any, &b| any | is_notable(b)) {
            break;
        }
        at += BLOCK;
    }
    at
}

/// The plain [`next_notable`]: a word at a time, then byte by byte; also the reference the
/// block scans are tested against.
fn notable_in_words(input: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(word) = input.get(at..at + 8) {
        let notable = notable_bytes(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        if notable != 0 {
            return at + notable.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    input[at..]
        .iter()
        .position(|&b| is_notable(b))
        .map_or(input.len(), |i| at + i)
}

/// [`is_notable`] for the eight bytes of a little-endian word at once: the top bit of each
/// notable byte set, every other bit clear. No addition carries out of its byte.
fn notable_bytes(word: u64) -> u64 {
    const TOP: u64 = 0x8080_8080_8080_8080;
    const EACH: u64 = 0x0101_0101_0101_0101;
    let low = word & !TOP;
    let non_zero = |x: u64| (x + 0x7f * EACH) & TOP;
    let control = !(low + 0x60 * EACH) & TOP;
    let delete = (low + EACH) & TOP;
    let tab_or_newline =
        !(non_zero(low ^ (b'\t' as u64 * EACH)) & non_zero(low ^ (b'\n' as u64 * EACH))) & TOP;
    (word & TOP) | delete | (control & !tab_or_newline)
}

/// The text of a complete byte string: [`Stripper::strip_into`] on a fresh stripper.
pub fn strip(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    Stripper::new().strip_into(input, &mut out);
    out
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// The stripper one byte at a time, without the fast path for runs of text.
    fn strip_bytewise(input: &[u8]) -> Vec<u8> {
        let mut stripper = Stripper::new();
        let mut out = Vec::new();
        for &byte in input {
            if stripper.state != State::Text && stripper.step(byte) {
                continue;
            }
            match byte {
                ESC => stripper.state = State::Escape,
                CR => {}
                _ => out.push(byte),
            }
        }
        out
    }

    /// Console pieces for the fast path: runs longer than its blocks, line ends, sequences,
    /// whole and cut UTF-8 characters, controls.
    pub(crate) fn console_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        const PIECES: &[&[u8]] = &[
            b"Starting kernel ... and a line long enough to fill a block of the scan",
            b"ok",
            b"\r\n",
            b"\n",
            b"\r",
            b"\t",
            b"\x1b[1;32m",
            b"\x1b[0m",
            b"\x1b]0;t\xc3\xa9\x07",
            b"\x1b(B",
            b"\x1b",
            b"\x1b[",
            b"\x08\x08",
            b"\x7f",
            b"\xc3\xa9",
            b"\xe2\x9c\x93",
            b"\xf0\x9f\xa6\x80",
            b"\xe2\x82",
            b"\xf0\x9f",
            b"\xc3",
            b"\xff",
            b"\xed\xa0\x80",
        ];
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
                1 => any::<u8>().prop_map(|b| vec![b]),
            ],
            0..80,
        )
        .prop_map(|pieces| pieces.concat())
    }

    /// `input` cut at `cuts` (offsets, any order, clamped to the input).
    pub(crate) fn cut(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for at in cuts.into_iter().chain([input.len()]) {
            chunks.push(input[from..at].to_vec());
            from = at;
        }
        chunks
    }

    #[test]
    fn notable_bytes_of_a_word_are_those_of_each_byte() {
        for byte in 0..=255u8 {
            for lane in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[lane] = byte;
                let expected = if is_notable(byte) {
                    0x80u64 << (8 * lane)
                } else {
                    0
                };
                assert_eq!(
                    notable_bytes(u64::from_le_bytes(bytes)),
                    expected,
                    "byte {byte:#x} in lane {lane}"
                );
            }
        }
    }

    #[test]
    fn the_block_scan_finds_each_notable_byte_at_every_position() {
        for byte in 0..=255u8 {
            for len in [15, 16, 17, 40] {
                for position in 0..len {
                    let mut input = vec![b'a'; len];
                    input[position] = byte;
                    let expected = if is_notable(byte) { position } else { len };
                    for from in [0, position.saturating_sub(3), position] {
                        assert_eq!(
                            next_notable(&input, from),
                            expected,
                            "byte {byte:#x} at {position} of {len}, from {from}"
                        );
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// On x86-64, with the AVX2 loop where the CPU has it and with the SSE2 loop alone, as a
        /// CPU without AVX2 strips (the AVX2 loop leaves SSE2 only each input's last bytes).
        #[test]
        fn stripping_runs_at_once_gives_what_stripping_byte_by_byte_gives(
            input in console_bytes(),
            cuts in proptest::collection::vec(0..600usize, 0..12),
        ) {
            let mut strippers = vec![Stripper::new()];
            #[cfg(target_arch = "x86_64")]
            strippers.push(Stripper::without_avx2());
            for mut stripper in strippers {
                let mut out = Vec::new();
                for chunk in cut(&input, &cuts) {
                    stripper.strip_into(&chunk, &mut out);
                }
                proptest::prop_assert_eq!(out, strip_bytewise(&input));
            }
        }

        #[test]
        fn the_block_scan_finds_what_the_word_scan_finds(
            input in console_bytes(),
            from_percent in 0..=100usize,
        ) {
            let from = input.len() * from_percent / 100;
            proptest::prop_assert_eq!(next_notable(&input, from), notable_in_words(&input, from));
        }
    }
}
