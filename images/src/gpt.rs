//! GUID partition tables: a card's layout as plain data with GUIDs derived from a seed, so
//! every byte is deterministic, written through `gptman`.

use std::io::{Read, Seek, Write};

use gptman::{GPTPartitionEntry, GPT};
use sha2::{Digest, Sha256};

/// Bytes per logical sector; the R2S's SD card and QEMU's virtio disk both use 512.
pub const SECTOR: u64 = 512;

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
    /// Whether entries may overlap, as only a deliberately broken card's do.
    pub allow_overlap: bool,
}

impl Table {
    /// Writes the protective MBR (sector 0), the primary header and entries (sectors 1 to 33)
    /// and the backup entries and header (the last 33 sectors) into `disk`, which is already
    /// `total_sectors` long.
    pub fn write_into<D: Read + Write + Seek>(&self, disk: &mut D) -> Result<(), gptman::Error> {
        let mut gpt = GPT::new_from(disk, SECTOR, self.disk_guid.0)?;
        for (number, part) in (1..).zip(&self.partitions) {
            gpt[number] = GPTPartitionEntry {
                partition_type_guid: part.type_guid.0,
                unique_partition_guid: part.unique_guid.0,
                starting_lba: part.first_lba,
                ending_lba: part.last_lba,
                // In particular no legacy-BIOS-bootable bit, as on the R2S card.
                attribute_bits: 0,
                partition_name: part.name.as_str().into(),
            };
        }
        GPT::write_protective_mbr_into(disk, SECTOR)?;
        if self.allow_overlap {
            write_unchecked(&gpt, disk)
        } else {
            gpt.write_into(disk).map(drop)
        }
    }
}

/// Writes both headers and entry arrays where [`GPT::write_into`] puts them, without its checks:
/// it refuses overlapping entries, which the broken fixture for that check must have.
fn write_unchecked<D: Write + Seek>(gpt: &GPT, disk: &mut D) -> Result<(), gptman::Error> {
    let entries: Vec<GPTPartitionEntry> = gpt.iter().map(|(_, entry)| entry.clone()).collect();
    let mut primary = gpt.header.clone();
    let mut backup = gpt.header.clone();
    backup.primary_lba = primary.backup_lba;
    backup.backup_lba = primary.primary_lba;
    backup.partition_entry_lba = primary.last_usable_lba + 1;
    primary.write_into(disk, SECTOR, &entries)?;
    backup.write_into(disk, SECTOR, &entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, SeekFrom};

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
            allow_overlap: false,
        }
    }

    /// `table` written into a zeroed disk of its size.
    fn disk(table: &Table) -> Result<Vec<u8>, gptman::Error> {
        let mut disk = Cursor::new(vec![0u8; (table.total_sectors * SECTOR) as usize]);
        table.write_into(&mut disk)?;
        Ok(disk.into_inner())
    }

    /// The backup header in the last sector and the entries it points at, checksums verified.
    fn backup(disk: &[u8]) -> (gptman::GPTHeader, Vec<GPTPartitionEntry>) {
        let mut cursor = Cursor::new(disk);
        cursor.seek(SeekFrom::End(-(SECTOR as i64))).unwrap();
        let header = gptman::GPTHeader::read_from(&mut cursor).expect("valid backup header");
        let entries = header
            .read_partitions(&mut cursor, SECTOR)
            .expect("valid backup entries");
        (header, entries)
    }

    /// Partition 2 of `sample` starting inside partition 1.
    fn overlapping(allow_overlap: bool) -> Table {
        let mut table = sample();
        table.partitions[1].first_lba = 3000;
        table.allow_overlap = allow_overlap;
        table
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
    fn protective_mbr_header_and_entries_fill_sectors_zero_to_thirty_three() {
        let disk = disk(&sample()).unwrap();
        assert_eq!(&disk[510..512], &[0x55, 0xAA]);
        assert_eq!(disk[446 + 4], 0xEE);
        assert_eq!(&disk[512..520], b"EFI PART");
        assert_eq!(&disk[1024..1040], &Guid::LINUX_FILESYSTEM.0);
        assert!(disk[34 * SECTOR as usize..].starts_with(&[0u8; 512]));
    }

    #[test]
    fn backup_fills_the_last_thirty_three_sectors() {
        let table = sample();
        let disk = disk(&table).unwrap();
        let (header, entries) = backup(&disk);
        assert_eq!(header.primary_lba, table.total_sectors - 1);
        assert_eq!(header.backup_lba, 1);
        assert_eq!(header.partition_entry_lba, table.total_sectors - 33);
        assert_eq!(entries[1].unique_partition_guid, Guid::derived("p2").0);
    }

    #[test]
    fn usable_range_excludes_both_tables() {
        let gpt = GPT::read_from(&mut Cursor::new(disk(&sample()).unwrap()), SECTOR).unwrap();
        assert_eq!(gpt.header.first_usable_lba, 34);
        assert_eq!(gpt.header.last_usable_lba, 4096 - 34);
    }

    #[test]
    fn gptman_reads_back_partitions_and_checksums() {
        let table = sample();
        let gpt = GPT::read_from(&mut Cursor::new(disk(&table).unwrap()), SECTOR).expect("valid GPT");
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
    fn overlapping_entries_are_refused_unless_allowed() {
        assert!(matches!(
            disk(&overlapping(false)),
            Err(gptman::Error::InvalidPartitionBoundaries)
        ));
    }

    #[test]
    fn allowed_overlap_is_written_with_valid_headers_and_checksums() {
        let disk = disk(&overlapping(true)).unwrap();
        let gpt = GPT::read_from(&mut Cursor::new(&disk), SECTOR).expect("valid primary GPT");
        assert_eq!(gpt[2].starting_lba, 3000);
        assert!(gpt[2].starting_lba <= gpt[1].ending_lba);
        let (header, entries) = backup(&disk);
        assert_eq!(header.partition_entry_lba, 4096 - 33);
        assert_eq!(entries[1].starting_lba, 3000);
    }

    #[test]
    fn checked_and_unchecked_writes_give_the_same_bytes() {
        let mut unchecked = sample();
        unchecked.allow_overlap = true;
        assert_eq!(disk(&sample()).unwrap(), disk(&unchecked).unwrap());
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
