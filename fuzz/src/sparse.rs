//! A partition given as a few 4 KiB blocks over zeros, so a fuzz input of a couple of hundred
//! KiB stands for a filesystem of tens of MiB (f2fs needs at least about 50 MiB).
//!
//! Input: the partition's length in 4 KiB blocks (u32, little-endian), then records of a block
//! number (u32, little-endian) and up to 4096 bytes for that block; blocks not given are zeros.

use std::collections::BTreeMap;
use std::io;

use r2s_harness::image::read_at::ReadAt;

/// The block size of the records.
pub const BLOCK: usize = 4096;

/// Blocks over zeros.
pub struct Sparse<'a> {
    blocks: BTreeMap<u64, &'a [u8]>,
    len: u64,
}

impl<'a> Sparse<'a> {
    /// Parses a fuzz input; `None` if it is shorter than its length field. At most `max_blocks`
    /// blocks long.
    pub fn parse(data: &'a [u8], max_blocks: u32) -> Option<Sparse<'a>> {
        let (head, mut rest) = data.split_at_checked(4)?;
        let blocks_len = u32::from_le_bytes(head.try_into().ok()?).min(max_blocks);
        let mut blocks = BTreeMap::new();
        while let Some((index, after)) = rest.split_at_checked(4) {
            let index = u64::from(u32::from_le_bytes(index.try_into().ok()?));
            let take = <[u8]>::len(after).min(BLOCK);
            blocks.insert(index, &after[..take]);
            rest = &after[take..];
        }
        Some(Sparse {
            blocks,
            len: u64::from(blocks_len) * BLOCK as u64,
        })
    }

    /// The partition's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the partition has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl ReadAt for Sparse<'_> {
    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|end| *end <= self.len);
        if end.is_none() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.fill(0);
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (block, within) = (at / BLOCK as u64, (at % BLOCK as u64) as usize);
            let take = (BLOCK - within).min(buf.len() - done);
            if let Some(bytes) = self.blocks.get(&block) {
                let have = <[u8]>::len(bytes).saturating_sub(within).min(take);
                if have > 0 {
                    buf[done..done + have].copy_from_slice(&bytes[within..within + have]);
                }
            }
            done += take;
        }
        Ok(())
    }
}
