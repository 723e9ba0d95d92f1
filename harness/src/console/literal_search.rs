//! Every occurrence of a set of literals, overlapping ones included, found at the speed of a
//! leftmost search.

use aho_corasick::{packed, AhoCorasick, AhoCorasickKind, Input, Match, MatchKind};

/// One set of literals searched leftmost-first, with every overlapping occurrence recovered
/// around the leftmost matches.
///
/// Results use overlapping semantics: every (pattern, end position) pair is found exactly
/// once however the text is split, which is what makes results independent of chunk
/// boundaries. A leftmost search is several times faster (it can use a vectorised prefilter),
/// and every overlapping match starts inside a match the leftmost search reports, so only the
/// window of each leftmost match needs a closer look: usually a few comparisons at the offsets
/// where another literal can start, else an overlapping search of the window.
#[derive(Debug)]
pub(crate) struct LiteralSearch {
    leftmost: Leftmost,
    /// Built only when some pattern's window is searched rather than compared.
    overlapping: Option<AhoCorasick>,
    /// Per pattern id: the patterns whose matches can start inside a match of this one. When
    /// there are none, its leftmost matches need no second look.
    overlappers: Vec<Vec<usize>>,
    /// Per pattern id: how the rest of the occurrences inside one of its leftmost matches are
    /// found.
    windows: Vec<Window>,
    literals: Vec<Box<[u8]>>,
    longest: usize,
}

/// The leftmost-first search itself.
#[derive(Debug)]
enum Leftmost {
    /// Teddy on its own: about 1.5 times the speed of the automaton with Teddy as its
    /// prefilter on console text (BENCHMARKS.md), because the automaton re-runs every match
    /// Teddy has already verified. Built when the CPU has Teddy's vector instructions and the
    /// set is small enough for it (64 literals).
    Packed(packed::Searcher),
    /// Any set, any CPU.
    Automaton(AhoCorasick),
}

impl Leftmost {
    fn find_iter<'a>(&'a self, haystack: &'a [u8]) -> LeftmostMatches<'a> {
        match self {
            Leftmost::Packed(searcher) => LeftmostMatches::Packed(searcher.find_iter(haystack)),
            Leftmost::Automaton(automaton) => LeftmostMatches::Automaton(automaton.find_iter(haystack)),
        }
    }
}

enum LeftmostMatches<'a> {
    Packed(packed::FindIter<'a, 'a>),
    Automaton(aho_corasick::FindIter<'a, 'a>),
}

impl Iterator for LeftmostMatches<'_> {
    type Item = Match;

    fn next(&mut self) -> Option<Match> {
        match self {
            LeftmostMatches::Packed(matches) => matches.next(),
            LeftmostMatches::Automaton(matches) => matches.next(),
        }
    }
}

/// How the occurrences starting inside a leftmost match, other than itself, are found.
#[derive(Debug)]
enum Window {
    /// None can.
    Empty,
    /// At each (offset, pattern), the pattern is compared with the text: the only places
    /// where the pattern's occurrences can start inside the match. The part of the pattern
    /// inside the match is known to agree, so only the rest is compared.
    Compare(Vec<Overlapper>),
    /// Too many places to compare cheaply: an overlapping search of the window.
    Search,
}

/// A pattern that can start inside a match of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Overlapper {
    /// Where it can start, from the start of the match.
    offset: usize,
    pattern: usize,
    /// How many of its first bytes lie inside the match, and agree with it.
    inside: usize,
}

/// One occurrence of a literal, in offsets into the searched haystack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// Position of the literal in the list the search was built from.
    pub(crate) pattern: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl LiteralSearch {
    /// A search for `literals` (none empty); `None` when there are none.
    pub(crate) fn new(literals: &[&[u8]]) -> Option<Self> {
        Self::build(literals, false, false)
    }

    /// A search whose windows are all searched with the overlapping automaton: the reference
    /// the comparisons are tested against.
    #[cfg(test)]
    fn searching_every_window(literals: &[&[u8]]) -> Option<Self> {
        Self::build(literals, true, false)
    }

    /// A search whose leftmost matches come from the automaton even where Teddy could run
    /// alone: the path of other CPUs and of large sets, tested against the other.
    #[cfg(test)]
    fn by_automaton(literals: &[&[u8]]) -> Option<Self> {
        Self::build(literals, false, true)
    }

    fn build(literals: &[&[u8]], search_every_window: bool, force_automaton: bool) -> Option<Self> {
        if literals.is_empty() {
            return None;
        }
        let build = |kind, prefilter| {
            AhoCorasick::builder()
                .match_kind(kind)
                .kind(Some(AhoCorasickKind::DFA))
                .prefilter(prefilter)
                .build(literals)
                .expect("console pattern sets are far below Aho-Corasick's state limit")
        };
        let longest = literals.iter().map(|l| l.len()).max().unwrap_or(0);
        let windows: Vec<Window> = (0..literals.len())
            .map(|p| {
                let starts = overlapping_starts(literals, p);
                // A comparison costs a call and its bytes beyond the match (most differ in the
                // first), about as much as searching a few bytes of the window; searching
                // costs the window: compare only where that is no dearer, so no pattern set
                // makes it slow.
                let compared: usize = starts
                    .iter()
                    .map(|&(offset, q)| {
                        let inside = (literals[p].len() - offset).min(literals[q].len());
                        4 + (literals[q].len() - inside) / 8
                    })
                    .sum();
                if starts.is_empty() {
                    Window::Empty
                } else if search_every_window || compared > literals[p].len() + longest {
                    Window::Search
                } else {
                    Window::Compare(
                        starts
                            .into_iter()
                            .map(|(offset, q)| Overlapper {
                                offset,
                                pattern: q,
                                inside: (literals[p].len() - offset).min(literals[q].len()),
                            })
                            .collect(),
                    )
                }
            })
            .collect();
        let needs_search = windows.iter().any(|w| matches!(w, Window::Search));
        // `build` is `None` where Teddy cannot run: no SSSE3 or NEON, or too many literals.
        let packed = (!force_automaton)
            .then(|| {
                packed::Config::new()
                    .match_kind(packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(literals)
                    .build()
            })
            .flatten();
        let leftmost = match packed {
            Some(searcher) => Leftmost::Packed(searcher),
            None => Leftmost::Automaton(build(MatchKind::LeftmostFirst, true)),
        };
        Some(Self {
            leftmost,
            // Its windows are a few dozen bytes: a prefilter would only add set-up per window.
            overlapping: needs_search.then(|| build(MatchKind::Standard, false)),
            longest,
            overlappers: (0..literals.len()).map(|p| overlappers(literals, p)).collect(),
            windows,
            literals: literals.iter().map(|&l| l.into()).collect(),
        })
    }

    /// The literals, in the order they were given.
    pub(crate) fn literals(&self) -> impl Iterator<Item = &[u8]> {
        self.literals.iter().map(|l| &**l)
    }

    /// Length of the longest literal.
    pub(crate) fn longest(&self) -> usize {
        self.longest
    }

    /// Calls `found(pattern, start)` for each leftmost-first match (no two overlap): every
    /// occurrence of a literal starts inside one of them, and is either that match or one of
    /// its pattern's [`LiteralSearch::overlappers`].
    pub(crate) fn for_each_leftmost(&self, haystack: &[u8], mut found: impl FnMut(usize, usize)) {
        for leftmost in self.leftmost.find_iter(haystack) {
            found(leftmost.pattern().as_usize(), leftmost.start());
        }
    }

    /// The patterns whose occurrences can start inside an occurrence of `pattern`.
    pub(crate) fn overlappers(&self, pattern: usize) -> &[usize] {
        &self.overlappers[pattern]
    }

    /// Calls `found` for each occurrence in `haystack` ending after offset `after`, in the
    /// order of the leftmost matches whose windows hold them. With `first_only`, may stop once
    /// no later occurrence can end before one already reported.
    pub(crate) fn for_each(
        &self,
        haystack: &[u8],
        after: usize,
        first_only: bool,
        mut found: impl FnMut(Found),
    ) {
        let mut earliest_end = usize::MAX;
        for leftmost in self.leftmost.find_iter(haystack) {
            if first_only && leftmost.start() >= earliest_end {
                break;
            }
            let pattern = leftmost.pattern().as_usize();
            if leftmost.end() > after {
                earliest_end = earliest_end.min(leftmost.end());
                found(Found {
                    pattern,
                    start: leftmost.start(),
                    end: leftmost.end(),
                });
            }
            let starts = match &self.windows[pattern] {
                Window::Empty => continue,
                Window::Compare(starts) => starts,
                Window::Search => {
                    self.search_window(
                        haystack,
                        pattern,
                        leftmost.start(),
                        leftmost.end(),
                        after,
                        &mut |f| {
                            earliest_end = earliest_end.min(f.end);
                            found(f);
                        },
                    );
                    continue;
                }
            };
            for &Overlapper {
                offset,
                pattern: other,
                inside,
            } in starts
            {
                let literal = &self.literals[other];
                let start = leftmost.start() + offset;
                let end = start + literal.len();
                let beyond = start + inside;
                if end > after
                    && end <= haystack.len()
                    && (beyond == end
                        || haystack[beyond] == literal[inside] && haystack[beyond..end] == literal[inside..])
                {
                    earliest_end = earliest_end.min(end);
                    found(Found {
                        pattern: other,
                        start,
                        end,
                    });
                }
            }
        }
    }

    /// The occurrences other than the leftmost match itself that start inside it (from
    /// `start` to `end`) and end after `after`, by an overlapping search of its window.
    fn search_window(
        &self,
        haystack: &[u8],
        pattern: usize,
        start: usize,
        end: usize,
        after: usize,
        found: &mut impl FnMut(Found),
    ) {
        // Matches starting inside this leftmost match end by `window_end`.
        let window_end = haystack.len().min(end - 1 + self.longest);
        if window_end <= after {
            return;
        }
        let overlapping = self
            .overlapping
            .as_ref()
            .expect("built whenever a window is searched");
        let window = Input::new(haystack).span(start..window_end);
        for occurrence in overlapping.find_overlapping_iter(window) {
            // A match starting further on belongs to a later leftmost match's window; the
            // leftmost match itself was reported already.
            let itself = occurrence.pattern().as_usize() == pattern && occurrence.start() == start;
            if occurrence.start() >= end || occurrence.end() <= after || itself {
                continue;
            }
            found(Found {
                pattern: occurrence.pattern().as_usize(),
                start: occurrence.start(),
                end: occurrence.end(),
            });
        }
    }
}

/// The patterns a match of which can start inside a match of `patterns[p]`: those (the same
/// one shifted included) that agree with `patterns[p]` from some offset on, for as long as both
/// last.
fn overlappers(patterns: &[&[u8]], p: usize) -> Vec<usize> {
    let mut found: Vec<usize> = overlapping_starts(patterns, p)
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    found.dedup();
    found
}

/// Every (offset, pattern) where an occurrence of that pattern can start inside a match of
/// `patterns[p]` at that offset, other than the match itself; by pattern, then offset.
fn overlapping_starts(patterns: &[&[u8]], p: usize) -> Vec<(usize, usize)> {
    let pattern = patterns[p];
    let mut starts = Vec::new();
    for (q, other) in patterns.iter().enumerate() {
        for offset in 0..pattern.len() {
            let shared = (pattern.len() - offset).min(other.len());
            if (q != p || offset != 0) && pattern[offset..offset + shared] == other[..shared] {
                starts.push((offset, q));
            }
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_found(literals: &[&[u8]], haystack: &[u8], after: usize) -> Vec<Found> {
        let mut found = Vec::new();
        LiteralSearch::new(literals)
            .expect("literals")
            .for_each(haystack, after, false, |f| found.push(f));
        found
    }

    #[test]
    fn overlapping_literals_are_each_found_once() {
        assert_eq!(
            all_found(&[b"abc", b"bcd"], b"abcd", 0),
            [
                Found {
                    pattern: 0,
                    start: 0,
                    end: 3
                },
                Found {
                    pattern: 1,
                    start: 1,
                    end: 4
                }
            ]
        );
    }

    #[test]
    fn occurrences_ending_by_the_after_offset_are_left_out() {
        assert_eq!(
            all_found(&[b"ab", b"b"], b"abab", 2),
            [
                Found {
                    pattern: 0,
                    start: 2,
                    end: 4
                },
                Found {
                    pattern: 1,
                    start: 3,
                    end: 4
                }
            ]
        );
    }

    #[test]
    fn literals_that_can_share_text_are_told_apart_from_those_that_cannot() {
        let patterns: [&[u8]; 5] = [b"Kernel panic", b"end Kernel panic", b"abab", b"login: ", b"ogre"];
        let overlapped: Vec<Vec<usize>> = (0..patterns.len()).map(|p| overlappers(&patterns, p)).collect();
        // "end Kernel panic" holds "Kernel panic"; "abab" overlaps itself shifted by two; "ogre"
        // ends in the "e" that starts "end Kernel panic"; nothing can start inside "login: " or
        // "Kernel panic".
        assert_eq!(overlapped, [vec![], vec![0], vec![2], vec![], vec![1]]);
    }

    /// Every occurrence, in a canonical order.
    fn sorted(search: &LiteralSearch, haystack: &[u8], after: usize) -> Vec<Found> {
        let mut found = Vec::new();
        search.for_each(haystack, after, false, |f| found.push(f));
        found.sort_by_key(|f| (f.end, f.pattern, f.start));
        found
    }

    /// The earliest occurrence (by end, then pattern) a first-only search reports.
    fn earliest(search: &LiteralSearch, haystack: &[u8], after: usize) -> Option<(usize, usize)> {
        let mut found = Vec::new();
        search.for_each(haystack, after, true, |f| found.push((f.end, f.pattern)));
        found.into_iter().min()
    }

    #[test]
    fn windows_are_compared_unless_comparing_costs_more_than_searching() {
        let short: [&[u8]; 3] = [b"Kernel panic", b"end Kernel panic", b"login: "];
        let search = LiteralSearch::new(&short).expect("literals");
        assert!(matches!(search.windows[0], Window::Empty));
        assert!(matches!(&search.windows[1], Window::Compare(starts)
            if *starts == [Overlapper { offset: 4, pattern: 0, inside: 12 }]));
        assert!(search.overlapping.is_none());
        let runs: [&[u8]; 2] = [b"aaaaaaaa", b"aaaaaaab"];
        let search = LiteralSearch::new(&runs).expect("literals");
        assert!(matches!(search.windows[0], Window::Search));
        assert!(search.overlapping.is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn compared_windows_find_what_searched_windows_find(
            literals in proptest::collection::vec("[ab]{1,5}|[abc]{1,3}|a{6,9}b?", 1..6),
            haystack in "[abc]{0,60}",
            after_percent in 0..=100usize,
        ) {
            let literals: Vec<&[u8]> = literals.iter().map(|l| l.as_bytes()).collect();
            let haystack = haystack.as_bytes();
            let after = haystack.len() * after_percent / 100;
            let compared = LiteralSearch::new(&literals).expect("literals");
            let searched = LiteralSearch::searching_every_window(&literals).expect("literals");
            proptest::prop_assert_eq!(sorted(&compared, haystack, after), sorted(&searched, haystack, after));
            proptest::prop_assert_eq!(earliest(&compared, haystack, after), earliest(&searched, haystack, after));
            // And both are every occurrence, found naively.
            let mut naive = Vec::new();
            for (pattern, literal) in literals.iter().enumerate() {
                for start in 0..haystack.len() {
                    let end = start + literal.len();
                    if end > after && haystack.get(start..end) == Some(literal) {
                        naive.push(Found { pattern, start, end });
                    }
                }
            }
            naive.sort_by_key(|f| (f.end, f.pattern, f.start));
            proptest::prop_assert_eq!(sorted(&compared, haystack, after), naive);
        }
    }

    proptest::proptest! {
        // Each case builds two searches of up to 50 literals.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Long enough haystacks for Teddy's vector loop (short ones go to its Rabin-Karp),
        /// sets large enough for its fat variant.
        #[test]
        fn teddy_alone_finds_what_the_automaton_finds(
            literals in proptest::collection::vec("[ab]{1,5}|[abc]{2,6}|a{6,9}b?|[a-e ]{3,12}", 1..50),
            haystack in "[abcde ]{0,400}",
            after_percent in 0..=100usize,
        ) {
            let literals: Vec<&[u8]> = literals.iter().map(|l| l.as_bytes()).collect();
            let haystack = haystack.as_bytes();
            let after = haystack.len() * after_percent / 100;
            let packed = LiteralSearch::new(&literals).expect("literals");
            let automaton = LiteralSearch::by_automaton(&literals).expect("literals");
            let leftmost = |search: &LiteralSearch| {
                let mut found = Vec::new();
                search.for_each_leftmost(haystack, |pattern, start| found.push((pattern, start)));
                found
            };
            proptest::prop_assert_eq!(leftmost(&packed), leftmost(&automaton));
            proptest::prop_assert_eq!(sorted(&packed, haystack, after), sorted(&automaton, haystack, after));
            proptest::prop_assert_eq!(earliest(&packed, haystack, after), earliest(&automaton, haystack, after));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_console_sized_set_is_searched_by_teddy_alone_where_the_cpu_has_it() {
        // 53 literals: the benchmark's 40 watches and the literals its 10 regexes need.
        let owned: Vec<String> = (0..53).map(|i| format!("console literal {i:02}")).collect();
        let literals: Vec<&[u8]> = owned.iter().map(|l| l.as_bytes()).collect();
        let search = LiteralSearch::new(&literals).expect("literals");
        if std::arch::is_x86_feature_detected!("ssse3") {
            assert!(matches!(search.leftmost, Leftmost::Packed(_)));
        }
        // Beyond Teddy's 64 the automaton searches.
        let owned: Vec<String> = (0..65).map(|i| format!("console literal {i:02}")).collect();
        let literals: Vec<&[u8]> = owned.iter().map(|l| l.as_bytes()).collect();
        let search = LiteralSearch::new(&literals).expect("literals");
        assert!(matches!(search.leftmost, Leftmost::Automaton(_)));
    }
}
