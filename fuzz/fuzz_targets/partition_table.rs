//! The GPT and MBR readers, on arbitrary image bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::Table;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = Table::read_from(Path::new("fuzz.img"), &data) {
        for partition in &table.partitions {
            // A table that reads must describe partitions inside the image.
            assert!(partition.byte_range().end <= table.image_len);
        }
        let _ = table.boot_candidates();
    }
});
