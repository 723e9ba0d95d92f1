//! The one error shape of every file the harness reads: `file:line:column: message`, then the
//! offending line with a caret under the place, as compilers print them.

use std::fmt;
use std::path::PathBuf;

use super::Location;
use crate::escape::{escape_control, push_escaped};

/// The most characters of a source line an [`Excerpt`] shows; a longer line is cut around the
/// place and the cuts are marked `…`.
pub const EXCERPT_WIDTH: usize = 100;

/// Characters an excerpt keeps before the place when it has to cut the line.
const EXCERPT_LEFT: usize = 40;

/// A problem with a file, at a place in it when it has one. `K` says what is wrong
/// ([`ScenarioErrorKind`](crate::scenario::ScenarioErrorKind),
/// [`BoardErrorKind`](crate::board::BoardErrorKind)).
///
/// Displays as `path:line:column: message` when the problem has a place, followed by the line
/// and a caret:
///
/// ```text
/// boot.toml:3:10: invalid type: integer `3`, expected a string
///   |
/// 3 | expect = 3
///   |          ^
/// ```
///
/// and as `path: message` when it has none (a file that cannot be read). Control characters
/// from the file are shown escaped, in the message and in the line, so neither can break the
/// report's lines or reach the terminal.
#[derive(Debug)]
pub struct Diagnostic<K> {
    /// The file (or directory) the problem is about.
    pub path: PathBuf,
    /// The place of the offending key or value and its line, when the problem has a place.
    /// (Boxed: errors travel in `Result`s and should stay small.)
    pub excerpt: Option<Box<Excerpt>>,
    /// What is wrong.
    pub kind: K,
}

impl<K> Diagnostic<K> {
    /// A problem with the file as a whole (it cannot be read), at no place in it.
    pub fn new(path: impl Into<PathBuf>, kind: K) -> Self {
        Diagnostic {
            path: path.into(),
            excerpt: None,
            kind,
        }
    }

    /// 1-based line and column (in characters) of the offending key or value.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.excerpt.as_ref().map(|e| (e.line, e.column))
    }

    /// The problem's place as a [`Location`], when it has one.
    pub fn location(&self) -> Option<Location> {
        self.position().map(|(line, column)| Location {
            file: self.path.clone(),
            line,
            column,
        })
    }
}

impl<K: fmt::Display> Diagnostic<K> {
    /// The first line alone, `path:line:column: message`, for a report that has one line for it.
    pub fn headline(&self) -> String {
        let message = self.kind.to_string();
        let message = escape_control(&message);
        match self.position() {
            Some((line, column)) => format!("{}:{line}:{column}: {message}", self.path.display()),
            None => format!("{}: {message}", self.path.display()),
        }
    }
}

impl<K: fmt::Display> fmt::Display for Diagnostic<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(excerpt) = &self.excerpt {
            write!(f, "\n{excerpt}")?;
        }
        Ok(())
    }
}

impl<K: fmt::Debug + fmt::Display> std::error::Error for Diagnostic<K> {}

/// A place in a file and its line with a caret under it, ready to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// The line's number, 1-based.
    pub line: usize,
    /// The place's column on the line, 1-based, in characters.
    pub column: usize,
    /// The line as shown: control characters escaped, cut to [`EXCERPT_WIDTH`] characters
    /// around the place (cuts marked `…`).
    pub text: String,
    /// Characters of `text` before the first caret.
    pub caret_at: usize,
    /// How many carets: the span's width on this line, at least one.
    pub carets: usize,
}

impl Excerpt {
    /// The excerpt of `line` (its text without the line end) for the characters `start..end`
    /// of it (0-based: the place is at column `start + 1`); `end` may lie past the line (a span
    /// over several lines is underlined to the end of its first).
    pub fn new(number: usize, line: &str, start: usize, end: usize) -> Excerpt {
        let column = start + 1;
        // Only characters near the place can be shown (each shows at least one wide), so a
        // line of megabytes costs no memory here.
        let skipped = start.saturating_sub(EXCERPT_WIDTH);
        let (start, end) = (start - skipped, end.saturating_sub(skipped));
        let mut chars = line.chars().skip(skipped);
        // Each character as shown, and where each one starts in the shown text.
        let mut shown = String::new();
        let mut starts = Vec::with_capacity(start + EXCERPT_WIDTH + 2);
        let mut width = 0;
        for c in chars.by_ref().take(start + EXCERPT_WIDTH + 1) {
            starts.push(width);
            let before = shown.len();
            push_escaped(&mut shown, c);
            width += shown[before..].chars().count();
        }
        starts.push(width);
        let more_after = chars.next().is_some();
        let at = |index: usize| starts[index.min(starts.len() - 1)];
        let caret_from = at(start);
        let caret_to = at(end.max(start + 1)).max(caret_from + 1);

        let first = caret_from.saturating_sub(EXCERPT_LEFT);
        let first = if width - first < EXCERPT_WIDTH {
            width.saturating_sub(EXCERPT_WIDTH)
        } else {
            first
        };
        let last = (first + EXCERPT_WIDTH).min(width);
        let mut text: String = shown.chars().skip(first).take(last - first).collect();
        let mut caret_at = caret_from - first;
        if first > 0 || skipped > 0 {
            text.insert(0, '…');
            caret_at += 1;
        }
        if last < width || more_after {
            text.push('…');
        }
        let carets = caret_to.min(last.max(caret_from + 1)) - caret_from;
        Excerpt {
            line: number,
            column,
            text,
            caret_at,
            carets,
        }
    }
}

impl fmt::Display for Excerpt {
    /// Three lines: an empty gutter, `N | line`, and the carets under the place.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{number} | {}", self.text)?;
        write!(
            f,
            "{gutter} | {}{}",
            " ".repeat(self.caret_at),
            "^".repeat(self.carets)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(line: &str, start: usize, end: usize) -> String {
        Excerpt::new(3, line, start, end).to_string()
    }

    #[test]
    fn caret_underlines_the_span() {
        assert_eq!(shown("expect = 3", 9, 10), "  |\n3 | expect = 3\n  |          ^");
        assert_eq!(shown("expct = \"y\"", 0, 5), "  |\n3 | expct = \"y\"\n  | ^^^^^");
    }

    #[test]
    fn empty_span_still_gets_one_caret() {
        assert_eq!(shown("name = 1", 0, 0), "  |\n3 | name = 1\n  | ^");
    }

    #[test]
    fn span_past_the_line_end_is_underlined_to_the_end() {
        assert_eq!(shown("steps = [", 8, 40), "  |\n3 | steps = [\n  |         ^");
    }

    #[test]
    fn caret_after_the_last_character_points_past_it() {
        assert_eq!(shown("x = ", 4, 5), "  |\n3 | x = \n  |     ^");
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_follows() {
        let excerpt = Excerpt::new(1, "a\u{1b}[2J = 1", 8, 9);
        assert_eq!(excerpt.text, "a\\u{1b}[2J = 1");
        assert_eq!(excerpt.caret_at, 13);
        assert_eq!(excerpt.carets, 1);
    }

    #[test]
    fn long_line_is_cut_around_the_place() {
        let line = format!("{}X{}", "a".repeat(500), "b".repeat(500));
        let excerpt = Excerpt::new(1, &line, 500, 501);
        assert_eq!(excerpt.text.chars().count(), EXCERPT_WIDTH + 2);
        assert!(excerpt.text.starts_with('…') && excerpt.text.ends_with('…'));
        assert_eq!(excerpt.text.chars().nth(excerpt.caret_at), Some('X'));
    }

    #[test]
    fn place_near_the_end_of_a_long_line_shows_the_end() {
        let line = "a".repeat(300);
        let excerpt = Excerpt::new(1, &line, 299, 300);
        assert_eq!(excerpt.text.chars().count(), EXCERPT_WIDTH + 1);
        assert!(excerpt.text.starts_with('…') && !excerpt.text.ends_with('…'));
        assert_eq!(excerpt.caret_at, EXCERPT_WIDTH);
    }

    #[test]
    fn wide_gutter_for_long_files() {
        let excerpt = Excerpt::new(1234, "x", 0, 1);
        assert_eq!(excerpt.to_string(), "     |\n1234 | x\n     | ^");
    }

    #[test]
    fn headline_escapes_control_characters_of_the_message() {
        let diagnostic = Diagnostic {
            path: "t.toml".into(),
            excerpt: Some(Box::new(Excerpt::new(1, "a", 0, 1))),
            kind: "unknown field `a\nFAIL b`",
        };
        assert_eq!(diagnostic.headline(), "t.toml:1:1: unknown field `a\\nFAIL b`");
    }

    #[test]
    fn problem_without_a_place_is_path_and_message() {
        let diagnostic = Diagnostic::new("t.toml", "cannot read");
        assert_eq!(diagnostic.to_string(), "t.toml: cannot read");
        assert_eq!(diagnostic.location(), None);
    }
}
