//! Hashing an image for the snapshot key: BLAKE3 (what the harness uses) against SHA-256 (what
//! it used), side by side over the same data extents of the same file, alternating.
//!
//! `cargo bench -p r2s-harness --bench image_digest [IMAGE]` — default the large image of the
//! `cached_login` bench (`target/fixtures/bench-large/`), else the default fixture.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const ROUNDS: usize = 5;

fn main() {
    let image = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(default_image);
    let file = File::open(&image).expect("the image");
    let len = file.metadata().unwrap().len();
    let data = data_bytes(&file);
    println!(
        "Image: {} ({:.2} GiB of data); load average {}",
        image.display(),
        data as f64 / (1u64 << 30) as f64,
        load()
    );
    println!("| round | BLAKE3 (harness) | SHA-256 | ratio |");
    println!("|---|---|---|---|");
    let (mut blake, mut sha) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let b = timed(|| r2s_harness::snapshot::sparse_digest(&file, len).map(drop));
        let s = timed(|| sha256_extents(&file, len));
        println!(
            "| {round} | {:.2} s | {:.2} s | {:.2} |",
            b.as_secs_f64(),
            s.as_secs_f64(),
            b.as_secs_f64() / s.as_secs_f64()
        );
        blake.push(b);
        sha.push(s);
    }
    let (b, s) = (median(&mut blake), median(&mut sha));
    println!(
        "medians: BLAKE3 {:.2} s ({:.2} GB/s), SHA-256 {:.2} s ({:.2} GB/s): ratio {:.2}; load average after {}",
        b.as_secs_f64(),
        data as f64 / b.as_secs_f64() / 1e9,
        s.as_secs_f64(),
        data as f64 / s.as_secs_f64() / 1e9,
        b.as_secs_f64() / s.as_secs_f64(),
        load()
    );
}

fn default_image() -> PathBuf {
    let cache = r2s_images::default_cache_dir();
    let large = cache.join("bench-large/r2s-busybox-1700mib-data.img");
    if large.is_file() {
        return large;
    }
    r2s_images::build(r2s_images::DEFAULT_FIXTURE, &cache).expect("fixture")
}

fn timed(f: impl FnOnce() -> io::Result<()>) -> Duration {
    let start = Instant::now();
    f().expect("hashing");
    start.elapsed()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The bytes the file's blocks hold: its data extents, which both hashes read.
fn data_bytes(file: &File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map(|m| m.blocks() * 512).unwrap_or(0)
}

/// SHA-256 over the same reads as the harness's digest.
fn sha256_extents(file: &File, len: u64) -> io::Result<()> {
    let mut hash = Sha256::new();
    r2s_harness::snapshot::feed_data_extents(file, len, &mut |bytes| hash.update(bytes))?;
    std::hint::black_box(hash.finalize());
    Ok(())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
