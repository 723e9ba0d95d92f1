//! The extlinux.conf parser, on arbitrary text: what parses renders to text that parses again
//! into the same labels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let _ = config.default_label();
    let _ = config.menu_timeout_secs();
    let rendered = config.render();
    let again = Config::parse(&rendered)
        .unwrap_or_else(|e| panic!("rendered config does not parse: {e}\n{rendered}"));
    let names = |c: &Config| c.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&again), names(&config), "{rendered}");
});
