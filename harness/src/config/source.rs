//! A file's text with its line starts, to turn byte offsets into `line:column`.
//!
//! Every step of a scenario records where it is, so this runs once per step: a lookup must not
//! scan the file from its start, or parsing would be quadratic in the number of steps.

use std::cell::Cell;
use std::ops::Range;
use std::path::Path;

use super::{Diagnostic, Excerpt, Location};

/// The text being parsed and the file it came from.
pub(crate) struct SourceText<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: &'a Path,
    /// Byte offset of each line's first character.
    line_starts: Vec<usize>,
    /// The last lookup (byte offset, line index, column): lookups that move forward on one
    /// line (the steps of a one-line `steps = [ … ]`) count characters from there.
    last: Cell<(usize, usize, usize)>,
}

impl<'a> SourceText<'a> {
    /// Indexes `text`'s lines (one pass).
    pub(crate) fn new(text: &'a str, path: &'a Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        SourceText {
            text,
            path,
            line_starts,
            last: Cell::new((0, 0, 1)),
        }
    }

    /// The 1-based line and column (in characters) of the character at byte `offset` (an
    /// offset inside a character counts as that character; past the end, as the end).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line];
        let (from, column) = match self.last.get() {
            (last, last_line, column) if last_line == line && last <= offset => (last, column),
            _ => (line_start, 1),
        };
        let column = column + self.text[from..offset].chars().count();
        self.last.set((offset, line, column));
        (line + 1, column)
    }

    /// The [`Location`] of byte `offset`.
    pub(crate) fn location(&self, offset: usize) -> Location {
        let (line, column) = self.position(offset);
        Location {
            file: self.path.to_owned(),
            line,
            column,
        }
    }

    /// A diagnostic at `span` (at the file alone when `None`), with the line it starts on.
    pub(crate) fn error<K>(&self, span: Option<Range<usize>>, kind: K) -> Diagnostic<K> {
        let Some(span) = span else {
            return Diagnostic::new(self.path, kind);
        };
        let (line, column) = self.position(span.start);
        let line_text = self.line(line - 1);
        let end = floor_char_boundary(self.text, span.end.min(self.text.len()));
        let line_start = self.line_starts[line - 1];
        // The span's end as a column on this line (a span reaching past it stops at its end).
        let end_column = if end <= line_start + line_text.len() && end >= line_start {
            self.text[line_start..end].chars().count()
        } else {
            usize::MAX
        };
        Diagnostic {
            path: self.path.to_owned(),
            excerpt: Some(Box::new(Excerpt::new(line, line_text, column - 1, end_column))),
            kind,
        }
    }

    /// Line `index` (0-based) without its line end.
    fn line(&self, index: usize) -> &'a str {
        let start = self.line_starts[index];
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |next| next - 1);
        let line = &self.text[start..end];
        line.strip_suffix('\r').unwrap_or(line)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> SourceText<'_> {
        SourceText::new(text, Path::new("t.toml"))
    }

    #[test]
    fn offsets_become_line_and_character_column() {
        let text = source("ab\nüx\n\nz");
        assert_eq!(text.position(0), (1, 1));
        assert_eq!(text.position(2), (1, 3));
        assert_eq!(text.position(3), (2, 1));
        assert_eq!(text.position(5), (2, 2));
        assert_eq!(text.position(7), (3, 1));
        assert_eq!(text.position(8), (4, 1));
        assert_eq!(text.position(99), (4, 2));
    }

    #[test]
    fn lookups_in_any_order_agree() {
        let text = source("abc def ghi\nxyz");
        let forward: Vec<_> = (0..15).map(|o| text.position(o)).collect();
        let backward: Vec<_> = (0..15).rev().map(|o| text.position(o)).collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
    }

    #[test]
    fn offset_inside_a_character_is_that_character() {
        assert_eq!(source("ü").position(1), (1, 1));
    }

    #[test]
    fn error_shows_the_line_without_its_line_end() {
        let error = source("a = 1\r\nb = x\r\n").error(Some(11..12), "bad");
        assert_eq!(error.position(), Some((2, 5)));
        assert_eq!(error.excerpt.unwrap().text, "b = x");
    }

    #[test]
    fn span_over_several_lines_is_underlined_to_the_end_of_its_first() {
        let error = source("a = [\n1]\n").error(Some(4..8), "bad");
        let excerpt = error.excerpt.unwrap();
        assert_eq!((excerpt.caret_at, excerpt.carets), (4, 1));
    }
}
