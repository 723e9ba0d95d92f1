//! Compressed disk images, unpacked once into the cache and reused: `nix build` leaves
//! `result/sd-image/*.img.zst`, and every command that takes an image (`run`, `console`,
//! `inspect`) takes that file as it is.
//!
//! The unpacked disk is keyed on the compressed file as the shim cache keys an image
//! ([`file_identity`]: path, size, times, inode), so a rebuilt image is unpacked again and an
//! unchanged one never. One run unpacks a given file at a time (the others wait on its build
//! lock and then take its entry); a failed unpack leaves no entry behind, one killed midway
//! leaves a staging file the next unpack into the cache sweeps, and none starts without room
//! for the disk its partition table describes. Without a cache
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
    #[error(
        "its partition table says the disk has {needed} bytes, and {dir} has {free} bytes free: \
         not unpacked (free some space, or give --cache-dir on a larger filesystem)"
    )]
    NoRoom { dir: PathBuf, needed: u64, free: u64 },
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
    let packing = packed::packing_of(image).map_err(|e| fail(OpenImageErrorKind::Read(e)))?;
    let Some(packing) = packing else {
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
        check_room(image, packing, dir.path()).map_err(fail)?;
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
    sweep_stale_staging(cache.dir());
    check_room(image, packing, cache.dir()).map_err(fail)?;
    let mut staged = tempfile::Builder::new()
        .prefix(&format!("{STAGING}{}-", std::process::id()))
        .tempfile_in(cache.dir())
        .map_err(cache_error)?;
    unpack_into(image, packing, staged.as_file_mut(), limits).map_err(fail)?;
    let held = cache.put(&key, staged.path()).map_err(cache_error)?;
    Ok(unpacked(UnpackedDisk::Cached(held), true))
}

/// What the name of a disk being unpacked into the cache starts with; the unpacking process's
/// id follows (`.unpacking-<pid>-<random>`), so that one left by a killed run can be told from
/// one being written.
const STAGING: &str = ".unpacking-";

/// Removes the disks being unpacked in `dir` whose process is gone (killed mid-unpack: nothing
/// else removes them). One whose name holds no process id, or a live one, is left alone.
fn sweep_stale_staging(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(STAGING))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && !crate::scratch::process_exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Checks that the filesystem of `dir` has room for `image` unpacked: as many free bytes as its
/// partition table says the disk has (read from the first unpacked bytes). Zero blocks are left
/// as holes, so the disk may take less; an image as nixpkgs builds it is sized to its contents.
fn check_room(image: &Path, packing: Packing, dir: &Path) -> Result<(), OpenImageErrorKind> {
    let mut stream =
        packed::open_stream(packing, image, UnpackLimits::default()).map_err(OpenImageErrorKind::Read)?;
    let mut start = vec![0u8; packed::TABLE_PREFIX];
    let read = stream
        .next_block(&mut start)
        .map_err(|source| OpenImageErrorKind::Unpack { packing, source })?;
    let Some(needed) = packed::table_end(&start[..read]) else {
        // Said by the unpack itself, with the offset.
        return Ok(());
    };
    let Some(free) = free_bytes(dir) else {
        return Ok(());
    };
    if free < needed {
        return Err(OpenImageErrorKind::NoRoom {
            dir: dir.to_owned(),
            needed,
            free,
        });
    }
    Ok(())
}

/// Bytes free to an unprivileged user on the filesystem of `dir`; `None` when it cannot be
/// asked.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the struct it is given; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    stat.f_bavail.checked_mul(stat.f_frsize)
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

    #[test]
    fn a_disk_left_half_unpacked_by_a_killed_run_is_swept_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let packed = zstd_image(dir.path(), "nixos.img", &disk());
        let unpacked = dir.path().join("unpacked");
        std::fs::create_dir_all(&unpacked).unwrap();
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4_194_304);
        let killed = unpacked.join(format!(".unpacking-{}-abc123", pid_max + 1));
        // PID 1 lives as long as the machine; a name without a PID is not ours to judge.
        let live = unpacked.join(".unpacking-1-def456");
        let unnamed = unpacked.join(".unpacking-ghi789");
        for file in [&killed, &live, &unnamed] {
            std::fs::write(file, "half a disk").unwrap();
        }
        open(&packed, Some(dir.path())).unwrap();
        assert!(!killed.exists(), "the killed run's disk is left");
        assert!(live.exists() && unnamed.exists());
    }

    #[test]
    fn a_disk_larger_than_the_free_space_is_refused_before_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        // A GPT whose backup header is at sector 2^50: a disk of 512 PiB.
        let mut image = disk();
        image[512..520].copy_from_slice(b"EFI PART");
        image[512 + 32..512 + 40].copy_from_slice(&(1u64 << 50).to_le_bytes());
        let packed = zstd_image(dir.path(), "huge.img", &image);
        let text = open(&packed, Some(dir.path())).unwrap_err().to_string();
        let needed = ((1u64 << 50) + 1) * 512;
        assert!(
            text.starts_with(&format!(
                "{}: its partition table says the disk has {needed} bytes, and {} has ",
                packed.display(),
                dir.path().join("unpacked").display()
            )),
            "{text}"
        );
        assert!(
            text.ends_with(
                " bytes free: not unpacked (free some space, or give --cache-dir on a larger filesystem)"
            ),
            "{text}"
        );
        assert!(entries(dir.path()).is_empty());
        let staged = std::fs::read_dir(dir.path().join("unpacked")).unwrap().count();
        assert_eq!(staged, 0, "a staging file or lock was left");
    }
}
