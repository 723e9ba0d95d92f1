//! Compressed disk images, unpacked once into the cache and reused: `nix build` leaves
//! `result/sd-image/*.img.zst`, and every command that takes an image (`run`, `console`,
//! `inspect`) takes that file as it is.
//!
//! The unpacked disk is keyed on the compressed file as the shim cache keys an image
//! ([`file_identity`]: path, size, times, inode), so a rebuilt image is unpacked again and an
//! unchanged one never. One run unpacks a given file at a time (the others wait on its build
//! lock and then take its entry); a failed unpack leaves no entry behind. Without a cache
//! directory the disk goes to a private scratch directory removed when the run ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::disk_cache::{file_identity, DiskCache, DiskInUse};
use crate::image::packed::{self, Packing, UnpackError, UnpackLimits};

/// Unpacked disks kept: each is the size of a whole SD card image.
const KEEP: usize = 2;

/// How long a run waits for another that unpacks the same file: a few GiB at disk speed.
const BUILD_WAIT: Duration = Duration::from_secs(30 * 60);

/// A disk image as the harness reads and boots it.
#[derive(Debug)]
pub enum DiskImage {
    /// Not compressed: the file itself.
    AsIs(PathBuf),
    /// Compressed: the disk unpacked from it.
    Unpacked(UnpackedImage),
}

/// A compressed image and the disk unpacked from it.
#[derive(Debug)]
pub struct UnpackedImage {
    /// The file the user named.
    pub packed: PathBuf,
    /// How it is compressed.
    pub packing: Packing,
    /// Whether this run unpacked it (else it came from the cache).
    pub unpacked_now: bool,
    disk: UnpackedDisk,
}

/// Where an unpacked disk is kept while the run uses it.
#[derive(Debug)]
enum UnpackedDisk {
    /// In the cache, held against eviction.
    Cached(DiskInUse),
    /// In a scratch directory of this run.
    Scratch { _dir: TempDir, disk: PathBuf },
}

impl DiskImage {
    /// The raw disk to read and boot.
    pub fn disk(&self) -> &Path {
        match self {
            DiskImage::AsIs(path) => path,
            DiskImage::Unpacked(unpacked) => match &unpacked.disk {
                UnpackedDisk::Cached(held) => &held.disk,
                UnpackedDisk::Scratch { disk, .. } => disk,
            },
        }
    }

    /// The file the user named.
    pub fn named(&self) -> &Path {
        match self {
            DiskImage::AsIs(path) => path,
            DiskImage::Unpacked(unpacked) => &unpacked.packed,
        }
    }

    /// How the file the user named is compressed, if it is.
    pub fn packing(&self) -> Option<Packing> {
        match self {
            DiskImage::AsIs(_) => None,
            DiskImage::Unpacked(unpacked) => Some(unpacked.packing),
        }
    }

    /// The compressed file the disk was unpacked from, if it was.
    pub fn unpacked_from(&self) -> Option<PathBuf> {
        match self {
            DiskImage::AsIs(_) => None,
            DiskImage::Unpacked(unpacked) => Some(unpacked.packed.clone()),
        }
    }

    /// A line for the run's output when the image was compressed: what was unpacked, and
    /// where the disk is.
    pub fn describe(&self) -> Option<String> {
        let DiskImage::Unpacked(unpacked) = self else {
            return None;
        };
        let how = if unpacked.unpacked_now {
            "unpacked to"
        } else {
            "unpacked before, at"
        };
        Some(format!(
            "{} is {}-compressed: {how} {}",
            unpacked.packed.display(),
            unpacked.packing,
            self.disk().display()
        ))
    }
}

/// Why an image could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", image.display())]
pub struct OpenImageError {
    /// The file the user named.
    pub image: PathBuf,
    #[source]
    pub kind: OpenImageErrorKind,
}

/// What went wrong opening an image.
#[derive(Debug, thiserror::Error)]
pub enum OpenImageErrorKind {
    #[error("cannot open image: {0}")]
    Read(#[source] std::io::Error),
    #[error("{packing}-compressed, and {source}")]
    Unpack {
        packing: Packing,
        #[source]
        source: UnpackError,
    },
    #[error("cannot keep the unpacked disk in {dir}: {source}")]
    Cache {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens `image`: itself when it is a raw disk, else the disk unpacked from it, from the
/// cache in `cache_dir` (its `unpacked/` folder) when there is one.
pub fn open(image: &Path, cache_dir: Option<&Path>) -> Result<DiskImage, OpenImageError> {
    open_within(image, cache_dir, UnpackLimits::default())
}

/// [`open`] within `limits`.
pub fn open_within(
    image: &Path,
    cache_dir: Option<&Path>,
    limits: UnpackLimits,
) -> Result<DiskImage, OpenImageError> {
    let fail = |kind| OpenImageError {
        image: image.to_owned(),
        kind,
    };
    let mut start = [0u8; 8];
    let read = std::fs::File::open(image)
        .and_then(|mut file| packed::read_full(&mut file, &mut start))
        .map_err(|e| fail(OpenImageErrorKind::Read(e)))?;
    let Some(packing) = packed::detect(&start[..read]) else {
        return Ok(DiskImage::AsIs(image.to_owned()));
    };
    let unpacked = |disk, unpacked_now| {
        DiskImage::Unpacked(UnpackedImage {
            packed: image.to_owned(),
            packing,
            unpacked_now,
            disk,
        })
    };
    let Some(cache_dir) = cache_dir else {
        let dir = crate::scratch::dir("unpacked").map_err(|source| {
            fail(OpenImageErrorKind::Cache {
                dir: std::env::temp_dir(),
                source,
            })
        })?;
        let disk = dir.path().join("disk.raw");
        let mut out = std::fs::File::create(&disk).map_err(|source| {
            fail(OpenImageErrorKind::Cache {
                dir: dir.path().to_owned(),
                source,
            })
        })?;
        unpack_into(image, packing, &mut out, limits).map_err(fail)?;
        return Ok(unpacked(UnpackedDisk::Scratch { _dir: dir, disk }, true));
    };
    let cache = DiskCache::new(&cache_dir.join("unpacked"), KEEP);
    let cache_error = |source| {
        fail(OpenImageErrorKind::Cache {
            dir: cache.dir().to_owned(),
            source,
        })
    };
    let key = key(image).map_err(|e| fail(OpenImageErrorKind::Read(e)))?;
    if let Some(held) = cache.get(&key) {
        return Ok(unpacked(UnpackedDisk::Cached(held), false));
    }
    let _building = cache.build_lock(&key, BUILD_WAIT).map_err(cache_error)?;
    if let Some(held) = cache.get(&key) {
        return Ok(unpacked(UnpackedDisk::Cached(held), false));
    }
    let mut staged = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempfile_in(cache.dir())
        .map_err(cache_error)?;
    unpack_into(image, packing, staged.as_file_mut(), limits).map_err(fail)?;
    let held = cache.put(&key, staged.path()).map_err(cache_error)?;
    Ok(unpacked(UnpackedDisk::Cached(held), true))
}

/// The cache key of compressed `image`: the harness version and the file's identity.
fn key(image: &Path) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update(std::path::absolute(image)?.as_os_str().as_encoded_bytes());
    hash.update(file_identity(image)?);
    Ok(crate::hex::lower_hex(&hash.finalize()[..16]))
}

fn unpack_into(
    image: &Path,
    packing: Packing,
    out: &mut std::fs::File,
    limits: UnpackLimits,
) -> Result<(), OpenImageErrorKind> {
    let source = std::fs::File::open(image).map_err(OpenImageErrorKind::Read)?;
    packed::unpack(packing, source, out, limits)
        .map_err(|source| OpenImageErrorKind::Unpack { packing, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A 4 MiB disk with an MBR whose one partition fills it, and some data.
    fn disk() -> Vec<u8> {
        let mut disk = vec![0u8; 4 << 20];
        disk[446 + 4] = 0x83;
        disk[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&((4 << 20) / 512 - 2048u32).to_le_bytes());
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        disk[2 << 20..(2 << 20) + 9].copy_from_slice(b"some data");
        disk
    }

    /// `disk` written to `dir`/`name` and compressed there by the real zstd, which removes the
    /// original as sd-image's build does; the compressed file's path.
    fn zstd_image(dir: &Path, name: &str, disk: &[u8]) -> PathBuf {
        let raw = dir.join(name);
        std::fs::write(&raw, disk).unwrap();
        let status = Command::new("zstd")
            .args(["-q", "--rm"])
            .arg(&raw)
            .status()
            .unwrap();
        assert!(status.success());
        dir.join(format!("{name}.zst"))
    }

    /// The entries of the unpacked cache (dot files, the build locks and staging, left out).
    fn entries(cache: &Path) -> Vec<String> {
        let Ok(read) = std::fs::read_dir(cache.join("unpacked")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = read
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_raw_image_is_taken_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.img");
        std::fs::write(&raw, disk()).unwrap();
        let image = open(&raw, Some(dir.path())).unwrap();
        assert_eq!(image.disk(), raw);
        assert!(image.describe().is_none());
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn a_compressed_image_is_unpacked_once_and_then_taken_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let packed = zstd_image(dir.path(), "nixos.img", &disk());
        let first = open(&packed, Some(&cache)).unwrap();
        assert_eq!(std::fs::read(first.disk()).unwrap(), disk());
        let DiskImage::Unpacked(ref unpacked) = first else {
            panic!("not unpacked")
        };
        assert!(unpacked.unpacked_now);
        assert_eq!(unpacked.packing, Packing::Zstd);
        let again = open(&packed, Some(&cache)).unwrap();
        assert_eq!(again.disk(), first.disk());
        let DiskImage::Unpacked(unpacked) = again else {
            panic!("not unpacked")
        };
        assert!(!unpacked.unpacked_now, "unpacked a second time");
        assert_eq!(entries(&cache).len(), 1);
    }

    #[test]
    fn a_rebuilt_image_is_unpacked_again() {
        let dir = tempfile::tempdir().unwrap();
        let packed = zstd_image(dir.path(), "nixos.img", &disk());
        let first = open(&packed, Some(dir.path())).unwrap().disk().to_owned();
        let mut changed = disk();
        changed[3 << 20] = 1;
        std::fs::remove_file(&packed).unwrap();
        let packed = zstd_image(dir.path(), "nixos.img", &changed);
        let second = open(&packed, Some(dir.path())).unwrap();
        assert_ne!(second.disk(), first);
        assert_eq!(std::fs::read(second.disk()).unwrap(), changed);
    }

    #[test]
    fn a_corrupt_image_is_an_error_naming_the_file_and_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let packed = zstd_image(dir.path(), "nixos.img", &disk());
        let mut bytes = std::fs::read(&packed).unwrap();
        bytes.truncate(bytes.len() - 30);
        std::fs::write(&packed, bytes).unwrap();
        let error = open(&packed, Some(dir.path())).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: zstd-compressed, and the zstd data does not decode at unpacked byte",
                packed.display()
            )),
            "{text}"
        );
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        let left: Vec<_> = std::fs::read_dir(dir.path().join("unpacked"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".unpacking-"))
            .collect();
        assert!(left.is_empty(), "a half-unpacked disk was left: {left:?}");
    }

    #[test]
    fn without_a_cache_the_disk_lives_in_a_scratch_directory_of_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let packed = zstd_image(dir.path(), "nixos.img", &disk());
        let image = open(&packed, None).unwrap();
        let disk_path = image.disk().to_owned();
        assert_eq!(std::fs::read(&disk_path).unwrap(), disk());
        drop(image);
        assert!(!disk_path.exists(), "{} left behind", disk_path.display());
    }
}
