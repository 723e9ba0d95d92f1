//! U-Boot's default environment found in a binary (a firmware file, a u-boot.itb), and the load
//! addresses read from it, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::uboot_env::{DefaultEnv, ENV_BLOCK};

fuzz_target!(|data: &[u8]| {
    if let Some(env) = DefaultEnv::find(data) {
        assert!(env.offset < data.len());
        assert!(!env.is_empty());
        for name in ["kernel_addr_r", "ramdisk_addr_r", "fdt_addr_r"] {
            let _ = env.address(name);
            if let Some(at) = env.value_at(name) {
                assert!(at.end <= data.len());
            }
        }
        // The block grows at most ENV_BLOCK either side of its anchor (plus one entry).
        assert!(env.len() <= data.len().min(4 * ENV_BLOCK));
    }
});
