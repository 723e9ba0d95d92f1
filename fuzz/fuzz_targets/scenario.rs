//! Scenario files: any text parses into a scenario or a positioned error, never a panic, and
//! the error renders (headline, source line, caret).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use r2s_harness::scenario;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match scenario::parse(&text, Path::new("fuzz.toml")) {
        Ok(scenario) => {
            assert!(!scenario.steps.is_empty());
            assert!(scenario::check_name(&scenario.name).is_ok());
            for step in &scenario.steps {
                let _ = step.describe();
            }
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(shown.starts_with("fuzz.toml"));
            assert!(!error.headline().contains('\n'));
        }
    }
});
