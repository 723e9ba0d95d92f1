//! Whole SD-card images from staged trees: the R2S GPT card of the reference write-up and
//! nixpkgs' MBR sd-image, each with the RK3328 bootloader where the boot ROM looks.

use std::path::Path;

use crate::disk::{self, DiskTable, Piece, R2sShape};
use crate::fixture::Breakage;
use crate::{ext4, f2fs, recipe, vfat, BuildError};

/// The label stage 1 waits for and the good root filesystem carries.
pub const ROOT_LABEL: &str = "NIXOS_SD";
/// The boot filesystem's label.
pub const BOOT_LABEL: &str = "NIXOS_BOOT";
/// The sd-image's firmware filesystem label (nixpkgs' `sdImage.firmwarePartitionName`).
const FIRMWARE_LABEL: &str = "FIRMWARE";
/// Seed of the disk and filesystem identities (GUIDs, UUIDs): one for every fixture, so broken
/// images differ from the good one only in what is broken.
const IDENTITY_SEED: &str = "r2s-fixture";
/// NIXOS_SD of the sd-image, which also holds `/boot` (kernel, initrd, device trees).
const SD_IMAGE_ROOT_SIZE: u64 = 128 << 20;
/// The small third partition some broken fixtures carry.
const EXTRA_PARTITION_SIZE: u64 = 8 << 20;
/// How far the overlapping fixture's third partition reaches into NIXOS_SD.
const OVERLAP: u64 = 1 << 20;
/// NIXOS_SD when it holds f2fs: f2fs keeps six segments of 2 MiB open for writing and
/// overprovisions, so the busybox tree does not fit in 64 MiB.
const F2FS_ROOT_SIZE: u64 = 128 << 20;
/// The root's `/etc/fstab` on the f2fs-root fixtures, as NixOS writes it for `fileSystems."/"`.
pub const F2FS_FSTAB: &str = "# This is a generated file.  Do not edit!\n\
                              /dev/disk/by-label/NIXOS_SD / f2fs defaults 0 1\n";

/// The RK3328 TPL/SPL and U-Boot FIT.
#[derive(Debug, Clone)]
pub struct Bootloader {
    /// `idbloader.img`, for sector 64.
    pub idbloader: Vec<u8>,
    /// `u-boot.itb`, for sector 16384.
    pub itb: Vec<u8>,
}

impl Bootloader {
    /// The rock64-rk3328 build of `u-boot-rockchip` (the same SoC as the R2S).
    pub fn rock64(uboot: &crate::debian::Unpacked) -> Result<Bootloader, BuildError> {
        let file =
            |name: &str| crate::staging::read(&uboot.file(&format!("usr/lib/u-boot/rock64-rk3328/{name}"))?);
        Ok(Bootloader {
            idbloader: file("idbloader.img")?,
            itb: file("u-boot.itb")?,
        })
    }
}

impl Bootloader {
    /// The bootloader with u-boot.itb's default `ramdisk_addr_r` set to `value`, which must be
    /// as long as the stock value it replaces, so that nothing else in the FIT moves.
    pub fn with_ramdisk_addr_r(mut self, value: &str) -> Result<Bootloader, BuildError> {
        const STOCK: &[u8] = b"\0ramdisk_addr_r=0x06000000\0";
        let unchanged = || BuildError::BootloaderPatch {
            what: format!(
                "ramdisk_addr_r={value}: u-boot.itb has no stock ramdisk_addr_r=0x06000000 of that length"
            ),
        };
        let at = self
            .itb
            .windows(STOCK.len())
            .position(|w| w == STOCK)
            .ok_or_else(unchanged)?;
        let new = format!("\0ramdisk_addr_r={value}\0");
        if new.len() != STOCK.len() {
            return Err(unchanged());
        }
        self.itb[at..at + STOCK.len()].copy_from_slice(new.as_bytes());
        Ok(self)
    }
}

/// Writes the R2S card `out`: GPT, NIXOS_BOOT from `boot_dir`, NIXOS_SD from `root_dir`, the
/// bootloader at sectors 64 and 16384, changed as `breakage` says. Scratch files go in `work`.
pub fn r2s(
    out: &Path,
    work: &Path,
    breakage: Breakage,
    bootloader: &Bootloader,
    boot_dir: &Path,
    root_dir: &Path,
) -> Result<(), BuildError> {
    let root_size = match breakage {
        Breakage::F2fsRoot | Breakage::F2fsRootStaleInit => F2FS_ROOT_SIZE,
        _ => disk::ROOT_SIZE,
    };
    r2s_sized(out, work, breakage, bootloader, boot_dir, root_dir, root_size)
}

/// An R2S card whose NIXOS_SD is `root_size` bytes (a whole number of MiB), for root trees
/// larger than the busybox fixtures', changed as `breakage` says.
pub fn r2s_with_root_size(
    out: &Path,
    work: &Path,
    breakage: Breakage,
    bootloader: &Bootloader,
    boot_dir: &Path,
    root_dir: &Path,
    root_size: u64,
) -> Result<(), BuildError> {
    r2s_sized(out, work, breakage, bootloader, boot_dir, root_dir, root_size)
}

fn r2s_sized(
    out: &Path,
    work: &Path,
    breakage: Breakage,
    bootloader: &Bootloader,
    boot_dir: &Path,
    root_dir: &Path,
    root_size: u64,
) -> Result<(), BuildError> {
    let shape = R2sShape {
        root_size,
        boot_first_sector: match breakage {
            Breakage::BootPartitionAt(sector) => sector,
            _ => disk::BOOT_FIRST_SECTOR,
        },
        extra_size: matches!(
            breakage,
            Breakage::ExtraPartition(_) | Breakage::OverlappingPartitions
        )
        .then_some(EXTRA_PARTITION_SIZE),
    };
    let mut table = disk::r2s_table(IDENTITY_SEED, shape);
    if breakage == Breakage::OverlappingPartitions {
        // The third entry reaches 1 MiB back into NIXOS_SD; it holds no filesystem of its own.
        table.partitions[2].first_lba -= OVERLAP / crate::gpt::SECTOR;
        table.allow_overlap = true;
    }
    let root_label = match breakage {
        Breakage::RootLabel(label) => label,
        _ => ROOT_LABEL,
    };
    let boot_fs = work.join("boot.ext4");
    let root_fs = work.join("root.ext4");
    let [boot_part, root_part, ..] = &table.partitions[..] else {
        unreachable!("an R2S table has NIXOS_BOOT and NIXOS_SD");
    };
    ext4::make(boot_dir, BOOT_LABEL, boot_part.size(), &seed("boot"), &boot_fs)?;
    if matches!(breakage, Breakage::F2fsRoot | Breakage::F2fsRootStaleInit) {
        f2fs::make(root_dir, root_label, root_part.size(), &seed("root"), &root_fs)?;
        // The fstab NixOS writes for an f2fs root, for inspect to read from it.
        let extra = work.join("f2fs-extra");
        let etc = extra.join("etc");
        std::fs::create_dir_all(&etc).map_err(BuildError::io("creating directory", &etc))?;
        let fstab = etc.join("fstab");
        std::fs::write(&fstab, F2FS_FSTAB).map_err(BuildError::io("writing", &fstab))?;
        f2fs::add(&extra, &root_fs)?;
    } else {
        ext4::make(root_dir, root_label, root_part.size(), &seed("root"), &root_fs)?;
    }
    let mut pieces = vec![
        Piece::Filesystem {
            offset: boot_part.offset(),
            size: boot_part.size(),
            file: &boot_fs,
        },
        Piece::Filesystem {
            offset: root_part.offset(),
            size: root_part.size(),
            file: &root_fs,
        },
    ];
    let extra_fs = work.join("extra.ext4");
    let empty = work.join("extra");
    if let (Breakage::ExtraPartition(label), Some(extra)) = (breakage, table.partitions.get(2)) {
        std::fs::create_dir_all(&empty).map_err(BuildError::io("creating directory", &empty))?;
        ext4::make(&empty, label, extra.size(), &seed("extra"), &extra_fs)?;
        pieces.push(Piece::Filesystem {
            offset: extra.offset(),
            size: extra.size(),
            file: &extra_fs,
        });
    }
    // Written after the filesystems, as `dd` puts them on a partitioned card: where a partition
    // lies over the bootloader area, the bootloader is what survives.
    if breakage != Breakage::IdbloaderMissing {
        pieces.push(Piece::Bytes {
            sector: disk::IDBLOADER_SECTOR,
            bytes: &bootloader.idbloader,
        });
    }
    if breakage != Breakage::UbootItbMissing {
        pieces.push(Piece::Bytes {
            sector: disk::UBOOT_ITB_SECTOR,
            bytes: &bootloader.itb,
        });
    }
    disk::write(out, &DiskTable::Gpt(table.clone()), &pieces)
}

/// Writes nixpkgs' sd-image `out`: MBR, FIRMWARE vfat at 8 MiB, bootable NIXOS_SD from
/// `root_dir` (which holds `/boot`). idbloader.img is at sector 64; u-boot.itb was written at
/// sector 16384 before the image's FIRMWARE partition, which now covers it.
pub fn sd_image(out: &Path, work: &Path, bootloader: &Bootloader, root_dir: &Path) -> Result<(), BuildError> {
    let table = disk::sd_image_table(SD_IMAGE_ROOT_SIZE);
    let [firmware, root] = &table.partitions[..] else {
        unreachable!("an sd-image table has FIRMWARE and NIXOS_SD");
    };
    let firmware_fs = work.join("firmware.vfat");
    let config = recipe::FIRMWARE_CONFIG.render(&[]);
    vfat::make(
        FIRMWARE_LABEL,
        disk::SD_IMAGE_DISK_SIGNATURE,
        firmware.size(),
        &[("config.txt", config.as_bytes())],
        &firmware_fs,
    )?;
    let root_fs = work.join("root.ext4");
    ext4::make(root_dir, ROOT_LABEL, root.size(), &seed("root"), &root_fs)?;
    disk::write(
        out,
        &DiskTable::Mbr(table.clone()),
        &[
            Piece::Bytes {
                sector: disk::IDBLOADER_SECTOR,
                bytes: &bootloader.idbloader,
            },
            Piece::Bytes {
                sector: disk::UBOOT_ITB_SECTOR,
                bytes: &bootloader.itb,
            },
            Piece::Filesystem {
                offset: firmware.offset(),
                size: firmware.size(),
                file: &firmware_fs,
            },
            Piece::Filesystem {
                offset: root.offset(),
                size: root.size(),
                file: &root_fs,
            },
        ],
    )
}

fn seed(role: &str) -> String {
    format!("{IDENTITY_SEED}/{role}")
}
