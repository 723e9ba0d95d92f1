//! Where QEMU's U-Boot comes from when `--firmware` does not say: `R2S_FIRMWARE`, then the
//! places the distributions install U-Boot's `qemu_arm64` build — Debian's `u-boot-qemu`
//! package, and nixpkgs' `ubootQemuAarch64` (its `u-boot.bin` at the top of its output, so at
//! the top of any Nix profile holding it).

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable naming the firmware, as `--firmware` does.
pub const FIRMWARE_ENV: &str = "R2S_FIRMWARE";

/// Where Debian's `u-boot-qemu` installs the `qemu_arm64` build.
pub const DEBIAN_FIRMWARE: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// The file nixpkgs' `ubootQemuAarch64` installs at the top of its output.
const NIX_FIRMWARE_FILE: &str = "u-boot.bin";

/// The firmware to boot: `explicit` (from `--firmware`), else [`FIRMWARE_ENV`] when set, else
/// the first of [`candidates`] that is a file. When none is, Debian's path, which QEMU's start
/// then reports as missing with what to install.
pub fn find(explicit: Option<PathBuf>) -> PathBuf {
    find_in(explicit, |name| std::env::var_os(name))
}

/// [`find`], reading the environment through `env`.
pub fn find_in(explicit: Option<PathBuf>, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    if let Some(path) = explicit {
        return path;
    }
    if let Some(path) = env(FIRMWARE_ENV).filter(|value| !value.is_empty()) {
        return path.into();
    }
    candidates(&env)
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| DEBIAN_FIRMWARE.into())
}

/// The known places, in the order they are tried: Debian's path, then each Nix profile's
/// `u-boot.bin`, the most specific profile first (`NIX_PROFILES` lists them from the least
/// specific, the system's, to the user's), then `~/.nix-profile` for a shell where
/// `NIX_PROFILES` is not set.
pub fn candidates(env: &impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut places = vec![PathBuf::from(DEBIAN_FIRMWARE)];
    if let Some(profiles) = env("NIX_PROFILES") {
        let profiles = profiles.to_string_lossy().into_owned();
        places.extend(
            profiles
                .split_whitespace()
                .rev()
                .map(|profile| PathBuf::from(profile).join(NIX_FIRMWARE_FILE)),
        );
    }
    if let Some(home) = env("HOME").filter(|home| !home.is_empty()) {
        let in_home = PathBuf::from(home).join(".nix-profile").join(NIX_FIRMWARE_FILE);
        if !places.contains(&in_home) {
            places.push(in_home);
        }
    }
    places
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn an_explicit_firmware_wins_over_the_environment() {
        let env = env_of(&[(FIRMWARE_ENV, "/from/env/u-boot.bin")]);
        assert_eq!(
            find_in(Some("/given/u-boot.bin".into()), env),
            Path::new("/given/u-boot.bin")
        );
    }

    #[test]
    fn the_environment_names_the_firmware_even_when_it_is_missing() {
        let env = env_of(&[(FIRMWARE_ENV, "/nonexistent/u-boot.bin")]);
        assert_eq!(find_in(None, env), Path::new("/nonexistent/u-boot.bin"));
    }

    #[test]
    fn the_places_are_debians_then_the_nix_profiles_most_specific_first() {
        let env = env_of(&[
            (
                "NIX_PROFILES",
                "/nix/var/nix/profiles/default /home/u/.nix-profile",
            ),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            candidates(&env),
            [
                PathBuf::from(DEBIAN_FIRMWARE),
                "/home/u/.nix-profile/u-boot.bin".into(),
                "/nix/var/nix/profiles/default/u-boot.bin".into(),
            ]
        );
    }

    #[test]
    fn a_nix_profile_holding_the_firmware_is_where_it_is_looked_for() {
        let profile = tempfile::tempdir().unwrap();
        std::fs::write(profile.path().join("u-boot.bin"), b"firmware").unwrap();
        let profiles = format!("/nonexistent/profile {}", profile.path().display());
        let pairs = [("NIX_PROFILES", profiles.as_str())];
        let env = env_of(&pairs);
        let after_debian: Vec<PathBuf> = candidates(&env)
            .into_iter()
            .skip(1)
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(after_debian, [profile.path().join("u-boot.bin")]);
    }
}
