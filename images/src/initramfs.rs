//! The systemd fixtures' two initramfs-tools initrds, made from the finished tree
//! ([`crate::rootfs`]) by Debian's own `mkinitramfs` under PRoot: Debian's (every disk bus QEMU
//! offers, and the R2S's SD card) and the board-specific one. Both are made at the same time,
//! one PRoot each, and read nothing but the tree, which is left as it was.
//!
//! They are kept in the shared cache beside the tree under a key of the tree's key and their own
//! recipes, so a changed module list costs a minute or two, not the tree's second stage.

use std::path::{Path, PathBuf};

use crate::cache::KeyHash;
use crate::recipe::{self, RecipeFile};
use crate::rootfs::Tree;
use crate::staging::put;
use crate::{debootstrap, shared, BuildError};

/// Bumped whenever a change to how the initrds are made (this file) changes them.
const FORMAT: u32 = 1;
/// Directory names of finished initrd pairs in the shared cache start with this.
const DIR_PREFIX: &str = "debian-initrds-";
/// Where the work directory is bound inside the tree (an empty directory in every Debian tree).
const WORK_INSIDE: &str = "/mnt";

/// Which initrd a systemd fixture boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initrd {
    /// Debian's: initramfs-tools with every disk bus QEMU's virt machine offers.
    Debian,
    /// The board-specific one: the R2S's SD card and USB storage only.
    Board,
}

impl Initrd {
    /// Both, in the order they are made.
    const ALL: [Initrd; 2] = [Initrd::Debian, Initrd::Board];

    /// The name `make-initrd.sh` takes and its files start with.
    fn name(self) -> &'static str {
        match self {
            Initrd::Debian => "debian",
            Initrd::Board => "board",
        }
    }

    /// Its `/etc/initramfs-tools/modules`.
    fn modules(self) -> RecipeFile {
        match self {
            Initrd::Debian => recipe::SYSTEMD_INITRD_MODULES,
            Initrd::Board => recipe::SYSTEMD_BOARD_INITRD_MODULES,
        }
    }
}

/// A finished pair of initrds in the shared cache.
#[derive(Debug, Clone)]
pub struct Initrds {
    dir: PathBuf,
}

impl Initrds {
    /// The file of `initrd`.
    pub fn path(&self, initrd: Initrd) -> PathBuf {
        self.dir.join(format!("{}.img", initrd.name()))
    }
}

/// The initrds made from `tree` in `shared` (the shared cache directory, whose lock the caller
/// holds): reused when a pair with the same key exists, else made ([`shared::ensure_keyed_dir`]).
pub fn ensure(shared: &Path, tree: &Tree) -> Result<Initrds, BuildError> {
    let dir = shared::ensure_keyed_dir(shared, DIR_PREFIX, &key(&tree.key), |out, work| {
        std::fs::create_dir(out).map_err(BuildError::io("creating directory", out))?;
        make(tree, work, out)
    })?;
    Ok(Initrds { dir })
}

/// Hex SHA-256 over [`FORMAT`], the tree's key and the recipe files, each length-prefixed.
fn key(tree_key: &str) -> String {
    let mut key = KeyHash::new();
    key.field(&FORMAT.to_le_bytes())
        .field(tree_key.as_bytes())
        .recipes(&[recipe::SYSTEMD_MAKE_INITRD])
        .recipes(&Initrd::ALL.map(Initrd::modules));
    key.hex()
}

/// Makes both initrds of `tree` in `work` (bound into the tree), at the same time, and moves
/// them into `out`.
fn make(tree: &Tree, work: &Path, out: &Path) -> Result<(), BuildError> {
    let script = recipe::SYSTEMD_MAKE_INITRD.render(&[("release", &tree.release)]);
    put(&work.join("make-initrd.sh"), script.as_bytes(), 0o755)?;
    for initrd in Initrd::ALL {
        let modules = work.join(format!("{}-modules", initrd.name()));
        put(&modules, initrd.modules().text.as_bytes(), 0o644)?;
    }
    let script_inside = format!("{WORK_INSIDE}/make-initrd.sh");
    std::thread::scope(|scope| {
        let runs: Vec<_> = Initrd::ALL
            .map(|initrd| {
                let script_inside = &script_inside;
                scope.spawn(move || {
                    debootstrap::in_target(
                        &tree.root,
                        &[(work, WORK_INSIDE)],
                        &[],
                        &["/bin/sh", script_inside, initrd.name()],
                        work,
                    )
                })
            })
            .into_iter()
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("an initrd build thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    for initrd in Initrd::ALL {
        let name = format!("{}.img", initrd.name());
        let (from, to) = (work.join(&name), out.join(&name));
        std::fs::rename(&from, &to).map_err(BuildError::io("renaming into", &to))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_the_tree() {
        assert_eq!(key("tree-a"), key("tree-a"));
        assert_ne!(key("tree-a"), key("tree-b"));
    }

    #[test]
    fn each_initrd_has_its_own_file_and_module_list() {
        let initrds = Initrds {
            dir: PathBuf::from("/cache/debian-initrds-x"),
        };
        assert_eq!(
            initrds.path(Initrd::Debian),
            Path::new("/cache/debian-initrds-x/debian.img")
        );
        assert_eq!(
            initrds.path(Initrd::Board),
            Path::new("/cache/debian-initrds-x/board.img")
        );
        assert_ne!(Initrd::Debian.modules(), Initrd::Board.modules());
    }

    /// The board's list keeps out every QEMU disk driver but USB storage on xHCI.
    #[test]
    fn board_initrd_lists_usb_storage_and_no_virtio_nvme_or_ahci() {
        let board = Initrd::Board.modules().items();
        for module in [
            "mmc_block",
            "dw_mmc_rockchip",
            "ext4",
            "xhci_pci",
            "xhci_hcd",
            "usb_storage",
            "sd_mod",
        ] {
            assert!(board.contains(&module), "{module} missing from {board:?}");
        }
        for module in board {
            assert!(
                !["virtio", "nvme", "ahci"].iter().any(|bus| module.contains(bus)),
                "{module} in the board initrd"
            );
        }
    }
}
