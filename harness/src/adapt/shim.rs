//! The shim disk: a small GPT disk whose one ext4 partition holds the adapted extlinux.conf and,
//! at the same paths as in the image, the image's own kernel and initrd bytes (an initrd
//! followed by the archive of added disk drivers, if [`super::initrd_modules`] adds any).
//!
//! QEMU attaches it last, which makes it U-Boot's `virtio 0`, the only device distro boot scans
//! on `qemu_arm64`. The image itself stays attached (behind an overlay) and provides the root
//! filesystem, so stage 1 and stage 2 are the image's own. Nothing is written to the image.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::initrd_modules::Addition;
use crate::image::extlinux::Config;
use crate::image::volume::Volume;
use crate::image::{boot_config::Found, limits, ImageError, Table};

/// The shim filesystem's label: distinct from the image's NIXOS_BOOT, so nothing that mounts
/// by label picks the shim by mistake.
pub const SHIM_LABEL: &str = "R2S_QEMU_BOOT";

const SECTOR: u64 = 512;
/// Where the shim's partition starts: 1 MiB, the usual alignment.
const FIRST_LBA: u64 = 2048;

/// Why the shim could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("shim disk {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("`{command}` failed: {stderr}")]
    Mkfs { command: String, stderr: String },
    #[error("shim disk {path}: writing its GPT: {message}")]
    Gpt { path: PathBuf, message: String },
}

/// A built shim disk. A private one is removed when it is dropped; a cached one stays.
#[derive(Debug)]
pub struct Shim {
    kept: Kept,
    shows: String,
    notes: Vec<String>,
}

/// Where a shim's disk lives, held for as long as the shim.
#[derive(Debug)]
enum Kept {
    /// `disk` in a private directory of this run, removed with it.
    Private { dir: TempDir, disk: PathBuf },
    /// In the cache, held there against eviction while the run attaches it.
    Cached(super::cache::ShimInUse),
}

impl Shim {
    /// The raw disk image to attach.
    pub fn disk(&self) -> &Path {
        match &self.kept {
            Kept::Private { disk, .. } => disk,
            Kept::Cached(held) => &held.disk,
        }
    }

    /// A shim whose disk is in the cache, held there while the shim lives: nothing is removed
    /// when it is dropped. `shows` is [`Shim::shows`] of the shim the disk was built as.
    pub fn cached(held: super::cache::ShimInUse, shows: String) -> Shim {
        Shim {
            kept: Kept::Cached(held),
            shows,
            notes: Vec::new(),
        }
    }

    /// The shim with `notes`: what it changed beyond the configuration, for the transcript.
    pub fn with_notes(mut self, notes: Vec<String>) -> Shim {
        self.notes = notes;
        self
    }

    /// What the shim changed beyond the configuration, line by line (added disk drivers).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The private directory of a shim built for this run only.
    pub fn dir(&self) -> Option<&Path> {
        match &self.kept {
            Kept::Private { dir, .. } => Some(dir.path()),
            Kept::Cached(_) => None,
        }
    }

    /// What the shim shows U-Boot, as text: the adapted extlinux.conf's path and contents. The
    /// kernels and initrds beside it are the image's own bytes, so this text and the image's
    /// content decide the disk's files. Unlike the disk, whose ext4 metadata (UUID, timestamps)
    /// differs on every build, it is the same for the same image.
    pub fn shows(&self) -> &str {
        &self.shows
    }
}

/// [`Shim::shows`] of the shim for `found` showing `adapted`, with `addition` appended to an
/// initrd.
pub fn shows(found: &Found, adapted: &Config, addition: Option<&Addition>) -> String {
    let mut shows = format!("{}\n{}", found.path, adapted.render());
    for line in addition.map(Addition::notes).unwrap_or_default() {
        shows.push_str(&line);
        shows.push('\n');
    }
    shows
}

/// Builds the shim for `found` (the image's extlinux.conf) showing `adapted` to U-Boot, with
/// `addition`'s archive after the copy of its initrd.
pub fn build(
    image: &Path,
    found: &Found,
    adapted: &Config,
    addition: Option<&Addition>,
) -> Result<Shim, ShimError> {
    let dir = crate::scratch::dir("shim").map_err(|source| ShimError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let tree = dir.path().join("tree");
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ShimError::Io { path, source }
    };

    let config_path = tree.join(found.path.trim_start_matches('/'));
    write_file(&config_path, adapted.render().as_bytes()).map_err(io_err(&config_path))?;

    let volume = Volume::open_index(image, &Table::read(image)?, found.partition)?;
    let mut payload: u64 = 0;
    for file in files_to_copy(found, adapted) {
        // A file the image lacks stays missing: U-Boot then fails on it exactly as on the board.
        if !volume.is_file(&file).unwrap_or(false) {
            continue;
        }
        let dest = tree.join(file.trim_start_matches('/'));
        let mut out = create_file(&dest).map_err(io_err(&dest))?;
        let mut size = volume.copy_to(&file, limits::BOOT_FILE, "a kernel or initrd", &mut out)?;
        if let Some(addition) = addition.filter(|a| a.initrd == file) {
            // The kernel looks for the next archive at a multiple of four bytes.
            let padding = size.next_multiple_of(4) - size;
            out.write_all(&vec![0; padding as usize]).map_err(io_err(&dest))?;
            out.write_all(&addition.archive).map_err(io_err(&dest))?;
            size += padding + addition.archive.len() as u64;
        }
        payload += size;
        out.flush().map_err(io_err(&dest))?;
    }

    // ext4 metadata and journal need room beyond the payload.
    let fs_bytes = (payload + payload / 8 + (16 << 20)).next_multiple_of(1 << 20);
    let disk = dir.path().join("boot.raw");
    let total = FIRST_LBA * SECTOR + fs_bytes + (1 << 20);
    write_gpt(&disk, total, fs_bytes)?;
    mkfs_into(&disk, &tree, fs_bytes)?;
    Ok(Shim {
        kept: Kept::Private { dir, disk },
        shows: shows(found, adapted, addition),
        notes: Vec::new(),
    })
}

/// Every kernel and initrd the labels name, as paths inside the partition.
fn files_to_copy(found: &Found, adapted: &Config) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for label in &adapted.labels {
        // `KERNEL path#config` selects a FIT configuration; the file is the part before '#'.
        if let Some(kernel) = &label.kernel {
            files.insert(found.resolve(kernel.split('#').next().unwrap_or(kernel).trim()));
        }
        if let Some(initrd) = &label.initrd {
            for part in initrd.split(',') {
                files.insert(found.resolve(part.trim()));
            }
        }
    }
    files
}

fn create_file(path: &Path) -> io::Result<std::io::BufWriter<std::fs::File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(path).map(std::io::BufWriter::new)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_file(path)?;
    file.write_all(bytes)?;
    file.flush()
}

fn write_gpt(disk: &Path, total: u64, fs_bytes: u64) -> Result<(), ShimError> {
    let io_err = |source| ShimError::Io {
        path: disk.to_owned(),
        source,
    };
    let gpt_err = |e: gptman::Error| ShimError::Gpt {
        path: disk.to_owned(),
        message: e.to_string(),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(disk)
        .map_err(io_err)?;
    file.set_len(total).map_err(io_err)?;
    let mut gpt = gptman::GPT::new_from(&mut file, SECTOR, *b"r2s-harness-shim").map_err(gpt_err)?;
    gpt[1] = gptman::GPTPartitionEntry {
        // Linux filesystem data.
        partition_type_guid: [
            0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
        ],
        unique_partition_guid: *b"r2s-shim-part-01",
        starting_lba: FIRST_LBA,
        ending_lba: FIRST_LBA + fs_bytes / SECTOR - 1,
        attribute_bits: 0,
        partition_name: "r2s-qemu-boot".into(),
    };
    gptman::GPT::write_protective_mbr_into(&mut file, SECTOR).map_err(gpt_err)?;
    gpt.write_into(&mut file).map_err(gpt_err)?;
    Ok(())
}

fn mkfs_into(disk: &Path, tree: &Path, fs_bytes: u64) -> Result<(), ShimError> {
    let mut command = Command::new("mke2fs");
    command
        // 4 KiB blocks: below 512 MiB mke2fs picks 1 KiB ones, and copying a 30 MiB kernel in
        // 1 KiB writes doubled the time the shim adds to every run.
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-L", SHIM_LABEL, "-E"])
        .arg(format!("offset={},nodiscard,root_owner=0:0", FIRST_LBA * SECTOR))
        .arg("-d")
        .arg(tree)
        .arg(disk)
        .arg(format!("{}k", fs_bytes / 1024));
    let shown = format!("{command:?}");
    let output = command.output().map_err(|source| ShimError::Mkfs {
        command: shown.clone(),
        stderr: source.to_string(),
    })?;
    if !output.status.success() {
        return Err(ShimError::Mkfs {
            command: shown,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
