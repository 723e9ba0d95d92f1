//! FAT filesystem images made in memory with the `fatfs` crate (no mkfs.vfat, no mtools, no
//! mount), with fixed timestamps so the same files give the same bytes.

use std::io::{Cursor, Write};
use std::path::Path;

use crate::BuildError;

/// Every timestamp in the filesystem: 2025-08-17 00:00, the current generation's date.
#[derive(Debug)]
struct FixedTime;

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date {
            year: 2025,
            month: 8,
            day: 17,
        }
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: self.get_current_date(),
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

/// Makes a FAT filesystem of `size` bytes labelled `label` (at most 11 characters) with volume
/// ID `volume_id` in the file `out`, holding `files` (paths in the root directory, contents).
pub fn make(label: &str, volume_id: u32, size: u64, files: &[(&str, &[u8])], out: &Path) -> Result<(), BuildError> {
    let fail = |e: std::io::Error| BuildError::io("making a FAT filesystem in", out)(e);
    assert!(label.len() <= 11, "FAT labels have at most 11 characters");
    let mut padded = [b' '; 11];
    padded[..label.len()].copy_from_slice(label.as_bytes());
    let mut disk = Cursor::new(vec![0u8; usize::try_from(size).expect("fixture filesystems fit in memory")]);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .volume_label(padded)
            .volume_id(volume_id),
    )
    .map_err(fail)?;
    disk.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new().time_provider(&FIXED_TIME))
            .map_err(fail)?;
        for (name, bytes) in files {
            let mut file = fs.root_dir().create_file(name).map_err(fail)?;
            file.truncate().map_err(fail)?;
            file.write_all(bytes).map_err(fail)?;
        }
        fs.unmount().map_err(fail)?;
    }
    std::fs::write(out, disk.into_inner()).map_err(BuildError::io("writing", out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_holds_label_and_files_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let files: &[(&str, &[u8])] = &[("config.txt", b"hello\n")];
        make("FIRMWARE", 0x2178_694e, 30 << 20, files, &a).unwrap();
        make("FIRMWARE", 0x2178_694e, 30 << 20, files, &b).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        let fs = fatfs::FileSystem::new(Cursor::new(bytes), fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.volume_label(), "FIRMWARE");
        assert_eq!(fs.volume_id(), 0x2178_694e);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut fs.root_dir().open_file("config.txt").unwrap(), &mut text).unwrap();
        assert_eq!(text, "hello\n");
    }
}
