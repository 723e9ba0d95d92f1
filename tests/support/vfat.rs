//! Images with a FAT boot partition, as some R2S images have it: built from a fixture by
//! reformatting its NIXOS_BOOT in place.

use std::path::Path;

/// The bytes of one partition of a writable image file, for formatting a filesystem in place.
struct PartitionFile {
    file: std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl std::io::Read for PartitionFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = buf.len().min(self.len.saturating_sub(self.pos) as usize);
        let read = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += read as u64;
        Ok(read)
    }
}

impl std::io::Write for PartitionFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = buf.len().min(self.len.saturating_sub(self.pos) as usize);
        self.file.write_all_at(&buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for PartitionFile {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            std::io::SeekFrom::Start(n) => n,
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

/// The first-boot fixture with its NIXOS_BOOT reformatted as FAT32 holding the same files, as
/// some R2S images have it.
pub fn first_boot_with_vfat_boot(dir: &Path) -> std::path::PathBuf {
    use r2s_harness::image::{Ext4Volume, Table};
    use std::io::Write;
    let source = crate::fixture("r2s-first-boot");
    let image = dir.join("vfat-boot.img");
    let cp = std::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(&source)
        .arg(&image)
        .status()
        .unwrap();
    assert!(cp.success());
    let boot = Ext4Volume::open_index(&source, 1).unwrap();
    let files = [
        "/extlinux/extlinux.conf",
        "/Image",
        "/initrd",
        "/rk3328-nanopi-r2s.dtb",
    ]
    .map(|path| (path, boot.read(path).unwrap()));
    let table = Table::read(&image).unwrap();
    let p1 = table.partition(1).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut part = PartitionFile {
        file,
        start: p1.offset(),
        len: p1.size(),
        pos: 0,
    };
    // mke2fs's superblock at 1 KiB would otherwise survive the FAT boot sector.
    part.write_all(&[0u8; 64 << 10]).unwrap();
    part.pos = 0;
    fatfs::format_volume(
        &mut part,
        fatfs::FormatVolumeOptions::new().volume_label(*b"NIXOS_BOOT "),
    )
    .unwrap();
    part.pos = 0;
    let fs = fatfs::FileSystem::new(part, fatfs::FsOptions::new()).unwrap();
    fs.root_dir().create_dir("extlinux").unwrap();
    for (path, bytes) in &files {
        let mut file = fs.root_dir().create_file(path.trim_start_matches('/')).unwrap();
        file.write_all(bytes).unwrap();
    }
    fs.unmount().unwrap();
    image
}
