//! The kernel a boot entry names, judged by its arm64 Image header: the format `booti` takes,
//! and the memory it needs below the initrd's (and device tree's) load address.

use super::files::{find_file, BootFiles};
use super::Context;
use crate::image::load_layout::{mib, EntryFiles, KernelHeader, Piece, Placement, KERNEL_HEADER_LEN};
use crate::image::Label;
use crate::inspect::fdt;
use crate::inspect::load_addresses::Resolved;
use crate::inspect::report::{Check, CheckName};

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
    out.push(format);
    if let (Some(kernel), Some(initrd)) = (KernelHeader::parse(&head), &label.initrd) {
        let size_of = |keyword: &str, written: &str| {
            find_file(CheckName::Kernel, keyword, written, 0, ctx, boot)
                .ok()
                .map(|(_, size, _)| size)
        };
        let fdt = match (&label.fdt, &label.fdtdir) {
            (Some(fdt), _) => size_of("FDT", fdt),
            (None, Some(dir)) => size_of(
                "FDTDIR",
                &format!("{}/{}", dir.trim_end_matches('/'), ctx.profile.fdtfile),
            ),
            (None, None) => None,
        };
        let files = EntryFiles {
            kernel,
            kernel_file: size,
            // A missing initrd is the initrd check's failure; the kernel still must not reach
            // where it would load.
            initrd: Some(size_of("INITRD", initrd).unwrap_or(1)),
            fdt,
        };
        out.push(check_kernel_size(&files, ctx.addresses, &location));
    }
}

/// The kernel file starts with an arm64 Image header (`ARM\x64` at 0x38), which is all `booti`
/// takes from a U-Boot without `kernel_comp_addr_r`.
pub fn check_kernel_format(head: &[u8], location: &str) -> Check {
    let name = CheckName::KernelFormat;
    if KernelHeader::parse(head).is_some() {
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

/// The kernel, loaded at `kernel_addr_r` and run by `booti` from the next 2 MiB boundary, needs
/// its header's `image_size` from there and its file from `kernel_addr_r`; neither may reach
/// the initrd at `ramdisk_addr_r` or the device tree at `fdt_addr_r` (see
/// [`crate::image::load_layout`]). The message names the addresses and where they came from.
pub fn check_kernel_size(files: &EntryFiles, addresses: &Resolved, location: &str) -> Check {
    let placed = Placement::of(addresses.addresses, files);
    let mut message = format!(
        "needs {} ({}) from {:#010x}",
        mib(placed.kernel_needs()),
        placed.kernel_end_by,
        placed.kernel_start
    );
    if placed.kernel_start != addresses.addresses.kernel_addr_r {
        message.push_str(&format!(
            " (booti moves it there from kernel_addr_r {:#010x})",
            addresses.addresses.kernel_addr_r
        ));
    }
    if let Some((piece, room)) = placed.room_above_kernel() {
        let (variable, at) = match piece {
            Piece::DeviceTree => ("fdt_addr_r", addresses.addresses.fdt_addr_r.unwrap_or_default()),
            _ => ("ramdisk_addr_r", addresses.addresses.ramdisk_addr_r),
        };
        message.push_str(&format!(
            "; the {piece} loads at {variable} {at:#010x}, {} above",
            mib(room)
        ));
    }
    message.push_str(&format!("; {}", addresses.describe()));
    match placed.overlap() {
        None => Check::pass(CheckName::KernelSize, location, message),
        Some(overlap) => Check::fail(
            CheckName::KernelSize,
            location,
            format!("{message}: {overlap}"),
            "build a smaller kernel (drivers as modules), or use a U-Boot whose ramdisk_addr_r leaves room (as \
             U-Boot's environment, or the board profile's [load_addresses] for a U-Boot whose environment \
             cannot be read): U-Boot says \"ERROR: RD image overlaps OS image\" and boots nothing",
        ),
    }
}
