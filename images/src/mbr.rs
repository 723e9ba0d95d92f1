//! DOS (MBR) partition tables, written by hand as `sfdisk` writes them for nixpkgs' sd-image, so
//! every byte is deterministic.

use crate::gpt::SECTOR;

/// Byte offset of the disk signature (the `label-id` sfdisk sets, what Linux's PARTUUIDs start
/// with).
const SIGNATURE_OFFSET: usize = 440;
/// Byte offset of the first of the four partition entries.
const ENTRIES_OFFSET: usize = 446;

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
    /// The disk signature.
    pub disk_signature: u32,
    /// Partitions in table order (partition 1 first).
    pub partitions: Vec<Partition>,
}

impl Table {
    /// Sector 0: no boot code, the disk signature, the partition entries, 55 AA.
    pub fn sector0(&self) -> Vec<u8> {
        assert!(self.partitions.len() <= 4, "an MBR holds four primary partitions");
        let mut mbr = vec![0u8; SECTOR as usize];
        mbr[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 4].copy_from_slice(&self.disk_signature.to_le_bytes());
        for (slot, part) in mbr[ENTRIES_OFFSET..ENTRIES_OFFSET + 64]
            .chunks_exact_mut(16)
            .zip(&self.partitions)
        {
            slot[0] = if part.bootable { 0x80 } else { 0x00 };
            slot[1..4].copy_from_slice(&chs(part.first_lba));
            slot[4] = part.system_id;
            slot[5..8].copy_from_slice(&chs(part.first_lba + part.sectors - 1));
            let first = u32::try_from(part.first_lba).expect("MBR partitions start below 2 TiB");
            let sectors = u32::try_from(part.sectors).expect("MBR partitions are below 2 TiB");
            slot[8..12].copy_from_slice(&first.to_le_bytes());
            slot[12..16].copy_from_slice(&sectors.to_le_bytes());
        }
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }
}

/// The cylinder/head/sector address of `lba` in the 255-head, 63-sector geometry sfdisk
/// assumes, or the 1023/254/63 maximum it writes past the first 8 GiB. Nothing here reads
/// CHS; it is filled in as the tools that made real images fill it.
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        cylinder as u8,
    ]
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
        let mut disk = vec![0u8; 1024];
        disk[..512].copy_from_slice(&table.sector0());
        let mbr = mbrman::MBR::read_from(&mut std::io::Cursor::new(disk), 512).unwrap();
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
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(63), [1, 1, 0]);
        assert_eq!(chs(16065), [0, 1, 1]);
        assert_eq!(chs(1 << 30), [0xFE, 0xFF, 0xFF]);
    }
}
