//! The console matcher and ANSI stripper: arbitrary console bytes in arbitrary chunks, with
//! watch and expect patterns (realistic ones and arbitrary literals and regexes), expectations
//! installed and retained text discarded between chunks. Never a panic; the stripper's output
//! never depends on the chunking; the matcher's buffers stay within their documented bounds.
//!
//! Input: a few control bytes (patterns, chunking seed), then the console bytes. The seed
//! corpus is the recorded boots, each after eight zero bytes.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use r2s_harness::console::ansi::{strip, Stripper};
use r2s_harness::console::matcher::{RECENT_LINES, RETAINED_CAP, SHOWN_LINE_CAP};
use r2s_harness::console::{Matcher, Pattern};

/// Patterns the shipped scenarios and the runner use.
const KNOWN: [&str; 8] = [
    "login: ",
    "U-Boot 20",
    "Kernel panic - not syncing",
    "<<< NixOS Stage 1 >>>",
    "re:^[a-z0-9-]+ login: ",
    "re:Hit any key to stop autoboot: +\\d",
    "re:(?m)^=> $",
    "re:@@R2S-END-\\d+:(\\d+);",
];

fn pattern(u: &mut Unstructured<'_>) -> Result<Option<Pattern>> {
    let source: String = match u.int_in_range(0..=9u8)? {
        n @ 0..=7 => KNOWN[n as usize].to_owned(),
        8 => u.arbitrary::<String>()?.chars().take(16).collect(),
        _ => format!(
            "re:{}",
            u.arbitrary::<String>()?.chars().take(16).collect::<String>()
        ),
    };
    Ok(match source.strip_prefix("re:") {
        Some(regex) => Pattern::regex(regex).ok(),
        None => Some(Pattern::literal(source)),
    })
}

fn patterns(u: &mut Unstructured<'_>) -> Result<Vec<Pattern>> {
    let count = u.int_in_range(0..=3u8)?;
    let mut list = Vec::new();
    for _ in 0..count {
        list.extend(pattern(u)?);
    }
    Ok(list)
}

fn run(data: &[u8]) -> Result<()> {
    let control = &data[..data.len().min(8)];
    // Bounded, so each input stays fast (the recorded boots are 1–5 KiB each).
    let console = &data[control.len()..data.len().min(control.len() + 16 * 1024)];
    let mut u = Unstructured::new(control);
    let watches = patterns(&mut u)?;
    let expects = patterns(&mut u)?;
    let mut seed = u64::from(u.arbitrary::<u16>()?) | 1;
    let max_chunk = usize::from(u.int_in_range(1..=64u8)?);

    let mut matcher = Matcher::new(watches);
    let mut stripper = Stripper::new();
    let mut stripped = Vec::new();
    let mut rest = console;
    while !rest.is_empty() {
        // xorshift: chunk sizes and actions vary with the seed, not with more input bytes.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let size = (seed as usize % max_chunk + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        // Installing an expectation compiles its patterns, as each step does once: rarely.
        match (seed >> 32) % 64 {
            0 => {
                let _ = matcher.expect(&expects);
            }
            1 => matcher.discard_retained(),
            2 => matcher.clear_expect(),
            _ => {}
        }
        for _event in matcher.feed(chunk) {}
        stripper.strip_into(chunk, &mut stripped);
        let sizes = matcher.buffer_sizes();
        assert!(sizes.retained <= RETAINED_CAP);
        assert!(sizes.recent_lines <= RECENT_LINES);
    }
    assert_eq!(stripped, strip(console));
    for line in matcher.recent_lines() {
        // The cut adds the `…` mark (3 bytes) and lossy UTF-8 may widen invalid bytes.
        assert!(line.len() <= SHOWN_LINE_CAP * 3 + 3);
    }
    let _ = matcher.byte_stats();
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
