//! What an initrd holds, by name: the kernel modules it carries (`*.ko`, `*.ko.zst`, `*.ko.xz`,
//! `*.ko.gz` below `/lib/modules/<release>/`, wherever the archive's own symlinks make that
//! path lead: [`layout`]), the kernel's `modules.builtin` list, if it carries one, and the files
//! that say which filesystem is the root ([`RootFiles`]).
//!
//! An initrd is what the kernel unpacks at boot: cpio archives in the newc format ([`cpio`]),
//! one after another, each either as it is or compressed ([`decompress`]: gzip, zstd, xz, lzma,
//! lz4), with zero padding between them. Debian's initramfs-tools writes an uncompressed early
//! archive (CPU microcode) before the compressed main one; NixOS one zstd-compressed archive.
//!
//! Pure and bounded: it reads the bytes it is given, keeps only names (and modules.builtin,
//! at most [`Limits::builtin_list`] bytes, and the root files, at most [`Limits::root_file`]
//! bytes each), and stops with an error once the archives unpack to
//! more than [`Limits::unpacked`] bytes, whatever the compressed data claims.

mod cpio;
mod decompress;
mod layout;

use std::collections::{BTreeMap, BTreeSet};

pub use decompress::Compression;

/// How much an initrd may unpack to and hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of archive data, all segments unpacked: an R2S has 1 GiB of memory, and the
    /// kernel unpacks the initrd into it.
    pub unpacked: u64,
    /// Archive entries: a NixOS or Debian initrd has a few thousand.
    pub entries: usize,
    /// A `modules.builtin` file: the kernel's own has a few thousand lines, about 50 KiB.
    pub builtin_list: u64,
    /// One of the [`RootFiles`]: a few lines each; a larger one is not kept.
    pub root_file: u64,
    /// The `modules.alias` lists of the archive, together: a whole kernel's is about 1 MiB, a
    /// NixOS initrd's (depmod run for its own modules) a few KiB. Those past it are not kept.
    pub alias_lists: u64,
    /// Archives (compressed or not) one after another.
    pub segments: usize,
    /// Bytes of the paths and symlink targets kept to find the modules directory: those of
    /// module files, `modules.builtin` lists and symlinks.
    pub names: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            unpacked: 1 << 30,
            entries: 1 << 20,
            builtin_list: 4 << 20,
            root_file: 64 << 10,
            alias_lists: 4 << 20,
            segments: 64,
            names: 64 << 20,
        }
    }
}

/// Why an initrd could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InitrdError {
    /// Nothing but zero bytes (or nothing at all).
    #[error("it is empty (no cpio archive)")]
    Empty,
    /// A byte that starts neither a cpio archive nor a compressed stream this reader knows.
    #[error("at byte {offset}: {what}")]
    Unrecognised {
        /// Where, in the initrd file.
        offset: u64,
        /// What is there.
        what: String,
    },
    /// A compression the kernel may know but this reader does not.
    #[error("at byte {offset}: {compression}-compressed data, which this reader cannot unpack")]
    Unsupported {
        /// Where the stream starts.
        offset: u64,
        /// Its name: `bzip2`, `lzo`.
        compression: &'static str,
    },
    /// A compressed stream that does not decode.
    #[error("the {compression} stream at byte {offset} does not decode: {detail}")]
    Corrupt {
        /// Where the stream starts, in the initrd file.
        offset: u64,
        /// Its compression.
        compression: Compression,
        /// What the decoder said.
        detail: String,
    },
    /// A cpio header that is not one.
    #[error("bad cpio header at byte {offset}{within}: {detail}")]
    BadHeader {
        /// Where the header starts in its stream.
        offset: u64,
        /// ` of the zstd stream at byte N`, or empty for the file itself.
        within: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The data ends inside an archive (no `TRAILER!!!` entry).
    #[error("the cpio archive{within} ends after {offset} bytes, inside an entry or before its TRAILER!!!")]
    Truncated {
        /// Where the stream ended.
        offset: u64,
        /// ` in the zstd stream at byte N`, or empty.
        within: String,
    },
    /// Bytes after a compressed archive's end that are not another archive.
    #[error(
        "the {compression} stream at byte {offset} holds data after its cpio archive, at unpacked byte {at}"
    )]
    Junk {
        /// Where the stream starts.
        offset: u64,
        /// Its compression.
        compression: Compression,
        /// Where the junk is, in the unpacked stream.
        at: u64,
    },
    /// More than [`Limits::unpacked`] bytes unpacked: a bomb, or not an initrd for a board.
    #[error("it unpacks to more than {limit} bytes")]
    TooLarge {
        /// [`Limits::unpacked`].
        limit: u64,
    },
    /// More than [`Limits::entries`] entries.
    #[error("it has more than {limit} entries")]
    TooManyEntries {
        /// [`Limits::entries`].
        limit: usize,
    },
    /// More than [`Limits::segments`] archives.
    #[error("it has more than {limit} archives one after another")]
    TooManySegments {
        /// [`Limits::segments`].
        limit: usize,
    },
    /// More than [`Limits::names`] bytes of paths and link targets to keep.
    #[error("its module paths and symlinks take more than {limit} bytes")]
    NamesTooLarge {
        /// [`Limits::names`].
        limit: u64,
    },
    /// A `modules.builtin` larger than [`Limits::builtin_list`], or several that are together.
    #[error("{path} is {size} bytes, more than the {limit} a modules.builtin list can be")]
    BuiltinListTooLarge {
        /// Its path in the archive.
        path: String,
        /// Its size.
        size: u64,
        /// [`Limits::builtin_list`].
        limit: u64,
    },
}

/// What an initrd holds, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// The kernel modules it carries, by canonical name (`-` written `_`, no suffix):
    /// `virtio_blk`, `dw_mmc_rockchip`.
    pub modules: BTreeSet<String>,
    /// The modules built into the kernel, from a `modules.builtin` the initrd carries
    /// (canonical names, `pci_host_generic`), if it carries one.
    pub builtin: Option<BTreeSet<String>>,
    /// Kernel releases of `lib/modules/<release>/` directories with modules or a
    /// modules.builtin in them.
    pub releases: BTreeSet<String>,
    /// Each archive in order: how it was stored.
    pub segments: Vec<Compression>,
    /// Per release, the archive path (no leading `/`, symlinks followed) of the
    /// `lib/modules/<release>` directory its modules are in:
    /// `nix/store/<hash>-linux-6.6-modules-shrunk/lib/modules/6.6.30`.
    pub module_dirs: BTreeMap<String, String>,
    /// Each module's path below its `lib/modules/<release>/`: `kernel/fs/ext4/ext4.ko.xz`.
    pub module_paths: BTreeMap<String, String>,
    /// The alias patterns of the `modules.alias` the initrd carries in its modules directory
    /// (its own depmod's), by canonical module name: `virtio_blk` → `virtio:d00000002v*`.
    pub aliases: BTreeMap<String, Vec<String>>,
    /// What it says about the root filesystem.
    pub root_files: RootFiles,
}

/// The files of an initrd that name the root filesystem, as text (invalid UTF-8 replaced).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootFiles {
    /// `/etc/fstab`, its symlinks followed: systemd in an initrd mounts its `/sysroot` entry
    /// (NixOS's systemd stage 1 up to 24.05, dracut's `--add-fstab`).
    pub fstab: Option<String>,
    /// A `/nix/store/<hash>-initrd-fstab` that `/etc/fstab` does not lead to: NixOS's systemd
    /// stage 1 from 24.11 names it in `SYSTEMD_SYSROOT_FSTAB`, its root at `/`.
    pub store_fstab: Option<String>,
    /// A `/nix/store/<hash>-initrd-fsinfo`: NixOS's scripted stage 1 mounts what it lists, four
    /// lines per filesystem (mount point, device, type, options).
    pub fs_info: Option<String>,
}

/// The canonical name of a module file (`dw_mmc-rockchip.ko.zst` → `dw_mmc_rockchip`), `None`
/// for other files.
pub fn module_name(file: &str) -> Option<String> {
    let stem = [".ko", ".ko.zst", ".ko.xz", ".ko.gz"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))?;
    (!stem.is_empty()).then(|| canonical(stem))
}

/// A module name as the kernel compares them: `-` and `_` are the same.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// The module names of a `modules.builtin` file: one path per line, `kernel/drivers/…/x.ko`.
pub fn parse_builtin_list(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter_map(|line| module_name(line.rsplit('/').next().unwrap_or(line)))
}

/// Reads the names `initrd` holds, within the default [`Limits`].
pub fn read(initrd: &[u8]) -> Result<Index, InitrdError> {
    read_with(initrd, Limits::default())
}

/// Reads the names `initrd` holds, within `limits`.
pub fn read_with(initrd: &[u8], limits: Limits) -> Result<Index, InitrdError> {
    let mut parser = cpio::Parser::new(limits);
    let mut at = 0usize;
    loop {
        // Archives stored as they are, and zero padding, up to the next compressed stream.
        parser.start_stream(at as u64);
        let start = at;
        match parser.feed(&initrd[at..])? {
            cpio::Fed::All => at = initrd.len(),
            cpio::Fed::StoppedAt(n) => at += n,
        }
        if initrd[start..at].iter().any(|&b| b != 0) {
            push_segment(&mut parser, Compression::None, limits)?;
        }
        if !parser.between_archives() {
            return Err(InitrdError::Truncated {
                offset: parser.offset(),
                within: String::new(),
            });
        }
        if at >= initrd.len() {
            break;
        }
        let compression = decompress::detect(&initrd[at..], at as u64)?;
        push_segment(&mut parser, compression, limits)?;
        at += decompress::unpack(compression, &initrd[at..], at as u64, &mut parser)?;
    }
    if parser.index.segments.is_empty() {
        return Err(InitrdError::Empty);
    }
    parser.found.index_into(&mut parser.index);
    Ok(parser.index)
}

fn push_segment(
    parser: &mut cpio::Parser,
    compression: Compression,
    limits: Limits,
) -> Result<(), InitrdError> {
    if parser.index.segments.len() >= limits.segments {
        return Err(InitrdError::TooManySegments {
            limit: limits.segments,
        });
    }
    parser.index.segments.push(compression);
    Ok(())
}

#[cfg(test)]
mod tests;
