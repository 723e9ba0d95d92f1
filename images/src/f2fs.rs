//! f2fs filesystem images from a staging directory, made by `mkfs.f2fs` and filled by
//! `sload.f2fs` in a plain file (no root, no loop device, no mount): NixOS configurations with
//! an f2fs root exist, and `harness inspect` reads their files.

use std::path::Path;
use std::process::Command;

use crate::tool::run;
use crate::BuildError;

/// The same fixed time as the ext4 filesystems', so the same inputs give the same filesystem.
const FAKE_TIME: &str = "1755388800";

/// Makes an f2fs filesystem of `size` bytes labelled `label` in the file `out`, filled from
/// `dir` (owned by root). Its UUID derives from `seed`, its checkpoint seed is fixed.
pub fn make(dir: &Path, label: &str, size: u64, seed: &str, out: &Path) -> Result<(), BuildError> {
    let cwd = out.parent().unwrap_or(Path::new("."));
    let file = std::fs::File::create(out).map_err(BuildError::io("creating", out))?;
    file.set_len(size).map_err(BuildError::io("sizing", out))?;
    drop(file);
    let fs_uuid = crate::ext4::uuid(&format!("{seed}/uuid"));
    run(
        Command::new("mkfs.f2fs")
            .args([
                "-q", "-f", "-r", "-t", "0", "-T", FAKE_TIME, "-l", label, "-U", &fs_uuid,
            ])
            .arg(out),
        cwd,
    )?;
    add(dir, out)
}

/// Adds the tree `dir` to the f2fs filesystem in `out`, merged into its root: directories that
/// exist are kept, with the new files added to them.
pub fn add(dir: &Path, out: &Path) -> Result<(), BuildError> {
    let cwd = out.parent().unwrap_or(Path::new("."));
    run(
        Command::new("sload.f2fs")
            .args(["-T", FAKE_TIME, "-f"])
            .arg(dir)
            .arg(out),
        cwd,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dir/tree`, holding an `/etc/fstab`.
    fn tree_with_fstab(dir: &Path) -> std::path::PathBuf {
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/fstab"), "LABEL=NIXOS_SD / f2fs defaults 0 1\n").unwrap();
        tree
    }

    #[test]
    fn the_filesystem_has_the_f2fs_magic_and_the_label_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree_with_fstab(dir.path());
        let out = dir.path().join("f2fs");
        make(&tree, "NIXOS_SD", 128 << 20, "test", &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.len(), 128 << 20);
        assert_eq!(&bytes[1024..1028], &[0x10, 0x20, 0xF5, 0xF2]);
        assert_eq!(&bytes[1024 + 0x7c..1024 + 0x7c + 4], &[b'N', 0, b'I', 0]);
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree_with_fstab(dir.path());
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        make(&tree, "NIXOS_SD", 128 << 20, "test", &a).unwrap();
        make(&tree, "NIXOS_SD", 128 << 20, "test", &b).unwrap();
        assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    }

    #[test]
    fn an_added_tree_is_merged_into_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, extra) = (dir.path().join("tree"), dir.path().join("extra"));
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/hostname"), "ivy\n").unwrap();
        std::fs::create_dir_all(extra.join("etc")).unwrap();
        std::fs::write(extra.join("etc/fstab"), "fstab\n").unwrap();
        let out = dir.path().join("f2fs");
        make(&tree, "NIXOS_SD", 128 << 20, "test", &out).unwrap();
        add(&extra, &out).unwrap();
        let listing = run(
            Command::new("fsck.f2fs").args(["--dry-run", "-t"]).arg(&out),
            dir.path(),
        )
        .unwrap();
        let names: Vec<&str> = listing
            .lines()
            .filter_map(|l| l.split("-- ").nth(1)?.split(' ').next())
            .collect();
        assert_eq!(names, ["etc", "hostname", "fstab"], "{listing}");
    }
}
