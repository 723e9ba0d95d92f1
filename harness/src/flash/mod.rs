//! `harness flash`: putting an image (or only the bootloader) on an SD card, safely.
//!
//! - [`device`]: what DEVICE is, from sysfs (model, size, bus, partitions, holders);
//! - [`mounts`]: what the running system uses (mounts, swap) and what that rests on;
//! - [`guards`]: the refusals (the running system's disks, mounted, in a stack, fixed, large);
//! - [`write`]: the aligned block writes and the SHA-256 read-back;
//! - [`bootloader`]: the checks of `--bootloader IDBLOADER ITB`;
//! - [`sdmux`]: switching the card to the host and back with a profile's `[sdmux]` commands.
//!
//! The CLI (`cli/flash.rs`) runs `inspect` and the scenarios first and asks before writing;
//! this module knows nothing of terminals.

pub mod bootloader;
pub mod device;
pub mod guards;
pub mod mounts;
pub mod sdmux;
pub mod write;

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use device::{BlockDevice, DeviceError, DeviceKind, Sysroot};
pub use guards::{Allow, Refusal};
pub use write::{Piece, Progress, WriteError, Written};

use crate::unpacked::DiskImage;

/// Why a destination is not written.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{} is {source_file}: writing it onto itself is refused", device.display())]
    SameFile { device: PathBuf, source_file: String },
    #[error("{} needs {needed} bytes, but {} holds only {size}", what, device.display())]
    TooSmall {
        what: String,
        device: PathBuf,
        needed: u64,
        size: u64,
    },
    #[error("cannot open {} for writing: {source}{hint}", device.display())]
    Open {
        device: PathBuf,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("cannot read {}: {source}", path.display())]
    Source { path: PathBuf, source: std::io::Error },
}

/// A DEVICE that passed the guards.
#[derive(Debug, Clone)]
pub struct Destination {
    /// As the user gave it.
    pub path: PathBuf,
    pub kind: DeviceKind,
    /// Whether the path is a real block device (opened exclusively), not a file or a test
    /// root's stand-in.
    real_block: bool,
}

/// Resolves `path` and, for a block device, applies every guard.
pub fn examine(path: &Path, sysroot: &Sysroot, allow: Allow) -> Result<Destination, FlashError> {
    let kind = device::resolve(path, sysroot)?;
    if let DeviceKind::Block(disk) = &kind {
        guards::check(disk, sysroot, allow)?;
    }
    Ok(Destination {
        path: path.to_owned(),
        real_block: matches!(kind, DeviceKind::Block(_)) && sysroot.is_real(),
        kind,
    })
}

/// The pieces' length from 0 to the end of the last one.
pub fn extent(pieces: &[Piece]) -> u64 {
    pieces.iter().map(|p| p.at + p.len).max().unwrap_or(0)
}

/// One piece: all of `image` at offset 0. A compressed image is written from its unpacked
/// stream, as long as the disk unpacked from it (which `inspect` read) is.
pub fn image_piece(image: &DiskImage) -> Result<Piece, FlashError> {
    let disk = image.disk();
    let len = std::fs::metadata(disk)
        .map_err(|source| FlashError::Source {
            path: disk.to_owned(),
            source,
        })?
        .len();
    Ok(Piece {
        what: "the image".to_owned(),
        source: image.named().to_owned(),
        len,
        at: 0,
        packing: image.packing(),
    })
}

impl Destination {
    /// Whether this is a block device (or a test root's stand-in for one).
    pub fn is_block(&self) -> bool {
        matches!(self.kind, DeviceKind::Block(_))
    }

    /// Refuses a destination that is one of the sources, or too small for the pieces.
    pub fn check_pieces(&self, pieces: &[Piece]) -> Result<(), FlashError> {
        if let Ok(dest) = std::fs::metadata(&self.path) {
            for piece in pieces {
                let same = std::fs::metadata(&piece.source)
                    .is_ok_and(|src| src.dev() == dest.dev() && src.ino() == dest.ino());
                if same {
                    return Err(FlashError::SameFile {
                        device: self.path.clone(),
                        source_file: format!("{} ({})", piece.what, piece.source.display()),
                    });
                }
            }
        }
        if let DeviceKind::Block(disk) = &self.kind {
            let needed = extent(pieces);
            if needed > disk.size {
                return Err(FlashError::TooSmall {
                    what: pieces
                        .iter()
                        .map(|p| p.what.as_str())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    device: self.path.clone(),
                    needed,
                    size: disk.size,
                });
            }
        }
        Ok(())
    }

    /// What the user is asked about: model, size, bus and partitions, one line each.
    pub fn describe(&self) -> Vec<String> {
        match &self.kind {
            DeviceKind::File { exists: false } => {
                vec![format!("{}: a new regular file", self.path.display())]
            }
            DeviceKind::File { exists: true } => {
                let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
                vec![format!(
                    "{}: a regular file of {}",
                    self.path.display(),
                    device::human_size(len)
                )]
            }
            DeviceKind::Block(disk) => {
                let mut lines = vec![
                    format!("device: {} (/dev/{})", self.path.display(), disk.name),
                    format!("model:  {}", disk.model.as_deref().unwrap_or("(unknown)")),
                    format!("size:   {} ({} bytes)", device::human_size(disk.size), disk.size),
                    format!(
                        "bus:    {}{}",
                        disk.bus,
                        if disk.removable { ", removable" } else { "" }
                    ),
                ];
                if disk.partitions.is_empty() {
                    lines.push("partitions: none".to_owned());
                } else {
                    lines.push("partitions (all of them are overwritten):".to_owned());
                    let filesystems = self.filesystems();
                    for p in &disk.partitions {
                        let line = format!(
                            "  {:<12} from sector {:<10} {}",
                            p.name,
                            p.start,
                            device::human_size(p.size)
                        );
                        match filesystems.iter().find(|(start, _)| *start == p.start) {
                            Some((_, fs)) => lines.push(format!("{line}, {fs}")),
                            None => lines.push(line),
                        }
                    }
                }
                lines
            }
        }
    }

    /// The filesystem of each partition the device's own table lists, by first 512-byte
    /// sector, so that the question names what is about to be lost (`ext4 labelled
    /// "NIXOS_SD"`). Empty when the table or a superblock cannot be read.
    fn filesystems(&self) -> Vec<(u64, String)> {
        let Ok(table) = crate::image::Table::read(&self.path) else {
            return Vec::new();
        };
        table
            .partitions
            .iter()
            .filter_map(|p| {
                let fs = crate::image::probe_filesystem(&self.path, p).ok()?;
                Some((p.offset() / 512, fs.to_string()))
            })
            .collect()
    }

    /// Opens the destination for writing and reading back: a real block device exclusively
    /// (the kernel then refuses it if anything mounted or claimed it since the guards ran); a
    /// regular file created if needed and, with `file_len`, cut to that length.
    pub fn open(&self, file_len: Option<u64>) -> Result<File, FlashError> {
        let mut options = File::options();
        options.read(true).write(true);
        let open_error = |source: std::io::Error, hint| FlashError::Open {
            device: self.path.clone(),
            source,
            hint,
        };
        if self.real_block {
            options.custom_flags(libc::O_EXCL | libc::O_CLOEXEC);
            return options.open(&self.path).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EBUSY) {
                    " (something mounted or claimed it after the checks)"
                } else {
                    ""
                };
                open_error(e, hint)
            });
        }
        if !self.is_block() {
            options.create(true);
        }
        let file = options.open(&self.path).map_err(|e| open_error(e, ""))?;
        if let (Some(len), false) = (file_len, self.is_block()) {
            file.set_len(len).map_err(|e| open_error(e, ""))?;
        }
        Ok(file)
    }
}
