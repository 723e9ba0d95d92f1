//! The flattened device tree reader (DTB files, U-Boot's FIT), on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::inspect::fdt;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = fdt::parse(data) {
        assert!(tree.total_size as usize <= data.len());
    }
});
