//! The kernel's full module tree on an image's root filesystem, where a boot entry's system
//! keeps it: NixOS links `<system>/kernel-modules` (the system `init=` names, `/init` dropped)
//! to a store path whose `lib/modules/<release>/` holds every module of the kernel and depmod's
//! files; other distributions install to `/lib/modules/<release>/` (or `/usr/lib/…`). Symlinks
//! are followed inside the partition, as the running system would follow them.

use std::path::Path;

use super::depmod::Depmod;
use crate::image::{probe_filesystem, FsKind, Table, Volume};

/// The largest modules.dep or modules.alias read: a full arm64 tree's are about 1 MiB.
const INDEX_TEXT: u64 = 16 << 20;
/// The largest modules.builtin read (about 50 KiB for a full kernel).
const BUILTIN_TEXT: u64 = 4 << 20;

/// A module tree found on a root filesystem.
#[derive(Debug)]
pub struct RootTree {
    /// The partition holding it.
    pub partition: u32,
    /// Its directory, absolute within the partition: `…/kernel-modules/lib/modules/6.1.0-57-arm64`.
    pub dir: String,
    /// How it was found: `the init= system` or `the root's /lib/modules`.
    pub via: &'static str,
    /// Its modules.dep and modules.alias.
    pub depmod: Depmod,
    /// Its modules.builtin, if it has one.
    pub builtin: Option<String>,
    /// The opened filesystem, to read modules from.
    pub volume: Volume,
}

/// The directories a tree of `release` may be in, with how each is found, for a boot entry
/// whose command line says `init` (if it does).
pub fn candidate_dirs(init: Option<&str>, release: &str) -> Vec<(String, &'static str)> {
    let mut dirs = Vec::new();
    if let Some((system, _)) = init.and_then(|init| init.rsplit_once('/')) {
        if system.starts_with('/') && system.len() > 1 {
            dirs.push((
                format!("{system}/kernel-modules/lib/modules/{release}"),
                "the init= system",
            ));
        }
    }
    for base in ["/lib/modules", "/usr/lib/modules"] {
        dirs.push((format!("{base}/{release}"), "the root's /lib/modules"));
    }
    dirs
}

/// The `init=` of a kernel command line, if it has one.
pub fn init_of(append: Option<&str>) -> Option<&str> {
    append?
        .split_whitespace()
        .take_while(|arg| *arg != "--")
        .filter_map(|arg| arg.strip_prefix("init="))
        .last()
}

/// The first tree of `release` with a modules.dep in a [`candidate_dirs`] directory on an ext4
/// partition of `image` (ext4 or f2fs; the boot partition `boot` last: on nixpkgs' sd-image it is the root).
/// `Err` says why none was found: no partition readable, or none holds one.
pub fn find(
    image: &Path,
    table: &Table,
    boot: u32,
    init: Option<&str>,
    release: &str,
) -> Result<RootTree, String> {
    let dirs = candidate_dirs(init, release);
    let mut partitions: Vec<_> = table.partitions.iter().collect();
    partitions.sort_by_key(|p| p.index == boot);
    let mut unreadable = Vec::new();
    let mut read = 0;
    for partition in partitions {
        let volume = match probe_filesystem(image, partition) {
            Ok(kind @ (FsKind::Ext4 { .. } | FsKind::F2fs { .. })) => {
                match Volume::open(image, partition, &kind) {
                    Ok(Some(volume)) => volume,
                    Ok(None) => continue,
                    Err(e) => {
                        unreadable.push(e.to_string());
                        continue;
                    }
                }
            }
            Ok(_) => continue,
            Err(e) => {
                unreadable.push(e.to_string());
                continue;
            }
        };
        read += 1;
        for (dir, via) in &dirs {
            let dep = format!("{dir}/modules.dep");
            if !volume.is_file(&dep).unwrap_or(false) {
                continue;
            }
            let text = |name: &str, limit| volume.read_text(&format!("{dir}/{name}"), limit, "a depmod file");
            let dep_text = text("modules.dep", INDEX_TEXT).map_err(|e| e.to_string())?;
            let alias_text = text("modules.alias", INDEX_TEXT).ok();
            let depmod = Depmod::parse(&dep_text, alias_text.as_deref())
                .map_err(|e| format!("partition {}: {dir}/{e}", partition.index))?;
            let builtin = text("modules.builtin", BUILTIN_TEXT).ok();
            return Ok(RootTree {
                partition: partition.index,
                dir: dir.clone(),
                via,
                depmod,
                builtin,
                volume,
            });
        }
    }
    let looked = dirs
        .iter()
        .map(|(d, _)| d.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let unreadable = unreadable.join("; ");
    Err(match (read, unreadable.is_empty()) {
        (0, true) => "the root filesystem cannot be read (no partition holds ext4 or f2fs)".to_owned(),
        (0, false) => format!("the root filesystem cannot be read ({unreadable})"),
        (_, false) => format!(
            "the root filesystem cannot be read ({unreadable}); no modules.dep in {looked} on the partitions read"
        ),
        (_, true) => format!("no modules.dep in {looked} on any ext4 or f2fs partition"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_systems_kernel_modules_come_first_then_lib_modules() {
        let dirs = candidate_dirs(Some("/nix/store/abc-nixos-system-ivy/init"), "6.1");
        assert_eq!(
            dirs,
            vec![
                (
                    "/nix/store/abc-nixos-system-ivy/kernel-modules/lib/modules/6.1".to_owned(),
                    "the init= system"
                ),
                ("/lib/modules/6.1".to_owned(), "the root's /lib/modules"),
                ("/usr/lib/modules/6.1".to_owned(), "the root's /lib/modules"),
            ]
        );
        assert_eq!(candidate_dirs(Some("/init"), "6.1").len(), 2);
    }

    #[test]
    fn init_is_the_last_init_before_the_arguments_for_init() {
        assert_eq!(
            init_of(Some("init=/a/init quiet init=/b/init -- init=/c")),
            Some("/b/init")
        );
        assert_eq!(init_of(Some("quiet")), None);
        assert_eq!(init_of(None), None);
    }
}
