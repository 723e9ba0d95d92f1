//! Where U-Boot puts a boot entry's kernel, initrd and device tree in memory, and whether they
//! overlap: what decides whether `booti` starts the kernel or says `ERROR: RD image overlaps OS
//! image`.
//!
//! extlinux (U-Boot's pxe code) loads the initrd at `ramdisk_addr_r`, the kernel file at
//! `kernel_addr_r` and the device tree at `fdt_addr_r`. `booti` then moves the kernel to the
//! next 2 MiB boundary (plus the header's `text_offset`) when the header's flags let it lie
//! anywhere (bit 3, set by every arm64 kernel since Linux 4.6), and reserves the header's
//! `image_size` from there (16 MiB when the field is 0): the kernel's file and that span must
//! reach neither the initrd nor the device tree (`bootm_find_images`).

use std::fmt;
use std::ops::Range;

/// `ARM\x64` at 0x38 marks an arm64 Image.
const ARM64_MAGIC_OFFSET: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const TEXT_OFFSET_OFFSET: usize = 0x08;
const IMAGE_SIZE_OFFSET: usize = 0x10;
const FLAGS_OFFSET: usize = 0x18;
/// The bytes of a kernel's head that [`KernelHeader::parse`] needs.
pub const KERNEL_HEADER_LEN: usize = 64;
/// Flags bit 3: the kernel's 2 MiB-aligned base may be anywhere in memory.
const PLACE_ANYWHERE: u64 = 1 << 3;
/// `booti` aligns the kernel's base to this.
const KERNEL_ALIGN: u64 = 2 << 20;
/// What `booti` assumes of a header without `image_size` (before Linux 3.17).
const LEGACY_IMAGE_SIZE: u64 = 16 << 20;
const LEGACY_TEXT_OFFSET: u64 = 0x80000;

/// The three load addresses of U-Boot's environment that place an extlinux entry's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadAddresses {
    /// `kernel_addr_r`: where the kernel file is loaded.
    pub kernel_addr_r: u64,
    /// `ramdisk_addr_r`: where the initrd is loaded.
    pub ramdisk_addr_r: u64,
    /// `fdt_addr_r`: where an `FDT`/`FDTDIR` device tree is loaded; `None` when the environment
    /// has none (U-Boot then boots with its own device tree, `fdt_addr` or `fdtcontroladdr`).
    pub fdt_addr_r: Option<u64>,
}

/// The fields of an arm64 Image header that decide where `booti` puts the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHeader {
    /// Bytes the kernel needs from its start (its `image_size`, or `booti`'s 16 MiB when 0).
    pub image_size: u64,
    /// Whether the header said so itself (not `booti`'s default for an old kernel).
    pub image_size_given: bool,
    /// The kernel's offset from a 2 MiB boundary.
    pub text_offset: u64,
    /// Whether the kernel may lie at any 2 MiB boundary (flags bit 3).
    pub place_anywhere: bool,
}

impl KernelHeader {
    /// The header of a kernel's first bytes, `None` when they are not an arm64 Image.
    pub fn parse(head: &[u8]) -> Option<KernelHeader> {
        if head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) != Some(ARM64_MAGIC) {
            return None;
        }
        let field = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
        let image_size = field(IMAGE_SIZE_OFFSET);
        Some(if image_size == 0 {
            KernelHeader {
                image_size: LEGACY_IMAGE_SIZE,
                image_size_given: false,
                text_offset: LEGACY_TEXT_OFFSET,
                place_anywhere: false,
            }
        } else {
            KernelHeader {
                image_size,
                image_size_given: true,
                text_offset: field(TEXT_OFFSET_OFFSET),
                place_anywhere: field(FLAGS_OFFSET) & PLACE_ANYWHERE != 0,
            }
        })
    }
}

/// The sizes of the files one boot entry loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFiles {
    /// The kernel's header.
    pub kernel: KernelHeader,
    /// The kernel file's size.
    pub kernel_file: u64,
    /// The initrd's size, if the entry has one.
    pub initrd: Option<u64>,
    /// The device tree's size, if the entry loads one.
    pub fdt: Option<u64>,
}

/// One thing U-Boot puts in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// The kernel: its file, and the memory its header asks for.
    Kernel,
    /// The initrd at `ramdisk_addr_r`.
    Initrd,
    /// The device tree at `fdt_addr_r`.
    DeviceTree,
}

impl fmt::Display for Piece {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Piece::Kernel => "kernel",
            Piece::Initrd => "initrd",
            Piece::DeviceTree => "device tree",
        })
    }
}

/// Where U-Boot puts an entry's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The addresses it was placed with.
    pub addresses: LoadAddresses,
    /// Where `booti` runs the kernel from.
    pub kernel_start: u64,
    /// What the kernel takes: its file at `kernel_addr_r` and `image_size` from `kernel_start`.
    pub kernel: Range<u64>,
    /// Which of the two ends the kernel's span: the header's `image_size` or the file.
    pub kernel_end_by: KernelEnd,
    /// The initrd at `ramdisk_addr_r`, if the entry has one.
    pub initrd: Option<Range<u64>>,
    /// The device tree at `fdt_addr_r`, if the entry loads one.
    pub fdt: Option<Range<u64>>,
}

/// What ends the kernel's span in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelEnd {
    /// The header's `image_size` from where `booti` runs it.
    ImageSize,
    /// `booti`'s 16 MiB for a header without `image_size`.
    LegacyImageSize,
    /// The file as loaded at `kernel_addr_r`.
    FileSize,
}

impl fmt::Display for KernelEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KernelEnd::ImageSize => "header image_size",
            KernelEnd::LegacyImageSize => "booti's 16 MiB for a header without image_size",
            KernelEnd::FileSize => "file size",
        })
    }
}

/// Two pieces that share memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// One piece and the memory it takes.
    pub first: (Piece, Range<u64>),
    /// The piece it reaches, and the memory that one takes.
    pub second: (Piece, Range<u64>),
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, ra) = &self.first;
        let (b, rb) = &self.second;
        write!(
            f,
            "the {a} ({:#010x}–{:#010x}) overlaps the {b} ({:#010x}–{:#010x})",
            ra.start, ra.end, rb.start, rb.end
        )
    }
}

impl Placement {
    /// Places `files` at `addresses` as extlinux and `booti` would.
    pub fn of(addresses: LoadAddresses, files: &EntryFiles) -> Placement {
        let header = files.kernel;
        let kernel_start = if header.place_anywhere {
            align_up(
                addresses.kernel_addr_r.saturating_sub(header.text_offset),
                KERNEL_ALIGN,
            )
            .saturating_add(header.text_offset)
        } else {
            // An old kernel goes to the start of memory, which only the board knows; judged
            // where it was loaded.
            addresses.kernel_addr_r
        };
        let image_end = kernel_start.saturating_add(header.image_size);
        let file_end = addresses.kernel_addr_r.saturating_add(files.kernel_file);
        let kernel_end_by = if file_end > image_end {
            KernelEnd::FileSize
        } else if header.image_size_given {
            KernelEnd::ImageSize
        } else {
            KernelEnd::LegacyImageSize
        };
        let span = |at: u64, len: u64| at..at.saturating_add(len);
        Placement {
            addresses,
            kernel_start,
            kernel: addresses.kernel_addr_r.min(kernel_start)..image_end.max(file_end),
            kernel_end_by,
            initrd: files.initrd.map(|len| span(addresses.ramdisk_addr_r, len)),
            fdt: match (addresses.fdt_addr_r, files.fdt) {
                (Some(at), Some(len)) => Some(span(at, len)),
                _ => None,
            },
        }
    }

    /// The bytes the kernel needs from where `booti` runs it.
    pub fn kernel_needs(&self) -> u64 {
        self.kernel.end - self.kernel_start
    }

    /// The first two pieces that share memory, kernel pairs first.
    pub fn overlap(&self) -> Option<Overlap> {
        let kernel = Some((Piece::Kernel, self.kernel.clone()));
        let initrd = self.initrd.clone().map(|r| (Piece::Initrd, r));
        let fdt = self.fdt.clone().map(|r| (Piece::DeviceTree, r));
        let pairs = [
            (kernel.clone(), initrd.clone()),
            (kernel, fdt.clone()),
            (initrd, fdt),
        ];
        pairs.into_iter().find_map(|pair| match pair {
            (Some(first), Some(second)) if first.1.start < second.1.end && second.1.start < first.1.end => {
                Some(Overlap { first, second })
            }
            _ => None,
        })
    }

    /// The room from where the kernel runs up to the next piece above it (`None` when nothing
    /// lies above it).
    pub fn room_above_kernel(&self) -> Option<(Piece, u64)> {
        [
            (Piece::Initrd, Some(self.addresses.ramdisk_addr_r)),
            (Piece::DeviceTree, self.fdt.as_ref().map(|r| r.start)),
        ]
        .into_iter()
        .filter_map(|(piece, at)| Some((piece, at?)))
        .filter(|(_, at)| *at >= self.kernel_start)
        .min_by_key(|(_, at)| *at)
        .map(|(piece, at)| (piece, at - self.kernel_start))
    }
}

/// `value` rounded up to a multiple of `align` (a power of two), saturating.
pub fn align_up(value: u64, align: u64) -> u64 {
    value
        .checked_add(align - 1)
        .map_or(!(align - 1), |v| v & !(align - 1))
}

/// `n` bytes as MiB with one decimal, as the checks print sizes.
pub fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 6.1's arm64 header: text_offset 0, flags 0xa (4 KiB pages, anywhere).
    fn head(image_size: u64) -> Vec<u8> {
        let mut head = vec![0u8; KERNEL_HEADER_LEN];
        head[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&image_size.to_le_bytes());
        head[FLAGS_OFFSET..FLAGS_OFFSET + 8].copy_from_slice(&0xau64.to_le_bytes());
        head[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4].copy_from_slice(ARM64_MAGIC);
        head
    }

    const R2S: LoadAddresses = LoadAddresses {
        kernel_addr_r: 0x0208_0000,
        ramdisk_addr_r: 0x0600_0000,
        fdt_addr_r: Some(0x01f0_0000),
    };

    const QEMU: LoadAddresses = LoadAddresses {
        kernel_addr_r: 0x4040_0000,
        ramdisk_addr_r: 0x4400_0000,
        fdt_addr_r: None,
    };

    fn files(image_size: u64, file: u64) -> EntryFiles {
        EntryFiles {
            kernel: KernelHeader::parse(&head(image_size)).unwrap(),
            kernel_file: file,
            initrd: Some(4 << 20),
            fdt: Some(40_000),
        }
    }

    #[test]
    fn booti_runs_the_r2s_kernel_from_the_next_2_mib_boundary() {
        let placed = Placement::of(R2S, &files(34 << 20, 32 << 20));
        assert_eq!(placed.kernel_start, 0x0220_0000);
        assert_eq!(placed.room_above_kernel(), Some((Piece::Initrd, 62 << 20)));
        assert_eq!(placed.overlap(), None);
    }

    #[test]
    fn a_kernel_needing_more_than_the_gap_overlaps_the_initrd() {
        let placed = Placement::of(QEMU, &files(66 << 20, 61 << 20));
        assert_eq!(placed.kernel_end_by, KernelEnd::ImageSize);
        assert_eq!(placed.kernel_needs(), 66 << 20);
        assert_eq!(
            placed.overlap().unwrap().to_string(),
            "the kernel (0x40400000–0x44600000) overlaps the initrd (0x44000000–0x44400000)"
        );
    }

    #[test]
    fn a_file_longer_than_image_size_ends_the_kernel() {
        let placed = Placement::of(QEMU, &files(30 << 20, 61 << 20));
        assert_eq!(placed.kernel_end_by, KernelEnd::FileSize);
        assert_eq!(placed.kernel.end, 0x4040_0000 + (61 << 20));
        assert!(placed.overlap().is_some());
    }

    #[test]
    fn a_device_tree_below_the_kernel_that_reaches_it_overlaps() {
        let mut entry = files(34 << 20, 32 << 20);
        entry.fdt = Some(2 << 20);
        assert_eq!(
            Placement::of(R2S, &entry).overlap().unwrap().to_string(),
            "the kernel (0x02080000–0x04400000) overlaps the device tree (0x01f00000–0x02100000)"
        );
    }

    #[test]
    fn a_header_without_image_size_is_taken_as_booti_takes_it() {
        let header = KernelHeader::parse(&head(0)).unwrap();
        assert_eq!(header.image_size, 16 << 20);
        assert!(!header.image_size_given);
    }

    #[test]
    fn bytes_without_the_arm64_magic_have_no_header() {
        assert_eq!(KernelHeader::parse(&[0x1f, 0x8b, 0, 0]), None);
        assert_eq!(KernelHeader::parse(&[0u8; 64]), None);
    }

    #[test]
    fn addresses_and_sizes_at_the_top_of_the_address_space_place_without_wrapping() {
        let hostile = LoadAddresses {
            kernel_addr_r: u64::MAX - 3,
            ramdisk_addr_r: u64::MAX,
            fdt_addr_r: Some(0),
        };
        let mut entry = files(u64::MAX, u64::MAX);
        entry.kernel.text_offset = u64::MAX;
        entry.fdt = Some(u64::MAX);
        let placed = Placement::of(hostile, &entry);
        assert_eq!(placed.kernel.end, u64::MAX);
        assert!(placed.overlap().is_some());
        assert!(placed.kernel_needs() <= u64::MAX - placed.kernel_start);
    }

    #[test]
    fn align_up_saturates_instead_of_wrapping() {
        assert_eq!(align_up(0x0208_0000, 2 << 20), 0x0220_0000);
        assert_eq!(align_up(0x0220_0000, 2 << 20), 0x0220_0000);
        assert_eq!(align_up(u64::MAX - 5, 2 << 20), !((2 << 20) - 1));
    }
}
