//! Transcript files of one console session: the exact bytes, a timestamped text log, and an
//! asciicast v2 recording.
//!
//! The caller passes every timestamp (time since the session started), so the files say when
//! the runner saw something, and tests can write transcripts with made-up times.
//!
//! A console can print without end (a flood of random bytes at the wrong baud rate, a program
//! in a loop): each transcript is bounded by a [limit](Transcript::with_limit). `.raw` keeps the
//! first `limit` bytes, `.log` its first half-limit of lines and its last lines (up to
//! [`LOG_TAIL_CAP`]) with a line saying how much was dropped between, and `.cast` its first
//! `limit` bytes of events and a marker saying the rest was dropped.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memchr::memchr;
use serde::Serialize;

use super::ansi::Stripper;
use crate::escape::{escape_console_line, needs_escape, push_escaped};

/// Terminal width written into the asciicast header; serial consoles have no size of their
/// own, and kernel lines with timestamps run past 80 columns.
pub const CAST_WIDTH: u16 = 160;
/// Terminal height written into the asciicast header.
pub const CAST_HEIGHT: u16 = 48;
/// A console line longer than this is split across several log lines, so a console that never
/// prints a newline cannot grow the writer's memory.
pub const LOG_LINE_CAP: usize = 64 * 1024;
/// The limit of one transcript unless set otherwise: far above any boot's few hundred KiB.
pub const DEFAULT_LIMIT: u64 = 256 * 1024 * 1024;
/// The most of a `.log`'s last lines kept in memory for its tail, once the log is over its limit.
pub const LOG_TAIL_CAP: u64 = 8 * 1024 * 1024;

/// The limit [`Transcript::create`] gives new transcripts; set once from the command line.
static LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_LIMIT);

/// Sets the limit of transcripts created from now on (`harness run --transcript-limit`).
pub fn set_default_limit(bytes: u64) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The limit transcripts created now get.
pub fn default_limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

/// How much of a bounded file was written and how much dropped.
#[derive(Debug, Default)]
struct Budget {
    limit: u64,
    written: u64,
    dropped: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Budget {
            limit,
            ..Budget::default()
        }
    }

    /// How many of `len` more bytes fit; the rest are counted as dropped.
    fn take(&mut self, len: usize) -> usize {
        let fits = (self.limit.saturating_sub(self.written)).min(len as u64);
        self.written += fits;
        self.dropped += len as u64 - fits;
        fits as usize
    }

    /// Whether all `len` more bytes fit (then they count as written), once nothing was dropped.
    fn take_whole(&mut self, len: usize) -> bool {
        if self.dropped > 0 || self.written + len as u64 > self.limit {
            self.dropped += len as u64;
            return false;
        }
        self.written += len as u64;
        true
    }
}

/// The `.log`'s last lines, once its head is full.
#[derive(Debug, Default)]
struct LogTail {
    lines: VecDeque<Vec<u8>>,
    bytes: u64,
    cap: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogTail {
    fn push(&mut self, line: Vec<u8>) {
        self.bytes += line.len() as u64;
        self.lines.push_back(line);
        while self.bytes > self.cap {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len() as u64;
            self.dropped_lines += 1;
            self.dropped_bytes += old.len() as u64;
        }
    }
}

/// Where a transcript's three files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptPaths {
    /// The exact console bytes, as received.
    pub raw: PathBuf,
    /// One line per console line, `[  12.345] text`, plus `>> input` and `-- note` lines.
    pub log: PathBuf,
    /// asciicast v2 recording of output and input.
    pub cast: PathBuf,
}

/// Writes the transcript files of one console session as the session runs.
///
/// The `.log` timestamp of a console line is when its first byte of text arrived, so a test can
/// measure how quickly the runner acted on a line. A console line still incomplete when input
/// or a note is written is logged first as a line of its own. Each output chunk is flushed as
/// it arrives; call [`Transcript::finish`] to see errors (dropping flushes on a best-effort
/// basis).
#[derive(Debug)]
pub struct Transcript {
    paths: TranscriptPaths,
    raw: BufWriter<File>,
    log: BufWriter<File>,
    cast: BufWriter<File>,
    stripper: Stripper,
    clean: Vec<u8>,
    /// Text of the console line being received, and when it started.
    line: Vec<u8>,
    line_started: Duration,
    /// An unfinished UTF-8 sequence at the end of the last output, held back so a character
    /// split across reads is not rendered as two replacement characters.
    utf8_carry: Vec<u8>,
    /// asciicast events must not go back in time.
    last_cast_time: Duration,
    finished: bool,
    raw_budget: Budget,
    cast_budget: Budget,
    /// Bytes the `.log` may hold before its lines go to the tail.
    log_head: Budget,
    /// Set once the `.log`'s head is full.
    log_tail: Option<LogTail>,
}

#[derive(Serialize)]
struct CastHeader<'a> {
    version: u8,
    width: u16,
    height: u16,
    timestamp: u64,
    title: &'a str,
}

impl Transcript {
    /// Creates (or truncates) `<dir>/<stem>.raw`, `<stem>.log` and `<stem>.cast`, creating `dir`
    /// if needed, and writes the asciicast header with `title` and the current wall-clock time.
    /// The transcript is bounded by [`default_limit`].
    pub fn create(dir: &Path, stem: &str, title: &str) -> io::Result<Self> {
        Ok(Self::create_unbounded(dir, stem, title)?.with_limit(default_limit()))
    }

    /// Bounds this transcript to `limit` bytes per file (see the module documentation).
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.raw_budget = Budget::new(limit);
        self.cast_budget = Budget::new(limit);
        self.log_head = Budget::new(limit / 2);
        self
    }

    fn create_unbounded(dir: &Path, stem: &str, title: &str) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let paths = TranscriptPaths {
            raw: dir.join(format!("{stem}.raw")),
            log: dir.join(format!("{stem}.log")),
            cast: dir.join(format!("{stem}.cast")),
        };
        let open = |path: &Path| File::create(path).map(BufWriter::new);
        let mut cast = open(&paths.cast)?;
        let header = CastHeader {
            version: 2,
            width: CAST_WIDTH,
            height: CAST_HEIGHT,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            title,
        };
        serde_json::to_writer(&mut cast, &header)?;
        cast.write_all(b"\n")?;
        Ok(Self {
            raw: open(&paths.raw)?,
            log: open(&paths.log)?,
            cast,
            paths,
            stripper: Stripper::new(),
            clean: Vec::new(),
            line: Vec::new(),
            line_started: Duration::ZERO,
            utf8_carry: Vec::new(),
            last_cast_time: Duration::ZERO,
            finished: false,
            raw_budget: Budget::new(u64::MAX),
            cast_budget: Budget::new(u64::MAX),
            log_head: Budget::new(u64::MAX),
            log_tail: None,
        })
    }

    /// Records console output received at `at`.
    pub fn output(&mut self, at: Duration, bytes: &[u8]) -> io::Result<()> {
        let was_full = self.raw_budget.dropped > 0;
        let fits = self.raw_budget.take(bytes.len());
        self.raw.write_all(&bytes[..fits])?;
        if fits < bytes.len() && !was_full {
            // Straight into the file: a note kept for the log's tail could be pushed out of it.
            writeln!(
                self.log,
                "[{}] -- .raw reached its limit of {} bytes; later console bytes are not in it",
                log_time(at),
                self.raw_budget.limit
            )?;
        }

        let mut pending = std::mem::take(&mut self.utf8_carry);
        pending.extend_from_slice(bytes);
        let complete = complete_utf8_len(&pending);
        self.utf8_carry = pending.split_off(complete);
        if !pending.is_empty() {
            self.cast_event(at, "o", &String::from_utf8_lossy(&pending))?;
        }

        self.clean.clear();
        self.stripper.strip_into(bytes, &mut self.clean);
        let clean = std::mem::take(&mut self.clean);
        let mut rest = &clean[..];
        while !rest.is_empty() {
            if self.line.is_empty() {
                self.line_started = at;
            }
            match memchr(b'\n', rest) {
                Some(newline) => {
                    self.line.extend_from_slice(&rest[..newline]);
                    self.write_line()?;
                    rest = &rest[newline + 1..];
                }
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                    while self.line.len() > LOG_LINE_CAP {
                        self.write_long_line_head(at)?;
                    }
                }
            }
        }
        self.clean = clean;
        // Console output is slow and a harness can die at any moment (SIGKILL, a full disk):
        // what arrived must be on disk, not in a buffer.
        self.raw.flush()?;
        self.log.flush()?;
        self.cast.flush()
    }

    /// Records input sent at `at`, as it may be shown: the caller has already redacted secrets.
    /// Logged as `>> ` and the input with control characters escaped (`\r`, `\x03`).
    pub fn input(&mut self, at: Duration, shown: &[u8]) -> io::Result<()> {
        self.write_partial_line()?;
        let text = String::from_utf8_lossy(shown);
        let line = format!("[{}] >> {}\n", log_time(at), escape_controls(&text));
        self.log_line(line.into_bytes())?;
        self.cast_event(at, "i", &text)
    }

    /// Records a note from the runner (a step starting, a stage reached) at `at`: `-- ` lines
    /// in the log and a marker event in the recording.
    pub fn note(&mut self, at: Duration, text: &str) -> io::Result<()> {
        self.write_partial_line()?;
        for line in text.lines() {
            let line = format!("[{}] -- {}\n", log_time(at), escape_console_line(line));
            self.log_line(line.into_bytes())?;
        }
        self.cast_event(at, "m", text)
    }

    /// Where the files are.
    pub fn paths(&self) -> TranscriptPaths {
        self.paths.clone()
    }

    /// Writes out the incomplete last line and any held-back bytes, flushes, and returns where
    /// the files are.
    pub fn finish(mut self) -> io::Result<TranscriptPaths> {
        self.finished = true;
        self.flush_all()?;
        Ok(self.paths.clone())
    }

    fn flush_all(&mut self) -> io::Result<()> {
        self.write_partial_line()?;
        if !self.utf8_carry.is_empty() {
            let carry = std::mem::take(&mut self.utf8_carry);
            self.cast_event(self.last_cast_time, "o", &String::from_utf8_lossy(&carry))?;
        }
        if let Some(tail) = self.log_tail.take() {
            if tail.dropped_lines > 0 {
                writeln!(
                    self.log,
                    "[{}] -- transcript limit: {} lines ({} bytes) dropped here; the last {} lines follow",
                    log_time(self.last_cast_time),
                    tail.dropped_lines,
                    tail.dropped_bytes,
                    tail.lines.len()
                )?;
            }
            for line in &tail.lines {
                self.log.write_all(line)?;
            }
        }
        if self.cast_budget.dropped > 0 {
            let end = format!(
                "transcript limit: {} bytes of later events dropped",
                self.cast_budget.dropped
            );
            let event = serde_json::to_vec(&(self.last_cast_time.as_micros() as f64 / 1e6, "m", end))?;
            self.cast.write_all(&event)?;
            self.cast.write_all(b"\n")?;
            self.cast_budget.dropped = 0;
        }
        self.raw.flush()?;
        self.log.flush()?;
        self.cast.flush()
    }

    fn write_partial_line(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        self.write_line()
    }

    fn write_line(&mut self) -> io::Result<()> {
        let line = format!(
            "[{}] {}\n",
            log_time(self.line_started),
            escape_console_line(&String::from_utf8_lossy(&self.line))
        );
        self.line.clear();
        self.log_line(line.into_bytes())
    }

    /// Writes one finished `.log` line, or keeps it for the tail once the head is full.
    fn log_line(&mut self, line: Vec<u8>) -> io::Result<()> {
        if let Some(tail) = &mut self.log_tail {
            tail.push(line);
            return Ok(());
        }
        if self.log_head.written + line.len() as u64 <= self.log_head.limit {
            self.log_head.written += line.len() as u64;
            return self.log.write_all(&line);
        }
        // Said at once, so that a run killed before it finishes still explains the cut.
        writeln!(
            self.log,
            "[{}] -- transcript limit: the log keeps its first {} bytes and its last lines (up \
             to {} bytes), written when the session ends",
            log_time(self.last_cast_time),
            self.log_head.written,
            LOG_TAIL_CAP.min(self.log_head.limit / 2)
        )?;
        let mut tail = LogTail {
            cap: LOG_TAIL_CAP.min(self.log_head.limit / 2),
            ..LogTail::default()
        };
        tail.push(line);
        self.log_tail = Some(tail);
        Ok(())
    }

    /// Logs the first [`LOG_LINE_CAP`] bytes of an over-long line (cut on a character
    /// boundary) and keeps the rest as a line that started at `at`.
    fn write_long_line_head(&mut self, at: Duration) -> io::Result<()> {
        let mut cut = LOG_LINE_CAP;
        while cut > LOG_LINE_CAP - 3 && self.line[cut] & 0xc0 == 0x80 {
            cut -= 1;
        }
        let rest = self.line.split_off(cut);
        self.write_line()?;
        self.line = rest;
        self.line_started = at;
        Ok(())
    }

    fn cast_event(&mut self, at: Duration, kind: &str, data: &str) -> io::Result<()> {
        let at = at.max(self.last_cast_time);
        self.last_cast_time = at;
        // Microseconds are plenty, and keep the numbers short.
        let seconds = at.as_micros() as f64 / 1e6;
        let mut event = serde_json::to_vec(&(seconds, kind, data))?;
        event.push(b'\n');
        // Whole events only: a cut one would not parse.
        if !self.cast_budget.take_whole(event.len()) {
            return Ok(());
        }
        self.cast.write_all(&event)
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.flush_all();
        }
    }
}

/// `  12.345`: seconds, right-aligned to four digits, and milliseconds.
fn log_time(at: Duration) -> String {
    format!("{:4}.{:03}", at.as_secs(), at.subsec_millis())
}

/// Length of `bytes` without an unfinished (but so far valid) UTF-8 sequence at its end.
fn complete_utf8_len(bytes: &[u8]) -> usize {
    let last_three = bytes.len().saturating_sub(3);
    for start in (last_three..bytes.len()).rev() {
        if bytes[start] & 0xc0 != 0x80 {
            let unfinished = bytes[start] >= 0xc0
                && matches!(std::str::from_utf8(&bytes[start..]), Err(e) if e.valid_up_to() == 0 && e.error_len().is_none());
            return if unfinished { start } else { bytes.len() };
        }
    }
    bytes.len()
}

/// Input with control characters written as escapes, so `root\r` and Ctrl-C are visible:
/// `\r`, `\n`, `\t`, other C0 and C1 controls and DEL as `\x03`, and the other characters the
/// reports escape (line separators, bidi overrides: [`needs_escape`]) as `\u{202e}`.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if needs_escape(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn written(paths: &TranscriptPaths) -> (Vec<u8>, String, Vec<serde_json::Value>) {
        let raw = fs::read(&paths.raw).unwrap();
        let log = fs::read_to_string(&paths.log).unwrap();
        let cast = fs::read_to_string(&paths.cast)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (raw, log, cast)
    }

    #[test]
    fn raw_file_holds_the_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
        transcript.output(ms(1), b"\x1b[1;32mhi\x1b[0m\r\n\xff").unwrap();
        transcript.input(ms(2), b"root\r").unwrap();
        let (raw, _, _) = written(&transcript.finish().unwrap());
        assert_eq!(raw, b"\x1b[1;32mhi\x1b[0m\r\n\xff");
    }

    #[test]
    fn log_lines_carry_the_time_the_line_started() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
        transcript.output(ms(12_345), b"Kernel pa").unwrap();
        transcript
            .output(ms(12_400), b"nic - not syncing\r\nnext\r")
            .unwrap();
        transcript.output(ms(13_000), b"\n").unwrap();
        let (_, log, _) = written(&transcript.finish().unwrap());
        assert_eq!(log, "[  12.345] Kernel panic - not syncing\n[  12.400] next\n");
    }

    #[test]
    fn log_strips_ansi_and_renders_invalid_utf8_lossily() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
        transcript
            .output(ms(0), b"\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m \xff\r\n")
            .unwrap();
        let (_, log, _) = written(&transcript.finish().unwrap());
        assert_eq!(log, "[   0.000] <<< NixOS Stage 2 >>> \u{fffd}\n");
    }

    #[test]
    fn input_and_notes_follow_the_prompt_they_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "login", "login").unwrap();
        transcript.note(ms(4_000), "step: log in").unwrap();
        transcript.output(ms(5_000), b"nixos login: ").unwrap();
        transcript.input(ms(5_100), b"root\r").unwrap();
        transcript.output(ms(5_101), b"root\r\n").unwrap();
        transcript.input(ms(6_000), b"\x03").unwrap();
        let (_, log, _) = written(&transcript.finish().unwrap());
        assert_eq!(
            log,
            "[   4.000] -- step: log in\n\
             [   5.000] nixos login: \n\
             [   5.100] >> root\\r\n\
             [   5.101] root\n\
             [   6.000] >> \\x03\n"
        );
    }

    #[test]
    fn console_lines_and_notes_are_logged_with_controls_and_bidi_overrides_escaped_but_tabs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "t", "title").unwrap();
        transcript
            .output(
                ms(1),
                "1:\tNixOS\u{8}\u{7}\u{9b}2J\u{7f}\u{202e}x\u{2028}y\r\n".as_bytes(),
            )
            .unwrap();
        transcript.note(ms(2), "output:\n\u{2066}z\u{1b}").unwrap();
        let (raw, log, _) = written(&transcript.finish().unwrap());
        assert_eq!(
            log,
            "[   0.001] 1:\tNixOS\\u{8}\\u{7}\\u{9b}2J\\u{7f}\\u{202e}x\\u{2028}y\n\
             [   0.002] -- output:\n\
             [   0.002] -- \\u{2066}z\\u{1b}\n"
        );
        assert!(
            raw.starts_with("1:\tNixOS\u{8}".as_bytes()),
            "the raw file keeps the bytes"
        );
    }

    #[test]
    fn input_with_c1_controls_bidi_overrides_and_line_separators_is_logged_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "t", "title").unwrap();
        transcript
            .input(ms(1), "a\u{9b}\u{7f}\u{202e}\u{2066}\u{2028}b\r".as_bytes())
            .unwrap();
        let (_, log, _) = written(&transcript.finish().unwrap());
        assert!(
            log.ends_with("[   0.001] >> a\\x9b\\x7f\\u{202e}\\u{2066}\\u{2028}b\\r\n"),
            "{log}"
        );
    }

    #[test]
    fn cast_has_a_v2_header_and_timed_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "nixos \"boot\"").unwrap();
        transcript.output(ms(1_500), b"=> ").unwrap();
        transcript.input(ms(1_750), b"boot\r").unwrap();
        transcript.note(ms(2_000), "stage kernel").unwrap();
        let (_, _, cast) = written(&transcript.finish().unwrap());
        let header = &cast[0];
        assert_eq!(header["version"], 2);
        assert_eq!(header["width"], CAST_WIDTH);
        assert_eq!(header["height"], CAST_HEIGHT);
        assert_eq!(header["title"], "nixos \"boot\"");
        assert!(header["timestamp"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(
            cast[1..],
            [
                serde_json::json!([1.5, "o", "=> "]),
                serde_json::json!([1.75, "i", "boot\r"]),
                serde_json::json!([2.0, "m", "stage kernel"]),
            ]
        );
    }

    #[test]
    fn cast_keeps_a_character_split_across_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
        transcript.output(ms(1), b"ok \xe2\x9c").unwrap();
        transcript.output(ms(2), b"\x93 \xff\x1b[0m").unwrap();
        transcript.output(ms(3), b"\xc3").unwrap();
        let (_, _, cast) = written(&transcript.finish().unwrap());
        assert_eq!(
            cast[1..],
            [
                serde_json::json!([0.001, "o", "ok "]),
                serde_json::json!([0.002, "o", "✓ \u{fffd}\u{1b}[0m"]),
                serde_json::json!([0.002, "o", "\u{fffd}"]),
            ]
        );
    }

    #[test]
    fn cast_events_never_go_back_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
        transcript.output(ms(2_000), b"a").unwrap();
        transcript.note(ms(1_000), "late note").unwrap();
        let (_, _, cast) = written(&transcript.finish().unwrap());
        assert_eq!(cast[2], serde_json::json!([2.0, "m", "late note"]));
    }

    #[test]
    fn a_line_without_newline_is_logged_in_bounded_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "noise", "noise").unwrap();
        let chunk = vec![b'x'; 4096];
        for i in 0..40 {
            transcript.output(ms(i), &chunk).unwrap();
            assert!(transcript.line.len() <= LOG_LINE_CAP);
        }
        let (_, log, _) = written(&transcript.finish().unwrap());
        let lengths: Vec<usize> = log.lines().map(|l| l.len() - "[   0.000] ".len()).collect();
        assert_eq!(
            lengths,
            [LOG_LINE_CAP, LOG_LINE_CAP, 40 * 4096 - 2 * LOG_LINE_CAP]
        );
    }

    /// Pseudo-random bytes, as a console at the wrong baud rate prints them.
    fn noise(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    fn file_len(path: &Path) -> u64 {
        fs::metadata(path).unwrap().len()
    }

    const LIMIT: u64 = 64 * 1024;

    #[test]
    fn a_flood_of_random_bytes_is_cut_at_the_limit_in_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "flood", "flood")
            .unwrap()
            .with_limit(LIMIT);
        let mut sent = Vec::new();
        for i in 0..256 {
            let chunk = noise(4096, i);
            transcript.output(ms(u64::from(i)), &chunk).unwrap();
            sent.extend_from_slice(&chunk);
        }
        let paths = transcript.finish().unwrap();
        assert_eq!(fs::read(&paths.raw).unwrap(), sent[..LIMIT as usize]);
        // Each file may pass the limit only by the lines that say what was dropped.
        assert!(file_len(&paths.log) <= LIMIT + 512, "{}", file_len(&paths.log));
        assert!(file_len(&paths.cast) <= LIMIT + 512, "{}", file_len(&paths.cast));
        let log = fs::read_to_string(&paths.log).unwrap();
        assert!(log.contains("-- .raw reached its limit of 65536 bytes"), "{log}");
    }

    #[test]
    fn a_flood_of_short_lines_keeps_the_logs_head_and_tail_and_says_what_it_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "lines", "lines")
            .unwrap()
            .with_limit(LIMIT);
        for i in 0..30_000u64 {
            transcript
                .output(ms(i), format!("line {i}\r\n").as_bytes())
                .unwrap();
        }
        let paths = transcript.finish().unwrap();
        let log = fs::read_to_string(&paths.log).unwrap();
        assert!(log.starts_with("[   0.000] line 0\n"), "{}", &log[..200]);
        assert!(
            log.ends_with("[  29.999] line 29999\n"),
            "{}",
            &log[log.len() - 200..]
        );
        assert!(!log.contains("] line 15000\n"));
        assert!(
            log.contains("-- transcript limit: the log keeps its first "),
            "{log}"
        );
        let dropped = log
            .lines()
            .find(|l| l.contains("dropped here; the last"))
            .expect("the cut is marked");
        let kept = log.lines().filter(|l| l.contains("] line ")).count();
        let said: usize = dropped
            .split("transcript limit: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(kept + said, 30_000, "{dropped}");
        assert!(file_len(&paths.log) <= LIMIT + 512, "{}", file_len(&paths.log));
    }

    #[test]
    fn a_cast_over_its_limit_ends_with_whole_events_and_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "cast", "cast")
            .unwrap()
            .with_limit(LIMIT);
        for i in 0..10_000u64 {
            transcript.output(ms(i), b"some output\r\n").unwrap();
        }
        let (_, _, cast) = written(&transcript.finish().unwrap());
        let last = cast.last().unwrap();
        assert_eq!(last[1], "m");
        assert!(
            last[2].as_str().unwrap().starts_with("transcript limit: "),
            "{last}"
        );
        assert!(cast.len() > 100 && cast.len() < 10_000);
    }

    #[test]
    fn the_default_limit_is_256_mib() {
        assert_eq!(DEFAULT_LIMIT, 256 * 1024 * 1024);
    }

    #[test]
    fn dropping_without_finish_still_writes_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let paths = {
            let mut transcript = Transcript::create(dir.path(), "boot", "boot").unwrap();
            transcript.output(ms(7), b"nixos login: ").unwrap();
            transcript.paths()
        };
        let (_, log, _) = written(&paths);
        assert_eq!(log, "[   0.007] nixos login: \n");
    }
}
