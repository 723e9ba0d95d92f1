//! What a partition holds, told from its first bytes: ext4, vfat, f2fs or unknown.

use std::fmt;

/// What a partition holds, as told by its superblock magic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// ext2, ext3 or ext4 (one magic, 0xEF53; U-Boot's ext4 driver reads all three).
    Ext4 {
        /// The volume name (`mke2fs -L`), if set.
        label: Option<String>,
    },
    /// FAT12, FAT16 or FAT32.
    Vfat {
        /// The boot sector's volume label, if set (not "NO NAME").
        label: Option<String>,
    },
    /// F2FS (U-Boot cannot read it).
    F2fs {
        /// The volume name, if set.
        label: Option<String>,
    },
    /// None of the above.
    Unknown,
}

/// How many bytes from the start of a partition [`FsKind::probe`] wants to see.
pub const PROBE_LEN: usize = 4096;

const EXT_SUPERBLOCK: usize = 1024;
const EXT_MAGIC: [u8; 2] = [0x53, 0xef];
const EXT_MAGIC_OFFSET: usize = EXT_SUPERBLOCK + 0x38;
const EXT_LABEL_OFFSET: usize = EXT_SUPERBLOCK + 0x78;
const F2FS_SUPERBLOCK: usize = 1024;
const F2FS_MAGIC: [u8; 4] = 0xf2f5_2010u32.to_le_bytes();
const F2FS_LABEL_OFFSET: usize = F2FS_SUPERBLOCK + 0x7c;
const F2FS_LABEL_UNITS: usize = 512;

impl FsKind {
    /// Tells the filesystem from the first bytes of a partition (pass [`PROBE_LEN`] bytes, or
    /// all of a smaller partition). Superblock magics are checked before the FAT boot sector
    /// because `mke2fs` leaves the first kilobyte alone, so a reformatted partition can keep
    /// an old FAT boot sector.
    pub fn probe(head: &[u8]) -> FsKind {
        if head.get(EXT_MAGIC_OFFSET..EXT_MAGIC_OFFSET + 2) == Some(&EXT_MAGIC) {
            let label = head
                .get(EXT_LABEL_OFFSET..EXT_LABEL_OFFSET + 16)
                .and_then(nul_terminated);
            return FsKind::Ext4 { label };
        }
        if head.get(F2FS_SUPERBLOCK..F2FS_SUPERBLOCK + 4) == Some(&F2FS_MAGIC) {
            let end = (F2FS_LABEL_OFFSET + 2 * F2FS_LABEL_UNITS).min(head.len());
            let label = head.get(F2FS_LABEL_OFFSET..end).and_then(utf16_nul_terminated);
            return FsKind::F2fs { label };
        }
        if let Some(label) = fat_label(head) {
            return FsKind::Vfat { label };
        }
        FsKind::Unknown
    }

    /// The label, whatever the filesystem.
    pub fn label(&self) -> Option<&str> {
        match self {
            FsKind::Ext4 { label } | FsKind::Vfat { label } | FsKind::F2fs { label } => label.as_deref(),
            FsKind::Unknown => None,
        }
    }
}

impl fmt::Display for FsKind {
    /// `ext4 labelled "NIXOS_BOOT"`, `vfat`, `no known filesystem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FsKind::Ext4 { .. } => "ext4",
            FsKind::Vfat { .. } => "vfat",
            FsKind::F2fs { .. } => "f2fs",
            FsKind::Unknown => return f.write_str("no known filesystem"),
        };
        match self.label() {
            Some(label) => write!(f, "{name} labelled {label:?}"),
            None => f.write_str(name),
        }
    }
}

fn nul_terminated(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    (!text.is_empty()).then_some(text)
}

fn utf16_nul_terminated(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|u| *u != 0)
        .collect();
    let text = String::from_utf16_lossy(&units);
    (!text.is_empty()).then_some(text)
}

/// `Some(label)` if `head` starts with a FAT boot sector.
fn fat_label(head: &[u8]) -> Option<Option<String>> {
    let sector = head.get(..512)?;
    let jump = sector[0] == 0xeb || sector[0] == 0xe9;
    let bytes_per_sector = u16::from_le_bytes([sector[11], sector[12]]);
    if !jump || sector[510..] != [0x55, 0xaa] || ![512, 1024, 2048, 4096].contains(&bytes_per_sector) {
        return None;
    }
    // FAT32 keeps its extended BPB (and so the label) further in than FAT12/16.
    let label_at = if &sector[0x52..0x5a] == b"FAT32   " {
        0x47
    } else if sector[0x36..0x3e].starts_with(b"FAT") {
        0x2b
    } else {
        return None;
    };
    let label = String::from_utf8_lossy(&sector[label_at..label_at + 11])
        .trim_end()
        .to_owned();
    Some((!label.is_empty() && label != "NO NAME").then_some(label))
}
