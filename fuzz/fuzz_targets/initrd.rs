//! The initrd reader (cpio archives, stored or compressed, one after another), on arbitrary
//! bytes, under limits small enough for the fuzzer's memory cap and time per input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::initrd::{read_with, Limits};

const LIMITS: Limits = Limits {
    unpacked: 32 << 20,
    entries: 10_000,
    builtin_list: 1 << 20,
    root_file: 16 << 10,
    alias_lists: 1 << 20,
    segments: 16,
    names: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = read_with(data, LIMITS) {
        assert!(!index.segments.is_empty() && index.segments.len() <= LIMITS.segments);
        assert!(index.modules.len() <= LIMITS.entries);
        assert!(index.modules.iter().all(|m| !m.is_empty() && !m.contains('-')));
        let root_files = &index.root_files;
        for text in [&root_files.fstab, &root_files.store_fstab, &root_files.fs_info].into_iter().flatten() {
            // Invalid UTF-8 becomes U+FFFD (3 bytes for 1): a kept file is at most thrice its limit.
            assert!(text.len() as u64 <= 3 * LIMITS.root_file);
        }
    }
});
