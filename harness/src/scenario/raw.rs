//! The scenario file as serde reads it, before the checks that span several keys.
//!
//! Values check themselves while they are deserialized (durations, regexes, non-empty strings),
//! so the TOML deserializer attaches the value's span to their errors and every such error
//! points at the value in the file.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::network::RawNetwork;
use super::step_kind::RawStep;
use crate::config::{Table, Timeout};
use crate::console::Pattern;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub name: Spanned<NonEmpty>,
    pub description: Option<String>,
    pub timeout: Option<Timeout>,
    pub start: Option<StartValue>,
    pub real_time_boot: Option<bool>,
    /// The login recipe of `start = "login"`.
    pub login: Option<Spanned<Table<RawLogin>>>,
    // Array elements are checked after deserializing: errors raised inside an array element
    // carry the span of the whole array, and these should point at the element.
    #[serde(default)]
    pub fatal: Vec<Spanned<String>>,
    #[serde(default)]
    pub fatal_regex: Vec<Spanned<String>>,
    pub steps: Option<Spanned<Vec<Spanned<Table<RawStep>>>>>,
    /// NICs and host forwards (see [`super::network`]).
    pub network: Option<Spanned<Table<RawNetwork>>>,
    /// Commands run at the shell when a step fails.
    #[serde(default)]
    pub on_failure: Vec<Spanned<NonEmpty>>,
    /// What the scenario needs of an image (see [`super::requires`]).
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogin {
    pub user: NonEmpty,
    pub password_env: Option<Spanned<NonEmpty>>,
    pub password: Option<Spanned<String>>,
    pub prompt: Option<ConsoleRegex>,
}

/// A string that must not be empty: an empty pattern matches at once, an empty command or user
/// name is a slip.
pub(crate) struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        Ok(NonEmpty(text))
    }
}

/// A systemd unit's name (`sshd.service`, `getty@ttyS2.service`): only the characters systemd
/// allows in one, so it needs no quoting on a shell's command line.
pub(crate) struct UnitName(pub String);

impl<'de> Deserialize<'de> for UnitName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = NonEmpty::deserialize(deserializer)?.0;
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
        {
            return Err(de::Error::custom(format!(
                "{name:?} is not a systemd unit name: {bad:?} is not allowed in one (letters, digits and `:-_.\\@` are)"
            )));
        }
        Ok(UnitName(name))
    }
}

/// `start = "power-on" | "login" | "uboot" | "<a saved state>"`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StartValue {
    PowerOn,
    Login,
    Uboot,
    Saved(String),
}

impl<'de> Deserialize<'de> for StartValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        match word.as_str() {
            "power-on" => Ok(StartValue::PowerOn),
            "login" => Ok(StartValue::Login),
            "uboot" => Ok(StartValue::Uboot),
            _ => match check_state_name(&word) {
                Ok(()) => Ok(StartValue::Saved(word)),
                Err(why) => Err(de::Error::custom(format!(
                    r#"unknown start state {word:?}: write "power-on" (a cold boot), "login" (a root shell on the booted system), "uboot" (U-Boot's prompt) or the name of a state a `save_state` step saves ({why})"#
                ))),
            },
        }
    }
}

/// The name of a saved state (`save_state = "configured"`): a word other scenarios can name as
/// their `start`, so not one of the built-in start states.
pub(crate) struct StateName(pub String);

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if matches!(name.as_str(), "power-on" | "login" | "uboot") {
            return Err(de::Error::custom(format!(
                "{name:?} is a built-in start state; name the saved state something else"
            )));
        }
        check_state_name(&name).map_err(de::Error::custom)?;
        Ok(StateName(name))
    }
}

/// Saved state names are short words: they name cache entries and appear in reports.
fn check_state_name(name: &str) -> Result<(), String> {
    const LONGEST: usize = 64;
    if name.is_empty() {
        return Err("a state name must not be empty".to_owned());
    }
    if name.len() > LONGEST {
        return Err(format!("a state name has at most {LONGEST} characters"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
    {
        Some(bad) => Err(format!(
            "{bad:?} is not allowed in a state name (letters, digits and `-_.` are)"
        )),
        None => Ok(()),
    }
}

/// A regex matched against console text (`expect_regex`).
pub(crate) struct ConsoleRegex(pub Pattern);

impl<'de> Deserialize<'de> for ConsoleRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = NonEmpty::deserialize(deserializer)?.0;
        console_regex(&source)
            .map(ConsoleRegex)
            .map_err(de::Error::custom)
    }
}

/// Compiles a console pattern regex, or says in one line why it is invalid.
pub(crate) fn console_regex(source: &str) -> Result<Pattern, String> {
    if source.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Pattern::regex(source).map_err(|e| format!("invalid regex: {}", regex_message(&e)))
}

/// A regex checked against a command's whole output (`output`), in multi-line mode so `^` and
/// `$` anchor at each line.
pub(crate) struct OutputRegex(pub regex::Regex);

impl<'de> Deserialize<'de> for OutputRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = NonEmpty::deserialize(deserializer)?.0;
        regex::RegexBuilder::new(&source)
            .multi_line(true)
            .build()
            .map(OutputRegex)
            .map_err(|e| de::Error::custom(format!("invalid regex: {}", regex_message(&e))))
    }
}

/// The regex crate's syntax errors span several lines (pattern, caret, message); the last line
/// is the message, which reads well after `path:line:column:`.
fn regex_message(error: &regex::Error) -> String {
    match error {
        regex::Error::Syntax(text) => {
            let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(text);
            reason.trim().trim_start_matches("error: ").to_owned()
        }
        other => other.to_string(),
    }
}

/// `interrupt_autoboot = true`: `false` would mean "no action", which is no step at all.
pub(crate) struct OnlyTrue;

impl<'de> Deserialize<'de> for OnlyTrue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if bool::deserialize(deserializer)? {
            Ok(OnlyTrue)
        } else {
            Err(de::Error::custom(
                "only `true` makes sense here; remove the step instead",
            ))
        }
    }
}

/// `menu = "LABEL"` or `menu = N`.
pub(crate) enum MenuValue {
    Label(String),
    Number(u32),
}

impl<'de> Deserialize<'de> for MenuValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MenuVisitor;
        impl Visitor<'_> for MenuVisitor {
            type Value = MenuValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an extlinux LABEL name or a menu entry number (1 is the first)")
            }

            fn visit_str<E: de::Error>(self, label: &str) -> Result<MenuValue, E> {
                if label.is_empty() {
                    return Err(E::custom("must not be empty"));
                }
                Ok(MenuValue::Label(label.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<MenuValue, E> {
                match u32::try_from(number) {
                    Ok(number) if number >= 1 => Ok(MenuValue::Number(number)),
                    _ => Err(E::custom(format!(
                        "menu entry {number} does not exist: U-Boot numbers entries from 1"
                    ))),
                }
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<MenuValue, E> {
                self.visit_i64(i64::try_from(number).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_any(MenuVisitor)
    }
}
