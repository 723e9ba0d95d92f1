//! The systemd fixtures' root tree: Debian bookworm arm64 (minbase, systemd, udev, agetty, login,
//! PAM, bash, openssh-server) with the kernel package every fixture is built from (its initrds
//! are made from the tree afterwards, [`crate::initramfs`]), set up as the fixtures' machine: hostname `ivy`, root's password, an fstab for
//! NIXOS_SD, and the NixOS-shaped system links the boot entries' `init=` names.
//!
//! Making it takes minutes (debootstrap's second stage under emulation), so a finished tree is
//! kept in the shared cache under a key of everything it is made from, and reused by every
//! checkout and CI run on the machine.

use std::path::{Path, PathBuf};

use crate::cache::KeyHash;
use crate::recipe::{self, RecipeFile};
use crate::staging::{link, put, read, under};
use crate::store::{self, Generation};
use crate::{debootstrap, shared};
use crate::{BuildError, ROOT_PASSWORD};

/// Bumped whenever a change to how the tree is made (this file, `debootstrap.rs`) changes what
/// it holds: the key covers the recipe files, not the sources, so that editing the builder's
/// code elsewhere never costs a second stage. 2: the initrds are no longer made in the tree, and
/// every step runs without `faccessat2`.
const FORMAT: u32 = 2;
/// The systemd binary the systems' `init` links point to, relative to `/nix/store/<hash>-<name>/`:
/// a relative link resolves inside the root filesystem wherever it is mounted (initramfs-tools
/// checks `init=` below its mount point).
const SYSTEMD_FROM_STORE_PATH: &str = "../../../lib/systemd/systemd";
/// Directory names of finished trees in the shared cache start with this.
const TREE_PREFIX: &str = "debian-rootfs-";

/// The recipe files a tree is made from (part of its key).
const RECIPES: &[RecipeFile] = &[
    recipe::SYSTEMD_PACKAGES,
    recipe::SYSTEMD_FINISH,
    recipe::SYSTEMD_TMPFILES_SHIM,
    recipe::SYSTEMD_FSTAB,
    recipe::SYSTEMD_HOSTS,
    recipe::ETC_HOSTNAME,
];

/// A finished root tree in the shared cache.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The tree's root directory.
    pub root: PathBuf,
    /// The kernel release installed in it, e.g. `6.1.0-57-arm64`.
    pub release: String,
    /// The key of everything the tree is made from (hex SHA-256), for what is made from it.
    pub key: String,
}

/// The kernel package the tree gets: its .deb and release.
#[derive(Debug, Clone, Copy)]
pub struct KernelDeb<'a> {
    /// The .deb file.
    pub deb: &'a Path,
    /// The kernel release, e.g. `6.1.0-57-arm64`.
    pub release: &'a str,
}

/// The two systems the fixture's boot menu offers, current first, numbered 2 and 1: the
/// busybox fixtures' newest two, so their store paths look alike.
pub fn generations() -> Vec<Generation> {
    store::generations()[..2]
        .iter()
        .zip([2, 1])
        .map(|(generation, number)| Generation {
            number,
            ..generation.clone()
        })
        .collect()
}

/// The tree for `kernel` in `shared` (the shared cache directory, whose lock the caller holds):
/// reused when one with the same key exists, else made ([`shared::ensure_keyed_dir`]).
pub fn ensure(shared: &Path, kernel: KernelDeb<'_>) -> Result<Tree, BuildError> {
    let deb_name = kernel.deb.file_name().map(|n| n.to_string_lossy().into_owned());
    let key = key(deb_name.as_deref().unwrap_or(""));
    let root = shared::ensure_keyed_dir(shared, TREE_PREFIX, &key, |root, work| make(root, kernel, work))?;
    Ok(Tree {
        root,
        release: kernel.release.to_owned(),
        key,
    })
}

/// Hex SHA-256 over [`FORMAT`], the recipe files, the kernel .deb's name, the suite, the
/// password and the system paths, each length-prefixed.
fn key(deb_name: &str) -> String {
    let mut key = KeyHash::new();
    key.field(&FORMAT.to_le_bytes())
        .recipes(RECIPES)
        .field(deb_name.as_bytes())
        .field(debootstrap::SUITE.as_bytes())
        .field(ROOT_PASSWORD.as_bytes());
    for generation in generations() {
        key.field(generation.store_path.as_bytes());
    }
    key.hex()
}

/// Makes the tree in `root`: both debootstrap stages, the kernel, the machine's configuration.
fn make(root: &Path, kernel: KernelDeb<'_>, work: &Path) -> Result<(), BuildError> {
    let mirror = debootstrap::mirror()?;
    debootstrap::first_stage(root, &recipe::SYSTEMD_PACKAGES.items(), &mirror, work)?;
    debootstrap::second_stage(root, work)?;

    let deb_name = kernel
        .deb
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged_deb = root.join("tmp").join(&deb_name);
    std::fs::copy(kernel.deb, &staged_deb).map_err(BuildError::io("copying into", &staged_deb))?;
    let finish = recipe::SYSTEMD_FINISH.render(&[("kernelDeb", &deb_name), ("release", kernel.release)]);
    put(&root.join("tmp/finish.sh"), finish.as_bytes(), 0o755)?;
    debootstrap::in_target(root, &[], &[], &["/bin/sh", "/tmp/finish.sh"], work)?;
    for file in [deb_name.as_str(), "finish.sh"] {
        let path = root.join("tmp").join(file);
        std::fs::remove_file(&path).map_err(BuildError::io("removing", &path))?;
    }
    debootstrap::remove_shims(root)?;
    configure(root)
}

/// The machine's identity and boot shape, written from the host.
fn configure(root: &Path) -> Result<(), BuildError> {
    put(
        &root.join("etc/hostname"),
        recipe::ETC_HOSTNAME
            .render(&[("hostname", store::HOSTNAME)])
            .as_bytes(),
        0o644,
    )?;
    put(
        &root.join("etc/hosts"),
        recipe::SYSTEMD_HOSTS
            .render(&[("hostname", store::HOSTNAME)])
            .as_bytes(),
        0o644,
    )?;
    put(
        &root.join("etc/fstab"),
        recipe::SYSTEMD_FSTAB.render(&[]).as_bytes(),
        0o644,
    )?;
    let shadow_path = root.join("etc/shadow");
    let shadow = String::from_utf8_lossy(&read(&shadow_path)?).into_owned();
    let hash = crate::assemble::shadow_hash(ROOT_PASSWORD, crate::assemble::SHADOW_SALT)?;
    put(&shadow_path, with_root_hash(&shadow, &hash).as_bytes(), 0o640)?;

    let generations = generations();
    for generation in &generations {
        link(&under(root, &generation.init()), SYSTEMD_FROM_STORE_PATH)?;
    }
    store::link_profiles(root, &generations)
}

/// `/etc/shadow` text with root's password field replaced by `hash`.
fn with_root_hash(shadow: &str, hash: &str) -> String {
    let mut out = String::new();
    for line in shadow.lines() {
        match line.split_once(':') {
            Some(("root", rest)) => {
                let after = rest.split_once(':').map_or("", |(_, after)| after);
                out.push_str(&format!("root:{hash}:{after}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_hash_replaces_only_roots_password_field() {
        let shadow = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
        assert_eq!(
            with_root_hash(shadow, "$6$s$h"),
            "root:$6$s$h:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
        );
    }

    #[test]
    fn menu_has_two_generations_numbered_down_to_one() {
        let generations = generations();
        let numbers: Vec<u32> = generations.iter().map(|g| g.number).collect();
        assert_eq!(numbers, [2, 1]);
        assert!(generations[0].init().starts_with("/nix/store/"));
        assert_ne!(generations[0].store_path, generations[1].store_path);
    }

    /// The router's files are laid over the tree when the image is made (`router.rs`): changing
    /// them must not cost the tree's twenty minutes.
    #[test]
    fn the_routers_recipes_are_not_part_of_the_trees_key() {
        for router in [
            recipe::SYSTEMD_WAN_NETWORK,
            recipe::SYSTEMD_LAN_NETWORK,
            recipe::SYSTEMD_SSHD_ROOT_LOGIN,
            recipe::SYSTEMD_DEVICE_TIMEOUT,
        ] {
            assert!(!RECIPES.contains(&router), "{}", router.path);
            assert!(recipe::ALL.contains(&router), "{}", router.path);
        }
    }

    #[test]
    fn key_changes_with_the_kernel_package() {
        assert_eq!(key("a.deb"), key("a.deb"));
        assert_ne!(key("a.deb"), key("b.deb"));
    }
}
