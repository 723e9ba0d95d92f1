//! Durations as the harness's files write them (`timeout = "30s"`, `char_delay = "2ms"`), one
//! validated type for scenario files and board profiles alike.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The longest duration a file may give. Anything longer is a slip (`300000000000y`), and a
/// duration near the clock's range overflows when the runner adds it to the current instant.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How [`MAX_DURATION`] reads in messages.
const MAX_DURATION_TEXT: &str = "7 days";

/// A duration written as humantime text ("30s", "5m", "1m30s", "0ms"), at most
/// [`MAX_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDuration(Duration);

/// A [`FileDuration`] that is not zero: how long something may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout(Duration);

/// Why a duration's text is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Not humantime syntax, or a number too large for any clock.
    #[error(r#"invalid duration {text:?} ({reason}): write e.g. "30s", "5m" or "1m30s""#)]
    Syntax {
        /// The text as written.
        text: String,
        /// humantime's reason.
        reason: String,
    },
    /// Longer than [`MAX_DURATION`].
    #[error("duration {text:?} is longer than {MAX_DURATION_TEXT}, the longest a file may give")]
    TooLong {
        /// The text as written.
        text: String,
    },
    /// A timeout of zero.
    #[error("a timeout of zero can never be met")]
    Zero,
}

impl FileDuration {
    /// Reads humantime text; refuses what is not a duration or is longer than [`MAX_DURATION`].
    pub fn parse(text: &str) -> Result<FileDuration, DurationError> {
        let duration = humantime::parse_duration(text).map_err(|e| DurationError::Syntax {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        if duration > MAX_DURATION {
            return Err(DurationError::TooLong {
                text: text.to_owned(),
            });
        }
        Ok(FileDuration(duration))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Timeout {
    /// Reads humantime text as [`FileDuration::parse`] does, and refuses zero as well.
    pub fn parse(text: &str) -> Result<Timeout, DurationError> {
        let duration = FileDuration::parse(text)?.get();
        if duration.is_zero() {
            return Err(DurationError::Zero);
        }
        Ok(Timeout(duration))
    }

    /// The duration, never zero.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Reads a string with `parse`; any other TOML type is refused saying what is expected, so the
/// TOML deserializer places the error at the value.
fn deserialize_text<'de, D, T>(
    deserializer: D,
    parse: fn(&str) -> Result<T, DurationError>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct TextVisitor<T>(fn(&str) -> Result<T, DurationError>);
    impl<T> Visitor<'_> for TextVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a duration string such as "30s", "5m" or "1m30s""#)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.0)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(TextVisitor(parse))
}

impl<'de> Deserialize<'de> for FileDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_text(deserializer, FileDuration::parse)
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_text(deserializer, Timeout::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_text_is_read() {
        assert_eq!(Timeout::parse("1m30s").unwrap().get(), Duration::from_secs(90));
        assert_eq!(FileDuration::parse("0ms").unwrap().get(), Duration::ZERO);
    }

    #[test]
    fn seven_days_is_the_longest() {
        assert_eq!(Timeout::parse("7days").unwrap().get(), MAX_DURATION);
        assert_eq!(
            Timeout::parse("7days 1s").unwrap_err().to_string(),
            r#"duration "7days 1s" is longer than 7 days, the longest a file may give"#
        );
    }

    #[test]
    fn years_beyond_the_clock_are_refused_not_overflowed() {
        assert_eq!(
            Timeout::parse("300000000000y").unwrap_err(),
            DurationError::TooLong {
                text: "300000000000y".to_owned()
            }
        );
        assert!(matches!(
            Timeout::parse("99999999999999999999999y"),
            Err(DurationError::Syntax { .. })
        ));
    }

    #[test]
    fn zero_is_a_duration_but_not_a_timeout() {
        assert!(FileDuration::parse("0s").is_ok());
        assert_eq!(Timeout::parse("0s").unwrap_err(), DurationError::Zero);
    }

    #[test]
    fn garbage_says_how_to_write_one() {
        assert_eq!(
            Timeout::parse("soon").unwrap_err().to_string(),
            r#"invalid duration "soon" (expected number at 0): write e.g. "30s", "5m" or "1m30s""#
        );
    }
}
