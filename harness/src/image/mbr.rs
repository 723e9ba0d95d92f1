//! DOS/MBR partition tables, read as Linux reads them: four primary entries whose boot flags
//! must be 00 or 80, and an extended partition's chain of EBRs, each pointing strictly further
//! into the disk, at most [`limits::MBR_EXTENDED_CHAIN`] of them. Logical partitions count
//! from 5. All arithmetic is in u64, so no on-disk value can overflow it.

use std::path::Path;

use super::error::ImageError;
use super::limits;
use super::partition::{Partition, PartitionType};
use super::read_at::ReadAt;

const SECTOR: u64 = 512;
const ENTRIES: usize = 446;
const SIGNATURE: [u8; 2] = [0x55, 0xaa];

/// One 16-byte partition entry.
struct Entry {
    boot: u8,
    sys: u8,
    start: u64,
    sectors: u64,
}

impl Entry {
    fn parse(sector: &[u8], slot: usize) -> Entry {
        let e = &sector[ENTRIES + 16 * slot..ENTRIES + 16 * (slot + 1)];
        Entry {
            boot: e[0],
            sys: e[4],
            start: u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]])),
            sectors: u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]])),
        }
    }

    fn is_extended(&self) -> bool {
        matches!(self.sys, 0x05 | 0x0f | 0x85)
    }

    fn is_used(&self) -> bool {
        self.sys != 0 && self.sectors > 0
    }
}

/// The used partitions of the MBR in `sector0` (which ends in 55 aa), in number order. Also
/// says whether a primary entry has type 0xee (a protective MBR).
pub fn read(
    image: &Path,
    source: &dyn ReadAt,
    sector0: &[u8; 512],
) -> Result<(Vec<Partition>, bool), ImageError> {
    let bad = |reason: String| ImageError::BadPartitionTable {
        image: image.to_owned(),
        reason: format!("MBR: {reason}"),
    };
    let signature = u32::from_le_bytes([sector0[440], sector0[441], sector0[442], sector0[443]]);
    let partition = |index: u32, entry: &Entry, start: u64| Partition {
        index,
        first_lba: start,
        last_lba: start + entry.sectors - 1,
        sector_size: SECTOR,
        kind: PartitionType::Mbr(entry.sys),
        name: String::new(),
        bootable: entry.boot == 0x80,
        partuuid: format!("{signature:08x}-{index:02x}"),
    };
    let primaries: Vec<Entry> = (0..4).map(|slot| Entry::parse(sector0, slot)).collect();
    let mut partitions = Vec::new();
    let mut extended = None;
    for (slot, entry) in primaries.iter().enumerate() {
        if entry.boot != 0 && entry.boot != 0x80 {
            return Err(bad(format!(
                "partition entry {} has boot flag {:#04x} (only 0x00 and 0x80 are valid): not a partition table",
                slot + 1,
                entry.boot
            )));
        }
        if entry.is_extended() && entry.sectors > 0 {
            extended.get_or_insert(entry);
        } else if entry.is_used() {
            partitions.push(partition(slot as u32 + 1, entry, entry.start));
        }
    }
    let protective = primaries.iter().any(|e| e.sys == 0xee);
    let Some(extended) = extended else {
        return Ok((partitions, protective));
    };
    let mut ebr = extended.start;
    let mut next_index = 5;
    for link in 0.. {
        if link == limits::MBR_EXTENDED_CHAIN {
            return Err(bad(format!(
                "the extended partition's chain has more than {} EBRs",
                limits::MBR_EXTENDED_CHAIN
            )));
        }
        let mut sector = [0u8; 512];
        if source.read_exact_at(&mut sector, ebr * SECTOR).is_err() || sector[510..] != SIGNATURE {
            if link == 0 {
                // An empty extended partition need not hold an EBR.
                break;
            }
            return Err(bad(format!(
                "the EBR at sector {ebr} is missing (no 55 aa signature)"
            )));
        }
        let logical = Entry::parse(&sector, 0);
        if logical.is_used() && !logical.is_extended() {
            partitions.push(partition(next_index, &logical, ebr + logical.start));
            next_index += 1;
        }
        let link_entry = Entry::parse(&sector, 1);
        if !link_entry.is_extended() || link_entry.start == 0 {
            break;
        }
        let next = extended.start + link_entry.start;
        if next <= ebr {
            return Err(bad(format!(
                "the EBR at sector {ebr} points back to sector {next}: the chain would loop"
            )));
        }
        ebr = next;
    }
    Ok((partitions, protective))
}
