//! `harness console --from login` against a cold boot: how long a person waits for a root
//! shell of the image, from pressing Enter on the command to the shell's answer to a command
//! they typed. Goal: ≤ 5 s on the busybox fixture with the snapshot entry cached.
//!
//! `cargo bench -p r2s-harness --bench console_from` — builds the entry once (a first run,
//! not timed), then alternates, for `CONSOLE_BENCH_RUNS` rounds (default 7): the whole
//! `harness console --image … --from login` process until `echo` answers, Ctrl-] and its exit;
//! and raw QEMU booting the image to `login: ` (the wait without the harness, and before a
//! login). Prints each round and the medians.

mod raw_qemu;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raw_qemu::{load, median, raw_qemu};

/// What the shell prints for the command typed: computed by the guest, so only a live shell
/// answers it.
const ANSWER: &[u8] = b"ready-42";

fn main() {
    let runs: usize = std::env::var("CONSOLE_BENCH_RUNS")
        .ok()
        .map(|n| n.parse().expect("CONSOLE_BENCH_RUNS is a number"))
        .unwrap_or(7);
    let image =
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir()).expect("fixture");
    let harness = env!("CARGO_BIN_EXE_harness");
    let cache = tempfile::tempdir().expect("tempdir");
    let adapted = r2s_harness::adapt::adapt(&image).expect("adapt");
    let shim = adapted
        .as_ref()
        .and_then(|a| a.shim.as_ref())
        .map(|s| s.disk().to_owned());
    let first = console_from_login(harness, &image, cache.path());
    println!(
        "image {}; the first console --from login, building the entry: {:.2}s; load {}",
        image.display(),
        first.as_secs_f64(),
        load()
    );
    let (mut restored, mut cold) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let r = console_from_login(harness, &image, cache.path());
        let c = raw_qemu(&image, shim.as_deref());
        println!(
            "run {run}: console --from login to a shell's answer {:.2}s, raw QEMU cold boot to login: {:.2}s (load {})",
            r.as_secs_f64(),
            c.as_secs_f64(),
            load()
        );
        restored.push(r);
        cold.push(c);
    }
    let (r, c) = (median(&mut restored), median(&mut cold));
    println!(
        "median: console --from login {:.2}s (goal ≤ 5 s), raw QEMU cold boot {:.2}s, ratio {:.2}",
        r.as_secs_f64(),
        c.as_secs_f64(),
        r.as_secs_f64() / c.as_secs_f64()
    );
}

/// The whole `harness console --from login` process with the snapshot cache `cache`: from its
/// start to the shell's answer to `echo`; then Ctrl-] and its exit (not timed).
fn console_from_login(harness: &str, image: &Path, cache: &Path) -> Duration {
    let transcripts = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = Command::new(harness)
        .args(["console", "--from", "login", "--image"])
        .arg(image)
        .arg("--snapshot-cache")
        .arg(cache)
        .arg("--transcripts")
        .arg(transcripts.path())
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("harness console");
    let mut keys = child.stdin.take().unwrap();
    let mut shown = child.stdout.take().unwrap();
    // Typed at once, as a person types ahead: the keys wait until the console is handed over.
    keys.write_all(b"echo ready-$((6*7))\r").unwrap();
    keys.flush().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let elapsed = loop {
        let n = shown.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "the console ended before the shell answered:\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(ANSWER.len()).any(|w| w == ANSWER) {
            break started.elapsed();
        }
    };
    keys.write_all(&[0x1d]).unwrap();
    keys.flush().unwrap();
    let status = child.wait().expect("wait");
    assert!(status.success(), "harness console failed");
    elapsed
}
