//! The f2fs reader: from the superblock to the current checkpoint, through the NAT (and the
//! NAT entries journalled in the checkpoint) to node blocks, inodes, directory entries and
//! file data. Generic over where the bytes come from, so the fuzz target hands it memory.
//!
//! Every number read from the image is checked before it is used: block addresses against the
//! superblock's areas, node footers against the node asked for, sizes against what an inode
//! can address. Each operation reads at most what its [`ReadBudget`] allows, and holds a few
//! blocks at a time.

use std::collections::VecDeque;
use std::io::Write;
use std::ops::ControlFlow;

use super::error::F2fsError;
use super::layout::{
    le16, le32, le64, nat_block_of, nat_journal, CheckpointHeader, Superblock, BLOCK, BLOCKS_PER_SEG,
    BLOCK_U64, NAT_ENTRIES_PER_BLOCK, NAT_ENTRY_LEN,
};
use crate::image::budget::ReadBudget;
use crate::image::read_at::ReadAt;

/// Symlinks followed in one lookup before it fails, as Linux's `MAXSYMLINKS`.
pub const MAX_SYMLINK_HOPS: usize = 40;
/// The longest symlink target read (Linux's `PATH_MAX`).
const MAX_SYMLINK_LEN: u64 = 4096;
/// The most blocks a directory may have (4 GiB): far beyond a real one (a `/nix/store` of
/// 100,000 entries has a few thousand), few enough that walking its holes is quick.
const MAX_DIR_BLOCKS: u64 = 1 << 20;
/// The most names one directory listing returns.
pub const MAX_DIR_ENTRIES: usize = 1 << 16;

/// Block addresses with a meaning of their own: no block, and allocated but unwritten.
const NULL_ADDR: u32 = 0;
const NEW_ADDR: u32 = 0xffff_ffff;
/// A compressed cluster's first address.
const COMPRESS_ADDR: u32 = 0xffff_fffe;

/// `struct f2fs_inode` offsets.
const I_MODE: usize = 0;
const I_ADVISE: usize = 2;
const I_INLINE: usize = 3;
const I_SIZE: usize = 16;
const I_FLAGS: usize = 80;
const I_EXTRA_ISIZE: usize = 360;
const I_INLINE_XATTR_SIZE: usize = 362;
const I_ADDR: usize = 360;
const I_NID: usize = 4052;
/// Addresses an inode holds without extra attributes or inline xattrs.
const DEF_ADDRS_PER_INODE: usize = 923;
/// The inline xattr words of an inode when the filesystem does not say (`DEFAULT_INLINE_XATTR_ADDRS`).
const DEFAULT_INLINE_XATTR_WORDS: usize = 50;
/// The most extra-attribute bytes an inode may declare (`F2FS_TOTAL_EXTRA_ATTR_SIZE`).
const MAX_EXTRA_ISIZE: usize = 36;
/// Addresses (or node ids) in a direct (or indirect) node block.
const ADDRS_PER_BLOCK: u64 = 1018;
/// Where a node block's footer starts: `nid`, then `ino`.
const FOOTER: usize = BLOCK - 24;

const INLINE_XATTR: u8 = 0x01;
const INLINE_DATA: u8 = 0x02;
const INLINE_DENTRY: u8 = 0x04;
const EXTRA_ATTR: u8 = 0x20;
const FADVISE_ENCRYPT: u8 = 0x04;
const COMPRESSED_FL: u32 = 0x0000_0004;
const CASEFOLD_FL: u32 = 0x4000_0000;

/// A directory entry: hash, ino, name length, file type.
const DENTRY_LEN: usize = 11;
/// Name bytes per directory slot.
const SLOT_LEN: usize = 8;
/// Entries in a dentry block, and where its parts start.
const DENTRIES_PER_BLOCK: usize = 214;
const BLOCK_DENTRIES_AT: usize = 27 + 3;

const S_IFMT: u16 = 0o170_000;
const S_IFREG: u16 = 0o100_000;
const S_IFDIR: u16 = 0o040_000;
const S_IFLNK: u16 = 0o120_000;

/// A read-only f2fs filesystem on `R`'s bytes from `start`, `len` bytes long.
pub struct F2fs<R> {
    source: R,
    start: u64,
    sb: Superblock,
    nat_bitmap: Vec<u8>,
    journal: Vec<(u32, u32)>,
    budget: ReadBudget,
}

impl<R> std::fmt::Debug for F2fs<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("F2fs").field("superblock", &self.sb).finish()
    }
}

/// An inode, as read from its node block.
#[derive(Clone)]
pub struct Inode {
    /// Its number (node id).
    pub ino: u32,
    node: Vec<u8>,
    mode: u16,
    /// Its size in bytes, as the inode says.
    pub size: u64,
    inline: u8,
    flags: u32,
    advise: u8,
    extra_words: usize,
    addrs: usize,
}

impl Inode {
    /// A regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// A symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether its contents are held in the inode itself (inline data).
    pub fn has_inline_data(&self) -> bool {
        self.inline & INLINE_DATA != 0
    }

    /// Whether its entries are held in the inode itself (an inline directory).
    pub fn has_inline_dentries(&self) -> bool {
        self.inline & INLINE_DENTRY != 0
    }

    /// Data block address `i` held in the inode itself.
    fn addr(&self, i: usize) -> u32 {
        le32(&self.node, I_ADDR + 4 * (self.extra_words + i))
    }

    /// Node id `k` of the inode's five (two direct, two indirect, one double indirect).
    fn nid(&self, k: usize) -> u32 {
        le32(&self.node, I_NID + 4 * k)
    }

    /// Where inline data or dentries start in the node block, and how many bytes they may hold.
    fn inline_area(&self) -> (usize, usize) {
        // One address slot stays reserved before inline data.
        (I_ADDR + 4 * (self.extra_words + 1), 4 * (self.addrs - 1))
    }

    /// Why the contents cannot be read, if they cannot.
    fn unreadable(&self) -> Option<F2fsError> {
        let what = if self.is_dir() { "directory" } else { "file" };
        if self.advise & FADVISE_ENCRYPT != 0 {
            return Some(F2fsError::Unsupported(format!(
                "an encrypted {what} (inode {})",
                self.ino
            )));
        }
        if self.flags & COMPRESSED_FL != 0 {
            return Some(F2fsError::Unsupported(format!(
                "a compressed {what} (inode {})",
                self.ino
            )));
        }
        None
    }
}

/// The last few node blocks read while walking a file's addresses.
#[derive(Default)]
struct NodeCache(VecDeque<(u32, Vec<u8>)>);

impl<R: ReadAt> F2fs<R> {
    /// Opens the filesystem in `len` bytes of `source` from `start`: the superblock (the
    /// backup if the first is corrupt), then the newer valid checkpoint pack, its NAT version
    /// bitmap and NAT journal. Reads at most what `budget` allows now.
    pub fn open(source: R, start: u64, len: u64, budget: ReadBudget) -> Result<F2fs<R>, F2fsError> {
        let mut fs = F2fs {
            source,
            start,
            sb: Superblock {
                block_count: len / BLOCK_U64,
                cp_blkaddr: 0,
                nat_blkaddr: 0,
                nat_segments: 0,
                main_blkaddr: 0,
                main_end: 0,
                root_ino: 0,
                cp_payload: 0,
                flexible_inline_xattr: false,
                casefold: false,
            },
            nat_bitmap: Vec::new(),
            journal: Vec::new(),
            budget,
        };
        fs.sb = match Superblock::parse(&fs.block(0)?, len) {
            Ok(sb) => sb,
            Err(F2fsError::Corrupt(first)) => match fs.block(1).map(|b| Superblock::parse(&b, len)) {
                Ok(Ok(backup)) => backup,
                _ => return Err(F2fsError::Corrupt(first)),
            },
            Err(other) => return Err(other),
        };
        fs.load_checkpoint()?;
        Ok(fs)
    }

    /// The NAT entries journalled in the current checkpoint: `(node id, block address)`.
    pub fn journal(&self) -> &[(u32, u32)] {
        &self.journal
    }

    /// The budget each operation's reads are counted against.
    pub fn budget(&self) -> &ReadBudget {
        &self.budget
    }

    /// Reads block `addr` of the filesystem.
    fn block(&self, addr: u64) -> Result<Vec<u8>, F2fsError> {
        if addr >= self.sb.block_count {
            return Err(F2fsError::Corrupt(format!(
                "block {addr} asked for, past the filesystem's {} blocks",
                self.sb.block_count
            )));
        }
        self.budget.spend(BLOCK_U64)?;
        let mut buf = vec![0u8; BLOCK];
        self.source
            .read_exact_at(&mut buf, self.start + addr * BLOCK_U64)
            .map_err(|error| F2fsError::Io { block: addr, error })?;
        Ok(buf)
    }

    /// Picks the newer of the two checkpoint packs whose header and footer agree.
    fn load_checkpoint(&mut self) -> Result<(), F2fsError> {
        let mut best: Option<(u64, CheckpointHeader, u64)> = None;
        let mut first_error = None;
        for pack in [self.sb.cp_blkaddr, self.sb.cp_blkaddr + BLOCKS_PER_SEG] {
            match self.checkpoint_pack(pack) {
                Ok((header, total)) => {
                    if best.as_ref().is_none_or(|(_, b, _)| header.version > b.version) {
                        best = Some((pack, header, total));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let Some((pack, header, total)) = best else {
            return Err(first_error.unwrap_or_else(|| F2fsError::corrupt("no valid checkpoint")));
        };
        let where_ = format!("block {pack}");
        let mut cp = Vec::new();
        for i in 0..=self.sb.cp_payload {
            cp.extend(self.block(pack + i)?);
        }
        self.nat_bitmap = header.nat_bitmap(&cp, &self.sb, self.sb.nat_blocks())?.to_vec();
        let (sum_block, offset) = header.nat_journal_at(total, &where_)?;
        self.journal = nat_journal(&self.block(pack + sum_block)?, offset)?;
        Ok(())
    }

    /// A checkpoint pack's header, if it and its footer are valid and of one version.
    fn checkpoint_pack(&self, pack: u64) -> Result<(CheckpointHeader, u64), F2fsError> {
        let where_ = format!("block {pack}");
        let header = CheckpointHeader::parse(&self.block(pack)?, &where_)?;
        let total = header.total_blocks(&self.sb, &where_)?;
        let footer_at = pack + total - 1;
        let footer = CheckpointHeader::parse(&self.block(footer_at)?, &format!("block {footer_at}"))?;
        if footer.version != header.version {
            return Err(F2fsError::Corrupt(format!(
                "the checkpoint at {where_} is version {:#x}, its footer {:#x}",
                header.version, footer.version
            )));
        }
        Ok((header, total))
    }

    /// The block address of node `nid`: the checkpoint's journal first, then the NAT.
    fn node_addr(&self, nid: u32) -> Result<u32, F2fsError> {
        if let Some((_, addr)) = self.journal.iter().rev().find(|(n, _)| *n == nid) {
            return Ok(*addr);
        }
        let nat_entries = self.sb.nat_blocks() * u64::from(NAT_ENTRIES_PER_BLOCK);
        if u64::from(nid) >= nat_entries {
            return Err(F2fsError::Corrupt(format!(
                "node {nid} is past the NAT's {nat_entries} entries"
            )));
        }
        let block = self.block(self.sb.nat_blkaddr + nat_block_of(nid, &self.nat_bitmap))?;
        let at = (nid % NAT_ENTRIES_PER_BLOCK) as usize * NAT_ENTRY_LEN;
        Ok(le32(&block, at + 5))
    }

    /// Node block `nid` (of inode `ino`), its footer checked.
    fn node(&self, nid: u32, ino: u32) -> Result<Vec<u8>, F2fsError> {
        let addr = self.node_addr(nid)?;
        if !self.sb.in_main(u64::from(addr)) {
            return Err(F2fsError::Corrupt(format!(
                "node {nid} of inode {ino} is at block {addr}, outside the main area (blocks {}..{})",
                self.sb.main_blkaddr, self.sb.main_end
            )));
        }
        let block = self.block(u64::from(addr))?;
        let (footer_nid, footer_ino) = (le32(&block, FOOTER), le32(&block, FOOTER + 4));
        if footer_nid != nid || footer_ino != ino {
            return Err(F2fsError::Corrupt(format!(
                "block {addr}, where the NAT puts node {nid} of inode {ino}, holds node {footer_nid} of inode \
                 {footer_ino}"
            )));
        }
        Ok(block)
    }

    /// The root directory.
    pub fn root(&self) -> Result<Inode, F2fsError> {
        let root = self.inode(self.sb.root_ino)?;
        if !root.is_dir() {
            return Err(F2fsError::Corrupt(format!(
                "the root inode {} is not a directory",
                self.sb.root_ino
            )));
        }
        Ok(root)
    }

    /// Inode `ino`, its geometry checked.
    pub fn inode(&self, ino: u32) -> Result<Inode, F2fsError> {
        let node = self.node(ino, ino)?;
        let inline = node[I_INLINE];
        let extra_bytes = if inline & EXTRA_ATTR != 0 {
            usize::from(le16(&node, I_EXTRA_ISIZE))
        } else {
            0
        };
        if extra_bytes > MAX_EXTRA_ISIZE || !extra_bytes.is_multiple_of(4) {
            return Err(F2fsError::Corrupt(format!(
                "inode {ino} says {extra_bytes} bytes of extra attributes"
            )));
        }
        let xattr_words = if self.sb.flexible_inline_xattr && inline & EXTRA_ATTR != 0 {
            usize::from(le16(&node, I_INLINE_XATTR_SIZE))
        } else if inline & (INLINE_XATTR | INLINE_DENTRY) != 0 {
            DEFAULT_INLINE_XATTR_WORDS
        } else {
            0
        };
        let extra_words = extra_bytes / 4;
        // At least the reserved slot and one word of inline data remain.
        let Some(addrs) = DEF_ADDRS_PER_INODE
            .checked_sub(extra_words + xattr_words)
            .filter(|a| *a >= 2)
        else {
            return Err(F2fsError::Corrupt(format!(
                "inode {ino} says {xattr_words} words of inline xattrs, more than it holds"
            )));
        };
        Ok(Inode {
            ino,
            mode: le16(&node, I_MODE),
            size: le64(&node, I_SIZE),
            inline,
            flags: le32(&node, I_FLAGS),
            advise: node[I_ADVISE],
            extra_words,
            addrs,
            node,
        })
    }

    /// A node block through `cache`.
    fn cached_node<'c>(&self, cache: &'c mut NodeCache, nid: u32, ino: u32) -> Result<&'c [u8], F2fsError> {
        if let Some(i) = cache.0.iter().position(|(n, _)| *n == nid) {
            return Ok(&cache.0[i].1);
        }
        let block = self.node(nid, ino)?;
        if cache.0.len() >= 3 {
            cache.0.pop_front();
        }
        cache.0.push_back((nid, block));
        Ok(&cache.0.back().expect("just pushed").1)
    }

    /// The address of block `rest` of the range under node `nid` (a direct node when `span`
    /// is [`ADDRS_PER_BLOCK`], an indirect one above it), and how many blocks from there are
    /// known to be holes when a node on the way is missing (1 otherwise).
    fn walk(
        &self,
        cache: &mut NodeCache,
        mut nid: u32,
        ino: u32,
        mut rest: u64,
        mut span: u64,
    ) -> Result<(u32, u64), F2fsError> {
        loop {
            if nid == 0 {
                return Ok((NULL_ADDR, span - rest));
            }
            span /= ADDRS_PER_BLOCK;
            let entry = le32(self.cached_node(cache, nid, ino)?, 4 * (rest / span) as usize);
            if span == 1 {
                return Ok((entry, 1));
            }
            nid = entry;
            rest %= span;
        }
    }

    /// The block address of block `index` of a file (0 for a hole), and how many blocks from
    /// `index` that answer covers (more than 1 for a hole left by a missing node).
    fn data_addr(&self, inode: &Inode, index: u64, cache: &mut NodeCache) -> Result<(u32, u64), F2fsError> {
        let per = ADDRS_PER_BLOCK;
        let in_inode = inode.addrs as u64;
        if index < in_inode {
            return Ok((inode.addr(index as usize), 1));
        }
        let mut rest = index - in_inode;
        // Two direct nodes, two indirect, one double indirect.
        for (k, span) in [per, per, per * per, per * per, per * per * per]
            .into_iter()
            .enumerate()
        {
            if rest < span {
                return self.walk(cache, inode.nid(k), inode.ino, rest, span);
            }
            rest -= span;
        }
        Err(F2fsError::Corrupt(format!(
            "inode {} has block {index}, more than an inode can address",
            inode.ino
        )))
    }

    /// Data block `index` of a file, zeros for a hole.
    fn data_block(&self, inode: &Inode, index: u64, cache: &mut NodeCache) -> Result<Vec<u8>, F2fsError> {
        match self.data_addr(inode, index, cache)?.0 {
            NULL_ADDR | NEW_ADDR => Ok(vec![0u8; BLOCK]),
            COMPRESS_ADDR => Err(F2fsError::Unsupported(format!(
                "a compressed file (inode {})",
                inode.ino
            ))),
            addr if self.sb.in_main(u64::from(addr)) => self.block(u64::from(addr)),
            addr => Err(F2fsError::Corrupt(format!(
                "block {index} of inode {} is at block {addr}, outside the main area (blocks {}..{})",
                inode.ino, self.sb.main_blkaddr, self.sb.main_end
            ))),
        }
    }

    /// Writes the first `max` bytes of a file's contents (all of it if shorter) to `out`, a
    /// block at a time; returns how many were written.
    pub fn copy_to(&self, inode: &Inode, max: u64, out: &mut dyn Write) -> Result<u64, F2fsError> {
        if let Some(reason) = inode.unreadable() {
            return Err(reason);
        }
        let len = inode.size.min(max);
        let write = |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).map_err(F2fsError::Write);
        if inode.inline & INLINE_DATA != 0 {
            let (at, room) = inode.inline_area();
            if inode.size > room as u64 {
                return Err(F2fsError::Corrupt(format!(
                    "inode {} holds {} bytes inline, more than its {room} bytes of room",
                    inode.ino, inode.size
                )));
            }
            write(out, &inode.node[at..at + len as usize])?;
            return Ok(len);
        }
        let mut cache = NodeCache::default();
        let mut written = 0;
        let mut index = 0;
        while written < len {
            let block = self.data_block(inode, index, &mut cache)?;
            let take = (len - written).min(BLOCK_U64) as usize;
            write(out, &block[..take])?;
            written += take as u64;
            index += 1;
        }
        Ok(written)
    }

    /// A symlink's target.
    pub fn read_link(&self, inode: &Inode) -> Result<Vec<u8>, F2fsError> {
        if inode.size > MAX_SYMLINK_LEN {
            return Err(F2fsError::Corrupt(format!(
                "symlink inode {} says its target is {} bytes, longer than a path can be",
                inode.ino, inode.size
            )));
        }
        let mut target = Vec::new();
        self.copy_to(inode, MAX_SYMLINK_LEN, &mut target)?;
        Ok(target)
    }

    /// Calls `visit(name, ino)` for each entry of a directory until it breaks.
    pub fn for_each_entry(
        &self,
        dir: &Inode,
        visit: &mut dyn FnMut(&[u8], u32) -> ControlFlow<()>,
    ) -> Result<(), F2fsError> {
        if !dir.is_dir() {
            return Err(F2fsError::NotADirectory(format!("inode {}", dir.ino)));
        }
        if let Some(reason) = dir.unreadable() {
            return Err(reason);
        }
        if dir.inline & INLINE_DENTRY != 0 {
            let (at, room) = dir.inline_area();
            // Each entry takes a bitmap bit, a dentry and a name slot.
            let count = room * 8 / ((DENTRY_LEN + SLOT_LEN) * 8 + 1);
            let bitmap_len = count.div_ceil(8);
            let dentries = at + room - count * (DENTRY_LEN + SLOT_LEN);
            let area = &dir.node[at..at + room];
            let _ = scan_dentries(
                dir.ino,
                &area[..bitmap_len],
                &dir.node[dentries..dentries + count * DENTRY_LEN],
                &dir.node[dentries + count * DENTRY_LEN..at + room],
                count,
                visit,
            )?;
            return Ok(());
        }
        let blocks = dir.size.div_ceil(BLOCK_U64);
        if blocks > MAX_DIR_BLOCKS {
            return Err(F2fsError::Corrupt(format!(
                "directory inode {} says it is {} bytes, more than {MAX_DIR_BLOCKS} blocks",
                dir.ino, dir.size
            )));
        }
        let mut cache = NodeCache::default();
        let mut index = 0;
        while index < blocks {
            let (addr, run) = self.data_addr(dir, index, &mut cache)?;
            if addr == NULL_ADDR || addr == NEW_ADDR {
                index += run;
                continue;
            }
            let block = self.data_block(dir, index, &mut cache)?;
            let names_at = BLOCK_DENTRIES_AT + DENTRIES_PER_BLOCK * DENTRY_LEN;
            let flow = scan_dentries(
                dir.ino,
                &block[..27],
                &block[BLOCK_DENTRIES_AT..names_at],
                &block[names_at..],
                DENTRIES_PER_BLOCK,
                visit,
            )?;
            if flow.is_break() {
                break;
            }
            index += 1;
        }
        Ok(())
    }

    /// The inode number `name` has in `dir`, if it is there.
    pub fn lookup(&self, dir: &Inode, name: &str) -> Result<Option<u32>, F2fsError> {
        let casefold = self.sb.casefold && dir.flags & CASEFOLD_FL != 0;
        if casefold && !name.is_ascii() {
            return Err(F2fsError::Unsupported(format!(
                "a non-ASCII name ({name:?}) looked up in a casefolded directory"
            )));
        }
        let mut found = None;
        self.for_each_entry(dir, &mut |entry, ino| {
            let same = if casefold {
                entry.eq_ignore_ascii_case(name.as_bytes())
            } else {
                entry == name.as_bytes()
            };
            if same {
                found = Some(ino);
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(found)
    }

    /// The names in a directory, without `.` and `..`, at most [`MAX_DIR_ENTRIES`].
    pub fn list(&self, dir: &Inode) -> Result<Vec<String>, F2fsError> {
        let mut names = Vec::new();
        let mut too_many = false;
        self.for_each_entry(dir, &mut |entry, _| {
            if entry == b"." || entry == b".." {
                return ControlFlow::Continue(());
            }
            if names.len() >= MAX_DIR_ENTRIES {
                too_many = true;
                return ControlFlow::Break(());
            }
            names.push(String::from_utf8_lossy(entry).into_owned());
            ControlFlow::Continue(())
        })?;
        if too_many {
            return Err(F2fsError::Corrupt(format!(
                "directory inode {} has more than {MAX_DIR_ENTRIES} entries",
                dir.ino
            )));
        }
        Ok(names)
    }

    /// The inode at `path` (from the root; `.` and `..` resolved, symlinks followed inside the
    /// filesystem, absolute ones from its root, the last one only if `follow_last`).
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Inode, F2fsError> {
        let mut pending: VecDeque<String> = components(path.as_bytes());
        // The directories walked, root first, by inode number: enough to go back up `..`.
        let mut walked = vec![self.root()?.ino];
        let mut current: Option<Inode> = None;
        let mut hops = 0;
        while let Some(name) = pending.pop_front() {
            match name.as_str() {
                "." => continue,
                ".." => {
                    if walked.len() > 1 {
                        walked.pop();
                    }
                    current = None;
                    continue;
                }
                _ => {}
            }
            let dir = match current.take() {
                Some(dir) => dir,
                None => self.inode(*walked.last().expect("the root stays"))?,
            };
            if !dir.is_dir() {
                return Err(F2fsError::NotADirectory(format!("the parent of {name:?}")));
            }
            let ino = self.lookup(&dir, &name)?.ok_or(F2fsError::NotFound)?;
            let inode = self.inode(ino)?;
            if inode.is_symlink() && (follow_last || !pending.is_empty()) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(F2fsError::SymlinkLoop(MAX_SYMLINK_HOPS));
                }
                let target = self.read_link(&inode)?;
                if target.first() == Some(&b'/') {
                    walked.truncate(1);
                }
                for part in components(&target).into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            walked.push(ino);
            current = Some(inode);
        }
        match current {
            Some(inode) => Ok(inode),
            None => self.inode(*walked.last().expect("the root stays")),
        }
    }
}

/// The non-empty components of a path.
fn components(path: &[u8]) -> VecDeque<String> {
    path.split(|b| *b == b'/')
        .filter(|c| !<[u8]>::is_empty(c))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// Visits the entries a dentry bitmap marks: `count` dentries and their name slots.
fn scan_dentries(
    ino: u32,
    bitmap: &[u8],
    dentries: &[u8],
    names: &[u8],
    count: usize,
    visit: &mut dyn FnMut(&[u8], u32) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, F2fsError> {
    let mut i = 0;
    while i < count {
        // Dentry bitmaps count from each byte's least significant bit.
        let used = bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
        let dentry = &dentries[i * DENTRY_LEN..(i + 1) * DENTRY_LEN];
        let name_len = usize::from(le16(dentry, 8));
        if !used || name_len == 0 {
            i += 1;
            continue;
        }
        let slots = name_len.div_ceil(SLOT_LEN);
        if i + slots > count {
            return Err(F2fsError::Corrupt(format!(
                "directory inode {ino}: entry {i}'s name of {name_len} bytes runs past the {count} slots"
            )));
        }
        let name = &names[i * SLOT_LEN..i * SLOT_LEN + name_len];
        if visit(name, le32(dentry, 4)).is_break() {
            return Ok(ControlFlow::Break(()));
        }
        i += slots;
    }
    Ok(ControlFlow::Continue(()))
}
