//! `harness inspect`: static checks of a board image before it is flashed, without booting
//! anything and without writing to the image (it is only ever opened read-only).
//!
//! Each group of checks lives in its own file as functions over bytes and parsed structures;
//! [`inspect`] reads what they need from the image and collects their verdicts in a
//! [`Report`], which [`render`] turns into text or JSON.

pub mod board;
pub mod bootloader;
pub mod entry;
pub mod extlinux;
pub mod fdt;
pub mod filesystems;
pub mod include;
pub mod load_addresses;
pub mod partitions;
pub mod qemu;
pub mod render;
pub mod report;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use board::{Board, Profile};
pub use report::{Check, CheckName, Report, Status};

use crate::image::root_device::{self, RootDevice};
use crate::image::{
    boot_config, drivers, probe_filesystem, FsKind, ImageError, Label, Partition, Table, Volume,
};
use bootloader::SECTOR;
use entry::{Context, Files, Volumes};

/// A partition and the filesystem its superblock shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    /// The partition table entry.
    pub partition: Partition,
    /// What it holds.
    pub fs: FsKind,
}

impl Probed {
    /// `partition 1 (ext4 labelled "NIXOS_BOOT", sectors 32768–1081343)`, in 512-byte sectors.
    pub fn describe(&self) -> String {
        let bytes = self.partition.byte_range();
        format!(
            "partition {} ({}, sectors {}–{})",
            self.partition.index,
            self.fs,
            bytes.start / SECTOR,
            bytes.end / SECTOR - 1
        )
    }

    /// `partition 1 (NIXOS_BOOT)`, or `partition 1` when it has no label.
    pub fn short(&self) -> String {
        match self.fs.label() {
            Some(label) => format!("partition {} ({label})", self.partition.index),
            None => format!("partition {}", self.partition.index),
        }
    }
}

/// The readable (ext4, vfat and f2fs) filesystems of an image, opened once each.
struct ImageVolumes {
    volumes: BTreeMap<u32, Result<Volume, ImageError>>,
}

impl ImageVolumes {
    fn open(image: &Path, parts: &[Probed]) -> ImageVolumes {
        let volumes = parts
            .iter()
            .map(|p| {
                let volume = Volume::open(image, &p.partition, &p.fs).and_then(|volume| {
                    volume.ok_or_else(|| ImageError::NoFileReader {
                        image: image.to_owned(),
                        partition: p.partition.index,
                        found: p.fs.clone(),
                    })
                });
                (p.partition.index, volume)
            })
            .collect();
        ImageVolumes { volumes }
    }
}

impl Volumes for ImageVolumes {
    fn files(&self, index: u32) -> Option<Result<&dyn Files, &ImageError>> {
        self.volumes
            .get(&index)
            .map(|volume| volume.as_ref().map(|v| v as &dyn Files))
    }
}

/// The root devices of boot entries, read once per initrd and command line (the entries of a
/// NixOS menu often share an initrd, which takes a while to unpack).
#[derive(Default)]
struct RootDevices(HashMap<(Option<String>, Option<String>), RootDevice>);

impl RootDevices {
    fn of(&mut self, image: &Path, table: &Table, found: &boot_config::Found, label: &Label) -> RootDevice {
        self.0
            .entry((label.initrd.clone(), label.append.clone()))
            .or_insert_with(|| root_device::read(image, table, found, label))
            .clone()
    }
}

/// Runs every check on `image` for `board`. Fails only when the image itself cannot be read:
/// it cannot be opened, has no partition table, or is shorter than its table says. Problems
/// inside filesystems are check failures, not errors.
pub fn inspect(image: &Path, board: Board) -> Result<Report, ImageError> {
    inspect_for(image, board.profile())
}

/// [`inspect`] against `profile`'s facts.
pub fn inspect_for(image: &Path, profile: &Profile) -> Result<Report, ImageError> {
    let table = Table::read(image)?;
    let parts = table
        .partitions
        .iter()
        .map(|p| {
            Ok(Probed {
                partition: p.clone(),
                fs: probe_filesystem(image, p)?,
            })
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    let area = read_bootloader_area(image, table.image_len, profile)?;
    let addresses = load_addresses::Resolved::of(&area, profile);
    let found = boot_config::find(image);
    let volumes = ImageVolumes::open(image, &parts);
    let includes = match (
        &found,
        found.as_ref().ok().and_then(|f| volumes.files(f.partition)),
    ) {
        (Ok(found), Some(Ok(files))) => include::follow(found, files).err(),
        _ => None,
    };

    // The image-wide checks judge the filesystem the image names as its root (the default
    // entry's initrd, the root's fstab); a `root=` is its entry's, judged by the entry's `root`.
    let image_root = match &found {
        Ok(found) => match found.config.default_label().or(found.config.labels.first()) {
            Some(label) => root_device::read_image_root(image, &table, found, label),
            None => RootDevice::default_label(),
        },
        Err(_) => RootDevice::default_label(),
    };
    let mut roots = RootDevices::default();
    let mut checks = vec![
        partitions::check_table(&table),
        partitions::check_bootloader_area(&parts, profile),
        bootloader::check_idbloader(&area, &parts, profile),
        bootloader::check_u_boot_itb(&area, &parts, profile),
        filesystems::check_root_label(&parts, &image_root),
        filesystems::check_boot_label(&parts, found.as_ref().ok().map(|f| f.partition), &image_root),
        filesystems::check_root_filesystem(&parts, &image_root),
        extlinux::check_conf(found.as_ref(), includes.as_ref()),
    ];
    if let Ok(found) = &found {
        checks.push(extlinux::check_keywords(found));
        checks.push(extlinux::check_default(found));
        checks.push(extlinux::check_menu_wait(found));
        let ctx = Context {
            profile,
            addresses: &addresses,
            parts: &parts,
            config_partition: found.partition,
            config_path: &found.path,
            volumes: &volumes,
        };
        for label in &found.config.labels {
            let root = roots.of(image, &table, found, label);
            checks.extend(entry::check_entry(label, &root, &ctx));
        }
        checks.extend(qemu_checks(image, &table, found));
    }
    Ok(Report {
        image: image.to_owned(),
        board: profile.name,
        checks,
    })
}

/// The load addresses of the U-Boot on `image`'s card, for `profile` (see
/// [`load_addresses::Resolved`]).
pub fn image_load_addresses(image: &Path, profile: &Profile) -> Result<load_addresses::Resolved, ImageError> {
    let table = Table::read(image)?;
    let area = read_bootloader_area(image, table.image_len, profile)?;
    Ok(load_addresses::Resolved::of(&area, profile))
}

/// The QEMU checks of the entry U-Boot boots by default (the first, without a default); none
/// for a configuration without entries.
fn qemu_checks(image: &Path, table: &Table, found: &boot_config::Found) -> Vec<Check> {
    let Some(label) = found.config.default_label().or(found.config.labels.first()) else {
        return Vec::new();
    };
    match drivers::read_entry(image, table, found, label) {
        Ok(drivers) => qemu::checks(&drivers)
            .into_iter()
            .map(|c| c.for_label(&label.name))
            .collect(),
        Err(error) => [CheckName::QemuConsole, CheckName::QemuRootDisk]
            .map(|name| {
                Check::warn(
                    name,
                    format!("LABEL {}: kernel and initrd", label.name),
                    format!("cannot read them: {error}"),
                    "see the checks of the entry's kernel and initrd",
                )
                .for_label(&label.name)
            })
            .to_vec(),
    }
}

/// The image from sector 0 up to the board's first free sector, or all of a shorter image.
fn read_bootloader_area(image: &Path, image_len: u64, profile: &Profile) -> Result<Vec<u8>, ImageError> {
    let len = (profile.first_free_sector * SECTOR).min(image_len);
    let mut area = vec![0u8; len as usize];
    let file = ImageError::open_image(image)?;
    file.read_exact_at(&mut area, 0)
        .map_err(|error| ImageError::Read {
            image: image.to_owned(),
            what: format!("sectors 0–{} (the bootloader area)", len / SECTOR),
            error,
        })?;
    Ok(area)
}

/// Partitions for the checks' unit tests.
#[cfg(test)]
pub(crate) mod test_parts {
    use super::Probed;
    use crate::image::boot_config::Found;
    use crate::image::{Config, FsKind, Partition, PartitionType};

    /// `text` as the extlinux.conf found at /extlinux/extlinux.conf of partition 1.
    pub(crate) fn found(text: &str) -> Found {
        Found {
            partition: 1,
            path: "/extlinux/extlinux.conf".to_owned(),
            text: text.to_owned(),
            config: Config::parse(text).unwrap(),
        }
    }

    /// MBR partition `index` (PARTUUID `1a2b3c4d-<index>`) over 512-byte sectors
    /// `first_lba..=last_lba`, holding `fs`.
    pub(crate) fn probed(index: u32, first_lba: u64, last_lba: u64, fs: FsKind) -> Probed {
        Probed {
            partition: Partition {
                index,
                first_lba,
                last_lba,
                sector_size: 512,
                kind: PartitionType::Mbr(if matches!(fs, FsKind::Vfat { .. }) {
                    0x0b
                } else {
                    0x83
                }),
                name: String::new(),
                bootable: false,
                partuuid: format!("1a2b3c4d-{index:02x}"),
            },
            fs,
        }
    }

    /// An ext4 partition `index` labelled `label`, somewhere after the bootloader area.
    pub(crate) fn ext4(index: u32, label: &str) -> Probed {
        let first = 32768 * u64::from(index);
        probed(
            index,
            first,
            first + 2047,
            FsKind::Ext4 {
                label: Some(label.to_owned()),
            },
        )
    }
}
