//! The unpacker of compressed disk images (`image::packed`) on arbitrary bytes: whatever the
//! magic bytes claim, the output stays within the disk's own partition table and the cap, and
//! a result says what was written.
#![no_main]

use std::fs::File;
use std::os::fd::FromRawFd;

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::packed::{detect, table_end, unpack, UnpackLimits};

const LIMITS: UnpackLimits = UnpackLimits {
    most: 16 << 20,
    slack: 1 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some(packing) = detect(data) else { return };
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new fd, owned
    // by the File from here on (closed when it drops: nothing is left behind).
    let fd = unsafe { libc::memfd_create(c"fuzz-unpacked".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    let mut out = unsafe { File::from_raw_fd(fd) };
    if let Ok(unpacked) = unpack(packing, data, &mut out, LIMITS) {
        assert!(unpacked.size <= LIMITS.most);
        assert!(unpacked.data <= unpacked.size);
        assert_eq!(out.metadata().unwrap().len(), unpacked.size);
        let mut start = vec![0u8; 34 * 512];
        let read = std::os::unix::fs::FileExt::read_at(&out, &mut start, 0).unwrap();
        let end = table_end(&start[..read]).expect("an unpacked disk has a partition table");
        assert!(unpacked.size >= end && unpacked.size <= end + LIMITS.slack);
    }
});
