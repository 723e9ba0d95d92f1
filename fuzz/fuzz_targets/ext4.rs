//! The ext4 reader behind `inspect` and the QEMU shim, on arbitrary partition bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::{Ext4Volume, PartitionType};
use r2s_harness_fuzz::{image_file, whole_partition, PATHS};

fuzz_target!(|data: &[u8]| {
    let Some(partition) = whole_partition(data.len(), PartitionType::Mbr(0x83)) else {
        return;
    };
    let image = image_file(data);
    let Ok(volume) = Ext4Volume::open(&image, &partition) else {
        return;
    };
    let _ = volume.label();
    for path in PATHS {
        let _ = volume.is_file(path);
        let _ = volume.exists(path);
        let _ = volume.read_head(path, 4096);
        let _ = volume.read_limited(path, 1 << 20, "a fuzzed file");
        let _ = volume.list_dir(path);
        let _ = volume.read_link(path);
    }
});
