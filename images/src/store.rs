//! The fake Nix store the fixtures carry: store paths with fixed hashes in Nix's base-32 alphabet,
//! and the three system generations.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// Nix's base-32 alphabet (no e, o, t, u).
const NIX_BASE32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// The machine name the fixtures boot as (the R2S from the reference write-up).
pub const HOSTNAME: &str = "ivy";

/// One NixOS system generation in the fixture's store and boot menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Profile generation number (`system-N-link`).
    pub number: u32,
    /// The NixOS version label, e.g. `25.05.20250817.48f4c98`.
    pub version: &'static str,
    /// The build date shown in the boot menu, `YYYY-MM-DD`.
    pub date: &'static str,
    /// The system's store path, `/nix/store/<hash>-nixos-system-ivy-<version>`.
    pub store_path: String,
}

impl Generation {
    /// The path of the stage-2 init, what the boot entry's `init=` names.
    pub fn init(&self) -> String {
        format!("{}/init", self.store_path)
    }
}

/// The generations, newest (current, booted by default) first.
pub fn generations() -> &'static [Generation] {
    static GENERATIONS: LazyLock<Vec<Generation>> = LazyLock::new(|| {
        [
            (3, "25.05.20250817.48f4c98", "2025-08-17"),
            (2, "25.05.20250701.1a2b3c4", "2025-07-01"),
            (1, "25.05.20250520.9f8e7d6", "2025-05-20"),
        ]
        .into_iter()
        .map(|(number, version, date)| Generation {
            number,
            version,
            date,
            store_path: store_path(&format!("nixos-system-{HOSTNAME}-{version}")),
        })
        .collect()
    });
    &GENERATIONS
}

/// The profile links below `dir` (a root filesystem being staged): `system-N-link` to each
/// generation's store path and `system` to the first (current) one's link, as
/// `nix-env --set` leaves them.
pub fn link_profiles(dir: &std::path::Path, generations: &[Generation]) -> Result<(), crate::BuildError> {
    let profiles = dir.join("nix/var/nix/profiles");
    for generation in generations {
        crate::staging::link(
            &profiles.join(format!("system-{}-link", generation.number)),
            &generation.store_path,
        )?;
    }
    crate::staging::link(
        &profiles.join("system"),
        &format!("system-{}-link", generations[0].number),
    )
}

/// `/nix/store/<hash>-<name>` with a hash that is a fixed function of `name`, shaped like Nix's
/// (160 bits, base 32): fixtures are reproducible and their paths look real.
pub fn store_path(name: &str) -> String {
    format!("/nix/store/{}-{name}", store_hash(name))
}

/// The 32-character hash part of [`store_path`].
pub fn store_hash(name: &str) -> String {
    let digest = Sha256::digest(format!("r2s-fixture:{name}").as_bytes());
    // Nix folds its sha256 to 160 bits by XOR before printing.
    let mut folded = [0u8; 20];
    for (i, byte) in digest.iter().enumerate() {
        folded[i % 20] ^= byte;
    }
    nix_base32(&folded)
}

/// Nix's base-32 rendering: least significant 5 bits of the whole number printed last.
fn nix_base32(bytes: &[u8]) -> String {
    let len = (bytes.len() * 8 - 1) / 5 + 1;
    (0..len)
        .rev()
        .map(|n| {
            let bit = n * 5;
            let (i, j) = (bit / 8, bit % 8);
            let low = u16::from(bytes[i]) >> j;
            let high = bytes.get(i + 1).map_or(0, |&b| u16::from(b) << (8 - j));
            char::from(NIX_BASE32[usize::from((low | high) & 0x1f)])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_of_twenty_bytes_has_thirty_two_chars() {
        assert_eq!(nix_base32(&[0u8; 20]), "0".repeat(32));
        assert_eq!(nix_base32(&[0xff; 20]), "z".repeat(32));
    }

    #[test]
    fn base32_prints_lowest_bits_last() {
        let mut bytes = [0u8; 20];
        bytes[0] = 1;
        assert_eq!(nix_base32(&bytes), format!("{}1", "0".repeat(31)));
    }

    #[test]
    fn store_hashes_use_only_the_nix_alphabet() {
        for generation in generations() {
            let hash = &generation.store_path["/nix/store/".len()..][..32];
            assert!(hash.bytes().all(|c| NIX_BASE32.contains(&c)), "{hash}");
        }
    }

    #[test]
    fn generations_are_newest_first_with_distinct_paths() {
        let gens = generations();
        assert_eq!(gens.iter().map(|g| g.number).collect::<Vec<_>>(), [3, 2, 1]);
        assert!(gens[0]
            .store_path
            .ends_with("-nixos-system-ivy-25.05.20250817.48f4c98"));
        assert_ne!(gens[0].store_path, gens[1].store_path);
        assert_eq!(gens[2].init(), format!("{}/init", gens[2].store_path));
    }

    #[test]
    fn store_path_is_a_fixed_function_of_the_name() {
        assert_eq!(store_path("linux-6.1"), store_path("linux-6.1"));
        assert_ne!(store_hash("linux-6.1"), store_hash("initrd-linux-6.1"));
    }
}
