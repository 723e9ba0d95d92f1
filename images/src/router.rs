//! What makes the systemd fixture a router, as an R2S image is one: systemd-networkd with the
//! WAN (`end0`, DHCP) and the LAN (`enu1`, 192.168.2.1/24 with a DHCP server),
//! systemd-network-generator (so `ifname=` on the kernel command line names the NICs at boot)
//! and sshd letting root in with its password; and, for emulation on a loaded machine, ten
//! minutes instead of 90 s for a device (the console) to appear.
//!
//! Laid over the cached root tree when the image is made, never written into the tree: the tree
//! takes twenty minutes to make, so a change here costs only the image (half a minute). The
//! overlay is a copy of the tree whose files are hard links to the tree's; each file the router
//! adds or replaces is unlinked first, so the tree's own inode is never written.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::recipe::{self, RecipeFile};
use crate::staging::{link, put, under};
use crate::tool::run;
use crate::BuildError;

/// The files written over the tree: path in the image, recipe.
const FILES: &[(&str, RecipeFile)] = &[
    ("/etc/systemd/network/10-wan.network", recipe::SYSTEMD_WAN_NETWORK),
    ("/etc/systemd/network/20-lan.network", recipe::SYSTEMD_LAN_NETWORK),
    (
        "/etc/ssh/sshd_config.d/root-login.conf",
        recipe::SYSTEMD_SSHD_ROOT_LOGIN,
    ),
    (
        "/etc/systemd/system.conf.d/device-timeout.conf",
        recipe::SYSTEMD_DEVICE_TIMEOUT,
    ),
];

/// The units enabled, as `systemctl enable` would link them: link in the image, unit file.
/// systemd-networkd-wait-online is left out: nothing on the fixture waits for
/// `network-online.target`, and a LAN without carrier would hold it for two minutes.
const ENABLED: &[(&str, &str)] = &[
    (
        "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
        "/lib/systemd/system/systemd-networkd.service",
    ),
    (
        "/etc/systemd/system/dbus-org.freedesktop.network1.service",
        "/lib/systemd/system/systemd-networkd.service",
    ),
    (
        "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
        "/lib/systemd/system/systemd-networkd.socket",
    ),
    (
        "/etc/systemd/system/sysinit.target.wants/systemd-network-generator.service",
        "/lib/systemd/system/systemd-network-generator.service",
    ),
];

/// The time given to what the overlay writes (files and the directories they are in), so the
/// same tree gives the same filesystem: the fixtures' superblock time (`ext4.rs`).
const WRITTEN_AT: Duration = Duration::from_secs(1_755_388_800);

/// The router's root: a hard-linked copy of `tree` in `work` with the router's configuration
/// over it. Returns the copy's root directory.
pub fn overlay(tree: &Path, work: &Path) -> Result<PathBuf, BuildError> {
    let root = work.join("root");
    // -a keeps modes, owners, times and extended attributes of what is copied; -l makes each
    // regular file a hard link instead of a copy (seconds, no space).
    run(Command::new("cp").arg("-al").arg(tree).arg(&root), work)?;
    for (path, recipe) in FILES {
        let file = under(&root, path);
        unlink_if_present(&file)?;
        put(&file, recipe.render(&[]).as_bytes(), 0o644)?;
        stamp(&file)?;
    }
    for (path, unit) in ENABLED {
        let file = under(&root, path);
        unlink_if_present(&file)?;
        link(&file, unit)?;
        stamp(&file)?;
    }
    // Last, as each entry written changed its directory's times (and a new directory its
    // parent's).
    for path in FILES
        .iter()
        .map(|(path, _)| path)
        .chain(ENABLED.iter().map(|(path, _)| path))
    {
        for dir in Path::new(path).ancestors().skip(1) {
            stamp(&under(&root, &dir.to_string_lossy()))?;
        }
    }
    Ok(root)
}

/// Removes `path` if it exists, so that what is written next is a new inode, not the tree's.
fn unlink_if_present(path: &Path) -> Result<(), BuildError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BuildError::io("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Sets the access and modification times of `path` (a file, directory or symlink itself) to
/// [`WRITTEN_AT`].
fn stamp(path: &Path) -> Result<(), BuildError> {
    let at = libc::timespec {
        tv_sec: WRITTEN_AT.as_secs() as libc::time_t,
        tv_nsec: 0,
    };
    let set = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
        .and_then(|c_path| {
            // SAFETY: `c_path` is a NUL-terminated path and the two timespecs are valid, both
            // alive for the call; utimensat reads them and keeps neither.
            let done = unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c_path.as_ptr(),
                    [at, at].as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if done == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    set.map_err(BuildError::io("setting the times of", path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn tree_with_a_shared_file(dir: &Path) -> PathBuf {
        let tree = dir.join("tree");
        put(
            &tree.join("etc/ssh/sshd_config"),
            b"Include /etc/ssh/sshd_config.d/*.conf\n",
            0o644,
        )
        .unwrap();
        put(
            &tree.join("etc/ssh/sshd_config.d/root-login.conf"),
            b"tree's own\n",
            0o644,
        )
        .unwrap();
        tree
    }

    #[test]
    fn the_overlay_adds_the_router_and_leaves_the_tree_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree_with_a_shared_file(dir.path());
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let root = overlay(&tree, &work).unwrap();

        let wan = std::fs::read_to_string(root.join("etc/systemd/network/10-wan.network")).unwrap();
        assert!(
            wan.contains("[Match]\nName=end0\n\n[Network]\nDHCP=ipv4\n"),
            "{wan}"
        );
        let lan = std::fs::read_to_string(root.join("etc/systemd/network/20-lan.network")).unwrap();
        assert!(
            lan.contains("Name=enu1\n") && lan.contains("Address=192.168.2.1/24\n"),
            "{lan}"
        );
        let sshd = root.join("etc/ssh/sshd_config.d/root-login.conf");
        assert!(std::fs::read_to_string(&sshd)
            .unwrap()
            .contains("\nPermitRootLogin yes\n"));
        assert_eq!(
            std::fs::read_link(
                root.join("etc/systemd/system/sysinit.target.wants/systemd-network-generator.service")
            )
            .unwrap(),
            Path::new("/lib/systemd/system/systemd-network-generator.service")
        );
        assert_eq!(
            std::fs::read_link(
                root.join("etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
            )
            .unwrap(),
            Path::new("/lib/systemd/system/systemd-networkd.service")
        );

        // The tree's file was replaced in the copy only; the untouched one is the tree's inode.
        let replaced = tree.join("etc/ssh/sshd_config.d/root-login.conf");
        assert_eq!(std::fs::read_to_string(&replaced).unwrap(), "tree's own\n");
        assert!(!tree.join("etc/systemd").exists());
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&tree.join("etc/ssh/sshd_config")),
            ino(&root.join("etc/ssh/sshd_config"))
        );
        assert_ne!(ino(&replaced), ino(&sshd));
    }

    #[test]
    fn what_the_overlay_writes_has_a_fixed_time() {
        let dir = tempfile::tempdir().unwrap();
        let tree = tree_with_a_shared_file(dir.path());
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let root = overlay(&tree, &work).unwrap();
        for path in [
            "etc/systemd/network/10-wan.network",
            "etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
            "etc/systemd/network",
            "etc/systemd/system/sockets.target.wants",
            "etc/systemd/system",
            "etc",
            "",
        ] {
            assert_eq!(
                std::fs::symlink_metadata(root.join(path)).unwrap().mtime(),
                WRITTEN_AT.as_secs() as i64,
                "{path}"
            );
        }
    }
}
