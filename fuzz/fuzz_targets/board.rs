//! Board profiles: any text parses into a board or a positioned error, never a panic, and the
//! error renders (headline, source line, caret).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use r2s_harness::board::Board;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = Board::parse(&text, Path::new("fuzz.toml")) {
        let shown = error.to_string();
        assert!(shown.starts_with("fuzz.toml"));
        assert!(!error.headline().contains('\n'));
    }
});
