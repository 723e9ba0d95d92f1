//! GUID partition tables, read as Linux reads them: the header checked field by field (CRC32,
//! its own LBA, entry size, array size), the entry array streamed through its CRC32 in bounded
//! chunks, the backup header tried when the primary is invalid, 512-byte sectors before 4096.

use std::path::Path;

use super::error::ImageError;
use super::limits;
use super::partition::{Guid, Partition, PartitionType, GPT_LEGACY_BIOS_BOOTABLE};
use super::read_at::ReadAt;

const SIGNATURE: &[u8; 8] = b"EFI PART";
const HEADER_MIN: usize = 92;
/// The entry size Linux and U-Boot read; the UEFI spec allows any multiple of it.
const ENTRY_SIZE: u32 = 128;
/// Entry array bytes read (and CRC'd) at a time.
const CHUNK: usize = 64 << 10;

/// The used partitions of a GPT and its sector size.
pub struct Gpt {
    /// 512 or 4096.
    pub sector_size: u64,
    /// The used entries, numbered from 1 by their place in the array.
    pub partitions: Vec<Partition>,
}

/// Why one header (primary or backup, at one sector size) was not taken.
enum Rejected {
    /// No "EFI PART" there: no GPT at this place.
    NoSignature,
    /// A header that is there but wrong; the reason.
    Invalid(String),
    /// The entry array runs past the end of the image.
    Truncated { needed: u64 },
    /// The image could not be read.
    Io(std::io::Error),
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the GPT of `source` (the image `image`, `len` bytes long). `Ok(None)` when no sector
/// size has an "EFI PART" header, primary or backup: the image has no GPT.
pub fn read(image: &Path, source: &dyn ReadAt, len: u64) -> Result<Option<Gpt>, ImageError> {
    let mut first_problem = None;
    for sector_size in [512u64, 4096] {
        let mut places = vec![1u64];
        if len / sector_size > 2 {
            places.push(len / sector_size - 1);
        }
        for lba in places {
            match read_at_lba(source, len, sector_size, lba) {
                Ok(partitions) => {
                    return Ok(Some(Gpt {
                        sector_size,
                        partitions,
                    }))
                }
                Err(Rejected::NoSignature) => {}
                Err(other) => {
                    first_problem.get_or_insert((lba, other));
                }
            }
        }
        if first_problem.is_some() {
            break;
        }
    }
    let Some((lba, problem)) = first_problem else {
        return Ok(None);
    };
    let which = if lba == 1 { "primary" } else { "backup" };
    Err(match problem {
        Rejected::NoSignature => unreachable!("only problems are kept"),
        Rejected::Invalid(reason) => ImageError::BadPartitionTable {
            image: image.to_owned(),
            reason: format!("GPT: {which} header (sector {lba}): {reason}"),
        },
        Rejected::Truncated { needed } => ImageError::Truncated {
            image: image.to_owned(),
            what: "the GPT partition entry array".to_owned(),
            needed,
            len,
        },
        Rejected::Io(error) => ImageError::Read {
            image: image.to_owned(),
            what: format!("the GPT {which} header (sector {lba})"),
            error,
        },
    })
}

fn read_at_lba(
    source: &dyn ReadAt,
    len: u64,
    sector_size: u64,
    lba: u64,
) -> Result<Vec<Partition>, Rejected> {
    let invalid = |reason: String| Err(Rejected::Invalid(reason));
    let at = lba * sector_size;
    if at + sector_size > len {
        return Err(Rejected::NoSignature);
    }
    let mut sector = vec![0u8; sector_size as usize];
    source.read_exact_at(&mut sector, at).map_err(Rejected::Io)?;
    if &sector[..8] != SIGNATURE {
        return Err(Rejected::NoSignature);
    }
    let header_size = le32(&sector, 12) as usize;
    if header_size < HEADER_MIN || header_size > sector.len() {
        return invalid(format!(
            "header size {header_size} is outside {HEADER_MIN}..={sector_size}"
        ));
    }
    let stored_crc = le32(&sector, 16);
    let mut header = sector[..header_size].to_vec();
    header[16..20].fill(0);
    let crc = crc32fast::hash(&header);
    if crc != stored_crc {
        return invalid(format!(
            "header CRC32 is {stored_crc:#010x} but the header's bytes give {crc:#010x}"
        ));
    }
    let my_lba = le64(&sector, 24);
    if my_lba != lba {
        return invalid(format!("header says it is at sector {my_lba}"));
    }
    let entry_lba = le64(&sector, 72);
    let count = le32(&sector, 80);
    let entry_size = le32(&sector, 84);
    let array_crc = le32(&sector, 88);
    if entry_size != ENTRY_SIZE {
        return invalid(if entry_size != 0 && entry_size.is_multiple_of(ENTRY_SIZE) {
            format!(
                "partition entries are {entry_size} bytes: the UEFI spec allows any multiple of 128, but \
                 Linux and U-Boot read only 128-byte entries (\"GUID Partition Entry Size check failed\")"
            )
        } else {
            format!("partition entry size {entry_size} is not 128")
        });
    }
    let array_len = u64::from(count) * u64::from(entry_size);
    if array_len > limits::GPT_ENTRY_ARRAY {
        return invalid(format!(
            "the entry array would be {count} entries of {entry_size} bytes ({array_len} bytes); Linux refuses \
             arrays above {} bytes and so does this reader",
            limits::GPT_ENTRY_ARRAY
        ));
    }
    let array_start = entry_lba
        .checked_mul(sector_size)
        .ok_or_else(|| Rejected::Invalid(format!("entry array sector {entry_lba} is past any disk")))?;
    let needed = array_start.saturating_add(array_len);
    if needed > len {
        return Err(Rejected::Truncated { needed });
    }
    let mut crc = crc32fast::Hasher::new();
    let mut partitions = Vec::new();
    let mut chunk = vec![0u8; CHUNK.min(array_len as usize)];
    let mut done = 0u64;
    let mut index = 0u32;
    while done < array_len {
        let n = (array_len - done).min(chunk.len() as u64) as usize;
        let bytes = &mut chunk[..n];
        source
            .read_exact_at(bytes, array_start + done)
            .map_err(Rejected::Io)?;
        crc.update(bytes);
        for entry in bytes.chunks_exact(entry_size as usize) {
            index += 1;
            if let Some(partition) = parse_entry(entry, index, sector_size) {
                partitions.push(partition?);
            }
        }
        done += n as u64;
    }
    let crc = crc.finalize();
    if crc != array_crc {
        return invalid(format!(
            "entry array CRC32 is {array_crc:#010x} but its bytes give {crc:#010x}"
        ));
    }
    Ok(partitions)
}

/// A used entry as a partition; `None` for an unused one (zero type GUID).
fn parse_entry(e: &[u8], index: u32, sector_size: u64) -> Option<Result<Partition, Rejected>> {
    let type_guid: [u8; 16] = e[..16].try_into().expect("16 bytes");
    if type_guid == [0; 16] {
        return None;
    }
    let first_lba = le64(e, 32);
    let last_lba = le64(e, 40).max(first_lba);
    let end = last_lba.checked_add(1).and_then(|n| n.checked_mul(sector_size));
    if end.is_none() {
        return Some(Err(Rejected::Invalid(format!(
            "partition {index} spans sectors {first_lba}..={last_lba}, past any disk"
        ))));
    }
    let units: Vec<u16> = e[56..128]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    Some(Ok(Partition {
        index,
        first_lba,
        last_lba,
        sector_size,
        kind: PartitionType::Gpt(Guid(type_guid)),
        name: String::from_utf16_lossy(&units),
        bootable: le64(e, 48) & GPT_LEGACY_BIOS_BOOTABLE != 0,
        partuuid: Guid(e[16..32].try_into().expect("16 bytes")).to_string(),
    }))
}
