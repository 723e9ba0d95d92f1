//! What a step or a fatal rule looks for on the console.

use std::fmt;

/// A pattern matched against the console text after ANSI escape sequences and carriage returns
/// are removed. Literals may span lines; regexes are matched within one line at a time (the
/// incomplete last line included, so prompts match), with `^` and `$` at line boundaries.
#[derive(Clone, Debug)]
pub enum Pattern {
    Literal(String),
    Regex(regex::bytes::Regex),
}

impl Pattern {
    /// A literal pattern.
    pub fn literal(text: impl Into<String>) -> Self {
        Pattern::Literal(text.into())
    }

    /// A regex pattern; fails on invalid syntax.
    pub fn regex(source: &str) -> Result<Self, regex::Error> {
        regex::bytes::Regex::new(source).map(Pattern::Regex)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Literal(text) => write!(f, "{text:?}"),
            Pattern::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}
