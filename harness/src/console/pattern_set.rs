//! A group of [`Pattern`]s compiled for searching a growing text: literals with Aho-Corasick,
//! regexes screened over many lines at once and confirmed within their line.

use memchr::{memchr, memrchr};
use regex::bytes::Regex;
use std::ops::Range;

use super::literal_search::LiteralSearch;
use super::required_literals::required_literals;
use super::Pattern;

/// Lines longer than this are matched on their last `LINE_CAP` bytes, so one endless line
/// costs bounded work per byte.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// Candidate offsets per regex whose room is kept from one feed to the next.
const KEPT_CANDIDATES: usize = 1024;

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

/// The literal patterns of a set.
#[derive(Debug)]
struct Literals {
    search: LiteralSearch,
    /// Caller index of each literal.
    index: Vec<usize>,
}

/// The literals the prefiltered regexes of a set need, in one search.
#[derive(Debug)]
struct RegexLiterals {
    search: LiteralSearch,
    /// Per literal: the regex slots that need it.
    needed_by: Vec<Vec<usize>>,
}

/// One regex of a set.
#[derive(Debug)]
struct LineRegex {
    /// Index of the pattern in the list the set was built from.
    index: usize,
    regex: Regex,
    /// The regex with `^`/`$` at line boundaries, searched over many lines in one call to find
    /// lines worth confirming; `None` when that form would mean something else. Unused when
    /// `prefiltered`.
    screen: Option<Regex>,
    /// Whether the set's [`RegexLiterals`] hold literals every match of this regex contains,
    /// so only lines holding one of them are searched.
    prefiltered: bool,
}

/// The set's literals and its regexes' literals in one search, so a feed's bytes are scanned
/// once for both: ids below `watched` are the set's literals in [`Literals`] order, the rest
/// the [`RegexLiterals`] in theirs.
#[derive(Debug)]
struct CombinedLiterals {
    search: LiteralSearch,
    watched: usize,
}

/// A stretch of lines to search for regex matches in a [`PatternSet::feed_hits`]: the lines
/// from `lines.start` (a line start) to `lines.end`, searched from `search_from` on.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineRegion {
    pub(crate) lines: Range<u64>,
    pub(crate) search_from: u64,
}

/// Where one feed's literal search runs, in stream offsets: the text is searched from `from`;
/// a watched literal's match counts when it starts at `literal_from` or later and ends after
/// `after`, the feed's first new byte. `from` is at or before `literal_from` and the regions'
/// `search_from`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FeedSpan {
    pub(crate) from: u64,
    pub(crate) literal_from: u64,
    pub(crate) after: u64,
}

/// Patterns compiled once and searched many times. Empty literals never match.
#[derive(Debug)]
pub(crate) struct PatternSet {
    literals: Option<Literals>,
    regexes: Vec<LineRegex>,
    regex_literals: Option<RegexLiterals>,
    /// Built for sets searched feed after feed (the watches), not for one-shot sets.
    combined: Option<CombinedLiterals>,
    /// Per regex slot: where its literals start in the text of one [`PatternSet::feed_hits`];
    /// kept empty between calls so the room is reused.
    candidates: Vec<Vec<usize>>,
}

impl PatternSet {
    pub(crate) fn new(patterns: &[Pattern]) -> Self {
        Self::build(patterns, true)
    }

    /// A set also prepared for [`PatternSet::feed_hits`], which finds its literals and its
    /// regexes' literals in one pass.
    pub(crate) fn for_feeds(patterns: &[Pattern]) -> Self {
        let mut set = Self::build(patterns, true);
        let watched: Vec<&[u8]> = set.literals.iter().flat_map(|l| l.search.literals()).collect();
        let needed = set.regex_literals.iter().flat_map(|r| r.search.literals());
        let all: Vec<&[u8]> = watched.iter().copied().chain(needed).collect();
        set.combined = LiteralSearch::new(&all).map(|search| CombinedLiterals {
            search,
            watched: watched.len(),
        });
        set
    }

    /// A set whose regexes are screened without their literals: the reference the literal
    /// prefilter is tested against.
    #[cfg(test)]
    fn without_regex_prefilter(patterns: &[Pattern]) -> Self {
        Self::build(patterns, false)
    }

    fn build(patterns: &[Pattern], prefilter_regexes: bool) -> Self {
        let mut literals = Vec::new();
        let mut index = Vec::new();
        let mut regexes = Vec::new();
        let mut needed: Vec<Vec<u8>> = Vec::new();
        let mut needed_by: Vec<Vec<usize>> = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match pattern {
                Pattern::Literal(text) if text.is_empty() => {}
                Pattern::Literal(text) => {
                    literals.push(text.as_bytes());
                    index.push(i);
                }
                Pattern::Regex(regex) => {
                    let slot = regexes.len();
                    let required = prefilter_regexes
                        .then(|| required_literals(regex.as_str()))
                        .flatten();
                    for literal in required.iter().flatten() {
                        let at = needed.iter().position(|n| n == literal).unwrap_or_else(|| {
                            needed.push(literal.clone());
                            needed_by.push(Vec::new());
                            needed.len() - 1
                        });
                        needed_by[at].push(slot);
                    }
                    regexes.push(LineRegex {
                        index: i,
                        regex: regex.clone(),
                        screen: can_screen(regex.as_str())
                            .then(|| Regex::new(&format!("(?m:{})", regex.as_str())).ok())
                            .flatten(),
                        prefiltered: required.is_some(),
                    });
                }
            }
        }
        let needed: Vec<&[u8]> = needed.iter().map(Vec::as_slice).collect();
        Self {
            literals: LiteralSearch::new(&literals).map(|search| Literals { search, index }),
            candidates: vec![Vec::new(); regexes.len()],
            regexes,
            regex_literals: LiteralSearch::new(&needed).map(|search| RegexLiterals { search, needed_by }),
            combined: None,
        }
    }

    /// How many bytes before new text a literal match ending in the new text may start.
    pub(crate) fn overlap(&self) -> u64 {
        self.literals
            .as_ref()
            .map_or(0, |l| l.search.longest().saturating_sub(1) as u64)
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
        literals
            .search
            .for_each(haystack, (after - from) as usize, first_only, |found| {
                hits.push(Hit {
                    index: literals.index[found.pattern],
                    start: from + found.start as u64,
                    end: from + found.end as u64,
                });
            });
    }

    /// For a set made by [`PatternSet::for_feeds`] (else `None`, and nothing is searched): one
    /// literal search of the text from `span.from` appends what
    /// [`PatternSet::literal_hits`]`(text, span.literal_from, span.after, false, hits)` would,
    /// then the regex hits [`PatternSet::regex_hits`] would find in each region in turn (not
    /// first-line only), the prefiltered regexes' candidate lines taken from the same search.
    pub(crate) fn feed_hits(
        &mut self,
        text: Text<'_>,
        span: FeedSpan,
        regions: &[LineRegion],
        starts: &mut [u64],
        hits: &mut Vec<Hit>,
    ) -> Option<()> {
        let FeedSpan {
            from,
            literal_from,
            after,
        } = span;
        let combined = self.combined.as_ref()?;
        let mut candidates = std::mem::take(&mut self.candidates);
        let haystack = &text.bytes[(from - text.base) as usize..];
        let offset = (from - text.base) as usize;
        combined.search.for_each(haystack, 0, false, |found| {
            if found.pattern < combined.watched {
                if from + found.end as u64 > after && from + found.start as u64 >= literal_from {
                    let literals = self.literals.as_ref().expect("watched literals exist");
                    hits.push(Hit {
                        index: literals.index[found.pattern],
                        start: from + found.start as u64,
                        end: from + found.end as u64,
                    });
                }
            } else if let Some(prefilter) = &self.regex_literals {
                for &slot in &prefilter.needed_by[found.pattern - combined.watched] {
                    candidates[slot].push(offset + found.start);
                }
            }
        });
        for slot_candidates in &mut candidates {
            // Occurrences come out in order but for those inside one leftmost match.
            if !slot_candidates.is_sorted() {
                slot_candidates.sort_unstable();
            }
        }
        let mut out = RegexMatches {
            starts,
            first_line_only: false,
            hits,
        };
        for region in regions {
            let LineRegion { lines, search_from } = region;
            if lines.end <= lines.start {
                continue;
            }
            let region = Region {
                text: text.bytes,
                base: text.base,
                lines_from: (lines.start - text.base) as usize,
                end: (lines.end - text.base) as usize,
                search_from: (search_from.max(&lines.start) - text.base) as usize,
            };
            let mut limit = region.end;
            for (slot, line_regex) in self.regexes.iter().enumerate() {
                if line_regex.prefiltered {
                    self.candidate_hits(slot, &candidates[slot], &region, &mut limit, &mut out);
                }
            }
            self.unfiltered_hits(&region, &mut limit, &mut out);
        }
        for slot_candidates in &mut candidates {
            slot_candidates.clear();
            // A feed full of candidates must not leave its memory held for the set's life.
            slot_candidates.shrink_to(KEPT_CANDIDATES);
        }
        self.candidates = candidates;
        Some(())
    }

    /// The regex of prefiltered `slot` on each line of `region` before `limit` holding one of
    /// `candidates` (ascending start offsets of its literals in the text), each line once;
    /// with `first_line_only`, stops at the first line holding a match and lowers `limit` to
    /// its end.
    fn candidate_hits(
        &self,
        slot: usize,
        candidates: &[usize],
        region: &Region<'_>,
        limit: &mut usize,
        out: &mut RegexMatches<'_>,
    ) {
        let text = region.text;
        let first = candidates.partition_point(|&at| at < region.search_from);
        let mut line_floor = region.lines_from;
        for &at in &candidates[first..] {
            if at >= *limit {
                break;
            }
            if at < line_floor {
                continue;
            }
            let line_start = memrchr(b'\n', &text[line_floor..at]).map_or(line_floor, |i| line_floor + i + 1);
            let line_end = memchr(b'\n', &text[at..region.end]).map_or(region.end, |i| at + i);
            if self.verify(slot, region, line_start..line_end, out) && out.first_line_only {
                *limit = line_end;
                return;
            }
            line_floor = line_end + 1;
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
        let mut out = RegexMatches {
            starts,
            first_line_only,
            hits,
        };
        if let Some(prefilter) = &self.regex_literals {
            self.prefiltered_hits(prefilter, &region, &mut limit, &mut out);
        }
        self.unfiltered_hits(&region, &mut limit, &mut out);
    }

    /// [`PatternSet::regex_hits`] for the regexes not prefiltered: screened over many lines,
    /// or run line by line; searches lines before `limit`, lowered to the end of the first line
    /// holding a match with `first_line_only`.
    fn unfiltered_hits(&self, region: &Region<'_>, limit: &mut usize, out: &mut RegexMatches<'_>) {
        let text = region.text;
        for (slot, line_regex) in self.regexes.iter().enumerate() {
            let Some(screen) = line_regex.screen.as_ref().filter(|_| !line_regex.prefiltered) else {
                continue;
            };
            let mut at = region.search_from;
            let mut line_floor = region.lines_from;
            while at < *limit {
                let Some(candidate) = screen.find_at(&text[..*limit], at) else {
                    break;
                };
                let c = candidate.start();
                let line_start =
                    memrchr(b'\n', &text[line_floor..c]).map_or(line_floor, |i| line_floor + i + 1);
                let line_end = memchr(b'\n', &text[c..region.end]).map_or(region.end, |i| c + i);
                let found = self.verify(slot, region, line_start..line_end, out);
                if found && out.first_line_only {
                    *limit = line_end;
                    break;
                }
                at = line_end + 1;
                line_floor = at;
            }
        }
        for (slot, line_regex) in self.regexes.iter().enumerate() {
            if line_regex.screen.is_some() || line_regex.prefiltered {
                continue;
            }
            let mut line_start = region.lines_from;
            while line_start < *limit {
                let line_end =
                    memchr(b'\n', &text[line_start..region.end]).map_or(region.end, |i| line_start + i);
                if line_end >= region.search_from {
                    let found = self.verify(slot, region, line_start..line_end, out);
                    if found && out.first_line_only {
                        *limit = line_end;
                        break;
                    }
                }
                line_start = line_end + 1;
            }
        }
    }

    /// [`PatternSet::regex_hits`] for the prefiltered regexes: one literal search over the
    /// region, then each regex on the lines holding one of its literals, in order.
    fn prefiltered_hits(
        &self,
        prefilter: &RegexLiterals,
        region: &Region<'_>,
        limit: &mut usize,
        out: &mut RegexMatches<'_>,
    ) {
        let text = region.text;
        // Per slot, ascending: the leftmost matches come out in order.
        let mut candidates = vec![Vec::new(); self.regexes.len()];
        let from = region.search_from;
        prefilter
            .search
            .for_each_leftmost(&text[from..region.end], |pattern, start| {
                // A literal starting inside this one starts on the same line (none holds a
                // newline), so its regexes search that line too.
                let overlappers = prefilter.search.overlappers(pattern);
                for &literal in std::iter::once(&pattern).chain(overlappers) {
                    for &slot in &prefilter.needed_by[literal] {
                        candidates[slot].push(from + start);
                    }
                }
            });
        for (slot, slot_candidates) in candidates.iter().enumerate() {
            self.candidate_hits(slot, slot_candidates, region, limit, out);
        }
    }

    /// Runs the regex of `slot` on one line; returns whether it matched.
    fn verify(
        &self,
        slot: usize,
        region: &Region<'_>,
        line: Range<usize>,
        out: &mut RegexMatches<'_>,
    ) -> bool {
        let line_start = line.start.max(line.end.saturating_sub(LINE_CAP));
        let haystack = &region.text[line_start..line.end];
        let line_offset = region.base + line_start as u64;
        let LineRegex { index, regex, .. } = &self.regexes[slot];
        let floor = (out.starts[slot].saturating_sub(region.base) as usize).max(region.search_from);
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
            out.hits.push(Hit {
                index: *index,
                start: line_offset + m.start() as u64,
                end: line_offset + m.end() as u64,
            });
            out.starts[slot] = line_offset + m.end() as u64;
            found = true;
            if out.first_line_only {
                break;
            }
            from = m.end();
        }
        found
    }
}

/// Where the regex matches of one search go, and how far they are looked for.
struct RegexMatches<'s> {
    /// Per regex slot: the stream offset its next match must start at or after.
    starts: &'s mut [u64],
    /// Whether lines after the first line holding a match are left unsearched.
    first_line_only: bool,
    hits: &'s mut Vec<Hit>,
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

    /// Regex hits of `set` over all of `text` searched from `search_from`, with every slot's
    /// next match starting at `starts_at` or later; sorted by end, then pattern, then start.
    /// Also the slots' next starts afterwards.
    pub(super) fn search_all(
        set: &PatternSet,
        text: &str,
        search_from: u64,
        starts_at: u64,
        first_line_only: bool,
    ) -> (Vec<Hit>, Vec<u64>) {
        let mut starts = vec![starts_at; set.regex_count()];
        let mut hits = Vec::new();
        set.regex_hits(
            Text {
                bytes: text.as_bytes(),
                base: 0,
            },
            0..text.len() as u64,
            search_from,
            &mut starts,
            first_line_only,
            &mut hits,
        );
        hits.sort_by_key(|h| (h.end, h.index, h.start));
        (hits, starts)
    }

    fn regex_hits_in(patterns: &[Pattern], text: &str) -> Vec<(usize, String)> {
        let (hits, _) = search_all(&PatternSet::new(patterns), text, 0, 0, false);
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
    fn flag_groups_clearing_multi_line_are_not_screened() {
        assert!(can_screen(r"(?i)login: $"));
        assert!(can_screen(r"(?P<x>a)-m"));
        assert!(!can_screen(r"(?i-m)^x"));
        assert!(!can_screen(r"(?-sm:^x)"));
        assert!(!can_screen(r"\Ax"));
    }
}

/// The literal prefilter finds exactly what screening every line finds.
#[cfg(test)]
mod prefilter_tests {
    use super::tests::search_all;
    use super::*;
    use proptest::prelude::*;

    /// Regexes with prefix or suffix literals, some sharing text, one case-insensitive, one
    /// whose literals may overlap each other.
    const REGEXES: &[&str] = &[
        r"^U-Boot 20\d\d\.\d\d",
        r"^\S+ not found$",
        r"^[a-z0-9-]+ login: $",
        r"Failed to start .+\.service",
        r"(?i)ok!",
        r"(kernel|initrd) (failed|lost)",
        r"abab\d",
        r"bab[a-c]+",
        r"\d+ ok!",
        r"\Aroot\z",
        r"U-Boot 2\d+\.\d+ \(",
    ];

    const PIECES: &[&str] = &[
        "U-Boot 2024.01",
        "U-Boot 2024.01 (",
        "U-Boot 20",
        "x not found",
        "nixos login: ",
        " login: ",
        "Failed to start a.service",
        "Failed to start ",
        "OK!",
        "oK!",
        "kernel failed",
        "initrd lost",
        "ababab1",
        "babc",
        "12 ok!",
        "root",
        "\n",
        "\n",
        " ",
        "a",
        "1",
    ];

    /// The regexes prefiltered, and screened without their literals.
    static SETS: std::sync::LazyLock<(PatternSet, PatternSet)> = std::sync::LazyLock::new(|| {
        let patterns: Vec<Pattern> = REGEXES
            .iter()
            .map(|r| Pattern::regex(r).expect("valid regex"))
            .collect();
        (
            PatternSet::new(&patterns),
            PatternSet::without_regex_prefilter(&patterns),
        )
    });

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|pieces| pieces.concat())
    }

    fn hits_of(
        set: &PatternSet,
        text: &str,
        search_from: u64,
        first_line_only: bool,
    ) -> (Vec<Hit>, Vec<u64>) {
        let (mut hits, mut starts) = search_all(set, text, search_from, search_from / 2, first_line_only);
        if first_line_only {
            // Only the earliest match is used; which later ones were found depends on order.
            hits.truncate(1);
            starts.clear();
        }
        (hits, starts)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn prefiltered_regexes_find_what_screened_regexes_find(
            text in text(),
            from_percent in 0..=100u64,
            first_line_only in any::<bool>(),
        ) {
            let (prefiltered, reference) = &*SETS;
            prop_assert!(prefiltered.regexes.iter().filter(|r| r.prefiltered).count() >= 8);
            let search_from = text.len() as u64 * from_percent / 100;
            prop_assert_eq!(
                hits_of(prefiltered, &text, search_from, first_line_only),
                hits_of(reference, &text, search_from, first_line_only)
            );
        }
    }
}
