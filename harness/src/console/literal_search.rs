//! Every occurrence of a set of literals, overlapping ones included, found at the speed of a
//! leftmost search.

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

/// One set of literals in two automata over the same patterns.
///
/// Results use overlapping semantics: every (pattern, end position) pair is found exactly
/// once however the text is split, which is what makes results independent of chunk
/// boundaries. A leftmost search is several times faster (it can use a vectorised prefilter),
/// and every overlapping match starts inside a match the leftmost search reports, so the
/// overlapping search only runs in small windows around those.
#[derive(Debug)]
pub(crate) struct LiteralSearch {
    leftmost: AhoCorasick,
    overlapping: AhoCorasick,
    /// Per pattern id: the patterns whose matches can start inside a match of this one. When
    /// there are none, its leftmost matches need no overlapping search.
    overlappers: Vec<Vec<usize>>,
    longest: usize,
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
        Some(Self {
            leftmost: build(MatchKind::LeftmostFirst, true),
            // Its windows are a few dozen bytes: a prefilter would only add set-up per window.
            overlapping: build(MatchKind::Standard, false),
            longest: literals.iter().map(|l| l.len()).max().unwrap_or(0),
            overlappers: (0..literals.len()).map(|p| overlappers(literals, p)).collect(),
        })
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
            if self.overlappers[leftmost.pattern().as_usize()].is_empty() {
                if leftmost.end() > after {
                    earliest_end = earliest_end.min(leftmost.end());
                    found(Found {
                        pattern: leftmost.pattern().as_usize(),
                        start: leftmost.start(),
                        end: leftmost.end(),
                    });
                }
                continue;
            }
            // Matches starting inside this leftmost match end by `window_end`.
            let window_end = haystack.len().min(leftmost.end() - 1 + self.longest);
            if window_end <= after {
                continue;
            }
            let window = Input::new(haystack).span(leftmost.start()..window_end);
            for overlapping in self.overlapping.find_overlapping_iter(window) {
                // A match starting further on belongs to a later leftmost match's window.
                if overlapping.start() >= leftmost.end() || overlapping.end() <= after {
                    continue;
                }
                earliest_end = earliest_end.min(overlapping.end());
                found(Found {
                    pattern: overlapping.pattern().as_usize(),
                    start: overlapping.start(),
                    end: overlapping.end(),
                });
            }
        }
    }
}

/// The patterns a match of which can start inside a match of `patterns[p]`: those (the same
/// one shifted included) that agree with `patterns[p]` from some offset on, for as long as both
/// last.
fn overlappers(patterns: &[&[u8]], p: usize) -> Vec<usize> {
    let pattern = patterns[p];
    (0..patterns.len())
        .filter(|&q| {
            let other = patterns[q];
            (0..pattern.len()).any(|offset| {
                let shared = (pattern.len() - offset).min(other.len());
                (q != p || offset != 0) && pattern[offset..offset + shared] == other[..shared]
            })
        })
        .collect()
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
}
