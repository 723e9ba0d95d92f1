//! Files from a FAT filesystem in one partition of an image, read with the `fatfs` crate: no
//! mount, and no write (the image is opened read-only and the partition view refuses writes).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::budget::ReadBudget;
use super::error::ImageError;
use super::guard::guarded;
use super::limits;
use super::partition::Partition;

/// How much of a file one read of [`FatVolume::copy_to`] holds.
const COPY_CHUNK: usize = 1 << 20;

/// The bytes of one partition, as a seekable stream that cannot be written.
struct PartitionView {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
    budget: ReadBudget,
}

impl Read for PartitionView {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.budget
            .spend(n as u64)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let read = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl Seek for PartitionView {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos =
            pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the partition"))?;
        Ok(self.pos)
    }
}

impl Write for PartitionView {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        // fatfs only writes when asked to change something; this makes sure it never can.
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a fatfs call under [`guarded`] (fatfs 0.3 does unchecked arithmetic on on-disk
/// values), a panic becoming an error.
fn fat_call<R>(call: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
    guarded(call).unwrap_or_else(|panic| {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the FAT reader {panic}"),
        ))
    })
}

/// A FAT filesystem in one partition of an image, opened for reading.
pub struct FatVolume {
    image: PathBuf,
    partition: u32,
    fs: fatfs::FileSystem<PartitionView>,
    budget: ReadBudget,
}

impl fmt::Debug for FatVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FatVolume")
            .field("image", &self.image)
            .field("partition", &self.partition)
            .finish()
    }
}

impl FatVolume {
    /// Opens the FAT filesystem of a partition.
    pub fn open(image: &Path, partition: &Partition) -> Result<FatVolume, ImageError> {
        let file = ImageError::open_image(image)?;
        let budget = ReadBudget::new(limits::METADATA_READ);
        let view = PartitionView {
            file,
            start: partition.offset(),
            len: partition.size(),
            pos: 0,
            budget: budget.clone(),
        };
        let fs = fat_call(|| fatfs::FileSystem::new(view, fatfs::FsOptions::new())).map_err(|e| {
            ImageError::FatFilesystem {
                image: image.to_owned(),
                partition: partition.index,
                reason: e.to_string(),
            }
        })?;
        Ok(FatVolume {
            image: image.to_owned(),
            partition: partition.index,
            fs,
            budget,
        })
    }

    /// The partition's number.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// Runs one fatfs call that may read `data` bytes of file contents plus the metadata
    /// allowance.
    fn op<R>(&self, data: u64, call: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.budget.allow(limits::METADATA_READ.saturating_add(data));
        fat_call(call)
    }

    /// The size of a file and its first `len` bytes (fewer if the file is shorter); `path` is
    /// absolute within the partition and matched without regard to case, as FAT does.
    pub fn read_head(&self, path: &str, len: usize) -> Result<(u64, Vec<u8>), ImageError> {
        self.op(len.min(u32::MAX as usize) as u64, || {
            let mut file = self.fs.root_dir().open_file(path.trim_start_matches('/'))?;
            let size = file.seek(SeekFrom::End(0))?;
            file.seek(SeekFrom::Start(0))?;
            let mut head = Vec::with_capacity(len.min(size as usize));
            file.take(len as u64).read_to_end(&mut head)?;
            Ok((size, head))
        })
        .map_err(|e| self.file_error(path, e))
    }

    /// Streams a file of at most `limit` bytes (`what` it is, for the error) into `out`, in
    /// chunks of at most a MiB; returns its size.
    pub fn copy_to(
        &self,
        path: &str,
        limit: u64,
        what: &'static str,
        out: &mut dyn Write,
    ) -> Result<u64, ImageError> {
        // Opened once: its size is checked against `limit` before anything is read.
        let (mut file, size) = self
            .op(0, || {
                let mut file = self.fs.root_dir().open_file(path.trim_start_matches('/'))?;
                let size = file.seek(SeekFrom::End(0))?;
                file.seek(SeekFrom::Start(0))?;
                Ok((file, size))
            })
            .map_err(|e| self.file_error(path, e))?;
        limits::check_file_size(&self.image, self.partition, path, what, size, limit)?;
        let mut write_error = None;
        let copied = self
            .op(size, || {
                let mut chunk = vec![0u8; COPY_CHUNK.min(size as usize).max(1)];
                let mut copied = 0u64;
                loop {
                    let n = file.read(&mut chunk)?;
                    if n == 0 {
                        return Ok(copied);
                    }
                    copied += n as u64;
                    if copied > size {
                        return Err(io::Error::other("the file holds more bytes than its size says"));
                    }
                    if let Err(e) = out.write_all(&chunk[..n]) {
                        write_error = Some(e);
                        return Ok(copied);
                    }
                }
            })
            .map_err(|e| self.file_error(path, e))?;
        match write_error {
            Some(e) => Err(ImageError::ReadFile {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
                reason: format!("cannot write the copy: {e}"),
            }),
            None => Ok(copied),
        }
    }

    /// The contents of a file of at most `limit` bytes (`what` it is, for the error).
    pub fn read_limited(&self, path: &str, limit: u64, what: &'static str) -> Result<Vec<u8>, ImageError> {
        let mut bytes = Vec::new();
        self.copy_to(path, limit, what, &mut bytes)?;
        Ok(bytes)
    }

    /// The contents of a file of at most [`limits::BOOT_FILE`] bytes.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ImageError> {
        self.read_limited(path, limits::BOOT_FILE, "a file read whole")
    }

    /// Whether `path` is a regular file.
    pub fn is_file(&self, path: &str) -> Result<bool, ImageError> {
        match self.op(0, || {
            self.fs
                .root_dir()
                .open_file(path.trim_start_matches('/'))
                .map(drop)
        }) {
            Ok(()) => Ok(true),
            // fatfs says "Is a directory" / "Not a directory" with ErrorKind::Other.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::Other => Ok(false),
            Err(e) => Err(self.file_error(path, e)),
        }
    }

    /// Whether `path` exists, as a file or a directory.
    pub fn exists(&self, path: &str) -> Result<bool, ImageError> {
        let trimmed = path.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(true);
        }
        if self.is_file(path)? {
            return Ok(true);
        }
        match self.op(0, || self.fs.root_dir().open_dir(trimmed).map(drop)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::Other => Ok(false),
            Err(e) => Err(self.file_error(path, e)),
        }
    }

    fn file_error(&self, path: &str, error: io::Error) -> ImageError {
        if error.kind() == io::ErrorKind::NotFound {
            return ImageError::FileNotFound {
                image: self.image.clone(),
                partition: self.partition,
                path: path.to_owned(),
            };
        }
        ImageError::ReadFile {
            image: self.image.clone(),
            partition: self.partition,
            path: path.to_owned(),
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::image::PartitionType;

    /// A file holding 1 MiB of zeros, then a FAT filesystem with `files`, then 1 MiB of zeros;
    /// and the partition that covers the filesystem.
    fn image_with_fat(dir: &Path, files: &[(&str, &[u8])]) -> (PathBuf, Partition) {
        let mut fat = Cursor::new(vec![0u8; 8 << 20]);
        fatfs::format_volume(
            &mut fat,
            fatfs::FormatVolumeOptions::new().volume_label(*b"FIRMWARE   "),
        )
        .unwrap();
        fat.set_position(0);
        {
            let fs = fatfs::FileSystem::new(&mut fat, fatfs::FsOptions::new()).unwrap();
            for (path, bytes) in files {
                let (dirs, _) = path.rsplit_once('/').unwrap_or(("", path));
                let mut at = String::new();
                for part in dirs.split('/').filter(|p| !p.is_empty()) {
                    at = format!("{at}/{part}");
                    let _ = fs.root_dir().create_dir(at.trim_start_matches('/'));
                }
                let mut file = fs.root_dir().create_file(path).unwrap();
                file.write_all(bytes).unwrap();
            }
        }
        let mut bytes = vec![0u8; 1 << 20];
        bytes.extend(fat.into_inner());
        bytes.extend(vec![0u8; 1 << 20]);
        let image = dir.join("fat.img");
        std::fs::write(&image, bytes).unwrap();
        let partition = Partition {
            index: 1,
            first_lba: 2048,
            last_lba: 2048 + (8 << 20) / 512 - 1,
            sector_size: 512,
            kind: PartitionType::Mbr(0x0c),
            name: String::new(),
            bootable: false,
            partuuid: "1a2b3c4d-01".to_owned(),
        };
        (image, partition)
    }

    #[test]
    fn files_are_read_by_absolute_path_ignoring_case() {
        let dir = tempfile::tempdir().unwrap();
        let (image, partition) = image_with_fat(dir.path(), &[("extlinux/extlinux.conf", b"DEFAULT a\n")]);
        let volume = FatVolume::open(&image, &partition).unwrap();
        assert_eq!(volume.read("/extlinux/extlinux.conf").unwrap(), b"DEFAULT a\n");
        assert_eq!(volume.read("/EXTLINUX/Extlinux.conf").unwrap(), b"DEFAULT a\n");
        assert_eq!(
            volume.read_head("/extlinux/extlinux.conf", 3).unwrap(),
            (10, b"DEF".to_vec())
        );
        assert!(volume.is_file("/extlinux/extlinux.conf").unwrap());
        assert!(!volume.is_file("/extlinux").unwrap());
        assert!(volume.exists("/extlinux").unwrap());
        assert!(!volume.exists("/boot/extlinux/extlinux.conf").unwrap());
    }

    #[test]
    fn a_missing_file_is_file_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (image, partition) = image_with_fat(dir.path(), &[]);
        let volume = FatVolume::open(&image, &partition).unwrap();
        assert!(matches!(
            volume.read("/Image"),
            Err(ImageError::FileNotFound { partition: 1, ref path, .. }) if path == "/Image"
        ));
    }

    #[test]
    fn reading_leaves_the_image_unchanged_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (image, partition) = image_with_fat(dir.path(), &[("Image", b"kernel")]);
        let before = std::fs::read(&image).unwrap();
        {
            let volume = FatVolume::open(&image, &partition).unwrap();
            volume.read("/Image").unwrap();
        }
        assert_eq!(std::fs::read(&image).unwrap(), before);
        let zeros = Partition {
            first_lba: 0,
            last_lba: 2047,
            ..partition
        };
        let err = FatVolume::open(&image, &zeros).unwrap_err().to_string();
        assert!(
            err.contains(": partition 1: cannot read the FAT filesystem: "),
            "{err}"
        );
    }
}
