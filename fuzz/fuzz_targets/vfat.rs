//! The FAT reader behind `inspect`, on arbitrary partition bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::{FatVolume, PartitionType};
use r2s_harness_fuzz::{image_file, whole_partition, PATHS};

fuzz_target!(|data: &[u8]| {
    let Some(partition) = whole_partition(data.len(), PartitionType::Mbr(0x0c)) else {
        return;
    };
    let image = image_file(data);
    let Ok(volume) = FatVolume::open(&image, &partition) else {
        return;
    };
    for path in PATHS {
        let _ = volume.is_file(path);
        let _ = volume.exists(path);
        let _ = volume.read_head(path, 4096);
        let _ = volume.read_limited(path, 1 << 20, "a fuzzed file");
    }
});
