//! Compressed images: the harness's unpacking against the zstd and xz tools, and the time to a
//! verdict from a `.img.zst` against the same raw image.
//!
//! `cargo bench -p r2s-harness --bench unpack` — the default fixture compressed as nixpkgs'
//! sd-image compresses it (`zstd -T0`, level 3) and with `xz -T0`, then rounds that alternate
//! the sides so that a noisy machine slows each alike:
//!
//! - zstd: `zstd -d --sparse` into a file; the harness's unpack (the C zstd library); the same
//!   unpack with the pure-Rust ruzstd decoder.
//! - xz: `xz -d` (sparse by default) into a file; the harness's unpack (liblzma); lzma-rs.
//! - the time to a verdict of `boot-to-login`: on the raw image, on the `.img.zst` with an empty
//!   cache (the first run: it unpacks), and on the `.img.zst` again (a later run: the cache).
//!
//! It prints each round and the ratios of medians. `UNPACK_BENCH_RUNS=N` sets the rounds
//! (default 5).

mod raw_qemu;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use r2s_harness::image::packed::{self, Packing, UnpackLimits};
use raw_qemu::{harness_run, load, median};

fn main() {
    let runs: usize = std::env::var("UNPACK_BENCH_RUNS")
        .ok()
        .map(|n| n.parse().expect("UNPACK_BENCH_RUNS is a number"))
        .unwrap_or(5);
    let image =
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir()).expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let zst = dir.path().join("image.img.zst");
    let xz = dir.path().join("image.img.xz");
    compress(&image, &zst, "zstd", &["-q", "-T0", "-c"]);
    compress(&image, &xz, "xz", &["-q", "-T0", "-c"]);
    println!(
        "image {} ({} bytes), zstd {} bytes, xz {} bytes; load average before {}",
        image.display(),
        std::fs::metadata(&image).unwrap().len(),
        std::fs::metadata(&zst).unwrap().len(),
        std::fs::metadata(&xz).unwrap().len(),
        load()
    );
    let out = dir.path().join("out.img");

    let (mut zstd_tool, mut zstd_c, mut zstd_rust) = (Vec::new(), Vec::new(), Vec::new());
    let (mut xz_tool, mut xz_c, mut xz_rust) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..runs {
        zstd_tool.push(timed(|| {
            tool(&["zstd", "-q", "-d", "--sparse", "-f", "-o"], &out, &zst)
        }));
        check_same(&image, &out);
        zstd_c.push(timed(|| harness_unpack(Packing::Zstd, &zst, &out)));
        check_same(&image, &out);
        zstd_rust.push(timed(|| {
            let source = std::io::BufReader::new(std::fs::File::open(&zst).unwrap());
            let decoder = ruzstd::decoding::StreamingDecoder::new(source).expect("a zstd frame");
            unpack_with(Packing::Zstd, decoder, &out)
        }));
        check_same(&image, &out);
        xz_tool.push(timed(|| {
            let decompressed = dir.path().join("image.img");
            tool(&["xz", "-q", "-d", "-k", "-f", "-T1"], Path::new(""), &xz);
            std::fs::rename(&decompressed, &out).unwrap();
        }));
        check_same(&image, &out);
        xz_c.push(timed(|| harness_unpack(Packing::Xz, &xz, &out)));
        check_same(&image, &out);
        xz_rust.push(timed(|| {
            let mut source = std::io::BufReader::new(std::fs::File::open(&xz).unwrap());
            let mut decoded = Vec::new();
            lzma_rs::xz_decompress(&mut source, &mut decoded).expect("xz");
            unpack_with(Packing::Xz, decoded.as_slice(), &out)
        }));
        println!(
            "round {round}: zstd -d --sparse {:.2}s, unpack (zstd C) {:.2}s, unpack (ruzstd) {:.2}s; \
             xz -d {:.2}s, unpack (liblzma) {:.2}s, lzma-rs + unpack {:.2}s (load {})",
            zstd_tool[round].as_secs_f64(),
            zstd_c[round].as_secs_f64(),
            zstd_rust[round].as_secs_f64(),
            xz_tool[round].as_secs_f64(),
            xz_c[round].as_secs_f64(),
            xz_rust[round].as_secs_f64(),
            load()
        );
    }
    let zstd_tool = median(&mut zstd_tool);
    let xz_tool = median(&mut xz_tool);
    println!(
        "speed against the tool (higher is faster; goal >= 0.8): unpack (zstd C) {:.2}, unpack (ruzstd) {:.2}; \
         unpack (liblzma) {:.2}, lzma-rs {:.2}",
        zstd_tool.as_secs_f64() / median(&mut zstd_c).as_secs_f64(),
        zstd_tool.as_secs_f64() / median(&mut zstd_rust).as_secs_f64(),
        xz_tool.as_secs_f64() / median(&mut xz_c).as_secs_f64(),
        xz_tool.as_secs_f64() / median(&mut xz_rust).as_secs_f64(),
    );

    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/boot-to-login.toml");
    let harness = env!("CARGO_BIN_EXE_harness");
    let (mut raw, mut first, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..runs {
        let cache = tempfile::tempdir().expect("tempdir");
        let cache_args = ["--cache-dir", cache.path().to_str().unwrap(), "--no-snapshots"];
        let raw_cache = tempfile::tempdir().expect("tempdir");
        let raw_args = [
            "--cache-dir",
            raw_cache.path().to_str().unwrap(),
            "--no-snapshots",
        ];
        raw.push(harness_run(harness, &image, &scenario, &raw_args));
        first.push(harness_run(harness, &zst, &scenario, &cache_args));
        later.push(harness_run(harness, &zst, &scenario, &cache_args));
        println!(
            "round {round}: raw image {:.2}s, .img.zst first run {:.2}s, .img.zst later run {:.2}s (load {})",
            raw[round].as_secs_f64(),
            first[round].as_secs_f64(),
            later[round].as_secs_f64(),
            load()
        );
    }
    let raw = median(&mut raw);
    let first = median(&mut first);
    let later = median(&mut later);
    println!(
        "first run {:.2}s against raw + 1.2 x zstd -d = {:.2}s (goal: at most); later run {:.3} of the raw run (goal <= 1.02)",
        first.as_secs_f64(),
        raw.as_secs_f64() + 1.2 * zstd_tool.as_secs_f64(),
        later.as_secs_f64() / raw.as_secs_f64()
    );
}

fn compress(image: &Path, out: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .arg(image)
        .output()
        .expect(program);
    assert!(output.status.success(), "{program} failed");
    std::fs::write(out, output.stdout).unwrap();
}

fn timed(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

/// Runs `argv` with `out` (when not empty) and then `input` as its last arguments.
fn tool(argv: &[&str], out: &Path, input: &Path) {
    let mut command = Command::new(argv[0]);
    command.args(&argv[1..]);
    if !out.as_os_str().is_empty() {
        command.arg(out);
    }
    let status = command.arg(input).status().expect(argv[0]);
    assert!(status.success(), "{argv:?} failed");
}

fn harness_unpack(packing: Packing, packed: &Path, out: &Path) {
    let source = std::fs::File::open(packed).unwrap();
    let mut file = std::fs::File::create(out).unwrap();
    packed::unpack(packing, source, &mut file, UnpackLimits::default()).expect("unpack");
}

fn unpack_with(packing: Packing, decoder: impl Read + Send, out: &Path) {
    let mut file = std::fs::File::create(out).unwrap();
    packed::unpack_decoded(packing, decoder, &mut file, UnpackLimits::default()).expect("unpack");
}

/// Fails the benchmark unless `out` holds the bytes of `image`, compared a MiB at a time.
fn check_same(image: &Path, out: &Path) {
    let (mut a, mut b) = (
        std::fs::File::open(image).unwrap(),
        std::fs::File::open(out).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = packed::read_full(&mut a, &mut x).unwrap();
        let m = packed::read_full(&mut b, &mut y).unwrap();
        assert_eq!(
            x[..n],
            y[..m],
            "{} differs from {}",
            out.display(),
            image.display()
        );
        if n == 0 {
            return;
        }
    }
}
