//! Boot stages: the built-in ones the runner recognises on the console, and the names a
//! scenario gives its own (`stage = "…"` on a step). Written as their names everywhere (the
//! report, the timings files, transcripts).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A stage of a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stage {
    /// From power-on: the bootloader, up to the extlinux menu.
    Uboot,
    /// U-Boot's extlinux menu.
    Menu,
    /// From "Starting kernel ..." to NixOS's stage 1.
    Kernel,
    /// NixOS stage 1 (the initrd).
    Stage1,
    /// Another system's initrd: initramfs-tools', dracut's, or systemd in an initrd.
    Initramfs,
    /// NixOS stage 2, up to systemd (or, without systemd, the login prompt).
    Stage2,
    /// systemd, from its `Welcome to …!` to the getty.
    Systemd,
    /// From the getty starting to its login prompt.
    Getty,
    /// The login prompt and logging in.
    Login,
    /// The scenario's own commands.
    Body,
    /// From starting a restored snapshot to its shell answering.
    Restore,
    /// A stage a scenario file names.
    Named(String),
}

impl Stage {
    /// The boot stages in order; the first starts at power-on.
    pub const BOOT: [Stage; 10] = [
        Stage::Uboot,
        Stage::Menu,
        Stage::Kernel,
        Stage::Stage1,
        Stage::Initramfs,
        Stage::Stage2,
        Stage::Systemd,
        Stage::Getty,
        Stage::Login,
        Stage::Body,
    ];

    /// The stage called `name`: a built-in one, or a scenario's own.
    pub fn named(name: &str) -> Stage {
        match name {
            "uboot" => Stage::Uboot,
            "menu" => Stage::Menu,
            "kernel" => Stage::Kernel,
            "stage-1" => Stage::Stage1,
            "initramfs" => Stage::Initramfs,
            "stage-2" => Stage::Stage2,
            "systemd" => Stage::Systemd,
            "getty" => Stage::Getty,
            "login" => Stage::Login,
            "body" => Stage::Body,
            "restore" => Stage::Restore,
            other => Stage::Named(other.to_owned()),
        }
    }

    /// Its name, as reports write it.
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Uboot => "uboot",
            Stage::Menu => "menu",
            Stage::Kernel => "kernel",
            Stage::Stage1 => "stage-1",
            Stage::Initramfs => "initramfs",
            Stage::Stage2 => "stage-2",
            Stage::Systemd => "systemd",
            Stage::Getty => "getty",
            Stage::Login => "login",
            Stage::Body => "body",
            Stage::Restore => "restore",
            Stage::Named(name) => name,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Stage, D::Error> {
        Ok(Stage::named(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_stage_is_read_back_from_its_name_and_others_are_a_scenarios_own() {
        for stage in Stage::BOOT.iter().chain([&Stage::Restore]) {
            assert_eq!(&Stage::named(stage.as_str()), stage);
        }
        assert_eq!(Stage::named("network"), Stage::Named("network".to_owned()));
        assert_eq!(
            serde_json::to_string(&[Stage::Stage1, Stage::named("network")]).unwrap(),
            r#"["stage-1","network"]"#
        );
    }
}
