//! An f2fs superblock alone: enough for anything that tells filesystems by their superblock
//! (blkid, U-Boot, `harness inspect`) to see f2fs, without f2fs-tools. Nothing can mount it.

use std::path::Path;

use crate::BuildError;

/// The superblock's byte offset in the partition (f2fs keeps two copies, at 1 KiB and in the
/// second 4 KiB block; the first is the one probed).
const SUPERBLOCK: usize = 1024;
/// `F2FS_SUPER_MAGIC`, little-endian on disk.
const MAGIC: u32 = 0xF2F5_2010;
/// Offset of `volume_name` (UTF-16, 512 units) within the superblock.
const VOLUME_NAME: usize = 0x7c;

/// Writes a file of `size` bytes holding an f2fs superblock labelled `label` and zeros.
pub fn superblock_only(label: &str, size: u64, out: &Path) -> Result<(), BuildError> {
    let mut sb = vec![0u8; 0x400];
    let mut field = |at: usize, bytes: &[u8]| sb[at..at + bytes.len()].copy_from_slice(bytes);
    field(0x00, &MAGIC.to_le_bytes());
    field(0x04, &1u16.to_le_bytes()); // major_ver
    field(0x06, &16u16.to_le_bytes()); // minor_ver
    field(0x08, &9u32.to_le_bytes()); // log_sectorsize
    field(0x0c, &3u32.to_le_bytes()); // log_sectors_per_block
    field(0x10, &12u32.to_le_bytes()); // log_blocksize
    field(0x14, &9u32.to_le_bytes()); // log_blocks_per_seg
    field(0x24, &(size / 4096).to_le_bytes()); // block_count
    for (i, unit) in label.encode_utf16().enumerate() {
        field(VOLUME_NAME + 2 * i, &unit.to_le_bytes());
    }
    let file = std::fs::File::create(out).map_err(BuildError::io("creating", out))?;
    file.set_len(size).map_err(BuildError::io("sizing", out))?;
    std::os::unix::fs::FileExt::write_all_at(&file, &sb, SUPERBLOCK as u64).map_err(BuildError::io("writing", out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_has_magic_and_utf16_label_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("f2fs");
        superblock_only("NIXOS_SD", 1 << 20, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert_eq!(&bytes[1024..1028], &[0x10, 0x20, 0xF5, 0xF2]);
        assert_eq!(&bytes[1024 + 0x7c..1024 + 0x7c + 4], &[b'N', 0, b'I', 0]);
    }
}
