//! The embedded kernel configuration reader (IKCONFIG), on arbitrary kernel bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::ikconfig::{extract, KernelConfig};
use r2s_harness::image::limits;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = extract(data) {
        assert!(text.len() as u64 <= limits::KERNEL_CONFIG);
        let _ = KernelConfig::parse(&text);
    }
});
