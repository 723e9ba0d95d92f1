//! The R2S SD-card layout and writing a whole disk image from its pieces, keeping it sparse.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::gpt::{Guid, Partition, Table, SECTOR};
use crate::{mbr, BuildError};

const MIB: u64 = 1024 * 1024;

/// Where the RK3328 boot ROM looks for the TPL/SPL (idbloader.img).
pub const IDBLOADER_SECTOR: u64 = 64;
/// Where the SPL looks for the U-Boot FIT image (u-boot.itb).
pub const UBOOT_ITB_SECTOR: u64 = 16384;
/// Start of partition 1 (NIXOS_BOOT), after the bootloader area.
pub const BOOT_FIRST_SECTOR: u64 = 32768;
/// Size of NIXOS_BOOT: 512 MiB, as in the reference installation.
pub const BOOT_SIZE: u64 = 512 * MIB;
/// Size of NIXOS_SD in the fixtures: enough for busybox and the fake store, small on disk.
pub const ROOT_SIZE: u64 = 64 * MIB;

/// Size of the sd-image's FIRMWARE partition: nixpkgs' `sdImage.firmwareSize` default, 30 MiB.
pub const FIRMWARE_SIZE: u64 = 30 * MIB;
/// Where nixpkgs' sd-image puts FIRMWARE: `sdImage.firmwarePartitionOffset`'s default, 8 MiB,
/// which is sector 16384, where an R2S's u-boot.itb goes.
pub const FIRMWARE_FIRST_SECTOR: u64 = 8 * MIB / SECTOR;
/// nixpkgs' `sdImage.firmwarePartitionID` default, the MBR disk signature and FAT volume ID.
pub const SD_IMAGE_DISK_SIGNATURE: u32 = 0x2178_694e;

/// The shape of an R2S card's GPT: where NIXOS_BOOT starts, how big NIXOS_SD is, and an
/// optional third partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct R2sShape {
    /// First sector of partition 1 (NIXOS_BOOT); 32768 on a good card.
    pub boot_first_sector: u64,
    /// Size of partition 2 (NIXOS_SD) in bytes.
    pub root_size: u64,
    /// Size of a partition 3 after NIXOS_SD, if any.
    pub extra_size: Option<u64>,
}

impl Default for R2sShape {
    fn default() -> R2sShape {
        R2sShape {
            boot_first_sector: BOOT_FIRST_SECTOR,
            root_size: ROOT_SIZE,
            extra_size: None,
        }
    }
}

/// The fixture partition table: p1 NIXOS_BOOT (512 MiB, at sector 32768 unless `shape` says
/// otherwise), p2 NIXOS_SD right after it, an optional p3, up to the last whole MiB before the
/// backup table (fdisk's defaults), no bootable flags. GUIDs derive from `seed`.
pub fn r2s_table(seed: &str, shape: R2sShape) -> Table {
    let partition = |first_lba, last_lba, name: &str| Partition {
        first_lba,
        last_lba,
        type_guid: Guid::LINUX_FILESYSTEM,
        unique_guid: Guid::derived(&format!("{seed}/{name}")),
        name: String::new(),
    };
    let mut partitions = Vec::new();
    let mut next = shape.boot_first_sector;
    let sizes = [Some(BOOT_SIZE), Some(shape.root_size), shape.extra_size];
    for (n, size) in sizes.into_iter().flatten().enumerate() {
        let last = next + size / SECTOR - 1;
        partitions.push(partition(next, last, &format!("p{}", n + 1)));
        next = last + 1;
    }
    // One spare MiB at the end holds the backup GPT, as when a card is partitioned with fdisk.
    Table {
        total_sectors: next + MIB / SECTOR,
        disk_guid: Guid::derived(&format!("{seed}/disk")),
        partitions,
        allow_overlap: false,
    }
}

/// nixpkgs' sd-image table as its `sfdisk` script writes it: p1 FAT32 (0x0b) FIRMWARE at 8 MiB,
/// p2 Linux (0x83), bootable, right after it and up to the end of the image.
pub fn sd_image_table(root_size: u64) -> mbr::Table {
    let firmware = mbr::Partition {
        first_lba: FIRMWARE_FIRST_SECTOR,
        sectors: FIRMWARE_SIZE / SECTOR,
        system_id: 0x0b,
        bootable: false,
    };
    let root = mbr::Partition {
        first_lba: FIRMWARE_FIRST_SECTOR + FIRMWARE_SIZE / SECTOR,
        sectors: root_size / SECTOR,
        system_id: 0x83,
        bootable: true,
    };
    mbr::Table {
        total_sectors: root.first_lba + root.sectors,
        disk_signature: SD_IMAGE_DISK_SIGNATURE,
        partitions: vec![firmware, root],
    }
}

/// A disk's partition table, GPT or MBR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskTable {
    /// GUID partition table (protective MBR, primary and backup tables).
    Gpt(Table),
    /// DOS partition table in sector 0.
    Mbr(mbr::Table),
}

impl DiskTable {
    fn total_sectors(&self) -> u64 {
        match self {
            DiskTable::Gpt(table) => table.total_sectors,
            DiskTable::Mbr(table) => table.total_sectors,
        }
    }

    /// Writes the table into `disk`, the image `path`, which is already its full size.
    fn write_into(&self, disk: &mut File, path: &Path) -> Result<(), BuildError> {
        let path = path.to_owned();
        match self {
            DiskTable::Gpt(table) => table
                .write_into(disk)
                .map_err(|source| BuildError::Gpt { path, source }),
            DiskTable::Mbr(table) => table
                .write_into(disk)
                .map_err(|source| BuildError::Mbr { path, source }),
        }
    }
}

/// A piece of a disk image.
#[derive(Debug)]
pub enum Piece<'a> {
    /// Bytes at a sector.
    Bytes {
        /// First sector.
        sector: u64,
        /// Contents.
        bytes: &'a [u8],
    },
    /// A filesystem image file copied into a partition.
    Filesystem {
        /// The partition's byte offset.
        offset: u64,
        /// The partition's size in bytes.
        size: u64,
        /// The filesystem image.
        file: &'a Path,
    },
}

/// Writes the disk image `out`: the partition table, then each piece in order, a later piece
/// overwriting an earlier one where they overlap (as `dd` onto a card does). Runs of zeros in
/// filesystem images are skipped, so the file stays sparse (a fixture occupies a few tens of
/// MiB of its ~600 MiB).
pub fn write(out: &Path, table: &DiskTable, pieces: &[Piece<'_>]) -> Result<(), BuildError> {
    let mut disk = File::create(out).map_err(BuildError::io("creating", out))?;
    disk.set_len(table.total_sectors() * SECTOR)
        .map_err(BuildError::io("sizing", out))?;
    table.write_into(&mut disk, out)?;
    for piece in pieces {
        match piece {
            Piece::Bytes { sector, bytes } => write_at(&mut disk, out, sector * SECTOR, bytes)?,
            Piece::Filesystem { offset, size, file } => copy_sparse(file, *offset, *size, &mut disk, out)?,
        }
    }
    disk.sync_all().map_err(BuildError::io("syncing", out))
}

fn write_at(disk: &mut File, path: &Path, offset: u64, bytes: &[u8]) -> Result<(), BuildError> {
    disk.seek(SeekFrom::Start(offset))
        .map_err(BuildError::io("seeking in", path))?;
    disk.write_all(bytes).map_err(BuildError::io("writing", path))
}

fn copy_sparse(file: &Path, offset: u64, size: u64, disk: &mut File, out: &Path) -> Result<(), BuildError> {
    let mut src = File::open(file).map_err(BuildError::io("opening", file))?;
    let len = src.metadata().map_err(BuildError::io("inspecting", file))?.len();
    if len > size {
        return Err(BuildError::io("fitting into its partition", file)(
            std::io::Error::other(format!("filesystem is {len} bytes, partition {size} bytes")),
        ));
    }
    let mut buf = vec![0u8; MIB as usize];
    for (start, end) in data_ranges(&src, len) {
        src.seek(SeekFrom::Start(start))
            .map_err(BuildError::io("seeking in", file))?;
        let mut done = start;
        while done < end {
            let want = buf.len().min((end - done) as usize);
            src.read_exact(&mut buf[..want])
                .map_err(BuildError::io("reading", file))?;
            let chunk = &buf[..want];
            // mke2fs writes some zeroed blocks too; leaving them out keeps the image sparse.
            if chunk.iter().any(|&b| b != 0) {
                write_at(disk, out, offset + done, chunk)?;
            }
            done += want as u64;
        }
    }
    Ok(())
}

/// The byte ranges of `file` that hold data, from the filesystem's hole map (SEEK_DATA /
/// SEEK_HOLE), so the ~550 MiB of holes in a fresh filesystem image are never read. Where the
/// filesystem cannot say, the whole file is one range.
fn data_ranges(file: &File, len: u64) -> Vec<(u64, u64)> {
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut pos: u64 = 0;
    while pos < len {
        let offset = i64::try_from(pos).expect("file offsets fit i64");
        // SAFETY: lseek on a descriptor owned by `file`; no memory is passed.
        let start = unsafe { libc::lseek(fd, offset, libc::SEEK_DATA) };
        if start < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole remains
            }
            return vec![(0, len)];
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        let end = if end < 0 { len } else { (end as u64).min(len) };
        ranges.push((start as u64, end));
        pos = end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `table` as gptman reads it back after writing it (which checks that every partition lies
    /// in the usable range, none overlapping) onto a zeroed disk.
    fn written(table: &Table) -> gptman::GPT {
        let mut disk = std::io::Cursor::new(vec![0u8; (table.total_sectors * SECTOR) as usize]);
        table.write_into(&mut disk).unwrap();
        gptman::GPT::read_from(&mut disk, SECTOR).unwrap()
    }

    #[test]
    fn boot_partition_starts_at_sector_32768_and_spans_512_mib() {
        let table = r2s_table("t", R2sShape::default());
        let boot = &table.partitions[0];
        assert_eq!(boot.first_lba, 32768);
        assert_eq!(boot.offset(), 16 * MIB);
        assert_eq!(boot.size(), 512 * MIB);
    }

    #[test]
    fn root_partition_follows_boot_at_sector_1081344() {
        let table = r2s_table("t", R2sShape::default());
        let root = &table.partitions[1];
        assert_eq!(root.first_lba, 1_081_344);
        assert_eq!(root.size(), 64 * MIB);
        assert!(root.last_lba <= written(&table).header.last_usable_lba);
    }

    #[test]
    fn bootloaders_lie_between_the_table_and_partition_one() {
        let table = r2s_table("t", R2sShape::default());
        assert!(IDBLOADER_SECTOR >= written(&table).header.first_usable_lba);
        // idbloader.img may grow to the 8 MiB mark where u-boot.itb starts.
        assert_eq!(UBOOT_ITB_SECTOR * SECTOR, 8 * MIB);
        assert!(UBOOT_ITB_SECTOR + 2 * MIB / SECTOR <= table.partitions[0].first_lba);
    }

    #[test]
    fn disk_size_is_partitions_plus_bootloader_area_plus_one_mib() {
        assert_eq!(
            r2s_table("t", R2sShape::default()).total_sectors * SECTOR,
            (16 + 512 + 64 + 1) * MIB
        );
    }

    #[test]
    fn partitions_have_no_bootable_attribute_and_distinct_guids() {
        let gpt = written(&r2s_table("t", R2sShape::default()));
        assert_eq!(gpt[1].attribute_bits, 0);
        assert_eq!(gpt[2].attribute_bits, 0);
        assert_ne!(gpt[1].unique_partition_guid, gpt[2].unique_partition_guid);
    }

    #[test]
    fn shape_moves_partition_one_and_adds_a_third() {
        let table = r2s_table(
            "t",
            R2sShape {
                boot_first_sector: 2048,
                extra_size: Some(8 * MIB),
                ..R2sShape::default()
            },
        );
        assert_eq!(table.partitions[0].first_lba, 2048);
        assert_eq!(table.partitions[1].first_lba, 2048 + BOOT_SIZE / SECTOR);
        assert_eq!(table.partitions[2].first_lba, table.partitions[1].last_lba + 1);
        assert_eq!(table.partitions[2].size(), 8 * MIB);
        assert!(table.partitions[2].last_lba <= written(&table).header.last_usable_lba);
    }

    #[test]
    fn sd_image_firmware_sits_at_8_mib_where_u_boot_itb_goes() {
        let table = sd_image_table(128 * MIB);
        assert_eq!(table.partitions[0].first_lba, UBOOT_ITB_SECTOR);
        assert_eq!(table.partitions[0].size(), FIRMWARE_SIZE);
        assert!(!table.partitions[0].bootable);
        assert_eq!(table.partitions[1].first_lba * SECTOR, 38 * MIB);
        assert!(table.partitions[1].bootable);
        assert_eq!(table.total_sectors * SECTOR, (38 + 128) * MIB);
    }

    #[test]
    fn data_ranges_skip_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut file = File::create(&path).unwrap();
        file.set_len(64 * MIB).unwrap();
        file.seek(SeekFrom::Start(32 * MIB)).unwrap();
        file.write_all(&[1u8; 4096]).unwrap();
        file.sync_all().unwrap();
        let ranges = data_ranges(&File::open(&path).unwrap(), 64 * MIB);
        let covered: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        assert!(
            ranges.iter().any(|&(s, e)| s <= 32 * MIB && e >= 32 * MIB + 4096),
            "{ranges:?}"
        );
        assert!(covered < 64 * MIB || ranges == [(0, 64 * MIB)], "{ranges:?}");
    }

    #[test]
    fn written_disk_is_sparse_and_holds_pieces_at_their_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let table = r2s_table("t", R2sShape::default());
        let fs = dir.path().join("fs");
        let mut fs_bytes = vec![0u8; 4 * MIB as usize];
        fs_bytes[1024..1028].copy_from_slice(b"ext4");
        std::fs::write(&fs, &fs_bytes).unwrap();
        let out = dir.path().join("disk.img");
        write(
            &out,
            &DiskTable::Gpt(table.clone()),
            &[
                Piece::Bytes {
                    sector: IDBLOADER_SECTOR,
                    bytes: b"\x3b\x8c\xdc\xfc",
                },
                Piece::Filesystem {
                    offset: table.partitions[0].offset(),
                    size: table.partitions[0].size(),
                    file: &fs,
                },
            ],
        )
        .unwrap();
        let disk = std::fs::read(&out).unwrap();
        assert_eq!(disk.len() as u64, table.total_sectors * SECTOR);
        assert_eq!(&disk[64 * 512..64 * 512 + 4], b"\x3b\x8c\xdc\xfc");
        let p1 = table.partitions[0].offset() as usize;
        assert_eq!(&disk[p1 + 1024..p1 + 1028], b"ext4");
        use std::os::unix::fs::MetadataExt;
        let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(allocated < 8 * MIB, "{allocated} bytes allocated");
    }
}
