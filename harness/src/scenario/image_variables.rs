//! `${IMAGE_…}` in a scenario file: values the image itself declares, so that a scenario
//! checks any image against what that image says (its hostname, the system of its second
//! menu entry) instead of naming one image's values.
//!
//! The variables are replaced in the file's text before it is read, like `envsubst`. A value
//! is only used when it consists of letters, digits, `.`, `_`, `-` and `/`, so it reads the
//! same inside any TOML string and inside a regex (where `.` also matches itself). A variable the
//! image does not tell is replaced by a placeholder and the scenario is skipped, saying which.
//!
//! | variable | value |
//! | --- | --- |
//! | `IMAGE_HOSTNAME` | the hostname the default entry's system sets |
//! | `IMAGE_ENTRIES` | how many entries the extlinux.conf has |
//! | `IMAGE_ENTRY_<N>_LABEL` | the `LABEL` of menu entry N (1-based) |
//! | `IMAGE_ENTRY_<N>_SYSTEM` | the store name of the system entry N boots (`<hash>-nixos-system-…`) |
//! | `IMAGE_ROOT_DEVICE` | udev's link to the root filesystem the default entry mounts (`/dev/disk/by-label/NIXOS_SD`) |

use std::ops::Range;

use crate::image::facts::ImageFacts;

/// What replaces a variable the image does not tell: text that matches nothing an image says.
pub const PLACEHOLDER: &str = "r2s-image-does-not-tell";

/// A scenario's text with the image's values in place.
#[derive(Debug, PartialEq, Eq)]
pub struct Substituted {
    pub text: String,
    /// For each variable the image does not tell: `${NAME}` and why.
    pub not_told: Vec<String>,
}

/// A `${IMAGE_…}` that names no variable, with its span in the original text.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownVariable {
    pub span: Range<usize>,
    pub message: String,
}

/// Replaces every `${IMAGE_…}` in `text` by the value `facts` give (`None`: no image was
/// given). Other `${…}` (the network steps' `${PORT_TCP_22}`) are left as they are.
pub fn substitute(text: &str, facts: Option<&ImageFacts>) -> Result<Substituted, UnknownVariable> {
    let mut out = String::with_capacity(text.len());
    let mut not_told = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("${IMAGE_") {
        let start = rest + found;
        let Some(length) = text[start..].find('}') else {
            break;
        };
        let end = start + length + 1;
        let name = &text[start + 2..end - 1];
        out.push_str(&text[rest..start]);
        match value(name, facts).map_err(|message| UnknownVariable {
            span: start..end,
            message,
        })? {
            Ok(value) => out.push_str(&value),
            Err(reason) => {
                out.push_str(PLACEHOLDER);
                let said = format!("${{{name}}}: {reason}");
                if !not_told.contains(&said) {
                    not_told.push(said);
                }
            }
        }
        rest = end;
    }
    out.push_str(&text[rest..]);
    Ok(Substituted { text: out, not_told })
}

/// The value of variable `name`: `Err` for a name that is no variable; `Ok(Err(reason))` when
/// the image does not tell it.
fn value(name: &str, facts: Option<&ImageFacts>) -> Result<Result<String, String>, String> {
    let told = |value: Option<String>, what: &str| -> Result<String, String> {
        match (facts, value) {
            (None, _) => Err("no image was given to tell (pass --image)".to_owned()),
            (Some(_), Some(value)) if quotable(&value) => Ok(value),
            (Some(_), Some(value)) => Err(format!("{what} {value:?} has characters a scenario cannot quote")),
            (Some(facts), None) if facts.unread.is_empty() => Err(format!("the image does not tell {what}")),
            (Some(facts), None) => Err(format!(
                "the image does not tell {what}: {}",
                facts.unread.join("; ")
            )),
        }
    };
    if name == "IMAGE_HOSTNAME" {
        return Ok(told(facts.and_then(|f| f.hostname.clone()), "its hostname"));
    }
    if name == "IMAGE_ROOT_DEVICE" {
        return Ok(told(facts.and_then(|f| f.root_device.clone()), "its root device"));
    }
    if name == "IMAGE_ENTRIES" {
        return Ok(told(facts.map(|f| f.entries.len().to_string()), "its entries"));
    }
    let entry = name.strip_prefix("IMAGE_ENTRY_").and_then(|rest| {
        let (number, field) = rest.split_once('_')?;
        let number: usize = number.parse().ok().filter(|n| *n >= 1)?;
        matches!(field, "LABEL" | "SYSTEM").then_some((number, field))
    });
    let Some((number, field)) = entry else {
        return Err(format!(
            "unknown variable ${{{name}}}: the image's variables are ${{IMAGE_HOSTNAME}}, ${{IMAGE_ROOT_DEVICE}}, \
             ${{IMAGE_ENTRIES}}, ${{IMAGE_ENTRY_<N>_LABEL}} and ${{IMAGE_ENTRY_<N>_SYSTEM}}"
        ));
    };
    let Some(facts) = facts else {
        return Ok(told(None, ""));
    };
    let Some(entry) = facts.entries.get(number - 1) else {
        let have = facts.entries.len();
        return Ok(Err(format!(
            "the image's extlinux.conf has {have} entr{}, no entry {number}",
            if have == 1 { "y" } else { "ies" }
        )));
    };
    Ok(match field {
        "LABEL" => told(Some(entry.label.clone()), &format!("entry {number}'s label")),
        _ => told(
            entry.system.clone(),
            &format!("entry {number}'s system (its init= names none)"),
        ),
    })
}

/// Letters, digits, `.`, `_`, `-` and `/`: the same text in any TOML string, in a regex and
/// as one word of a shell command.
fn quotable(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::facts::EntryFacts;

    fn facts() -> ImageFacts {
        ImageFacts {
            entries: vec![
                EntryFacts {
                    label: "nixos-default".to_owned(),
                    system: Some("abc-nixos-system-ivy-25.05".to_owned()),
                    nixos: Some(true),
                },
                EntryFacts {
                    label: "nixos-2-default".to_owned(),
                    system: None,
                    nixos: Some(false),
                },
            ],
            hostname: Some("ivy".to_owned()),
            systemd: Some(true),
            units: Vec::new(),
            autologin: None,
            root_device: Some("/dev/disk/by-label/NIXOS_SD_USB".to_owned()),
            unread: Vec::new(),
        }
    }

    #[test]
    fn told_values_replace_their_variables_and_other_variables_stay() {
        let text =
            "run = \"hostname\"\noutput = \"^${IMAGE_HOSTNAME}$\"\nmenu = \"${IMAGE_ENTRY_2_LABEL}\"\n\
                    x = \"${IMAGE_ENTRY_1_SYSTEM} of ${IMAGE_ENTRIES}\"\nhost = \"nc ${PORT_TCP_22}\"\n\
                    root = \"${IMAGE_ROOT_DEVICE}\"\n";
        let done = substitute(text, Some(&facts())).unwrap();
        assert_eq!(
            done.text,
            "run = \"hostname\"\noutput = \"^ivy$\"\nmenu = \"nixos-2-default\"\n\
             x = \"abc-nixos-system-ivy-25.05 of 2\"\nhost = \"nc ${PORT_TCP_22}\"\n\
             root = \"/dev/disk/by-label/NIXOS_SD_USB\"\n"
        );
        assert!(done.not_told.is_empty());
    }

    #[test]
    fn what_the_image_does_not_tell_becomes_the_placeholder_and_is_named_once() {
        let text = "${IMAGE_ENTRY_2_SYSTEM} ${IMAGE_ENTRY_3_LABEL} ${IMAGE_ENTRY_3_LABEL}";
        let done = substitute(text, Some(&facts())).unwrap();
        assert_eq!(done.text, format!("{PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}"));
        assert_eq!(
            done.not_told,
            [
                "${IMAGE_ENTRY_2_SYSTEM}: the image does not tell entry 2's system (its init= names none)",
                "${IMAGE_ENTRY_3_LABEL}: the image's extlinux.conf has 2 entries, no entry 3",
            ]
        );
    }

    #[test]
    fn without_an_image_nothing_is_told() {
        let done = substitute("^${IMAGE_HOSTNAME}$", None).unwrap();
        assert_eq!(done.text, format!("^{PLACEHOLDER}$"));
        assert_eq!(
            done.not_told,
            ["${IMAGE_HOSTNAME}: no image was given to tell (pass --image)"]
        );
    }

    #[test]
    fn a_value_that_cannot_be_quoted_is_not_used() {
        let mut odd = facts();
        odd.hostname = Some("a\"b".to_owned());
        let done = substitute("${IMAGE_HOSTNAME}", Some(&odd)).unwrap();
        assert_eq!(done.text, PLACEHOLDER);
        assert_eq!(
            done.not_told,
            ["${IMAGE_HOSTNAME}: its hostname \"a\\\"b\" has characters a scenario cannot quote"]
        );
    }

    #[test]
    fn an_unknown_image_variable_is_an_error_at_its_place() {
        let error = substitute("a = \"${IMAGE_NAME}\"", Some(&facts())).unwrap_err();
        assert_eq!(error.span, 5..18);
        assert!(
            error.message.starts_with("unknown variable ${IMAGE_NAME}: "),
            "{}",
            error.message
        );
        assert!(substitute("${IMAGE_ENTRY_0_LABEL}", None).is_err());
        assert!(substitute("${IMAGE_ENTRY_1_KERNEL}", None).is_err());
    }
}
