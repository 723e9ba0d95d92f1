//! QEMU's U-Boot loads the initrd 60 MiB above the kernel (`qemu_arm64`: `kernel_addr_r`
//! 0x40400000, `ramdisk_addr_r` 0x44000000), less than an R2S U-Boot leaves, and a kernel that
//! outgrows that gap makes U-Boot refuse every entry (`ERROR: RD image overlaps OS image`).
//!
//! The firmware's addresses are read from its own default environment. When an entry's kernel
//! (header `image_size` from where `booti` runs it, or its file) would reach the initrd, the
//! harness boots a copy of the firmware whose default environment loads the initrd (and a
//! device tree at `fdt_addr_r`, if it has one above the kernel) higher up: each value is
//! rewritten in place with as many digits as before, so nothing else in the binary moves. The
//! copy is kept in the cache under a name made from its bytes, so runs of one image share it
//! and a snapshot's key (which names the firmware file) stays the same from run to run.

use std::fs;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::hex::lower_hex;
use crate::image::load_layout::{align_up, mib, EntryFiles, KernelHeader, Placement, KERNEL_HEADER_LEN};
use crate::image::uboot_env::{AddressError, DefaultEnv};
use crate::image::{boot_config, ImageError, Table, Volume};

/// The largest firmware file read: QEMU virt's flash bank, where `-bios` puts it, is 64 MiB.
pub const FIRMWARE_LIMIT: u64 = 64 << 20;

/// Where QEMU virt's memory starts.
pub const QEMU_DRAM_BASE: u64 = 0x4000_0000;

/// Moved pieces start at a multiple of this, as U-Boot's own addresses do.
const PIECE_ALIGN: u64 = 2 << 20;

/// Why the firmware's addresses could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    #[error("cannot read firmware {path}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("firmware {path} is {size} bytes, more than QEMU's {limit}-byte flash holds")]
    TooLarge { path: PathBuf, size: u64, limit: u64 },
    #[error("firmware {path} holds no U-Boot default environment with kernel_addr_r")]
    NoEnvironment { path: PathBuf },
    #[error("firmware {path}: {source}")]
    Address { path: PathBuf, source: AddressError },
    #[error("cannot write the changed firmware to {path}: {error}")]
    Write { path: PathBuf, error: io::Error },
}

/// A U-Boot firmware file and its default environment.
#[derive(Debug)]
pub struct Firmware {
    /// The file.
    pub path: PathBuf,
    bytes: Vec<u8>,
    env: DefaultEnv,
}

impl Firmware {
    /// Reads `path` (at most [`FIRMWARE_LIMIT`] bytes) and finds its default environment.
    pub fn read(path: &Path) -> Result<Firmware, FirmwareError> {
        let read = |error| FirmwareError::Read {
            path: path.to_owned(),
            error,
        };
        let file = fs::File::open(path).map_err(read)?;
        let size = file.metadata().map_err(read)?.len();
        if size > FIRMWARE_LIMIT {
            return Err(FirmwareError::TooLarge {
                path: path.to_owned(),
                size,
                limit: FIRMWARE_LIMIT,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // The file may have grown since: never read past the limit.
        file.take(FIRMWARE_LIMIT).read_to_end(&mut bytes).map_err(read)?;
        let env = DefaultEnv::find(&bytes).ok_or_else(|| FirmwareError::NoEnvironment {
            path: path.to_owned(),
        })?;
        Ok(Firmware {
            path: path.to_owned(),
            bytes,
            env,
        })
    }

    /// The load addresses of its default environment.
    pub fn addresses(&self) -> Result<crate::image::load_layout::LoadAddresses, FirmwareError> {
        let address = |name: &str| {
            self.env.address(name).map_err(|source| FirmwareError::Address {
                path: self.path.clone(),
                source,
            })
        };
        Ok(crate::image::load_layout::LoadAddresses {
            kernel_addr_r: address("kernel_addr_r")?,
            ramdisk_addr_r: address("ramdisk_addr_r")?,
            fdt_addr_r: self.env.address("fdt_addr_r").ok(),
        })
    }

    /// The firmware's bytes with `moves` made in its default environment, each value written
    /// with as many hex digits as the one it replaces; `None` when a new value needs more.
    pub fn with_moves(&self, moves: &[Move]) -> Option<Vec<u8>> {
        let mut bytes = self.bytes.clone();
        for change in moves {
            let at = self.env.value_at(change.name)?;
            let old = &self.bytes[at.clone()];
            let prefix = if old.starts_with(b"0x") || old.starts_with(b"0X") {
                2
            } else {
                0
            };
            let digits = old.len() - prefix;
            let new = format!("{:0digits$x}", change.to);
            if new.len() != digits {
                return None;
            }
            bytes[at.start + prefix..at.end].copy_from_slice(new.as_bytes());
        }
        Some(bytes)
    }
}

/// One load address moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The environment variable.
    pub name: &'static str,
    /// Its value in the firmware.
    pub from: u64,
    /// Its value in the copy the harness boots.
    pub to: u64,
}

/// What the firmware's addresses mean for an image's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every entry's kernel, initrd and device tree fit as the firmware places them.
    Fits,
    /// These moves make them fit; `why` says which entry needed them.
    Move { moves: Vec<Move>, why: String },
    /// They do not fit, and moving cannot help (past the end of memory).
    CannotMove { why: String },
}

/// Plans the moves for `entries` (label, files) at `firmware`'s addresses, in a machine whose
/// memory is `memory`.
pub fn plan(
    firmware: crate::image::load_layout::LoadAddresses,
    entries: &[(String, EntryFiles)],
    memory: Range<u64>,
) -> Plan {
    let placed: Vec<(&str, Placement)> = entries
        .iter()
        .map(|(label, files)| (label.as_str(), Placement::of(firmware, files)))
        .collect();
    let Some((label, placement, overlap)) = placed
        .iter()
        .find_map(|(label, p)| p.overlap().map(|o| (label, p, o)))
    else {
        return Plan::Fits;
    };
    let why = format!(
        "{label}: the kernel needs {} ({}) from {:#010x}, the firmware's ramdisk_addr_r {:#010x} leaves {}: {overlap}",
        mib(placement.kernel_needs()),
        placement.kernel_end_by,
        placement.kernel_start,
        firmware.ramdisk_addr_r,
        mib(firmware.ramdisk_addr_r.saturating_sub(placement.kernel_start)),
    );
    let kernel_end = placed.iter().map(|(_, p)| p.kernel.end).max().unwrap_or(0);
    let initrd_len = entries.iter().filter_map(|(_, f)| f.initrd).max().unwrap_or(0);
    let ramdisk_addr_r = align_up(kernel_end, PIECE_ALIGN);
    let mut moves = vec![Move {
        name: "ramdisk_addr_r",
        from: firmware.ramdisk_addr_r,
        to: ramdisk_addr_r,
    }];
    let mut moved = firmware;
    moved.ramdisk_addr_r = ramdisk_addr_r;
    let mut end = ramdisk_addr_r.saturating_add(initrd_len);
    if let Some(fdt) = firmware.fdt_addr_r.filter(|at| *at >= firmware.kernel_addr_r) {
        let to = align_up(end, PIECE_ALIGN);
        moves.push(Move {
            name: "fdt_addr_r",
            from: fdt,
            to,
        });
        moved.fdt_addr_r = Some(to);
        let fdt_len = entries.iter().filter_map(|(_, f)| f.fdt).max().unwrap_or(0);
        end = to.saturating_add(fdt_len);
    }
    let still = entries.iter().find_map(|(label, files)| {
        Placement::of(moved, files)
            .overlap()
            .map(|o| format!("{label}: {o}"))
    });
    if let Some(still) = still {
        return Plan::CannotMove {
            why: format!("{why}; moved up, still {still}"),
        };
    }
    if end > memory.end {
        return Plan::CannotMove {
            why: format!(
                "{why}; above the kernel they would end at {end:#x}, past the machine's memory (ends at {:#x})",
                memory.end
            ),
        };
    }
    Plan::Move { moves, why }
}

/// The kernel, initrd and sizes of every entry of `image`'s extlinux.conf that boots an arm64
/// Image, as U-Boot under QEMU loads them: without a device tree (the adaptation drops the
/// entries' own; QEMU passes its device tree at `fdt_addr`).
pub fn entry_files(image: &Path) -> Result<Vec<(String, EntryFiles)>, ImageError> {
    let found = match boot_config::find(image) {
        Ok(found) => found,
        Err(ImageError::NoBootConfig { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let table = Table::read(image)?;
    let volume = Volume::open_index(image, &table, found.partition)?;
    let size_of = |written: &str| match volume.read_head(&found.resolve(written), 0) {
        Ok((size, _)) => Ok(Some(size)),
        Err(ImageError::FileNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    let mut entries = Vec::new();
    for label in &found.config.labels {
        let Some(kernel) = &label.kernel else { continue };
        let kernel = kernel.split('#').next().unwrap_or(kernel);
        let (kernel_file, head) = match volume.read_head(&found.resolve(kernel), KERNEL_HEADER_LEN) {
            Ok(read) => read,
            // A missing kernel is U-Boot's to report; there is nothing to place.
            Err(ImageError::FileNotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let Some(header) = KernelHeader::parse(&head) else {
            continue;
        };
        let initrd = match &label.initrd {
            Some(initrd) => size_of(initrd)?,
            None => None,
        };
        entries.push((
            label.name.clone(),
            EntryFiles {
                kernel: header,
                kernel_file,
                initrd,
                fdt: None,
            },
        ));
    }
    Ok(entries)
}

/// Writes `bytes` (a changed firmware) into `dir` under a name made from their digest, unless
/// a file of that name is there already; returns its path.
pub fn write_cached(dir: &Path, bytes: &[u8]) -> Result<PathBuf, FirmwareError> {
    let path = dir.join(format!("u-boot-{}.bin", &lower_hex(&Sha256::digest(bytes))[..32]));
    if fs::read(&path).is_ok_and(|held| held == bytes) {
        return Ok(path);
    }
    let write = |error| FirmwareError::Write {
        path: path.clone(),
        error,
    };
    fs::create_dir_all(dir).map_err(write)?;
    // Written aside and renamed into place: a concurrent run sees the whole file or none.
    let mut staged = tempfile::NamedTempFile::new_in(dir).map_err(write)?;
    staged.write_all(bytes).map_err(write)?;
    staged.persist(&path).map_err(|e| write(e.error))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::load_layout::LoadAddresses;

    const QEMU: LoadAddresses = LoadAddresses {
        kernel_addr_r: 0x4040_0000,
        ramdisk_addr_r: 0x4400_0000,
        fdt_addr_r: None,
    };
    const MEMORY: Range<u64> = QEMU_DRAM_BASE..QEMU_DRAM_BASE + (1 << 30);

    fn entry(image_size: u64, file: u64) -> (String, EntryFiles) {
        let mut head = vec![0u8; KERNEL_HEADER_LEN];
        head[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
        head[0x18..0x20].copy_from_slice(&0xau64.to_le_bytes());
        head[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let files = EntryFiles {
            kernel: KernelHeader::parse(&head).unwrap(),
            kernel_file: file,
            initrd: Some(3 << 20),
            fdt: None,
        };
        ("nixos-default".to_owned(), files)
    }

    fn firmware_with(env: &[&str]) -> (tempfile::TempDir, Firmware) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"\x14\0\0\x14code\0Insufficient RAM\0".to_vec();
        for entry in env {
            bytes.extend_from_slice(entry.as_bytes());
            bytes.push(0);
        }
        bytes.extend_from_slice(b"\0tail");
        let path = dir.path().join("u-boot.bin");
        fs::write(&path, &bytes).unwrap();
        let firmware = Firmware::read(&path).unwrap();
        (dir, firmware)
    }

    #[test]
    fn a_kernel_within_the_gap_needs_no_move() {
        assert_eq!(plan(QEMU, &[entry(34 << 20, 32 << 20)], MEMORY), Plan::Fits);
    }

    #[test]
    fn the_initrd_moves_to_the_first_2_mib_boundary_above_the_largest_kernel() {
        let Plan::Move { moves, why } = plan(QEMU, &[entry(66 << 20, 61 << 20)], MEMORY) else {
            panic!("no move");
        };
        assert_eq!(
            moves,
            [Move {
                name: "ramdisk_addr_r",
                from: 0x4400_0000,
                to: 0x4460_0000
            }]
        );
        assert_eq!(
            why,
            "nixos-default: the kernel needs 66.0 MiB (header image_size) from 0x40400000, the firmware's \
             ramdisk_addr_r 0x44000000 leaves 60.0 MiB: the kernel (0x40400000–0x44600000) overlaps the initrd \
             (0x44000000–0x44300000)"
        );
    }

    #[test]
    fn a_device_tree_address_above_the_kernel_moves_above_the_initrd() {
        let firmware = LoadAddresses {
            fdt_addr_r: Some(0x4500_0000),
            ..QEMU
        };
        let mut big = entry(90 << 20, 61 << 20);
        big.1.fdt = Some(64 << 10);
        let Plan::Move { moves, .. } = plan(firmware, &[big], MEMORY) else {
            panic!("no move");
        };
        assert_eq!(moves[1].name, "fdt_addr_r");
        assert_eq!(moves[1].to, 0x4620_0000);
    }

    #[test]
    fn a_kernel_past_the_end_of_memory_cannot_be_moved_around() {
        let small = QEMU_DRAM_BASE..QEMU_DRAM_BASE + (64 << 20);
        let Plan::CannotMove { why } = plan(QEMU, &[entry(66 << 20, 61 << 20)], small) else {
            panic!("moved");
        };
        assert!(
            why.ends_with("above the kernel they would end at 0x44900000, past the machine's memory (ends at 0x44000000)"),
            "{why}"
        );
    }

    #[test]
    fn the_changed_firmware_keeps_every_byte_but_the_values() {
        let (_dir, firmware) = firmware_with(&["kernel_addr_r=0x40400000", "ramdisk_addr_r=0x44000000"]);
        assert_eq!(firmware.addresses().unwrap(), QEMU);
        let moves = [Move {
            name: "ramdisk_addr_r",
            from: 0x4400_0000,
            to: 0x4460_0000,
        }];
        let changed = firmware.with_moves(&moves).unwrap();
        assert_eq!(changed.len(), firmware.bytes.len());
        let text = String::from_utf8_lossy(&changed);
        assert!(text.contains("\0ramdisk_addr_r=0x44600000\0"), "{text}");
        let differing = changed
            .iter()
            .zip(&firmware.bytes)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1, "only the digit that changed");
    }

    #[test]
    fn a_value_that_needs_more_digits_is_not_written() {
        let (_dir, firmware) = firmware_with(&["kernel_addr_r=0x40400000", "ramdisk_addr_r=0x4400000"]);
        let moves = [Move {
            name: "ramdisk_addr_r",
            from: 0x440_0000,
            to: 0x4460_0000,
        }];
        assert_eq!(firmware.with_moves(&moves), None);
    }

    #[test]
    fn a_firmware_without_an_environment_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u-boot.bin");
        fs::write(&path, b"no environment here").unwrap();
        let error = Firmware::read(&path).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "firmware {} holds no U-Boot default environment with kernel_addr_r",
                path.display()
            )
        );
    }

    #[test]
    fn the_cached_copy_is_named_by_its_bytes_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_cached(dir.path(), b"firmware").unwrap();
        let again = write_cached(dir.path(), b"firmware").unwrap();
        assert_eq!(first, again);
        assert_eq!(fs::read(&first).unwrap(), b"firmware");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
