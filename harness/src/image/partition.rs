//! Partition tables (GPT or MBR) read from an image file, numbered as Linux and U-Boot number
//! them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::error::ImageError;
use super::read_at::ReadAt;
use super::{gpt, mbr};

/// The partitioning scheme of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// GUID partition table (a protective MBR, then "EFI PART" in sector 1).
    Gpt,
    /// DOS/MBR partition table (four primary entries, logical ones from 5).
    Mbr,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Gpt => "GPT",
            Scheme::Mbr => "MBR",
        })
    }
}

/// A GUID as stored on disk (the first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl fmt::Display for Guid {
    /// Lower-case canonical form, as `blkid` and U-Boot print it:
    /// `0fc63daf-8483-4772-8e79-3d69d8477de4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Guid {
    /// Parses the canonical text form (either case); `None` if it is not one.
    pub fn parse(text: &str) -> Option<Guid> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || text.len() != 36 {
            return None;
        }
        let mut be = [0u8; 16];
        for (i, byte) in be.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut b = be;
        b[..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Some(Guid(b))
    }
}

/// The GPT type GUID of "Linux filesystem data".
pub const LINUX_FILESYSTEM: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
/// The GPT type GUID of an EFI system partition.
pub const EFI_SYSTEM: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// The GPT attribute bit U-Boot (and syslinux) read as "bootable".
pub const GPT_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

/// A partition's type: a GUID in a GPT, a one-byte system ID in an MBR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionType {
    /// GPT partition type GUID.
    Gpt(Guid),
    /// MBR system ID, e.g. 0x83 (Linux) or 0x0c (FAT32 LBA).
    Mbr(u8),
}

impl PartitionType {
    /// A common name for well-known types, e.g. "Linux filesystem".
    pub fn name(&self) -> Option<&'static str> {
        match self {
            PartitionType::Gpt(guid) => match guid.to_string().as_str() {
                LINUX_FILESYSTEM => Some("Linux filesystem"),
                EFI_SYSTEM => Some("EFI system"),
                "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7" => Some("Microsoft basic data"),
                "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f" => Some("Linux swap"),
                "b921b045-1df0-41c3-af44-4c6f280d3fae" => Some("Linux root (ARM-64)"),
                "bc13c2ff-59e6-4262-a352-b275fd6f7172" => Some("Linux extended boot"),
                _ => None,
            },
            PartitionType::Mbr(id) => match id {
                0x01 => Some("FAT12"),
                0x04 | 0x06 | 0x0e => Some("FAT16"),
                0x0b | 0x0c => Some("FAT32"),
                0x82 => Some("Linux swap"),
                0x83 => Some("Linux"),
                0xea => Some("Linux extended boot"),
                0xee => Some("GPT protective"),
                0xef => Some("EFI system"),
                _ => None,
            },
        }
    }
}

impl fmt::Display for PartitionType {
    /// The raw type (GUID or `0xNN`), then its name when known: `0x83 (Linux)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionType::Gpt(guid) => write!(f, "{guid}")?,
            PartitionType::Mbr(id) => write!(f, "{id:#04x}")?,
        }
        match self.name() {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// One partition of a [`Table`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number, as Linux (`sda1`) and U-Boot (`mmc 1:1`) use it. MBR logical partitions
    /// count from 5.
    pub index: u32,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
    /// Bytes per sector of the table (512 or 4096).
    pub sector_size: u64,
    /// The partition's type.
    pub kind: PartitionType,
    /// The GPT partition name; empty in an MBR.
    pub name: String,
    /// Whether U-Boot's distro boot counts it as bootable: the MBR active flag (0x80), or the
    /// GPT "legacy BIOS bootable" attribute (bit 2).
    pub bootable: bool,
    /// The PARTUUID Linux shows: the GPT unique partition GUID, or for MBR the disk signature
    /// and partition number (`1a2b3c4d-02`).
    pub partuuid: String,
}

impl Partition {
    /// Byte offset of the partition in the image.
    pub fn offset(&self) -> u64 {
        self.first_lba * self.sector_size
    }

    /// Size in sectors.
    pub fn sectors(&self) -> u64 {
        self.last_lba + 1 - self.first_lba
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.sectors() * self.sector_size
    }

    /// The partition's bytes in the image.
    pub fn byte_range(&self) -> Range<u64> {
        self.offset()..self.offset() + self.size()
    }
}

/// A partition table read from an image file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The image file the table was read from.
    pub image: PathBuf,
    /// GPT or MBR.
    pub scheme: Scheme,
    /// Bytes per sector (512, or 4096 for a 4K-native GPT).
    pub sector_size: u64,
    /// The image file's length in bytes.
    pub image_len: u64,
    /// The used partitions in number order (empty GPT entries, empty MBR slots and MBR
    /// extended containers are left out).
    pub partitions: Vec<Partition>,
}

impl Table {
    /// Reads the partition table of an image file: a GPT if there is one (primary header, else
    /// the backup), else an MBR. Fails with a typed error on a file too short for its table or
    /// its partitions, on garbage, and on an inconsistent table; never panics, and reads at
    /// most [`limits::GPT_ENTRY_ARRAY`](super::limits::GPT_ENTRY_ARRAY) bytes of entries.
    pub fn read(image: &Path) -> Result<Table, ImageError> {
        let file = ImageError::open_image(image)?;
        Table::read_from(image, &file)
    }

    /// [`Table::read`] on bytes from anywhere (`image` names them in errors).
    pub fn read_from(image: &Path, source: &dyn ReadAt) -> Result<Table, ImageError> {
        let image_len = source.len().map_err(|error| ImageError::Read {
            image: image.to_owned(),
            what: "its size".to_owned(),
            error,
        })?;
        let table = read_table(image, source, image_len)?;
        for p in &table.partitions {
            let end = p
                .last_lba
                .checked_add(1)
                .and_then(|n| n.checked_mul(p.sector_size))
                .unwrap_or(u64::MAX);
            if end > image_len {
                return Err(ImageError::Truncated {
                    image: image.to_owned(),
                    what: format!("partition {} (sectors {}..={})", p.index, p.first_lba, p.last_lba),
                    needed: end,
                    len: image_len,
                });
            }
        }
        Ok(table)
    }

    /// The partition with this 1-based number.
    pub fn partition(&self, index: u32) -> Result<&Partition, ImageError> {
        self.partitions
            .iter()
            .find(|p| p.index == index)
            .ok_or_else(|| ImageError::NoSuchPartition {
                image: self.image.clone(),
                index,
                available: self.partitions.iter().map(|p| p.index).collect(),
            })
    }

    /// The partitions U-Boot's distro boot scans, in order: the bootable ones if any is
    /// bootable, else the first partition alone.
    pub fn boot_candidates(&self) -> Vec<&Partition> {
        let bootable: Vec<&Partition> = self.partitions.iter().filter(|p| p.bootable).collect();
        if bootable.is_empty() {
            self.partitions.iter().filter(|p| p.index == 1).collect()
        } else {
            bootable
        }
    }
}

const MBR_SIGNATURE_OFFSET: usize = 510;

fn read_table(image: &Path, source: &dyn ReadAt, image_len: u64) -> Result<Table, ImageError> {
    if image_len < 512 {
        return Err(ImageError::Truncated {
            image: image.to_owned(),
            what: "a partition table (sector 0)".to_owned(),
            needed: 512,
            len: image_len,
        });
    }
    if let Some(gpt) = gpt::read(image, source, image_len)? {
        return Ok(Table {
            image: image.to_owned(),
            scheme: Scheme::Gpt,
            sector_size: gpt.sector_size,
            image_len,
            partitions: gpt.partitions,
        });
    }
    let mut sector0 = [0u8; 512];
    source
        .read_exact_at(&mut sector0, 0)
        .map_err(|error| ImageError::Read {
            image: image.to_owned(),
            what: "sector 0".to_owned(),
            error,
        })?;
    if sector0[MBR_SIGNATURE_OFFSET..] != [0x55, 0xaa] {
        return Err(ImageError::NoPartitionTable {
            image: image.to_owned(),
        });
    }
    let (partitions, protective) = mbr::read(image, source, &sector0)?;
    if protective {
        return Err(ImageError::BadPartitionTable {
            image: image.to_owned(),
            reason: "protective MBR (type 0xee) but neither the primary nor the backup GPT header is there"
                .to_owned(),
        });
    }
    Ok(Table {
        image: image.to_owned(),
        scheme: Scheme::Mbr,
        sector_size: 512,
        image_len,
        partitions,
    })
}
