//! Literals a regex cannot match without: one pass of a literal search over new text finds
//! the few lines worth running the regex on.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::ParserBuilder;

/// Shortest literal worth searching for: shorter ones occur on nearly every line.
const SHORTEST_USEFUL: usize = 3;

/// Literals of which every match of the regex `source` contains at least one (all its matches
/// start with one of its prefix literals, or all end with one of its suffix literals; the more
/// selective set is chosen). `None` when neither set is finite with every literal at least
/// [`SHORTEST_USEFUL`] bytes long and free of newlines (a match within one line holds none).
pub(crate) fn required_literals(source: &str) -> Option<Vec<Vec<u8>>> {
    // As `regex::bytes::Regex::new` parses: default flags, not limited to valid UTF-8.
    let hir = ParserBuilder::new().utf8(false).build().parse(source).ok()?;
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .filter_map(|kind| {
            let seq = Extractor::new().kind(kind).extract(&hir);
            let literals = seq.literals()?;
            let shortest = seq.min_literal_len()?;
            let usable = shortest >= SHORTEST_USEFUL
                && !literals.is_empty()
                && literals.iter().all(|l| !l.as_bytes().contains(&b'\n'));
            usable.then(|| {
                let bytes: Vec<Vec<u8>> = literals.iter().map(|l| l.as_bytes().to_vec()).collect();
                (shortest, usize::MAX - bytes.len(), bytes)
            })
        })
        .max_by_key(|(shortest, fewer, _)| (*shortest, *fewer))
        .map(|(_, _, bytes)| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(source: &str) -> Option<Vec<String>> {
        required_literals(source).map(|literals| {
            literals
                .into_iter()
                .map(|l| String::from_utf8(l).expect("ASCII literal"))
                .collect()
        })
    }

    #[test]
    fn a_regex_starting_with_text_needs_that_text() {
        assert_eq!(
            strings(r"^U-Boot 20\d\d\.\d\d"),
            Some(vec!["U-Boot 20".to_owned()])
        );
    }

    #[test]
    fn a_regex_ending_with_text_needs_that_text() {
        assert_eq!(
            strings(r"^[a-z0-9-]+ login: $"),
            Some(vec![" login: ".to_owned()])
        );
    }

    #[test]
    fn an_alternation_needs_one_of_its_branches() {
        assert_eq!(
            strings(r"(kernel|initrd) failed"),
            Some(vec!["kernel failed".to_owned(), "initrd failed".to_owned()])
        );
    }

    #[test]
    fn a_regex_with_no_long_literal_at_either_end_needs_none() {
        assert_eq!(strings(r"\d+"), None);
        assert_eq!(strings(r"\S+ x \S+"), None);
        assert_eq!(strings(r"ab.*"), None);
        assert_eq!(strings(r"(?:abc)?\w"), None);
        assert_eq!(strings(r"abc\ndef"), None);
    }

    #[test]
    fn case_insensitive_literals_cover_every_case() {
        let literals = strings(r"(?i)ok!").expect("literals");
        for text in ["ok!", "OK!", "Ok!", "oK!"] {
            assert!(literals.iter().any(|l| l == text), "{text} in {literals:?}");
        }
    }
}
