//! f2fs's on-disk layout as this reader needs it: the superblock and the checkpoint, parsed
//! from bytes and checked against each other and the partition before anything else is read.
//! Offsets and sizes follow the kernel's `include/linux/f2fs_fs.h`.

use super::error::F2fsError;

/// The only block size this reader reads (f2fs's `F2FS_BLKSIZE` on 4 KiB-page systems).
pub const BLOCK: usize = 4096;
/// [`BLOCK`] as a `u64`, for offsets.
pub const BLOCK_U64: u64 = BLOCK as u64;
/// Where the superblock starts in each of the first two blocks.
pub const SUPERBLOCK_OFFSET: usize = 1024;
const MAGIC: u32 = 0xf2f5_2010;
/// f2fs requires 512 blocks a segment.
const LOG_BLOCKS_PER_SEG: u32 = 9;
/// Blocks a segment holds.
pub const BLOCKS_PER_SEG: u64 = 1 << LOG_BLOCKS_PER_SEG;
/// The superblock's CRC sits here when `sb_checksum` is on (`offsetof(struct f2fs_super_block, crc)`).
const SB_CRC_OFFSET: usize = 3068;

const FEATURE_BLKZONED: u32 = 0x0002;
const FEATURE_FLEXIBLE_INLINE_XATTR: u32 = 0x0040;
const FEATURE_SB_CHKSUM: u32 = 0x0800;
const FEATURE_CASEFOLD: u32 = 0x1000;

/// Where the checkpoint's version bitmaps start (`offsetof(struct f2fs_checkpoint, sit_nat_version_bitmap)`).
const CP_BITMAP_OFFSET: usize = 192;
/// The checkpoint CRC's usual place, the end of its block.
const CP_CRC_END: usize = BLOCK - 4;
const CP_FLAG_COMPACT_SUMMARY: u32 = 0x4;
const CP_FLAG_LARGE_NAT_BITMAP: u32 = 0x400;
/// A summary block's 512 summary entries of 7 bytes precede its journal.
const SUMMARY_ENTRIES_LEN: usize = 512 * 7;
/// NAT entries a NAT journal holds.
const NAT_JOURNAL_ENTRIES: usize = 38;
const NAT_JOURNAL_ENTRY_LEN: usize = 13;
/// NAT entries in one NAT block (4096 / 9).
pub const NAT_ENTRIES_PER_BLOCK: u32 = 455;
/// NAT entries are 9 bytes: version, ino, block address.
pub const NAT_ENTRY_LEN: usize = 9;

pub(super) fn le16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

pub(super) fn le32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub(super) fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from(le32(bytes, at)) | u64::from(le32(bytes, at + 4)) << 32
}

/// f2fs's CRC: the kernel's `crc32_le` seeded with the magic, without the final inversion.
fn f2fs_crc(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(!MAGIC);
    hasher.update(bytes);
    !hasher.finalize()
}

/// What the superblock says, checked: every area lies inside the filesystem, the filesystem
/// inside its partition.
#[derive(Clone, Debug)]
pub struct Superblock {
    /// Blocks in the filesystem.
    pub block_count: u64,
    /// The first block of checkpoint pack 1 (pack 2 follows a segment later).
    pub cp_blkaddr: u64,
    /// The first NAT block.
    pub nat_blkaddr: u64,
    /// NAT segments (both copies).
    pub nat_segments: u64,
    /// The first block of the main area, where nodes and data live.
    pub main_blkaddr: u64,
    /// One past the main area's last block.
    pub main_end: u64,
    /// The root directory's inode number.
    pub root_ino: u32,
    /// Blocks of checkpoint payload (NAT/SIT bitmaps too large for the checkpoint block).
    pub cp_payload: u64,
    /// `flexible_inline_xattr`: an inode says how large its inline xattrs are.
    pub flexible_inline_xattr: bool,
    /// `casefold`: directories flagged casefolded look names up without case.
    pub casefold: bool,
}

impl Superblock {
    /// Parses and checks the superblock in `block` (the partition's first or second 4 KiB
    /// block), against a partition of `partition_len` bytes.
    pub fn parse(block: &[u8], partition_len: u64) -> Result<Superblock, F2fsError> {
        let sb = block
            .get(SUPERBLOCK_OFFSET..BLOCK)
            .ok_or_else(|| F2fsError::corrupt("the superblock is cut short"))?;
        if le32(sb, 0) != MAGIC {
            return Err(F2fsError::NotF2fs);
        }
        let bad = |what: String| Err(F2fsError::Corrupt(format!("the superblock {what}")));
        let log_blocksize = le32(sb, 16);
        if log_blocksize != 12 {
            return Err(F2fsError::Unsupported(format!(
                "blocks of 2^{log_blocksize} bytes (this reader reads 4 KiB blocks)"
            )));
        }
        let log_sectorsize = le32(sb, 8);
        let log_sectors_per_block = le32(sb, 12);
        if !(9..=12).contains(&log_sectorsize) || log_sectorsize + log_sectors_per_block != 12 {
            return bad(format!(
                "says sectors of 2^{log_sectorsize} bytes, 2^{log_sectors_per_block} a block: not 4 KiB blocks"
            ));
        }
        if le32(sb, 20) != LOG_BLOCKS_PER_SEG {
            return bad(format!("says 2^{} blocks a segment, not 512", le32(sb, 20)));
        }
        let feature = le32(sb, 2180);
        if feature & FEATURE_SB_CHKSUM != 0 {
            let offset = le32(sb, 32) as usize;
            if offset != SB_CRC_OFFSET {
                return bad(format!("puts its checksum at byte {offset}, not {SB_CRC_OFFSET}"));
            }
            let (stored, computed) = (le32(sb, offset), f2fs_crc(&sb[..offset]));
            if stored != computed {
                return bad(format!(
                    "checksum is {stored:#010x}, its bytes give {computed:#010x}"
                ));
            }
        }
        if feature & FEATURE_BLKZONED != 0 {
            return Err(F2fsError::Unsupported("a zoned device (blkzoned)".to_owned()));
        }
        // devs[0].path, 64 bytes at 2201: set when the filesystem spans several devices.
        if sb.get(2201).is_some_and(|b| *b != 0) {
            return Err(F2fsError::Unsupported(
                "a filesystem on several devices".to_owned(),
            ));
        }
        let block_count = le64(sb, 36);
        let partition_blocks = partition_len / BLOCK_U64;
        if block_count > partition_blocks {
            return bad(format!(
                "says {block_count} blocks, but the partition holds {partition_blocks}"
            ));
        }
        let segment0 = u64::from(le32(sb, 72));
        let cp_blkaddr = u64::from(le32(sb, 76));
        let sit_blkaddr = u64::from(le32(sb, 80));
        let nat_blkaddr = u64::from(le32(sb, 84));
        let ssa_blkaddr = u64::from(le32(sb, 88));
        let main_blkaddr = u64::from(le32(sb, 92));
        let seg = |n: usize| u64::from(le32(sb, n)) * BLOCKS_PER_SEG;
        let (ckpt, sit, nat, ssa, main) = (seg(52), seg(56), seg(60), seg(64), seg(68));
        // The areas follow one another: checkpoint, SIT, NAT, SSA, main.
        let areas = [
            ("checkpoint", segment0, cp_blkaddr, 0),
            ("SIT", cp_blkaddr, sit_blkaddr, ckpt),
            ("NAT", sit_blkaddr, nat_blkaddr, sit),
            ("SSA", nat_blkaddr, ssa_blkaddr, nat),
            ("main", ssa_blkaddr, main_blkaddr, ssa),
        ];
        for (name, previous, start, previous_len) in areas {
            if previous.checked_add(previous_len) != Some(start) {
                return bad(format!(
                    "puts the {name} area at block {start}, not right after the previous area (block {previous}, \
                     {previous_len} blocks)"
                ));
            }
        }
        let main_end = main_blkaddr.saturating_add(main);
        if main_end > block_count {
            return bad(format!(
                "says the main area ends at block {main_end}, past the filesystem's {block_count} blocks"
            ));
        }
        if ckpt < 2 * BLOCKS_PER_SEG || nat < 2 * BLOCKS_PER_SEG || !nat.is_multiple_of(2 * BLOCKS_PER_SEG) {
            return bad(format!(
                "says {} checkpoint and {} NAT segments (each needs an even count of at least 2)",
                ckpt / BLOCKS_PER_SEG,
                nat / BLOCKS_PER_SEG
            ));
        }
        let cp_payload = u64::from(le32(sb, 1664));
        // Each checkpoint pack (header, payload, orphans, summaries, footer) fits in a segment.
        if cp_payload >= BLOCKS_PER_SEG - 16 {
            return bad(format!("says {cp_payload} checkpoint payload blocks"));
        }
        Ok(Superblock {
            block_count,
            cp_blkaddr,
            nat_blkaddr,
            nat_segments: nat / BLOCKS_PER_SEG,
            main_blkaddr,
            main_end,
            root_ino: le32(sb, 96),
            cp_payload,
            flexible_inline_xattr: feature & FEATURE_FLEXIBLE_INLINE_XATTR != 0,
            casefold: feature & FEATURE_CASEFOLD != 0,
        })
    }

    /// Whether `addr` is a block of the main area (where every node and data block lives).
    pub fn in_main(&self, addr: u64) -> bool {
        (self.main_blkaddr..self.main_end).contains(&addr)
    }

    /// NAT blocks in one copy of the NAT.
    pub fn nat_blocks(&self) -> u64 {
        self.nat_segments / 2 * BLOCKS_PER_SEG
    }
}

/// One checkpoint pack's header, its fields checked; the pack's other blocks are read by the
/// caller with the addresses it gives.
#[derive(Clone, Debug)]
pub struct CheckpointHeader {
    /// The checkpoint's version: the newer of two valid packs is current.
    pub version: u64,
    flags: u32,
    total_blocks: u64,
    start_sum: u64,
    sit_bitmap_len: usize,
    nat_bitmap_len: usize,
    crc_offset: usize,
}

impl CheckpointHeader {
    /// Parses a checkpoint pack's first (or last) block, checking its CRC.
    pub fn parse(block: &[u8], where_: &str) -> Result<CheckpointHeader, F2fsError> {
        let bad = |what: String| Err(F2fsError::Corrupt(format!("the checkpoint at {where_} {what}")));
        let crc_offset = le32(block, 164) as usize;
        if !(CP_BITMAP_OFFSET..=CP_CRC_END).contains(&crc_offset)
            || !crc_offset.is_multiple_of(4)
            || block.len() < BLOCK
        {
            return bad(format!("puts its checksum at byte {crc_offset}"));
        }
        let (stored, computed) = (le32(block, crc_offset), f2fs_crc(&block[..crc_offset]));
        if stored != computed {
            return bad(format!(
                "checksum is {stored:#010x}, its bytes give {computed:#010x}"
            ));
        }
        Ok(CheckpointHeader {
            version: le64(block, 0),
            flags: le32(block, 132),
            total_blocks: u64::from(le32(block, 136)),
            start_sum: u64::from(le32(block, 140)),
            sit_bitmap_len: le32(block, 156) as usize,
            nat_bitmap_len: le32(block, 160) as usize,
            crc_offset,
        })
    }

    /// The blocks of the pack, header and footer included, checked to fit in a segment.
    pub fn total_blocks(&self, sb: &Superblock, where_: &str) -> Result<u64, F2fsError> {
        if self.total_blocks < 2 + sb.cp_payload || self.total_blocks > BLOCKS_PER_SEG {
            return Err(F2fsError::Corrupt(format!(
                "the checkpoint at {where_} says its pack has {} blocks",
                self.total_blocks
            )));
        }
        Ok(self.total_blocks)
    }

    /// The block of the pack (counted from its header) holding the hot data summary, and where
    /// in that block the NAT journal starts.
    pub fn nat_journal_at(&self, total_blocks: u64, where_: &str) -> Result<(u64, usize), F2fsError> {
        if self.start_sum == 0 || self.start_sum >= total_blocks - 1 {
            return Err(F2fsError::Corrupt(format!(
                "the checkpoint at {where_} puts its summaries at block {} of a {total_blocks}-block pack",
                self.start_sum
            )));
        }
        let offset = if self.flags & CP_FLAG_COMPACT_SUMMARY != 0 {
            0
        } else {
            SUMMARY_ENTRIES_LEN
        };
        Ok((self.start_sum, offset))
    }

    /// The NAT version bitmap inside the checkpoint header and payload blocks (`cp`, read
    /// together), checked to cover `nat_blocks` bits.
    pub fn nat_bitmap<'a>(
        &self,
        cp: &'a [u8],
        sb: &Superblock,
        nat_blocks: u64,
    ) -> Result<&'a [u8], F2fsError> {
        let start = if self.flags & CP_FLAG_LARGE_NAT_BITMAP != 0 {
            // The CRC moves to the front of the bitmaps, which follow it.
            if self.crc_offset != CP_BITMAP_OFFSET {
                return Err(F2fsError::corrupt(
                    "the checkpoint has large NAT bitmaps but its checksum is not before them",
                ));
            }
            CP_BITMAP_OFFSET + 4
        } else if sb.cp_payload > 0 {
            CP_BITMAP_OFFSET
        } else {
            CP_BITMAP_OFFSET.saturating_add(self.sit_bitmap_len)
        };
        let needed = usize::try_from(nat_blocks.div_ceil(8)).unwrap_or(usize::MAX);
        if self.nat_bitmap_len < needed {
            return Err(F2fsError::Corrupt(format!(
                "the checkpoint's NAT bitmap has {} bytes; {nat_blocks} NAT blocks need {needed}",
                self.nat_bitmap_len
            )));
        }
        start
            .checked_add(needed)
            .and_then(|end| cp.get(start..end))
            .ok_or_else(|| {
                F2fsError::Corrupt(format!(
                    "the checkpoint's NAT bitmap (bytes {start}.., {needed} bytes) runs past its {} blocks",
                    cp.len() / BLOCK
                ))
            })
    }
}

/// The NAT entries journalled in a summary block: `(nid, block address)`.
pub fn nat_journal(block: &[u8], offset: usize) -> Result<Vec<(u32, u32)>, F2fsError> {
    let count = usize::from(le16(block, offset));
    if count > NAT_JOURNAL_ENTRIES {
        return Err(F2fsError::Corrupt(format!(
            "the checkpoint's NAT journal says {count} entries; it holds {NAT_JOURNAL_ENTRIES}"
        )));
    }
    Ok((0..count)
        .map(|i| {
            let at = offset + 2 + i * NAT_JOURNAL_ENTRY_LEN;
            // nid, then the NAT entry: version (1 byte), ino, block address.
            (le32(block, at), le32(block, at + 4 + 1 + 4))
        })
        .collect())
}

/// The NAT block holding `nid`'s entry, relative to the NAT's start: the copy the version
/// bitmap says is current.
pub fn nat_block_of(nid: u32, bitmap: &[u8]) -> u64 {
    let block = u64::from(nid / NAT_ENTRIES_PER_BLOCK);
    let segment = block / BLOCKS_PER_SEG;
    let mut addr = segment * 2 * BLOCKS_PER_SEG + block % BLOCKS_PER_SEG;
    // Bits count from the most significant bit of each byte.
    let bit = bitmap
        .get((block / 8) as usize)
        .is_some_and(|byte| byte & (0x80 >> (block % 8)) != 0);
    if bit {
        addr += BLOCKS_PER_SEG;
    }
    addr
}
