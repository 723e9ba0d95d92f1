//! Scenario names: shown on report lines and used as transcript file names, so a name must be
//! one line of text that is a safe file name, and two scenarios of a run must not share files.

use crate::escape::needs_escape;

/// The longest name, in characters: with `.timings.json` after it, a transcript file name stays
/// well inside the 255 bytes file systems allow.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a name cannot be a scenario's name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// An empty name.
    #[error("scenario name must not be empty")]
    Empty,
    /// A path separator: the transcript would land in another directory, or two names would
    /// share one file.
    #[error("scenario name {0:?} has a `/` or `\\`; names become transcript file names: use `-` instead")]
    Separator(String),
    /// A control character (a newline would forge report lines) or a character that reorders
    /// the text around it.
    #[error("scenario name {0:?} has a control character; names are one line of plain text")]
    Control(String),
    /// A name starting with `.` (a hidden file, `.` or `..`) or holding `..`.
    #[error("scenario name {0:?} starts with `.` or has `..`; names become transcript file names")]
    Dots(String),
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("scenario name is {0} characters long; the longest is {MAX_NAME_CHARS}")]
    TooLong(usize),
}

/// Checks that `name` can be a scenario's name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let length = name.chars().count();
    if name.is_empty() {
        Err(NameError::Empty)
    } else if length > MAX_NAME_CHARS {
        Err(NameError::TooLong(length))
    } else if name.chars().any(needs_escape) {
        Err(NameError::Control(name.to_owned()))
    } else if name.contains(['/', '\\']) {
        Err(NameError::Separator(name.to_owned()))
    } else if name.starts_with('.') || name.contains("..") {
        Err(NameError::Dots(name.to_owned()))
    } else {
        Ok(())
    }
}

/// A file name for a scenario's transcripts: its name with anything odd replaced.
pub fn transcript_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What two names must not share: their transcript file stem, case folded (macOS and Windows
/// file systems ignore case, so `Boot` and `boot` would write one file).
pub(crate) fn file_key(name: &str) -> String {
    transcript_stem(name).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["boot-to-login", "shell checks", "größe_2", "v1.2"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn separators_are_refused() {
        assert_eq!(check_name("a/b"), Err(NameError::Separator("a/b".into())));
        assert_eq!(check_name("a\\b"), Err(NameError::Separator("a\\b".into())));
    }

    #[test]
    fn newline_is_refused_so_it_cannot_forge_a_report_line() {
        let name = "ok\nFAIL  other";
        assert_eq!(check_name(name), Err(NameError::Control(name.into())));
        assert_eq!(
            NameError::Control(name.into()).to_string(),
            "scenario name \"ok\\nFAIL  other\" has a control character; names are one line of plain text"
        );
    }

    #[test]
    fn escape_and_bidi_characters_are_refused() {
        assert!(matches!(check_name("a\u{1b}[31m"), Err(NameError::Control(_))));
        assert!(matches!(check_name("a\u{202e}b"), Err(NameError::Control(_))));
    }

    #[test]
    fn dot_names_are_refused() {
        for name in [".", "..", ".hidden", "a..b"] {
            assert_eq!(check_name(name), Err(NameError::Dots(name.into())), "{name}");
        }
    }

    #[test]
    fn empty_and_overlong_names_are_refused() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(&"x".repeat(MAX_NAME_CHARS)), Ok(()));
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong(MAX_NAME_CHARS + 1))
        );
    }

    #[test]
    fn names_sharing_transcript_files_share_a_key() {
        assert_eq!(file_key("a b"), file_key("a_b"));
        assert_eq!(file_key("Boot"), file_key("boot"));
        assert_ne!(file_key("boot-1"), file_key("boot-2"));
    }
}
