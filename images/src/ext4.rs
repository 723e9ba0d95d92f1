//! ext4 filesystem images from a staging directory, made by `mke2fs -d` into a plain file (no
//! root, no loop device, no mount).

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::tool::run;
use crate::BuildError;

/// 2025-08-17 00:00 UTC, the current generation's date: superblock times are fixed so the same
/// inputs give the same filesystem.
const FAKE_TIME: &str = "1755388800";

/// Makes an ext4 filesystem of `size` bytes labelled `label` in the file `out`, filled from
/// `dir`. UUID and directory hash seed derive from `seed`, so rebuilds give the same bytes.
pub fn make(dir: &Path, label: &str, size: u64, seed: &str, out: &Path) -> Result<(), BuildError> {
    let fs_uuid = uuid(&format!("{seed}/uuid"));
    let hash_seed = uuid(&format!("{seed}/hash_seed"));
    let cwd = out.parent().unwrap_or(Path::new("."));
    run(
        Command::new("mke2fs")
            .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
            .args(["-q", "-F", "-t", "ext4", "-L", label, "-U", &fs_uuid])
            .arg("-E")
            .arg(format!("root_owner=0:0,hash_seed={hash_seed},nodiscard"))
            .arg("-d")
            .arg(dir)
            .arg(out)
            .arg(format!("{}k", size / 1024)),
        cwd,
    )?;
    Ok(())
}

/// A UUID in text form that is a fixed function of `seed`.
pub(crate) fn uuid(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let hex = crate::hex::lower_hex(&d[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_fixed_and_well_formed() {
        let u = uuid("NIXOS_SD");
        assert_eq!(u, uuid("NIXOS_SD"));
        assert_ne!(u, uuid("NIXOS_BOOT"));
        let groups: Vec<usize> = u.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
