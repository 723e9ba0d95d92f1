//! The R2S SD-card layout and writing a whole disk image from its pieces, keeping it sparse.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::gpt::{Guid, Partition, Table, SECTOR};
use crate::BuildError;

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

/// The fixture partition table: p1 NIXOS_BOOT at sector 32768 for 512 MiB, p2 NIXOS_SD right
/// after it up to the last whole MiB before the backup table (fdisk's defaults), no bootable
/// flags. GUIDs derive from `seed`.
pub fn r2s_table(seed: &str) -> Table {
    let boot_last = BOOT_FIRST_SECTOR + BOOT_SIZE / SECTOR - 1;
    let root_first = boot_last + 1;
    let root_last = root_first + ROOT_SIZE / SECTOR - 1;
    // One spare MiB at the end holds the backup GPT, as when a card is partitioned with fdisk.
    let total_sectors = root_last + 1 + MIB / SECTOR;
    let partition = |first_lba, last_lba, name: &str| Partition {
        first_lba,
        last_lba,
        type_guid: Guid::LINUX_FILESYSTEM,
        unique_guid: Guid::derived(&format!("{seed}/{name}")),
        name: String::new(),
    };
    Table {
        total_sectors,
        disk_guid: Guid::derived(&format!("{seed}/disk")),
        partitions: vec![
            partition(BOOT_FIRST_SECTOR, boot_last, "p1"),
            partition(root_first, root_last, "p2"),
        ],
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
        /// The partition it fills.
        partition: &'a Partition,
        /// The filesystem image.
        file: &'a Path,
    },
}

/// Writes the disk image `out`: the partition table, then each piece. Runs of zeros in
/// filesystem images are skipped, so the file stays sparse (a fixture occupies a few tens of
/// MiB of its ~600 MiB). Pieces must not overlap the table or each other.
pub fn write(out: &Path, table: &Table, pieces: &[Piece<'_>]) -> Result<(), BuildError> {
    let mut disk = File::create(out).map_err(BuildError::io("creating", out))?;
    disk.set_len(table.total_sectors * SECTOR)
        .map_err(BuildError::io("sizing", out))?;
    write_at(&mut disk, out, 0, &table.primary())?;
    let (backup_offset, backup) = table.backup();
    write_at(&mut disk, out, backup_offset, &backup)?;
    for piece in pieces {
        match piece {
            Piece::Bytes { sector, bytes } => write_at(&mut disk, out, sector * SECTOR, bytes)?,
            Piece::Filesystem { partition, file } => copy_sparse(file, partition, &mut disk, out)?,
        }
    }
    disk.sync_all().map_err(BuildError::io("syncing", out))
}

fn write_at(disk: &mut File, path: &Path, offset: u64, bytes: &[u8]) -> Result<(), BuildError> {
    disk.seek(SeekFrom::Start(offset))
        .map_err(BuildError::io("seeking in", path))?;
    disk.write_all(bytes).map_err(BuildError::io("writing", path))
}

fn copy_sparse(file: &Path, partition: &Partition, disk: &mut File, out: &Path) -> Result<(), BuildError> {
    let mut src = File::open(file).map_err(BuildError::io("opening", file))?;
    let len = src.metadata().map_err(BuildError::io("inspecting", file))?.len();
    if len > partition.size() {
        return Err(BuildError::io("fitting into its partition", file)(
            std::io::Error::other(format!(
                "filesystem is {len} bytes, partition {} bytes",
                partition.size()
            )),
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
                write_at(disk, out, partition.offset() + done, chunk)?;
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

    #[test]
    fn boot_partition_starts_at_sector_32768_and_spans_512_mib() {
        let table = r2s_table("t");
        let boot = &table.partitions[0];
        assert_eq!(boot.first_lba, 32768);
        assert_eq!(boot.offset(), 16 * MIB);
        assert_eq!(boot.size(), 512 * MIB);
    }

    #[test]
    fn root_partition_follows_boot_at_sector_1081344() {
        let table = r2s_table("t");
        let root = &table.partitions[1];
        assert_eq!(root.first_lba, 1_081_344);
        assert_eq!(root.size(), 64 * MIB);
        assert!(root.last_lba <= table.last_usable_lba());
    }

    #[test]
    fn bootloaders_lie_between_the_table_and_partition_one() {
        let table = r2s_table("t");
        assert!(IDBLOADER_SECTOR >= Table::first_usable_lba());
        // idbloader.img may grow to the 8 MiB mark where u-boot.itb starts.
        assert_eq!(UBOOT_ITB_SECTOR * SECTOR, 8 * MIB);
        assert!(UBOOT_ITB_SECTOR + 2 * MIB / SECTOR <= table.partitions[0].first_lba);
    }

    #[test]
    fn disk_size_is_partitions_plus_bootloader_area_plus_one_mib() {
        assert_eq!(r2s_table("t").total_sectors * SECTOR, (16 + 512 + 64 + 1) * MIB);
    }

    #[test]
    fn partitions_have_no_bootable_attribute_and_distinct_guids() {
        let table = r2s_table("t");
        let mut cursor = std::io::Cursor::new(vec![0u8; (table.total_sectors * SECTOR) as usize]);
        cursor.get_mut()[..34 * SECTOR as usize].copy_from_slice(&table.primary());
        let gpt = gptman::GPT::read_from(&mut cursor, SECTOR).unwrap();
        assert_eq!(gpt[1].attribute_bits, 0);
        assert_eq!(gpt[2].attribute_bits, 0);
        assert_ne!(gpt[1].unique_partition_guid, gpt[2].unique_partition_guid);
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
        let table = r2s_table("t");
        let fs = dir.path().join("fs");
        let mut fs_bytes = vec![0u8; 4 * MIB as usize];
        fs_bytes[1024..1028].copy_from_slice(b"ext4");
        std::fs::write(&fs, &fs_bytes).unwrap();
        let out = dir.path().join("disk.img");
        write(
            &out,
            &table,
            &[
                Piece::Bytes {
                    sector: IDBLOADER_SECTOR,
                    bytes: b"\x3b\x8c\xdc\xfc",
                },
                Piece::Filesystem {
                    partition: &table.partitions[0],
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
