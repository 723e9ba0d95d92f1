//! DOS (MBR) partition tables as `sfdisk` writes them for nixpkgs' sd-image, written through
//! `mbrman`.

use std::io::{Seek, Write};

use mbrman::{MBRPartitionEntry, BOOT_ACTIVE, BOOT_INACTIVE, CHS, MBR};

use crate::gpt::SECTOR;

/// One primary partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// First sector.
    pub first_lba: u64,
    /// Size in sectors.
    pub sectors: u64,
    /// System ID, e.g. 0x0b (FAT32) or 0x83 (Linux).
    pub system_id: u8,
    /// The active flag U-Boot's distro boot reads as "bootable".
    pub bootable: bool,
}

impl Partition {
    /// Byte offset of the partition's first sector.
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.sectors * SECTOR
    }
}

/// A whole-disk MBR partition table of up to four primary partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Disk size in sectors.
    pub total_sectors: u64,
    /// The disk signature (the `label-id` sfdisk sets, what Linux's PARTUUIDs start with).
    pub disk_signature: u32,
    /// Partitions in table order (partition 1 first).
    pub partitions: Vec<Partition>,
}

impl Table {
    /// Writes sector 0 into `disk`: no boot code, the disk signature, the partition entries,
    /// 55 AA.
    pub fn write_into<D: Write + Seek>(&self, disk: &mut D) -> Result<(), mbrman::Error> {
        assert!(self.partitions.len() <= 4, "an MBR holds four primary partitions");
        let mut mbr = MBR::new_from(disk, SECTOR as u32, self.disk_signature.to_le_bytes())?;
        for (number, part) in (1..).zip(&self.partitions) {
            let last_lba = part.first_lba + part.sectors - 1;
            mbr[number] = MBRPartitionEntry {
                boot: if part.bootable { BOOT_ACTIVE } else { BOOT_INACTIVE },
                first_chs: chs(part.first_lba),
                sys: part.system_id,
                last_chs: chs(last_lba),
                starting_lba: u32::try_from(part.first_lba).expect("MBR partitions start below 2 TiB"),
                sectors: u32::try_from(part.sectors).expect("MBR partitions are below 2 TiB"),
            };
        }
        mbr.write_into(disk)
    }
}

/// The cylinder/head/sector address of `lba` in the 255-head, 63-sector geometry sfdisk
/// assumes, or the 1023/254/63 maximum it writes past the first 8 GiB. Nothing here reads
/// CHS; it is filled in as the tools that made real images fill it.
fn chs(lba: u64) -> CHS {
    u32::try_from(lba)
        .ok()
        .and_then(|lba| CHS::from_lba_exact(lba, 1023, 255, 63).ok())
        .unwrap_or(CHS::new(1023, 254, 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            total_sectors: 300_000,
            disk_signature: 0x2178_694e,
            partitions: vec![
                Partition {
                    first_lba: 16384,
                    sectors: 61440,
                    system_id: 0x0b,
                    bootable: false,
                },
                Partition {
                    first_lba: 77824,
                    sectors: 200_000,
                    system_id: 0x83,
                    bootable: true,
                },
            ],
        }
    }

    #[test]
    fn mbrman_reads_back_partitions_flags_and_signature() {
        let table = sample();
        let mut disk = std::io::Cursor::new(vec![0u8; 1024]);
        table.write_into(&mut disk).unwrap();
        assert_eq!(&disk.get_ref()[440..444], &[0x4e, 0x69, 0x78, 0x21]);
        assert_eq!(&disk.get_ref()[510..512], &[0x55, 0xAA]);
        let mbr = MBR::read_from(&mut disk, 512).unwrap();
        assert_eq!(mbr.header.disk_signature, 0x2178_694eu32.to_le_bytes());
        assert_eq!(mbr[1].starting_lba, 16384);
        assert_eq!(mbr[1].sectors, 61440);
        assert_eq!(mbr[1].sys, 0x0b);
        assert!(!mbr[1].is_active());
        assert_eq!(mbr[2].starting_lba, 77824);
        assert_eq!(mbr[2].sys, 0x83);
        assert!(mbr[2].is_active());
        assert!(!mbr[3].is_used());
    }

    #[test]
    fn chs_of_small_lbas_follows_the_geometry_and_large_ones_saturate() {
        assert_eq!(chs(0), CHS::new(0, 0, 1));
        assert_eq!(chs(63), CHS::new(0, 1, 1));
        assert_eq!(chs(16065), CHS::new(1, 0, 1));
        assert_eq!(chs(1 << 30), CHS::new(1023, 254, 63));
        assert_eq!(chs(1 << 40), CHS::new(1023, 254, 63));
    }
}
