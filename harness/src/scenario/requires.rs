//! What a scenario needs of an image (`requires = ["generations >= 2", "systemd"]`), and
//! whether an image meets it. A scenario whose need is unmet is skipped, with the reason, and
//! counted apart: it neither passes nor fails an image it does not apply to.

use std::fmt;

use crate::image::facts::ImageFacts;

/// One need of a scenario, as its `requires` list says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `generations >= N` (also `>`, `==`, `<=`, `<`): the number of extlinux.conf entries.
    Generations(Comparison, usize),
    /// `systemd`: the image's system runs systemd.
    Systemd,
    /// `nixos`: every system the image's extlinux.conf boots is a NixOS system (its store path
    /// holds `nixos-version`), so the booted one is recorded at `/run/booted-system`.
    NixOs,
}

/// How a count is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    AtLeast,
    MoreThan,
    Exactly,
    AtMost,
    FewerThan,
}

impl Comparison {
    const OPERATORS: [(&'static str, Comparison); 5] = [
        (">=", Comparison::AtLeast),
        ("<=", Comparison::AtMost),
        ("==", Comparison::Exactly),
        (">", Comparison::MoreThan),
        ("<", Comparison::FewerThan),
    ];

    fn holds(self, have: usize, want: usize) -> bool {
        match self {
            Comparison::AtLeast => have >= want,
            Comparison::MoreThan => have > want,
            Comparison::Exactly => have == want,
            Comparison::AtMost => have <= want,
            Comparison::FewerThan => have < want,
        }
    }

    fn operator(self) -> &'static str {
        Comparison::OPERATORS
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(op, _)| op)
    }
}

/// Every form a requirement takes, for error messages.
pub const FORMS: &str = "\"generations >= N\" (or >, ==, <=, <), \"systemd\" and \"nixos\"";

impl Requirement {
    /// Reads one entry of a `requires` list; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let text = text.trim();
        if text == "systemd" {
            return Ok(Requirement::Systemd);
        }
        if text == "nixos" {
            return Ok(Requirement::NixOs);
        }
        if let Some(rest) = text.strip_prefix("generations") {
            let rest = rest.trim_start();
            let (operator, comparison) = Comparison::OPERATORS
                .iter()
                .find(|(op, _)| rest.starts_with(op))
                .ok_or_else(|| format!("`{text}` compares generations without >=, >, ==, <= or <"))?;
            let number = rest[operator.len()..].trim();
            let count = number
                .parse::<usize>()
                .map_err(|_| format!("`{text}`: {number:?} is not a count of generations"))?;
            return Ok(Requirement::Generations(*comparison, count));
        }
        Err(format!(
            "unknown requirement `{text}`: the requirements are {FORMS}"
        ))
    }

    /// Why `facts` (the image's, `None` when no image was given) do not meet this; `None`
    /// when they do.
    pub fn unmet(&self, facts: Option<&ImageFacts>) -> Option<String> {
        let Some(facts) = facts else {
            return Some(format!(
                "requires {self}, and no image was given to tell (pass --image)"
            ));
        };
        match *self {
            Requirement::Generations(comparison, want) => {
                let have = facts.entries.len();
                (!comparison.holds(have, want)).then(|| {
                    format!(
                        "requires {self}; the image's extlinux.conf has {have} entr{}",
                        if have == 1 { "y" } else { "ies" }
                    )
                })
            }
            Requirement::Systemd => match facts.systemd {
                Some(true) => None,
                Some(false) => Some("requires systemd; the image's system does not run it".to_owned()),
                None => Some(format!(
                    "requires systemd, which the image does not tell: {}",
                    facts.unread.join("; ")
                )),
            },
            Requirement::NixOs => nixos_unmet(facts),
        }
    }
}

/// Why not every entry of the image boots a NixOS system, if one does not.
fn nixos_unmet(facts: &ImageFacts) -> Option<String> {
    if facts.entries.is_empty() {
        return Some("requires nixos; the image has no extlinux.conf entry to tell".to_owned());
    }
    for (number, entry) in (1..).zip(&facts.entries) {
        let label = &entry.label;
        match (entry.nixos, &entry.system) {
            (Some(true), _) => {}
            (Some(false), None) => {
                return Some(format!(
                    "requires nixos; entry {number} ({label}) has no init= in the Nix store, so it boots no NixOS system"
                ))
            }
            (Some(false), Some(system)) => {
                return Some(format!(
                    "requires nixos; entry {number} ({label}) boots /nix/store/{system}, which holds no nixos-version: \
                     not a NixOS system, so nothing records it at /run/booted-system"
                ))
            }
            (None, _) => {
                return Some(format!(
                    "requires nixos, which the image does not tell: {}",
                    facts.unread.join("; ")
                ))
            }
        }
    }
    None
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Generations(comparison, count) => {
                write!(f, "generations {} {count}", comparison.operator())
            }
            Requirement::Systemd => f.write_str("systemd"),
            Requirement::NixOs => f.write_str("nixos"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::facts::EntryFacts;

    fn facts(entries: usize, systemd: Option<bool>) -> ImageFacts {
        ImageFacts {
            entries: (0..entries)
                .map(|i| EntryFacts {
                    label: format!("nixos-{i}"),
                    system: None,
                    nixos: Some(false),
                })
                .collect(),
            systemd,
            ..ImageFacts::default()
        }
    }

    #[test]
    fn every_form_reads_and_displays_as_written() {
        for text in [
            "generations >= 2",
            "generations > 1",
            "generations == 1",
            "generations <= 3",
            "generations < 4",
            "systemd",
            "nixos",
        ] {
            assert_eq!(Requirement::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Requirement::parse("generations>=2"),
            Ok(Requirement::Generations(Comparison::AtLeast, 2))
        );
    }

    #[test]
    fn unknown_or_malformed_requirements_say_what_is_wrong() {
        assert_eq!(
            Requirement::parse("networkd").unwrap_err(),
            format!("unknown requirement `networkd`: the requirements are {FORMS}")
        );
        assert_eq!(
            Requirement::parse("generations 2").unwrap_err(),
            "`generations 2` compares generations without >=, >, ==, <= or <"
        );
        assert_eq!(
            Requirement::parse("generations >= two").unwrap_err(),
            "`generations >= two`: \"two\" is not a count of generations"
        );
    }

    #[test]
    fn generations_are_the_extlinux_entries() {
        let two = Requirement::parse("generations >= 2").unwrap();
        assert_eq!(two.unmet(Some(&facts(3, None))), None);
        assert_eq!(
            two.unmet(Some(&facts(1, None))).unwrap(),
            "requires generations >= 2; the image's extlinux.conf has 1 entry"
        );
    }

    #[test]
    fn systemd_is_met_only_when_the_image_says_it_runs_it() {
        assert_eq!(Requirement::Systemd.unmet(Some(&facts(1, Some(true)))), None);
        assert_eq!(
            Requirement::Systemd.unmet(Some(&facts(1, Some(false)))).unwrap(),
            "requires systemd; the image's system does not run it"
        );
        assert!(Requirement::Systemd.unmet(Some(&facts(1, None))).is_some());
    }

    #[test]
    fn nixos_is_met_only_when_every_entry_boots_a_system_holding_nixos_version() {
        let mut image = facts(2, Some(true));
        for (n, entry) in image.entries.iter_mut().enumerate() {
            entry.system = Some(format!("h{n}-nixos-system-r2s"));
            entry.nixos = Some(true);
        }
        assert_eq!(Requirement::NixOs.unmet(Some(&image)), None);
        image.entries[1].nixos = Some(false);
        assert_eq!(
            Requirement::NixOs.unmet(Some(&image)).unwrap(),
            "requires nixos; entry 2 (nixos-1) boots /nix/store/h1-nixos-system-r2s, which holds no \
             nixos-version: not a NixOS system, so nothing records it at /run/booted-system"
        );
        image.entries[0].system = None;
        image.entries[0].nixos = Some(false);
        assert_eq!(
            Requirement::NixOs.unmet(Some(&image)).unwrap(),
            "requires nixos; entry 1 (nixos-0) has no init= in the Nix store, so it boots no NixOS system"
        );
        image.entries[0].nixos = None;
        image.unread = vec!["no filesystem is the root device".to_owned()];
        assert_eq!(
            Requirement::NixOs.unmet(Some(&image)).unwrap(),
            "requires nixos, which the image does not tell: no filesystem is the root device"
        );
    }

    #[test]
    fn without_an_image_every_requirement_is_unmet_saying_so() {
        assert_eq!(
            Requirement::Systemd.unmet(None).unwrap(),
            "requires systemd, and no image was given to tell (pass --image)"
        );
    }
}
