//! What the filesystem fuzz targets share: the input as an image file without a file on disk
//! (a memfd, reopened through /proc/self/fd, so a killed run leaves nothing behind), and a
//! partition covering all of it.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use r2s_harness::image::{Partition, PartitionType};

pub mod sparse;

/// The memfd that holds the current input, made once per process.
fn memfd() -> &'static Mutex<File> {
    static FILE: OnceLock<Mutex<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new fd.
        let fd = unsafe { libc::memfd_create(c"fuzz-image".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create failed");
        // SAFETY: the fd was just created and is owned by nothing else.
        Mutex::new(unsafe { File::from_raw_fd(fd) })
    })
}

/// Makes `data` the content of the image file and returns its path.
pub fn image_file(data: &[u8]) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut file = memfd().lock().expect("memfd lock");
    file.set_len(0).expect("truncate memfd");
    file.seek(SeekFrom::Start(0)).expect("seek memfd");
    file.write_all(data).expect("write memfd");
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Partition 1 over all whole 512-byte sectors of an input of `len` bytes; `None` below one
/// sector.
pub fn whole_partition(len: usize, kind: PartitionType) -> Option<Partition> {
    let sectors = len as u64 / 512;
    (sectors > 0).then(|| Partition {
        index: 1,
        first_lba: 0,
        last_lba: sectors - 1,
        sector_size: 512,
        kind,
        name: String::new(),
        bootable: true,
        partuuid: "00000000-01".to_owned(),
    })
}

/// Paths a boot check looks up, and some that are not there.
pub const PATHS: [&str; 7] = [
    "/",
    "/extlinux",
    "/extlinux/extlinux.conf",
    "/boot/extlinux/extlinux.conf",
    "/Image",
    "/rk3328-nanopi-r2s.dtb",
    "/nix/store/x/init",
];
