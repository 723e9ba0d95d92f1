//! A run's QEMU firmware, its load addresses moved above a kernel that outgrows them (see
//! [`crate::adapt::load_addresses`]) when the image's own U-Boot would boot that kernel.

use std::path::{Path, PathBuf};

use crate::adapt::load_addresses::{self, Firmware, Move, Plan, QEMU_DRAM_BASE};
use crate::board;
use crate::inspect::{self, entry::check_kernel_size, Board, Profile, Status};
use crate::targets::qemu::QemuConfig;

/// Where under the cache directory changed firmware files are kept.
const FIRMWARE_DIR: &str = "firmware";

/// Checks `image`'s entries against `config`'s firmware and, unless `no_adapt`, points
/// `config` at a copy of the firmware with the initrd (and device tree) moved up when they
/// would not fit, with a note for the transcripts. Whether the image's own U-Boot would boot
/// the kernel is judged as `inspect` judges it, with `board`'s `[load_addresses]` where the
/// image's u-boot.itb does not say. Returns the lines to print and show in the HTML report; says
/// nothing when every entry fits. The lines quote the image's LABELs: escape them to print.
pub async fn adapt_load_addresses(
    image: &Path,
    config: &mut QemuConfig,
    board: Option<&board::Board>,
    cache: Option<PathBuf>,
    no_adapt: bool,
) -> Vec<String> {
    let (image, firmware, memory_mib) = (image.to_owned(), config.firmware.clone(), config.memory_mib);
    let profile = board.map_or(*Board::NanopiR2s.profile(), Profile::r2s_with_console_of);
    let decided =
        tokio::task::spawn_blocking(move || decide(&image, &firmware, memory_mib, &profile, cache, no_adapt))
            .await
            .unwrap_or_else(|e| Decision::told(format!("load addresses: not checked: {e}")));
    if let Some(firmware) = decided.firmware {
        config.firmware = firmware;
    }
    // Every transcript says what was done about the addresses, or why nothing was.
    config.notes.extend(decided.told.iter().cloned());
    decided.told
}

/// What to boot with, and what to say about it.
struct Decision {
    /// The changed firmware, if one is booted.
    firmware: Option<PathBuf>,
    told: Vec<String>,
}

impl Decision {
    fn told(line: String) -> Decision {
        Decision {
            firmware: None,
            told: vec![line],
        }
    }
}

fn decide(
    image: &Path,
    firmware: &Path,
    memory_mib: u32,
    profile: &Profile,
    cache: Option<PathBuf>,
    no_adapt: bool,
) -> Decision {
    let not_checked =
        |why: &dyn std::fmt::Display| Decision::told(format!("load addresses: not checked: {why}"));
    let read = Firmware::read(firmware).and_then(|f| f.addresses().map(|a| (f, a)));
    let (firmware, addresses) = match read {
        Ok(read) => read,
        Err(e) => return not_checked(&e),
    };
    let entries = match load_addresses::entry_files(image) {
        Ok(entries) => entries,
        Err(e) => return not_checked(&e),
    };
    let memory = QEMU_DRAM_BASE..QEMU_DRAM_BASE + (u64::from(memory_mib) << 20);
    let (moves, why) = match load_addresses::plan(addresses, &entries, memory) {
        Plan::Fits => {
            return Decision {
                firmware: None,
                told: Vec::new(),
            }
        }
        Plan::CannotMove { why } => {
            return Decision::told(format!(
                "load addresses: {why}; not moved (cannot be): U-Boot will refuse the entry"
            ))
        }
        Plan::Move { moves, why } => (moves, why),
    };
    if no_adapt {
        return Decision::told(format!(
            "load addresses not moved (--no-adapt): {why}; U-Boot will refuse the entry"
        ));
    }
    // The card's own U-Boot decides whether the image boots at all: QEMU's smaller gap is
    // made up for, a kernel the board would refuse too is not.
    let own = match inspect::image_load_addresses(image, profile) {
        Ok(own) => own,
        Err(e) => return not_checked(&e),
    };
    let refused = entries.iter().find_map(|(label, files)| {
        let check = check_kernel_size(files, &own, label);
        (check.status == Status::Fail).then(|| format!("kernel-size (LABEL {label}): {}", check.message))
    });
    if let Some(refused) = refused {
        return Decision::told(format!(
            "load addresses not moved: the image's own U-Boot would not boot it either: {refused}"
        ));
    }
    let Some(bytes) = firmware.with_moves(&moves) else {
        return Decision::told(format!(
            "load addresses not moved: {why}; the new values need more digits than the firmware's"
        ));
    };
    let Some(cache) = cache else {
        return Decision::told(format!(
            "load addresses not moved: {why}; no cache directory to keep the changed firmware in"
        ));
    };
    match load_addresses::write_cached(&cache.join(FIRMWARE_DIR), &bytes) {
        Ok(path) => Decision {
            told: vec![format!(
                "load addresses moved for QEMU (the image is not modified; turn off with --no-adapt): {}, in a copy \
                 of {} ({}); {why}; the image's own U-Boot leaves the room ({})",
                describe(&moves),
                firmware.path.display(),
                path.display(),
                own.describe()
            )],
            firmware: Some(path),
        },
        Err(e) => Decision::told(format!("load addresses not moved: {why}; {e}")),
    }
}

/// `ramdisk_addr_r 0x44000000 → 0x44600000, fdt_addr_r …`.
fn describe(moves: &[Move]) -> String {
    moves
        .iter()
        .map(|m| format!("{} {:#010x} → {:#010x}", m.name, m.from, m.to))
        .collect::<Vec<_>>()
        .join(", ")
}
