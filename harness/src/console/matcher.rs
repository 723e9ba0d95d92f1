//! The streaming console matcher: raw bytes in, events out, no I/O and no clocks.
//!
//! The runner owns time. It feeds whatever the target delivered and acts on the events: a
//! watch hit (a fatal pattern, a stage marker) or the match of the step it is waiting for.
//! Everything the matcher holds is bounded, so a console that prints forever, or prints
//! garbage without newlines at the wrong baud rate, costs constant memory and linear time.

use std::collections::VecDeque;
use std::fmt;

use memchr::{memchr, memrchr};

use super::ansi::Stripper;
use super::byte_stats::{ByteCounter, ByteStats};
use super::event_line::EventLine;
use super::pattern_set::{FeedSpan, Hit, LineRegion, PatternSet, Text, LINE_CAP};
use super::Pattern;

/// Clean text kept for the next [`Matcher::expect`] (the tail is kept when there is more).
pub const RETAINED_CAP: usize = 1024 * 1024;
/// Complete lines remembered for [`Matcher::recent_lines`].
pub const RECENT_LINES: usize = 20;
/// Longest line text put in an event or in [`Matcher::recent_lines`], in bytes; longer lines
/// are cut and marked with `…`.
pub const SHOWN_LINE_CAP: usize = 1024;
/// How far back into an incomplete line a regex is searched again when more of the line
/// arrives. Prompts are far shorter; the whole line is searched once it is complete.
const INCOMPLETE_LOOKBACK: u64 = 512;
/// Hits whose room is kept from one feed to the next.
const KEPT_HITS: usize = 1024;

/// Something the matcher saw in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A watch pattern matched.
    Watch {
        /// Index of the pattern in the list given to [`Matcher::new`].
        index: usize,
        /// The clean line holding the end of the match, as much of it as had arrived.
        line: EventLine,
    },
    /// The current expectation matched; the expectation set is now cleared.
    Expected(Expected),
}

/// A match of the expectation set installed by [`Matcher::expect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Index of the matching pattern in the slice given to [`Matcher::expect`].
    pub index: usize,
    /// The clean text that matched.
    pub matched: String,
    /// Clean text between the end of the previous expectation match (or the last
    /// [`Matcher::discard_retained`]) and the start of this match: a command's output, for one.
    /// At most [`RETAINED_CAP`] bytes, the most recent ones.
    pub before: String,
    /// The clean line holding the end of the match, as much of it as had arrived.
    pub line: String,
}

/// The part of a line an event shows: the bytes, and whether the line goes on before and
/// after them (shown as `…`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct LineWindow {
    bytes: std::ops::Range<usize>,
    cut_before: bool,
    cut_after: bool,
}

impl LineWindow {
    /// Appends the shown line for the window's `bytes` to `out`: all of them, lossy UTF-8 (a
    /// window is never longer than [`SHOWN_LINE_CAP`] bytes).
    fn write(&self, bytes: &[u8], out: &mut String) {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.write_str(text, out),
            Err(_) => self.write_str(&String::from_utf8_lossy(bytes), out),
        }
    }

    /// Appends the shown line for the window's `text` (its bytes, valid UTF-8) to `out`.
    fn write_str(&self, text: &str, out: &mut String) {
        let at = out.len();
        out.push_str(text);
        if self.cut_after {
            out.push('…');
        }
        if self.cut_before && !out[at..].starts_with('…') {
            out.insert(at, '…');
        }
    }
}

/// How much memory the matcher holds; lets tests check that it stays bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferSizes {
    /// Bytes of clean text held (retained text, line context, literal overlap).
    pub text: usize,
    /// Allocated capacity of the clean text buffer.
    pub text_capacity: usize,
    /// Bytes retained for the next [`Matcher::expect`].
    pub retained: usize,
    /// Bytes of the incomplete last line held (only the last 64 KiB are matched).
    pub incomplete_line: usize,
    /// Complete lines remembered for [`Matcher::recent_lines`].
    pub recent_lines: usize,
    /// Total length of those lines.
    pub recent_bytes: usize,
}

/// A one-shot expectation set and where each of its regexes may next match.
#[derive(Debug)]
struct ActiveExpect {
    set: PatternSet,
    starts: Vec<u64>,
}

/// Matches watch patterns and one-shot expectations against a console byte stream.
///
/// Patterns see the clean stream: ANSI escape sequences and `\r` removed.
///
/// - Literals match anywhere, across lines and across chunk boundaries. A watch literal reports
///   every occurrence, overlapping ones included, so results never depend on how the stream was
///   chunked.
/// - Regexes match within one line: each complete line, and the incomplete last line so far (so
///   prompts without a newline match). A regex can therefore match part of a line before the
///   rest arrives: `\d+` may see `12` of `123`, and `$` matches at the end of what has arrived,
///   so `^append: .*$` may capture half a line. End such regexes with text that must follow.
///   Matches of one regex never overlap and no text matches the same regex twice. Regexes are
///   also compiled from their source text, so flags belong inline (`(?i)`), not on a builder.
/// - Lines longer than 64 KiB are matched on their last 64 KiB; empty matches are ignored.
/// - When matches end at the same offset, events list watches before the expectation, and
///   patterns in index order.
pub struct Matcher {
    stripper: Stripper,
    counter: ByteCounter,
    watches: PatternSet,
    /// Per watch regex: the stream offset its next match must start at or after.
    watch_starts: Vec<u64>,
    expect: Option<ActiveExpect>,
    /// Clean text from stream offset `text_base` to the present.
    text: Vec<u8>,
    text_base: u64,
    /// Where text retained for the next expectation begins.
    floor: u64,
    /// Start of the line holding `floor`, so regexes see `^` correctly there.
    floor_line_start: u64,
    /// Start of the incomplete last line.
    line_start: u64,
    /// Where the text anything may still need begins, as of the last [`Matcher::trim`]; the
    /// bytes from `text_base` to here are dropped when next convenient.
    dead_to: u64,
    /// The last complete lines, raw, each cut to what [`shown`] displays; converted to text
    /// only when asked for, since most are never looked at.
    recent: VecDeque<Vec<u8>>,
    /// The complete lines of the last feed that saw a newline, from the first offset to the
    /// newline at the second, still in `text` and not yet copied into `recent`: the next
    /// feed's lines usually replace them all, so most are never copied.
    pending_lines: Option<(u64, u64)>,
    /// Hits of the watches and of the expectation found in one feed; kept empty between feeds
    /// so their allocations are reused.
    watch_hits: Vec<Hit>,
    expect_hits: Vec<Hit>,
    /// Room reused by [`Matcher::event_lines`] from one feed to the next.
    line_windows: Vec<LineWindow>,
    line_text: String,
    /// Whether a feed takes the plain paths: the watches' literals and their regexes' literals
    /// searched apart, a `String` of its own for each event line. The reference the fast
    /// paths are tested against.
    plain: bool,
}

impl Matcher {
    /// A matcher whose `watches` are checked against every byte exactly once for the
    /// matcher's life (fatal patterns, stage markers).
    pub fn new(watches: Vec<Pattern>) -> Self {
        Self::build(watches, false)
    }

    /// A matcher taking the plain paths (see `plain`).
    #[cfg(test)]
    fn plain(watches: Vec<Pattern>) -> Self {
        Self::build(watches, true)
    }

    fn build(watches: Vec<Pattern>, plain: bool) -> Self {
        let watches = if plain {
            PatternSet::new(&watches)
        } else {
            PatternSet::for_feeds(&watches)
        };
        Self {
            stripper: Stripper::new(),
            counter: ByteCounter::default(),
            watch_starts: vec![0; watches.regex_count()],
            watches,
            expect: None,
            text: Vec::new(),
            text_base: 0,
            floor: 0,
            floor_line_start: 0,
            line_start: 0,
            dead_to: 0,
            recent: VecDeque::with_capacity(RECENT_LINES),
            pending_lines: None,
            watch_hits: Vec::new(),
            expect_hits: Vec::new(),
            line_windows: Vec::new(),
            line_text: String::new(),
            plain,
        }
    }

    /// Installs a one-shot expectation set (replacing any), and first searches the text
    /// retained since the last expect match; returns the earliest match found there (and then
    /// installs nothing). "Earliest" is the match that ends first; at the same end, the pattern
    /// listed first. An empty slice, or only empty literals, never matches.
    pub fn expect(&mut self, patterns: &[Pattern]) -> Option<Expected> {
        let set = PatternSet::new(patterns);
        let mut starts = vec![self.floor; set.regex_count()];
        let mut hits = Vec::new();
        let end = self.end();
        set.literal_hits(self.clean_text(), self.floor, self.floor, true, &mut hits);
        set.regex_hits(
            self.clean_text(),
            self.floor_line_start..end,
            self.floor,
            &mut starts,
            true,
            &mut hits,
        );
        match earliest(&hits) {
            Some(hit) => {
                self.expect = None;
                let expected = self.take_expected(hit);
                self.trim();
                Some(expected)
            }
            None => {
                self.expect = Some(ActiveExpect { set, starts });
                None
            }
        }
    }

    /// Removes the expectation set, if any; retained text stays.
    pub fn clear_expect(&mut self) {
        self.expect = None;
    }

    /// Forgets retained text, so stale output cannot satisfy the next expectation.
    pub fn discard_retained(&mut self) {
        let end = self.end();
        self.floor = end;
        if let Some(active) = &mut self.expect {
            active.starts.fill(end);
        }
        self.floor_line_start = self
            .line_start
            .max(end.saturating_sub(LINE_CAP as u64))
            .max(self.text_base);
        self.trim();
    }

    /// Feeds raw console bytes; returns events in stream order: any watch hits, and at most
    /// one [`Event::Expected`], after which the expectation set is cleared and the text after
    /// the match stays retained for the next [`Matcher::expect`]. Watches keep being checked
    /// on the whole chunk either way.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let new_start = self.end();
        // Clean text is never longer than the raw bytes.
        self.make_room(bytes.len());
        self.stripper
            .strip_judging_into(bytes, &mut self.text, &mut self.counter);
        let end = self.end();
        if end == new_start {
            return Vec::new();
        }
        let base = self.text_base;

        let mut watch_hits = std::mem::take(&mut self.watch_hits);
        let mut expect_hits = std::mem::take(&mut self.expect_hits);
        let literal_from = new_start.saturating_sub(self.watches.overlap()).max(base);
        if let Some(active) = &self.expect {
            let from = new_start.saturating_sub(active.set.overlap()).max(self.floor);
            active
                .set
                .literal_hits(self.clean_text(), from, new_start, true, &mut expect_hits);
        }

        // The complete lines of this feed (with the rest of the line it began in), then the
        // incomplete last line.
        let line_from = self.line_start.max(base);
        let last_newline =
            memrchr(b'\n', &self.text[(new_start - base) as usize..]).map(|i| new_start + i as u64);
        let mut regions: [LineRegion; 2] = Default::default();
        let mut region_count = 0;
        if let Some(newline) = last_newline {
            regions[0] = LineRegion {
                lines: line_from..newline + 1,
                search_from: line_from,
            };
            region_count = 1;
            self.remember_lines(line_from, newline);
            self.line_start = newline + 1;
        }
        if end > self.line_start {
            let lines_from = self.line_start.max(base).max(end.saturating_sub(LINE_CAP as u64));
            regions[region_count] = LineRegion {
                lines: lines_from..end,
                search_from: lines_from.max(new_start.saturating_sub(INCOMPLETE_LOOKBACK)),
            };
            region_count += 1;
        }
        let regions = &regions[..region_count];
        let search_from = regions
            .iter()
            .map(|region| region.search_from)
            .fold(literal_from, u64::min);
        let text = Text {
            bytes: &self.text,
            base,
        };
        let searched = (!self.plain).then(|| {
            self.watches.feed_hits(
                text,
                FeedSpan {
                    from: search_from,
                    literal_from,
                    after: new_start,
                },
                regions,
                &mut self.watch_starts,
                &mut watch_hits,
            )
        });
        if searched.flatten().is_none() {
            self.watches
                .literal_hits(text, literal_from, new_start, false, &mut watch_hits);
            for region in regions {
                self.watches.regex_hits(
                    text,
                    region.lines.clone(),
                    region.search_from,
                    &mut self.watch_starts,
                    false,
                    &mut watch_hits,
                );
            }
        }
        if let Some(active) = &mut self.expect {
            for region in regions {
                // A regex match in these lines cannot end before one already found in earlier
                // text.
                if expect_hits.iter().all(|hit| hit.end > region.lines.start) {
                    active.set.regex_hits(
                        text,
                        region.lines.clone(),
                        region.search_from,
                        &mut active.starts,
                        true,
                        &mut expect_hits,
                    );
                }
            }
        }

        watch_hits.sort_by_key(|hit| (hit.end, hit.index));
        let mut expected = earliest(&expect_hits).map(|hit| {
            self.expect = None;
            (hit.end, self.take_expected(hit))
        });
        let mut events = Vec::with_capacity(watch_hits.len() + usize::from(expected.is_some()));
        let lines = if self.plain {
            watch_hits.iter().map(|hit| self.line_of(hit).into()).collect()
        } else if watch_hits.is_empty() {
            Vec::new()
        } else {
            self.event_lines(&watch_hits)
        };
        for (hit, line) in watch_hits.iter().zip(lines) {
            if expected.as_ref().is_some_and(|(end, _)| *end < hit.end) {
                events.extend(expected.take().map(|(_, found)| Event::Expected(found)));
            }
            events.push(Event::Watch {
                index: hit.index,
                line,
            });
        }
        events.extend(expected.map(|(_, found)| Event::Expected(found)));
        self.trim();
        watch_hits.clear();
        expect_hits.clear();
        // A feed full of hits must not leave its memory held for the matcher's life.
        watch_hits.shrink_to(KEPT_HITS);
        self.watch_hits = watch_hits;
        self.expect_hits = expect_hits;
        events
    }

    /// The last complete console lines (up to [`RECENT_LINES`]) and then the incomplete one if
    /// it is not empty; ANSI stripped, lossy UTF-8, each cut to [`SHOWN_LINE_CAP`] bytes.
    pub fn recent_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.remembered_lines().map(shown).collect();
        let end = self.end();
        let start = self.line_start.max(self.text_base);
        if end > start {
            lines.push(shown(&self.text[(start - self.text_base) as usize..]));
        }
        lines
    }

    /// Counts for a "looks like a baud-rate mismatch" diagnosis.
    pub fn byte_stats(&self) -> ByteStats {
        self.counter.stats()
    }

    /// Current buffer sizes; for tests that check memory stays bounded.
    pub fn buffer_sizes(&self) -> BufferSizes {
        let end = self.end();
        BufferSizes {
            text: self.text.len(),
            text_capacity: self.text.capacity(),
            retained: (end - self.floor) as usize,
            incomplete_line: (end - self.line_start.max(self.text_base)) as usize,
            recent_lines: self.remembered_lines().count(),
            recent_bytes: self.remembered_lines().map(<[u8]>::len).sum(),
        }
    }

    fn clean_text(&self) -> Text<'_> {
        Text {
            bytes: &self.text,
            base: self.text_base,
        }
    }

    /// Stream offset (in clean bytes) just past the text seen so far.
    fn end(&self) -> u64 {
        self.text_base + self.text.len() as u64
    }

    /// Builds the event for an expectation match and makes the text after it the retained text.
    fn take_expected(&mut self, hit: Hit) -> Expected {
        let base = self.text_base;
        let at = |offset: u64| (offset - base) as usize;
        // The text since the floor may include this feed's bytes beyond the retained cap.
        let before_from = self
            .floor
            .max(base)
            .max(hit.start.saturating_sub(RETAINED_CAP as u64))
            .min(hit.start);
        let expected = Expected {
            index: hit.index,
            matched: lossy(&self.text[at(hit.start)..at(hit.end)]),
            before: lossy(&self.text[at(before_from)..at(hit.start)]),
            line: self.line_of(&hit),
        };
        self.floor = hit.end;
        let search_back = hit.end.saturating_sub(LINE_CAP as u64).max(base);
        self.floor_line_start = memrchr(b'\n', &self.text[at(search_back)..at(hit.end)])
            .map_or(search_back, |i| search_back + i as u64 + 1);
        expected
    }

    /// The line holding the last byte of a match, up to the next newline or the present.
    fn line_of(&self, hit: &Hit) -> String {
        let mut line = String::new();
        let window = self.line_window(hit);
        window.write(&self.text[window.bytes.clone()], &mut line);
        line
    }

    /// The part of the line holding the last byte of `hit` that its event shows.
    fn line_window(&self, hit: &Hit) -> LineWindow {
        let base = self.text_base;
        let (start, end) = ((hit.start - base) as usize, (hit.end - base) as usize);
        // A literal may end in newlines; its line is the one its last visible byte is on.
        let anchor = last_visible_byte(&self.text[start..end]).map_or(start, |i| start + i);
        let back = anchor.saturating_sub(LINE_CAP);
        let start = memrchr(b'\n', &self.text[back..anchor]).map_or(back, |i| back + i + 1);
        let end = memchr(b'\n', &self.text[anchor..]).map_or_else(
            // A line still arriving may end in the first bytes of a character: leave them for
            // the next event, or the line would show U+FFFD where the character will be.
            || self.text.len() - incomplete_char_len(&self.text[anchor + 1..]),
            |i| anchor + i,
        );
        // Keep the part of a long line around the end of the match.
        let window_end = end.min((anchor + 1).max(start + SHOWN_LINE_CAP));
        let window_start = window_end.saturating_sub(SHOWN_LINE_CAP).max(start);
        LineWindow {
            bytes: window_start..window_end,
            cut_before: window_start > start,
            cut_after: window_end < end,
        }
    }

    /// The lines of the watch events for `hits`, written into one shared text: one
    /// allocation per feed rather than one per event, and one UTF-8 check for them all.
    fn event_lines(&mut self, hits: &[Hit]) -> Vec<EventLine> {
        let mut windows = std::mem::take(&mut self.line_windows);
        let mut text = std::mem::take(&mut self.line_text);
        windows.extend(hits.iter().map(|hit| self.line_window(hit)));
        let from = windows.iter().map(|w| w.bytes.start).min().unwrap_or(0);
        let to = windows.iter().map(|w| w.bytes.end).max().unwrap_or(0);
        let valid = std::str::from_utf8(&self.text[from..to]).ok();
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::with_capacity(windows.len());
        for (i, window) in windows.iter().enumerate() {
            // Hits on one line show the same window.
            if i > 0 && windows[i - 1] == *window {
                let same = ranges[i - 1].clone();
                ranges.push(same);
                continue;
            }
            let at = text.len();
            let (start, end) = (window.bytes.start - from, window.bytes.end - from);
            match valid.filter(|v| v.is_char_boundary(start) && v.is_char_boundary(end)) {
                Some(valid) => window.write_str(&valid[start..end], &mut text),
                None => window.write(&self.text[window.bytes.clone()], &mut text),
            }
            ranges.push(at..text.len());
        }
        let shared: std::sync::Arc<str> = text.as_str().into();
        let lines = ranges
            .into_iter()
            .map(|range| EventLine::shared(shared.clone(), range))
            .collect();
        windows.clear();
        text.clear();
        // A feed full of events must not leave its memory held for the matcher's life.
        windows.shrink_to(KEPT_HITS);
        text.shrink_to(KEPT_HITS * 64);
        self.line_windows = windows;
        self.line_text = text;
        lines
    }

    /// Remembers the last complete lines ending at the newline at `newline`.
    fn remember_lines(&mut self, line_from: u64, newline: u64) {
        if let Some((from, to)) = self.pending_lines.take() {
            let (first, last) = (
                (line_from - self.text_base) as usize,
                (newline - self.text_base) as usize,
            );
            // The new lines push the pending ones out unless they are fewer than RECENT_LINES.
            // Newlines are counted a kilobyte at a time from the end, a vector pass each,
            // rather than found one by one.
            let lines = &self.text[first..last];
            let (mut newlines, mut counted_from) = (0, lines.len());
            while counted_from > 0 && newlines < RECENT_LINES - 1 {
                let piece = counted_from.saturating_sub(1024);
                newlines += memchr::memchr_iter(b'\n', &lines[piece..counted_from]).count();
                counted_from = piece;
            }
            let replaced = newlines >= RECENT_LINES - 1;
            if !replaced {
                self.copy_lines(from, to);
            }
        }
        self.pending_lines = Some((line_from, newline));
    }

    /// The last [`RECENT_LINES`] complete lines: the copied ones, then the pending ones.
    fn remembered_lines(&self) -> impl Iterator<Item = &[u8]> {
        let pending: Vec<&[u8]> = self
            .pending_lines
            .map(|(from, to)| {
                let lines = self.last_lines(from, to);
                lines.into_iter().map(|line| &self.text[line]).collect()
            })
            .unwrap_or_default();
        let copied = self.recent.len().min(RECENT_LINES - pending.len());
        self.recent
            .iter()
            .skip(self.recent.len() - copied)
            .map(Vec::as_slice)
            .chain(pending)
    }

    /// The last [`RECENT_LINES`] lines of the text from `line_from` to the newline at
    /// `newline`, oldest first, each cut to the bytes [`shown`] needs.
    fn last_lines(&self, line_from: u64, newline: u64) -> Vec<std::ops::Range<usize>> {
        let base = self.text_base;
        let first = (line_from - base) as usize;
        let mut line_end = (newline - base) as usize;
        let mut lines = Vec::with_capacity(RECENT_LINES);
        loop {
            let line_start = memrchr(b'\n', &self.text[first..line_end]).map_or(first, |i| first + i + 1);
            // `shown` keeps the last SHOWN_LINE_CAP bytes after skipping at most three
            // continuation bytes, so this much of the tail renders exactly like the whole line.
            lines.push(line_start.max(line_end.saturating_sub(SHOWN_LINE_CAP + 4))..line_end);
            if lines.len() == RECENT_LINES || line_start == first {
                break;
            }
            line_end = line_start - 1;
        }
        lines.reverse();
        lines
    }

    /// Copies the last complete lines ending at the newline at `newline` into `recent`.
    fn copy_lines(&mut self, line_from: u64, newline: u64) {
        for line in self.last_lines(line_from, newline) {
            // Reuse the oldest line's allocation.
            let mut kept = if self.recent.len() == RECENT_LINES {
                self.recent.pop_front().unwrap_or_default()
            } else {
                Vec::new()
            };
            kept.clear();
            kept.extend_from_slice(&self.text[line]);
            self.recent.push_back(kept);
        }
    }

    /// Drops clean text nothing can need any more, keeping at most [`RETAINED_CAP`] bytes.
    fn trim(&mut self) {
        let end = self.end();
        let keep_from = self
            .floor_line_start
            .min(self.line_start.max(end.saturating_sub(LINE_CAP as u64)))
            .min(end.saturating_sub(self.watches.overlap()))
            .max(end.saturating_sub(RETAINED_CAP as u64))
            .max(self.text_base);
        self.floor = self.floor.max(keep_from);
        self.floor_line_start = self.floor_line_start.max(keep_from);
        self.dead_to = keep_from;
        // Moving the live bytes only once as many dead ones have piled up keeps the copying to
        // a small constant per byte; `make_room` moves them sooner rather than grow the buffer.
        let dead = (keep_from - self.text_base) as usize;
        if dead > 0 && dead >= self.text.len() - dead {
            self.drop_dead_text();
        }
        let roomy = 4 * RETAINED_CAP;
        if self.text.capacity() > roomy {
            self.text.shrink_to(roomy / 2);
        }
    }

    /// Before `more` clean bytes arrive: drops the dead text if the buffer would otherwise
    /// grow and at least half as many dead bytes as live ones have piled up.
    fn make_room(&mut self, more: usize) {
        let dead = (self.dead_to - self.text_base) as usize;
        let full = self.text.len() + more > self.text.capacity();
        if full && dead > 0 && dead * 2 >= self.text.len() - dead {
            self.drop_dead_text();
        }
    }

    /// Drops the text before `dead_to`, which [`Matcher::trim`] found nothing needs.
    fn drop_dead_text(&mut self) {
        if let Some((from, to)) = self.pending_lines.take() {
            self.copy_lines(from, to);
        }
        let dead = (self.dead_to - self.text_base) as usize;
        self.text.drain(..dead);
        self.text_base = self.dead_to;
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("watches", &self.watches)
            .field("expect", &self.expect)
            .field("buffers", &self.buffer_sizes())
            .finish_non_exhaustive()
    }
}

/// Index of the last byte that is not a newline.
fn last_visible_byte(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b != b'\n')
}

/// The match that ends first; at the same end, the pattern listed first.
fn earliest(hits: &[Hit]) -> Option<Hit> {
    hits.iter().copied().min_by_key(|hit| (hit.end, hit.index))
}

/// Lossy text of a line for people, cut to its last [`SHOWN_LINE_CAP`] bytes on a character
/// boundary.
/// How many bytes at the end of `bytes` begin a UTF-8 character that has not fully arrived.
fn incomplete_char_len(bytes: &[u8]) -> usize {
    let from = bytes.len().saturating_sub(3);
    let Some(lead) = bytes[from..].iter().rposition(|b| b & 0xc0 != 0x80) else {
        return 0;
    };
    let tail = &bytes[from + lead..];
    match std::str::from_utf8(tail) {
        Err(e) if e.error_len().is_none() => tail.len() - e.valid_up_to(),
        _ => 0,
    }
}

fn shown(line: &[u8]) -> String {
    if line.len() <= SHOWN_LINE_CAP {
        return lossy(line);
    }
    let mut cut = line.len() - SHOWN_LINE_CAP;
    // Skip continuation bytes rather than render half a character.
    while cut < line.len() && line[cut] & 0xc0 == 0x80 && cut < line.len() - SHOWN_LINE_CAP + 3 {
        cut += 1;
    }
    format!("…{}", lossy(&line[cut..]))
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD. Console text is nearly always valid, and
/// checking that first is several times faster than the replacing decoder.
fn lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The fast paths of a feed give exactly what the plain ones give: the same events, lines
/// byte for byte, and recent lines.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::ansi::tests::cut;
    use proptest::prelude::*;

    /// Watches whose literals overlap each other and the regexes' literals, regexes with
    /// prefix and suffix literals and one with none, and literals across lines.
    fn watches() -> Vec<Pattern> {
        let literal = |text: &str| Pattern::literal(text);
        let regex = |source: &str| Pattern::regex(source).expect("valid regex");
        vec![
            literal("Kernel panic"),
            literal("end Kernel panic"),
            literal("Failed to mount"),
            literal("login: "),
            literal("abab"),
            literal("ok\nab"),
            literal("login: "),
            regex(r"^U-Boot 20\d\d\.\d\d"),
            regex(r"^[a-z0-9-]+ login: $"),
            regex(r"Failed to start .+\.service"),
            regex(r"(?i)ok!"),
            regex(r"bab[a-c]+"),
            regex(r"\d+ ok"),
            regex(r"(?-m)^go$"),
        ]
    }

    /// Console pieces: what the patterns look for and parts of it, line ends, colour codes,
    /// characters of several bytes and invalid ones, and runs that make lines longer than an
    /// event shows.
    const PIECES: &[&[u8]] = &[
        b"U-Boot 2024.01",
        b"U-Boot 20",
        b"nixos login: ",
        b" login: ",
        b"Failed to start a.service",
        b"Failed to mount",
        b"Failed to ",
        b"end Kernel panic",
        b"Kernel panic",
        b"OK!",
        b"ok",
        b"ababab",
        b"babc",
        b"12 ok",
        b"go",
        b"\r\n",
        b"\n",
        b"\n",
        b"\x1b[1;32m",
        b"\xc3\xa9",
        b"\xff",
        b"\xe2\x80\xa6",
        b"\xf0\x9f\xa6\x80",
        b"\xf0\x9f",
        b" ",
        b"a",
        b"1",
        b"LONG",
    ];

    fn console() -> impl Strategy<Value = Vec<u8>> {
        let long = [b"x".repeat(500), "\u{e9}".repeat(151).into_bytes()].concat();
        prop::collection::vec(prop::sample::select(PIECES), 0..150).prop_map(move |pieces| {
            pieces
                .iter()
                .flat_map(|&piece| if piece == b"LONG" { &long[..] } else { piece })
                .copied()
                .collect()
        })
    }

    /// Expectation sets a run installs in turn, each once the previous one matched.
    fn steps() -> Vec<Vec<Pattern>> {
        vec![
            vec![Pattern::literal("login: ")],
            vec![Pattern::regex(r"\d+ ok").expect("valid regex")],
            vec![Pattern::literal("U-Boot")],
        ]
    }

    /// The events of feeding `chunks` to `matcher`, installing the steps as they match; and
    /// the recent lines at the end.
    fn run(mut matcher: Matcher, chunks: &[Vec<u8>], expect: bool) -> (Vec<Event>, Vec<String>) {
        let steps = steps();
        let mut step = 0;
        let mut events = Vec::new();
        let arm = |matcher: &mut Matcher, step: &mut usize, events: &mut Vec<Event>| {
            while expect && *step < steps.len() {
                match matcher.expect(&steps[*step]) {
                    Some(found) => {
                        events.push(Event::Expected(found));
                        *step += 1;
                    }
                    None => break,
                }
            }
        };
        arm(&mut matcher, &mut step, &mut events);
        for chunk in chunks {
            let found = matcher.feed(chunk);
            let matched = found.iter().any(|e| matches!(e, Event::Expected(_)));
            events.extend(found);
            if matched {
                step += 1;
                arm(&mut matcher, &mut step, &mut events);
            }
        }
        (events, matcher.recent_lines())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]
        #[test]
        fn fast_feeds_give_what_plain_feeds_give(
            bytes in console(),
            cuts in prop::collection::vec(0..2000usize, 0..16),
            expect in any::<bool>(),
        ) {
            let chunks = cut(&bytes, &cuts);
            let fast = run(Matcher::new(watches()), &chunks, expect);
            let plain = run(Matcher::plain(watches()), &chunks, expect);
            prop_assert_eq!(fast, plain);
        }
    }
}
