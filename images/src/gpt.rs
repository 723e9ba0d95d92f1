//! GUID partition tables, written by hand so every byte (GUIDs included) is deterministic and the
//! layout can be checked without a disk.

use sha2::{Digest, Sha256};

/// Bytes per logical sector; the R2S's SD card and QEMU's virtio disk both use 512.
pub const SECTOR: u64 = 512;

/// Partition entries in each table, the common default (32 sectors of 128-byte entries).
const ENTRIES: u32 = 128;
const ENTRY_SIZE: u32 = 128;
/// Sectors taken by the entry array.
const ENTRY_SECTORS: u64 = (ENTRIES as u64 * ENTRY_SIZE as u64) / SECTOR;
const HEADER_SIZE: u32 = 92;

/// A GUID in the on-disk (mixed-endian) byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The "Linux filesystem data" partition type, as fdisk sets it by default.
    pub const LINUX_FILESYSTEM: Guid = Guid::from_fields(0x0FC6_3DAF, 0x8483, 0x4772, 0x8E79_3D69_D847_7DE4);

    /// A GUID from its textual fields (`aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee`, last two as one).
    pub const fn from_fields(a: u32, b: u16, c: u16, de: u64) -> Guid {
        let a = a.to_le_bytes();
        let b = b.to_le_bytes();
        let c = c.to_le_bytes();
        let de = de.to_be_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], de[0], de[1], de[2], de[3], de[4], de[5], de[6],
            de[7],
        ])
    }

    /// A random-looking (version 4 shaped) GUID that is a pure function of `seed`, so rebuilding
    /// a fixture gives the same disk and partition GUIDs.
    pub fn derived(seed: &str) -> Guid {
        let digest = Sha256::digest(seed.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // Version 4 in the high nibble of the (little-endian) third field, RFC 4122 variant.
        bytes[7] = (bytes[7] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Guid(bytes)
    }
}

/// One partition: sector range (inclusive, like GPT itself), type and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// First sector.
    pub first_lba: u64,
    /// Last sector, inclusive.
    pub last_lba: u64,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// Partition name (UTF-16 on disk, at most 36 code units); fdisk leaves it empty.
    pub name: String,
}

impl Partition {
    /// Byte offset of the partition's first sector.
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        (self.last_lba - self.first_lba + 1) * SECTOR
    }
}

/// A whole-disk partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Disk size in sectors.
    pub total_sectors: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// Partitions in table order (partition 1 first).
    pub partitions: Vec<Partition>,
}

impl Table {
    /// First sector a partition may use: after the protective MBR, header and entry array.
    pub fn first_usable_lba() -> u64 {
        2 + ENTRY_SECTORS
    }

    /// Last sector a partition may use: before the backup entry array and header.
    pub fn last_usable_lba(&self) -> u64 {
        self.total_sectors - 2 - ENTRY_SECTORS
    }

    /// Sectors 0 to 33: protective MBR, primary header, primary entry array.
    pub fn primary(&self) -> Vec<u8> {
        let entries = self.entry_array();
        let mut out = protective_mbr(self.total_sectors);
        out.extend(self.header(1, self.total_sectors - 1, 2, &entries));
        out.extend(entries);
        out
    }

    /// The backup entry array and header, and the byte offset where they go (the last 33
    /// sectors of the disk).
    pub fn backup(&self) -> (u64, Vec<u8>) {
        let entries = self.entry_array();
        let entries_lba = self.total_sectors - 1 - ENTRY_SECTORS;
        let mut out = entries.clone();
        out.extend(self.header(self.total_sectors - 1, 1, entries_lba, &entries));
        (entries_lba * SECTOR, out)
    }

    fn entry_array(&self) -> Vec<u8> {
        let mut out = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
        for (slot, part) in out.chunks_exact_mut(ENTRY_SIZE as usize).zip(&self.partitions) {
            slot[0..16].copy_from_slice(&part.type_guid.0);
            slot[16..32].copy_from_slice(&part.unique_guid.0);
            slot[32..40].copy_from_slice(&part.first_lba.to_le_bytes());
            slot[40..48].copy_from_slice(&part.last_lba.to_le_bytes());
            // Attributes stay 0: in particular no legacy-BIOS-bootable bit, as on the R2S card.
            for (i, unit) in part.name.encode_utf16().take(36).enumerate() {
                slot[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
            }
        }
        out
    }

    fn header(&self, my_lba: u64, alternate_lba: u64, entries_lba: u64, entries: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h[40..48].copy_from_slice(&Self::first_usable_lba().to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable_lba().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.0);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRIES.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&crc32(entries).to_le_bytes());
        let header_crc = crc32(&h[..HEADER_SIZE as usize]);
        h[16..20].copy_from_slice(&header_crc.to_le_bytes());
        h
    }
}

/// An MBR with one 0xEE partition covering the disk, so MBR-only tools leave the disk alone.
fn protective_mbr(total_sectors: u64) -> Vec<u8> {
    let mut mbr = vec![0u8; SECTOR as usize];
    let entry = &mut mbr[446..462];
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    entry[4] = 0xEE;
    entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(total_sectors - 1).unwrap_or(u32::MAX);
    entry[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

/// CRC-32 (IEEE), the checksum GPT headers use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sample() -> Table {
        Table {
            total_sectors: 4096,
            disk_guid: Guid::derived("disk"),
            partitions: vec![
                Partition {
                    first_lba: 2048,
                    last_lba: 3071,
                    type_guid: Guid::LINUX_FILESYSTEM,
                    unique_guid: Guid::derived("p1"),
                    name: String::new(),
                },
                Partition {
                    first_lba: 3072,
                    last_lba: 4062,
                    type_guid: Guid::LINUX_FILESYSTEM,
                    unique_guid: Guid::derived("p2"),
                    name: "root".to_owned(),
                },
            ],
        }
    }

    fn disk(table: &Table) -> Vec<u8> {
        let mut disk = vec![0u8; (table.total_sectors * SECTOR) as usize];
        let primary = table.primary();
        disk[..primary.len()].copy_from_slice(&primary);
        let (offset, backup) = table.backup();
        disk[offset as usize..offset as usize + backup.len()].copy_from_slice(&backup);
        disk
    }

    #[test]
    fn linux_filesystem_guid_has_mixed_endian_bytes() {
        assert_eq!(
            Guid::LINUX_FILESYSTEM.0,
            [
                0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D,
                0xE4
            ]
        );
    }

    #[test]
    fn primary_covers_sectors_zero_to_thirty_three() {
        let primary = sample().primary();
        assert_eq!(primary.len() as u64, 34 * SECTOR);
        assert_eq!(&primary[510..512], &[0x55, 0xAA]);
        assert_eq!(primary[446 + 4], 0xEE);
        assert_eq!(&primary[512..520], b"EFI PART");
    }

    #[test]
    fn backup_fills_the_last_thirty_three_sectors() {
        let table = sample();
        let (offset, bytes) = table.backup();
        assert_eq!(offset + bytes.len() as u64, table.total_sectors * SECTOR);
        assert_eq!(bytes.len() as u64, 33 * SECTOR);
        assert_eq!(&bytes[32 * SECTOR as usize..][..8], b"EFI PART");
    }

    #[test]
    fn usable_range_excludes_both_tables() {
        let table = sample();
        assert_eq!(Table::first_usable_lba(), 34);
        assert_eq!(table.last_usable_lba(), 4096 - 34);
    }

    #[test]
    fn gptman_reads_back_partitions_and_checksums() {
        let table = sample();
        let mut cursor = Cursor::new(disk(&table));
        let gpt = gptman::GPT::read_from(&mut cursor, SECTOR).expect("valid GPT");
        assert_eq!(gpt.header.disk_guid, table.disk_guid.0);
        assert_eq!(gpt[1].starting_lba, 2048);
        assert_eq!(gpt[1].ending_lba, 3071);
        assert_eq!(gpt[1].partition_type_guid, Guid::LINUX_FILESYSTEM.0);
        assert_eq!(gpt[1].attribute_bits, 0);
        assert_eq!(gpt[2].partition_name.as_str(), "root");
        assert_eq!(gpt[2].unique_partition_guid, Guid::derived("p2").0);
        assert!(gpt[3].is_unused());
    }

    #[test]
    fn derived_guids_are_stable_and_version_four() {
        let a = Guid::derived("seed");
        assert_eq!(a, Guid::derived("seed"));
        assert_ne!(a, Guid::derived("other"));
        assert_eq!(a.0[7] >> 4, 4);
        assert_eq!(a.0[8] >> 6, 0b10);
    }
}
