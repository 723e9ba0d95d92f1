//! The fixtures: one good image and broken variants that each differ from it in one way.

use crate::FixtureInfo;

/// Every fixture, the good one first.
pub const FIXTURES: &[FixtureInfo] = &[
    FixtureInfo {
        name: "r2s-busybox",
        description: "R2S SD-card layout (RK3328 idbloader/u-boot.itb, GPT, ext4 NIXOS_BOOT + NIXOS_SD) with a \
                      NixOS extlinux menu of three generations; boots through NixOS-style stage 1 and stage 2 \
                      to `ivy login:` (root password in ROOT_PASSWORD)",
    },
    FixtureInfo {
        name: "broken-stage1",
        description: "root filesystem labelled `nixos` instead of NIXOS_SD: stage 1 times out waiting for \
                      /dev/disk/by-label/NIXOS_SD, prints NixOS's \"An error occurred in stage 1\" dialog and \
                      waits for a key forever",
    },
    FixtureInfo {
        name: "broken-panic",
        description: "the default entry's APPEND adds `rdinit=/bin/false`: the initrd's init exits and the \
                      kernel panics with \"Attempted to kill init!\"; older generations still boot",
    },
    FixtureInfo {
        name: "broken-initrd-missing",
        description: "the initrd every extlinux entry names is missing from NIXOS_BOOT: U-Boot prints \
                      \"Skipping nixos-default for failure retrieving initrd\" (and for each other entry) and \
                      falls through to its other boot targets",
    },
];

/// How a fixture differs from the good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// Nothing: the good image.
    None,
    /// The root filesystem carries this label instead of `NIXOS_SD`.
    RootLabel(&'static str),
    /// The default boot entry's APPEND ends with these parameters.
    DefaultEntryParams(&'static str),
    /// The initrd file is left off NIXOS_BOOT (extlinux.conf still names it).
    InitrdMissing,
}

/// The breakage of fixture `name`, `None` for names that are not fixtures.
pub fn breakage(name: &str) -> Option<Breakage> {
    Some(match name {
        "r2s-busybox" => Breakage::None,
        "broken-stage1" => Breakage::RootLabel("nixos"),
        "broken-panic" => Breakage::DefaultEntryParams("rdinit=/bin/false"),
        "broken-initrd-missing" => Breakage::InitrdMissing,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_fixture_has_a_recipe() {
        for fixture in FIXTURES {
            assert!(breakage(fixture.name).is_some(), "{}", fixture.name);
        }
    }

    #[test]
    fn default_fixture_is_the_good_one() {
        assert_eq!(breakage(crate::DEFAULT_FIXTURE), Some(Breakage::None));
        assert_eq!(FIXTURES[0].name, crate::DEFAULT_FIXTURE);
    }

    #[test]
    fn unknown_names_have_no_recipe() {
        assert_eq!(breakage("r2s-nope"), None);
    }
}
