//! The largest sizes the image readers accept. Each is far above what a real R2S image holds and
//! far below what would exhaust memory or time, so a size read from a hostile image is refused
//! with an error naming the limit instead of being allocated.

use std::path::Path;

use super::error::ImageError;

/// A GPT partition entry array (entry count × entry size): Linux refuses arrays larger than
/// its `KMALLOC_MAX_SIZE` (4 MiB on arm64 and x86-64); partitioning tools write 16 KiB.
pub const GPT_ENTRY_ARRAY: u64 = 4 << 20;

/// EBRs followed in an MBR's extended-partition chain: Linux stops at 256 partitions a disk.
pub const MBR_EXTENDED_CHAIN: usize = 256;

/// ext4 block groups: the descriptors of every group are held in memory. A 64 GiB filesystem
/// with 1 KiB blocks has 8,192.
pub const EXT4_BLOCK_GROUPS: u64 = 1 << 20;

/// Bytes a filesystem reader may read from the image for one operation (opening the
/// filesystem, looking a path up, reading a file's head) beyond the file data asked for: more
/// than the metadata of any real lookup, few enough to take well under a second. A directory
/// or extent tree larger than this, or a loop in a FAT cluster chain, ends in an error.
pub const METADATA_READ: u64 = 64 << 20;

/// An extlinux.conf: U-Boot reads it whole into memory; NixOS writes one of a few KiB even
/// with a hundred generations.
pub const EXTLINUX_CONF: u64 = 1 << 20;

/// A device tree: arm64 Linux refuses blobs above 2 MiB.
pub const FDT: u64 = 2 << 20;

/// A kernel or initrd copied for QEMU: the R2S has 1 GiB of memory, so a larger file cannot be
/// what U-Boot loads.
pub const BOOT_FILE: u64 = 1 << 30;

/// A kernel configuration inflated from a kernel image (`CONFIG_IKCONFIG`): a full arm64
/// `.config` is about 300 KiB.
pub const KERNEL_CONFIG: u64 = 4 << 20;

/// `Ok` if a file of `size` bytes is within `limit`, else [`ImageError::TooLarge`] naming
/// the file (`what` it is, its partition and path).
pub(super) fn check_file_size(
    image: &Path,
    partition: u32,
    path: &str,
    what: &'static str,
    size: u64,
    limit: u64,
) -> Result<(), ImageError> {
    if size <= limit {
        return Ok(());
    }
    Err(ImageError::TooLarge {
        image: image.to_owned(),
        partition,
        path: path.to_owned(),
        what,
        size,
        limit,
    })
}
