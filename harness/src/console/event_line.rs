//! The line of a watch event: text shared by all the events of one feed.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// The clean line an [`Event::Watch`](super::Event::Watch) was seen on, as text.
///
/// A feed can report dozens of watch hits; their lines are written into one shared text, so
/// an event costs no allocation of its own. Reads as a `str`; compares by its text.
#[derive(Clone)]
pub struct EventLine {
    text: Arc<str>,
    range: Range<usize>,
}

impl EventLine {
    /// The line at `range` of a feed's shared `text`.
    pub(crate) fn shared(text: Arc<str>, range: Range<usize>) -> Self {
        debug_assert!(text.get(range.clone()).is_some());
        Self { text, range }
    }

    /// The line as text.
    pub fn as_str(&self) -> &str {
        &self.text[self.range.clone()]
    }
}

impl Deref for EventLine {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for EventLine {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for EventLine {
    fn from(line: &str) -> Self {
        Self::from(line.to_owned())
    }
}

impl From<String> for EventLine {
    fn from(line: String) -> Self {
        let len = line.len();
        Self::shared(line.into(), 0..len)
    }
}

impl From<EventLine> for String {
    fn from(line: EventLine) -> Self {
        line.as_str().to_owned()
    }
}

impl PartialEq for EventLine {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventLine {}

impl PartialEq<str> for EventLine {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventLine {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for EventLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for EventLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_sharing_one_text_read_and_compare_as_their_own_text() {
        let text: Arc<str> = "U-Boot 2024.01\nnixos login: ".into();
        let first = EventLine::shared(text.clone(), 0..14);
        let second = EventLine::shared(text, 15..28);
        assert_eq!(first, "U-Boot 2024.01");
        assert_eq!(second, EventLine::from("nixos login: "));
        assert_ne!(first, second);
        assert_eq!(format!("{second:?} {second}"), "\"nixos login: \" nixos login: ");
    }
}
