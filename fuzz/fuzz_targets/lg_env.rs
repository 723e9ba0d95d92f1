//! labgrid environment files (`--lg-env`): any text parses into the facts the harness takes or
//! an error that names the file, never a panic, and alias bombs stop at the node count.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use r2s_harness::scenario::lg_env::LgEnv;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(error) = LgEnv::parse(Path::new("fuzz.yaml"), &text) {
        assert!(error.to_string().starts_with("labgrid environment fuzz.yaml"));
    }
});
