//! The systemd fixtures' systemd initrd: systemd as the initrd's `/init`, as NixOS's systemd
//! stage 1 (the default from NixOS 26.05) has it, made by dracut from the finished tree
//! ([`crate::rootfs`]) under PRoot. dracut is Debian's `dracut-core`, unpacked beside the tree
//! and bound into it, never installed in it: the tree is shared and stays as it was.
//!
//! The initrd holds only systemd's own dracut modules (systemd, its initrd targets, udev,
//! journald, the kernel modules), no dracut hook: it finds its root as NixOS's does, from its
//! `/etc/fstab` (`recipes/systemd/initrd-fstab`), and greets as `… (Initrd)!`
//! (`recipes/systemd/initrd-release`). It is kept in the shared cache beside the tree under a key
//! of the tree's key, the dracut package and its recipes.

use std::path::{Path, PathBuf};

use crate::cache::KeyHash;
use crate::debian::Unpacked;
use crate::recipe::{self, RecipeFile};
use crate::rootfs::Tree;
use crate::staging::put;
use crate::{debootstrap, shared, BuildError};

/// Bumped whenever a change to how the initrd is made (this file) changes it.
const FORMAT: u32 = 1;
/// Directory names of finished systemd initrds in the shared cache start with this.
const DIR_PREFIX: &str = "debian-dracut-initrd-";
/// The package dracut comes from.
pub const PACKAGE: &str = "dracut-core";
/// Where the work directory is bound inside the tree (an empty directory in every Debian tree).
const WORK_INSIDE: &str = "/mnt";
/// The initrd's file name in its directory.
const FILE: &str = "systemd.img";

/// The recipe files the initrd is made from (part of its key); its modules are the systemd
/// fixtures' initramfs-tools list: every QEMU disk bus and the R2S's SD card.
const RECIPES: &[RecipeFile] = &[
    recipe::SYSTEMD_MAKE_DRACUT_INITRD,
    recipe::SYSTEMD_INITRD_RELEASE,
    recipe::SYSTEMD_INITRD_FSTAB,
    recipe::SYSTEMD_INITRD_MODULES,
];

/// The systemd initrd made from `tree` with `dracut` (the unpacked [`PACKAGE`]) in `shared` (the
/// shared cache directory, whose lock the caller holds): reused when one with the same key
/// exists, else made.
pub fn ensure(shared: &Path, dracut: &Unpacked, tree: &Tree) -> Result<PathBuf, BuildError> {
    let dir = shared::ensure_keyed_dir(
        shared,
        DIR_PREFIX,
        &key(&tree.key, &dracut.deb_name),
        |out, work| {
            std::fs::create_dir(out).map_err(BuildError::io("creating directory", out))?;
            make(tree, dracut, work, out)
        },
    )?;
    Ok(dir.join(FILE))
}

/// Hex SHA-256 over [`FORMAT`], the tree's key, dracut's .deb name and the recipe files.
fn key(tree_key: &str, dracut_deb: &str) -> String {
    let mut key = KeyHash::new();
    key.field(&FORMAT.to_le_bytes())
        .field(tree_key.as_bytes())
        .field(dracut_deb.as_bytes())
        .recipes(RECIPES);
    key.hex()
}

/// Makes the initrd of `tree` with `dracut` in `work` (bound into the tree) and moves it into
/// `out`.
fn make(tree: &Tree, dracut: &Unpacked, work: &Path, out: &Path) -> Result<(), BuildError> {
    let script = recipe::SYSTEMD_MAKE_DRACUT_INITRD.render(&[("release", &tree.release)]);
    put(&work.join("make-initrd.sh"), script.as_bytes(), 0o755)?;
    for (name, file) in [
        ("initrd-release", recipe::SYSTEMD_INITRD_RELEASE),
        ("initrd-fstab", recipe::SYSTEMD_INITRD_FSTAB),
        ("initrd-modules", recipe::SYSTEMD_INITRD_MODULES),
    ] {
        put(&work.join(name), file.text.as_bytes(), 0o644)?;
    }
    let dracut_inside = format!("{WORK_INSIDE}/dracut");
    std::fs::create_dir(work.join("dracut")).map_err(BuildError::io("creating directory", work))?;
    debootstrap::in_target(
        &tree.root,
        &[(work, WORK_INSIDE), (&dracut.root, &dracut_inside)],
        &[],
        &["/bin/sh", &format!("{WORK_INSIDE}/make-initrd.sh")],
        work,
    )?;
    let (from, to) = (work.join(FILE), out.join(FILE));
    std::fs::rename(&from, &to).map_err(BuildError::io("renaming into", &to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_the_tree_and_the_dracut_package() {
        assert_eq!(
            key("tree-a", "dracut-core_059-4_arm64.deb"),
            key("tree-a", "dracut-core_059-4_arm64.deb")
        );
        assert_ne!(
            key("tree-a", "dracut-core_059-4_arm64.deb"),
            key("tree-b", "dracut-core_059-4_arm64.deb")
        );
        assert_ne!(
            key("tree-a", "dracut-core_059-4_arm64.deb"),
            key("tree-a", "dracut-core_060-1_arm64.deb")
        );
    }

    /// Not a prefix of the initramfs-tools pair's, whose builds remove other keys' directories.
    #[test]
    fn its_directories_are_not_taken_for_the_initramfs_pairs() {
        assert!(!DIR_PREFIX.starts_with("debian-initrds-"));
        assert!(!DIR_PREFIX.starts_with("debian-rootfs-"));
    }
}
