//! A group of [`Pattern`]s compiled for searching a growing text: literals with Aho-Corasick,
//! regexes screened over many lines at once and confirmed within their line.

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use memchr::{memchr, memrchr};
use regex::bytes::Regex;
use std::ops::Range;

use super::Pattern;

/// Lines longer than this are matched on their last `LINE_CAP` bytes, so one endless line
/// costs bounded work per byte.
pub(crate) const LINE_CAP: usize = 64 * 1024;

/// A stretch of the clean stream: `bytes[0]` is at stream offset `base`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Text<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) base: u64,
}

/// One match in the clean stream, in absolute stream offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Index of the pattern in the list the set was built from.
    pub(crate) index: usize,
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The literals of a set, in two automata over the same patterns.
///
/// Results use overlapping semantics: every (pattern, end position) pair is found exactly
/// once however the text is split, which is what makes results independent of chunk
/// boundaries. A leftmost search is several times faster (it can use a vectorised prefilter),
/// and every overlapping match starts inside a match the leftmost search reports, so the
/// overlapping search only runs in small windows around those.
#[derive(Debug)]
struct Literals {
    leftmost: AhoCorasick,
    overlapping: AhoCorasick,
    /// Caller index of each automaton pattern id.
    index: Vec<usize>,
    /// Per pattern id: no match of any pattern can start inside a match of this one, so its
    /// leftmost matches need no overlapping search.
    alone: Vec<bool>,
    longest: usize,
}

/// One regex of a set.
#[derive(Debug)]
struct LineRegex {
    /// Index of the pattern in the list the set was built from.
    index: usize,
    regex: Regex,
    /// The regex with `^`/`$` at line boundaries, searched over many lines in one call to find
    /// lines worth confirming; `None` when that form would mean something else.
    screen: Option<Regex>,
}

/// Patterns compiled once and searched many times. Empty literals never match.
#[derive(Debug)]
pub(crate) struct PatternSet {
    literals: Option<Literals>,
    regexes: Vec<LineRegex>,
}

impl PatternSet {
    pub(crate) fn new(patterns: &[Pattern]) -> Self {
        let mut literals = Vec::new();
        let mut index = Vec::new();
        let mut regexes = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match pattern {
                Pattern::Literal(text) if text.is_empty() => {}
                Pattern::Literal(text) => {
                    literals.push(text.as_bytes());
                    index.push(i);
                }
                Pattern::Regex(regex) => regexes.push(LineRegex {
                    index: i,
                    regex: regex.clone(),
                    screen: can_screen(regex.as_str())
                        .then(|| Regex::new(&format!("(?m:{})", regex.as_str())).ok())
                        .flatten(),
                }),
            }
        }
        let build = |kind, prefilter| {
            AhoCorasick::builder()
                .match_kind(kind)
                .kind(Some(AhoCorasickKind::DFA))
                .prefilter(prefilter)
                .build(&literals)
                .expect("console pattern sets are far below Aho-Corasick's state limit")
        };
        let literals = (!literals.is_empty()).then(|| Literals {
            leftmost: build(MatchKind::LeftmostFirst, true),
            // Its windows are a few dozen bytes: a prefilter would only add set-up per window.
            overlapping: build(MatchKind::Standard, false),
            longest: literals.iter().map(|l| l.len()).max().unwrap_or(0),
            alone: (0..literals.len())
                .map(|p| !can_be_overlapped(&literals, p))
                .collect(),
            index,
        });
        Self { literals, regexes }
    }

    /// How many bytes before new text a literal match ending in the new text may start.
    pub(crate) fn overlap(&self) -> u64 {
        self.literals
            .as_ref()
            .map_or(0, |l| l.longest.saturating_sub(1) as u64)
    }

    pub(crate) fn regex_count(&self) -> usize {
        self.regexes.len()
    }

    /// Appends literal matches in the text from offset `from` that end after `after`. With
    /// `first_only`, may stop once no later match can end before one already found.
    pub(crate) fn literal_hits(
        &self,
        text: Text<'_>,
        from: u64,
        after: u64,
        first_only: bool,
        hits: &mut Vec<Hit>,
    ) {
        let Some(literals) = &self.literals else {
            return;
        };
        let haystack = &text.bytes[(from - text.base) as usize..];
        let mut earliest_end = u64::MAX;
        for leftmost in literals.leftmost.find_iter(haystack) {
            if first_only && from + leftmost.start() as u64 >= earliest_end {
                break;
            }
            if literals.alone[leftmost.pattern().as_usize()] {
                let end = from + leftmost.end() as u64;
                if end > after {
                    earliest_end = earliest_end.min(end);
                    hits.push(Hit {
                        index: literals.index[leftmost.pattern().as_usize()],
                        start: from + leftmost.start() as u64,
                        end,
                    });
                }
                continue;
            }
            // Matches starting inside this leftmost match end by `window_end`.
            let window_end = haystack.len().min(leftmost.end() - 1 + literals.longest);
            if from + window_end as u64 <= after {
                continue;
            }
            let window = Input::new(haystack).span(leftmost.start()..window_end);
            for found in literals.overlapping.find_overlapping_iter(window) {
                let end = from + found.end() as u64;
                // A match starting further on belongs to a later leftmost match's window.
                if found.start() >= leftmost.end() || end <= after {
                    continue;
                }
                earliest_end = earliest_end.min(end);
                hits.push(Hit {
                    index: literals.index[found.pattern().as_usize()],
                    start: from + found.start() as u64,
                    end,
                });
            }
        }
    }

    /// Appends regex matches within the lines of `text` in `lines`, searching each line from
    /// the latest of its start, `search_from` and the slot's entry in `starts`, which is moved
    /// past each match so no text matches twice. `lines.start` must be a line start (or where
    /// the text's memory of the line begins); the last line may be incomplete. With
    /// `first_line_only`, lines after the first line holding a match are not searched.
    pub(crate) fn regex_hits(
        &self,
        text: Text<'_>,
        lines: Range<u64>,
        search_from: u64,
        starts: &mut [u64],
        first_line_only: bool,
        hits: &mut Vec<Hit>,
    ) {
        if self.regexes.is_empty() || lines.end <= lines.start {
            return;
        }
        let Text { bytes: text, base } = text;
        let region = Region {
            text,
            base,
            lines_from: (lines.start - base) as usize,
            end: (lines.end - base) as usize,
            search_from: (search_from.max(lines.start) - base) as usize,
        };
        let mut limit = region.end;
        for (slot, line_regex) in self.regexes.iter().enumerate() {
            let Some(screen) = &line_regex.screen else {
                continue;
            };
            let mut at = region.search_from;
            let mut line_floor = region.lines_from;
            while at < limit {
                let Some(candidate) = screen.find_at(&text[..limit], at) else {
                    break;
                };
                let c = candidate.start();
                let line_start =
                    memrchr(b'\n', &text[line_floor..c]).map_or(line_floor, |i| line_floor + i + 1);
                let line_end = memchr(b'\n', &text[c..region.end]).map_or(region.end, |i| c + i);
                let found = self.verify(slot, &region, line_start..line_end, starts, first_line_only, hits);
                if found && first_line_only {
                    limit = line_end;
                    break;
                }
                at = line_end + 1;
                line_floor = at;
            }
        }
        for (slot, line_regex) in self.regexes.iter().enumerate() {
            if line_regex.screen.is_some() {
                continue;
            }
            let mut line_start = region.lines_from;
            while line_start < limit {
                let line_end =
                    memchr(b'\n', &text[line_start..region.end]).map_or(region.end, |i| line_start + i);
                if line_end >= region.search_from {
                    let found =
                        self.verify(slot, &region, line_start..line_end, starts, first_line_only, hits);
                    if found && first_line_only {
                        limit = line_end;
                        break;
                    }
                }
                line_start = line_end + 1;
            }
        }
    }

    /// Runs the regex of `slot` on one line; returns whether it matched.
    fn verify(
        &self,
        slot: usize,
        region: &Region<'_>,
        line: Range<usize>,
        starts: &mut [u64],
        first_only: bool,
        hits: &mut Vec<Hit>,
    ) -> bool {
        let line_start = line.start.max(line.end.saturating_sub(LINE_CAP));
        let haystack = &region.text[line_start..line.end];
        let line_offset = region.base + line_start as u64;
        let LineRegex { index, regex, .. } = &self.regexes[slot];
        let floor = (starts[slot].saturating_sub(region.base) as usize).max(region.search_from);
        let mut from = floor.max(line_start) - line_start;
        let mut found = false;
        while from <= haystack.len() {
            let Some(m) = regex.find_at(haystack, from) else {
                break;
            };
            if m.is_empty() {
                // An empty match says nothing about the console; look past it.
                from = m.end() + 1;
                continue;
            }
            hits.push(Hit {
                index: *index,
                start: line_offset + m.start() as u64,
                end: line_offset + m.end() as u64,
            });
            starts[slot] = line_offset + m.end() as u64;
            found = true;
            if first_only {
                break;
            }
            from = m.end();
        }
        found
    }
}

/// Whether a match of some pattern can start inside a match of `patterns[p]`: another pattern
/// (or the same one, shifted) agrees with `patterns[p]` from some offset on, for as long as both
/// last.
fn can_be_overlapped(patterns: &[&[u8]], p: usize) -> bool {
    let pattern = patterns[p];
    patterns.iter().enumerate().any(|(q, other)| {
        (0..pattern.len()).any(|offset| {
            let shared = (pattern.len() - offset).min(other.len());
            (q != p || offset != 0) && pattern[offset..offset + shared] == other[..shared]
        })
    })
}

/// The text being searched, in offsets relative to the start of the text buffer.
struct Region<'t> {
    text: &'t [u8],
    base: u64,
    lines_from: usize,
    end: usize,
    search_from: usize,
}

/// Whether a regex can be screened by its multi-line form: `\A`, `\z` and a cleared `m` flag
/// would mean something else in a multi-line haystack, so such regexes are run line by line.
fn can_screen(source: &str) -> bool {
    if source.contains("\\A") || source.contains("\\z") {
        return false;
    }
    let bytes = source.as_bytes();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&bytes[at..], b"(?") {
        let flags_start = at + found + 2;
        let flags: Vec<u8> = bytes[flags_start..]
            .iter()
            .copied()
            .take_while(|b| b.is_ascii_alphabetic() || *b == b'-')
            .collect();
        if let Some(minus) = flags.iter().position(|&b| b == b'-') {
            if flags[minus..].contains(&b'm') {
                return false;
            }
        }
        at = flags_start;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_hits_in(patterns: &[Pattern], text: &str) -> Vec<(usize, String)> {
        let set = PatternSet::new(patterns);
        let mut starts = vec![0; set.regex_count()];
        let mut hits = Vec::new();
        set.regex_hits(
            Text {
                bytes: text.as_bytes(),
                base: 0,
            },
            0..text.len() as u64,
            0,
            &mut starts,
            false,
            &mut hits,
        );
        hits.sort_by_key(|h| (h.end, h.index));
        hits.iter()
            .map(|h| (h.index, text[h.start as usize..h.end as usize].to_owned()))
            .collect()
    }

    #[test]
    fn anchors_mean_line_start_and_end_for_screened_regexes() {
        let patterns = [
            Pattern::regex(r"^=> $").unwrap(),
            Pattern::regex(r"^[a-z]+ login: $").unwrap(),
        ];
        let hits = regex_hits_in(&patterns, "x=> \n=> \nnixos login: \nnixos login: root\n");
        assert_eq!(hits, [(0, "=> ".to_owned()), (1, "nixos login: ".to_owned())]);
    }

    #[test]
    fn regexes_that_cannot_be_screened_still_match_every_line() {
        let patterns = [
            Pattern::regex(r"\Aready\z").unwrap(),
            Pattern::regex(r"(?-m)^go$").unwrap(),
        ];
        let hits = regex_hits_in(&patterns, "not ready\nready\ngo\n");
        assert_eq!(hits, [(0, "ready".to_owned()), (1, "go".to_owned())]);
    }

    #[test]
    fn a_regex_never_matches_across_a_newline() {
        let patterns = [
            Pattern::regex(r"a\s+b").unwrap(),
            Pattern::regex(r"c[^x]*d").unwrap(),
        ];
        assert_eq!(
            regex_hits_in(&patterns, "a\nb c\nd\na  b\n"),
            [(0, "a  b".to_owned())]
        );
    }

    #[test]
    fn regexes_with_the_same_group_names_are_searched_independently() {
        let patterns = [
            Pattern::regex(r"(?P<n>\d+) ok").unwrap(),
            Pattern::regex(r"(?P<n>\d+) bad").unwrap(),
        ];
        let hits = regex_hits_in(&patterns, "1 ok\n2 bad\n");
        assert_eq!(hits, [(0, "1 ok".to_owned()), (1, "2 bad".to_owned())]);
    }

    #[test]
    fn empty_regex_matches_are_ignored() {
        let patterns = [Pattern::regex(r"x*").unwrap()];
        assert_eq!(regex_hits_in(&patterns, "ab\nxx\n"), [(0, "xx".to_owned())]);
    }

    #[test]
    fn overlapping_literals_are_each_found_once() {
        let set = PatternSet::new(&[
            Pattern::literal("abc"),
            Pattern::literal("bcd"),
            Pattern::literal(""),
        ]);
        let mut hits = Vec::new();
        let text = Text {
            bytes: b"abcd",
            base: 0,
        };
        set.literal_hits(text, 0, 0, false, &mut hits);
        assert_eq!(
            hits,
            [
                Hit {
                    index: 0,
                    start: 0,
                    end: 3
                },
                Hit {
                    index: 1,
                    start: 1,
                    end: 4
                }
            ]
        );
    }

    #[test]
    fn literals_that_can_share_text_are_told_apart_from_those_that_cannot() {
        let patterns: [&[u8]; 5] = [b"Kernel panic", b"end Kernel panic", b"abab", b"login: ", b"ogre"];
        let overlapped: Vec<bool> = (0..patterns.len())
            .map(|p| can_be_overlapped(&patterns, p))
            .collect();
        // "end Kernel panic" holds "Kernel panic"; "abab" overlaps itself shifted by two; "ogre"
        // ends in the "e" that starts "end Kernel panic"; nothing can start inside "login: ".
        assert_eq!(overlapped, [false, true, true, false, true]);
    }

    #[test]
    fn flag_groups_clearing_multi_line_are_not_screened() {
        assert!(can_screen(r"(?i)login: $"));
        assert!(can_screen(r"(?P<x>a)-m"));
        assert!(!can_screen(r"(?i-m)^x"));
        assert!(!can_screen(r"(?-sm:^x)"));
        assert!(!can_screen(r"\Ax"));
    }
}
