//! The kernel a boot entry names, judged by its arm64 Image header: the format `booti` takes,
//! and the memory it needs below the initrd's load address.

use super::files::{find_file, BootFiles};
use super::Context;
use crate::image::Label;
use crate::inspect::board::Profile;
use crate::inspect::fdt;
use crate::inspect::report::{Check, CheckName, Status};

/// Enough of a kernel to read its arm64 Image header.
const KERNEL_HEADER_LEN: usize = 64;
const ARM64_MAGIC_OFFSET: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const IMAGE_SIZE_OFFSET: usize = 0x10;

pub(super) fn kernel_checks(label: &Label, ctx: &Context<'_>, boot: &BootFiles<'_>, out: &mut Vec<Check>) {
    let Some(written) = &label.kernel else {
        out.push(Check::fail(
            CheckName::Kernel,
            format!("LABEL {} (line {})", label.name, label.line),
            "no LINUX or KERNEL line",
            "add `LINUX <path to the arm64 Image>` to the entry",
        ));
        return;
    };
    // `path#config` selects a configuration of a FIT; the file is the part before `#`.
    let path = written.split('#').next().unwrap_or(written);
    let keyword = "LINUX";
    let (location, size, head) =
        match find_file(CheckName::Kernel, keyword, path, KERNEL_HEADER_LEN, ctx, boot) {
            Ok(found) => found,
            Err(check) => return out.push(check),
        };
    out.push(Check::pass(
        CheckName::Kernel,
        location.clone(),
        format!("{size} bytes"),
    ));
    let format = check_kernel_format(&head, &location);
    let is_image = format.status == Status::Pass;
    out.push(format);
    if is_image && label.initrd.is_some() {
        out.push(check_kernel_size(size, &head, ctx.profile, &location));
    }
}

/// The kernel file starts with an arm64 Image header (`ARM\x64` at 0x38), which is all `booti`
/// takes from a U-Boot without `kernel_comp_addr_r`.
pub fn check_kernel_format(head: &[u8], location: &str) -> Check {
    let name = CheckName::KernelFormat;
    if head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4) == Some(ARM64_MAGIC) {
        return Check::pass(name, location, "arm64 Image (ARM\\x64 at 0x38)");
    }
    let what = if head.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed data"
    } else if head.starts_with(b"MZ") && head.get(4..8) == Some(b"zimg") {
        "an EFI zboot image (compressed)"
    } else if head.starts_with(&[0x27, 0x05, 0x19, 0x56]) {
        "a legacy uImage"
    } else if fdt::has_magic(head) {
        "a FIT or device tree"
    } else {
        "no arm64 Image header"
    };
    Check::fail(
        name,
        location,
        format!(
            "{what}, not an arm64 Image (no ARM\\x64 at 0x38): booti says \"Bad Linux ARM64 Image magic!\""
        ),
        "install the uncompressed Image (NixOS copies the kernel's `Image` file; gunzip an Image.gz)",
    )
}

/// The kernel, loaded at `kernel_addr_r`, needs `image_size` bytes of memory (its header) or at
/// least its file size; both must end below `ramdisk_addr_r`, where U-Boot loads the initrd.
pub fn check_kernel_size(file_size: u64, head: &[u8], profile: &Profile, location: &str) -> Check {
    let image_size = head
        .get(IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let room = profile.ramdisk_addr_r - profile.kernel_addr_r;
    let (needed, source) = if image_size > file_size {
        (image_size, "header image_size")
    } else {
        (file_size, "file size")
    };
    let mib = |n: u64| format!("{:.1} MiB", n as f64 / f64::from(1 << 20));
    let message = format!(
        "needs {} ({source}) from kernel_addr_r {:#010x}; the initrd loads at ramdisk_addr_r {:#010x}, {} above",
        mib(needed),
        profile.kernel_addr_r,
        profile.ramdisk_addr_r,
        mib(room)
    );
    if needed <= room {
        Check::pass(CheckName::KernelSize, location, message)
    } else {
        Check::fail(
            CheckName::KernelSize,
            location,
            message,
            "build a smaller kernel (drivers as modules), or use a U-Boot whose ramdisk_addr_r leaves room: \
             kernel and initrd would overlap in memory",
        )
    }
}
