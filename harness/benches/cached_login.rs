//! A cached login start, per process, on a small and a real-size image (issue 26).
//!
//! `cargo bench -p r2s-harness --bench cached_login` — prints every run and the medians.
//!
//! The images: the default fixture (`r2s-busybox`, 46 MB of data), and the same fixture with a
//! file of pseudo-random data on its root filesystem making 1.7 GiB of data in all
//! (`r2s_images::build_with_root_data`; kept in `target/fixtures/bench-large/` and rebuilt when
//! the fixture's key changes).
//!
//! Part 1, per process: a scenario whose only step is `run = "true"` after `start = "login"`,
//! as a whole `harness run` process, each image with its own snapshot cache primed first (the
//! priming run, and the first run after it, which checks the new entry in full and records that
//! it did, are shown but not in the medians). Then `CACHED_LOGIN_ROUNDS` rounds (default 7),
//! small and large alternating. Each run is timed from spawn to exit; with `RUST_LOG=timing=debug`
//! the harness logs where its time went, and the steps' own time (from the start reached to the
//! steps done) is taken from those lines.
//!
//! Part 2, under `cargo nextest run`: ten copies of that scenario as the user-image tests of
//! `tests/scenarios.rs` (`R2S_TEST_IMAGE` = the large image, `R2S_TEST_SCENARIOS` = the ten,
//! an empty `R2S_TEST_SNAPSHOT_CACHE`: the priming boot is included), the whole `cargo nextest
//! run` timed, against raw QEMU booting the large image to its login prompt (the boot
//! benchmark's raw QEMU), alternating, `CACHED_LOGIN_NEXTEST_ROUNDS` rounds (default 3).
//! `CACHED_LOGIN_PART=1` or `=2` runs one part only.

mod raw_qemu;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use raw_qemu::load;

/// Data on the large image's root, on top of the fixture's: 1.7 GiB of data in all.
const ROOT_DATA: u64 = 1700 << 20;
const TESTS: usize = 10;

fn main() {
    let cache = r2s_images::default_cache_dir();
    let small = r2s_images::build(r2s_images::DEFAULT_FIXTURE, &cache).expect("fixture");
    let large = large_image(&small, &cache);
    println!("Machine: {} cores, load average {}", cores(), load());
    for image in [&small, &large] {
        println!(
            "Image: {} ({:.2} GiB of data)",
            image.display(),
            data_bytes(image) as f64 / (1u64 << 30) as f64
        );
    }
    let work = tempfile::tempdir().expect("tempdir");
    let scenario = work.path().join("login-true.toml");
    std::fs::write(&scenario, scenario_text("login-true")).unwrap();
    let part = std::env::var("CACHED_LOGIN_PART").unwrap_or_default();
    if part != "2" {
        per_process(&small, &large, &scenario, work.path());
    }
    if part != "1" {
        under_nextest(&large, work.path());
    }
    println!("load average after: {}", load());
}

fn scenario_text(name: &str) -> String {
    format!("name = \"{name}\"\nstart = \"login\"\ntimeout = \"10m\"\n\n[[steps]]\nrun = \"true\"\ntimeout = \"60s\"\n")
}

/// The large image: the default fixture with [`ROOT_DATA`] more on its root, rebuilt when the
/// fixture is.
fn large_image(small: &Path, cache: &Path) -> PathBuf {
    let dir = cache.join("bench-large");
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join(format!("r2s-busybox-{}mib-data.img", ROOT_DATA >> 20));
    let key_file = image.with_extension("img.key");
    let key = std::fs::read_to_string(small.with_extension("img.key")).unwrap_or_default();
    if image.is_file() && std::fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        return image;
    }
    println!("building {} …", image.display());
    let started = Instant::now();
    r2s_images::build_with_root_data(r2s_images::DEFAULT_FIXTURE, ROOT_DATA, cache, &image)
        .expect("large image");
    std::fs::write(&key_file, key).unwrap();
    println!("built in {:.1}s", secs(started.elapsed()));
    image
}

/// Bytes of data (not holes) in `image`.
fn data_bytes(image: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(image).map_or(0, |m| m.blocks() * 512)
}

/// One `harness run` of a cached login start: its wall-clock time and its steps' own time.
struct Run {
    total: Duration,
    steps: Duration,
}

fn per_process(small: &Path, large: &Path, scenario: &Path, work: &Path) {
    let rounds: usize = std::env::var("CACHED_LOGIN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let images = [("small", small), ("large", large)];
    let caches: Vec<PathBuf> = images
        .iter()
        .map(|(label, _)| work.join(format!("snapshots-{label}")))
        .collect();
    println!("\nPart 1: a cached login start per process (scenario: one `run = \"true\"` step)");
    for ((label, image), cache) in images.iter().zip(&caches) {
        let primed = harness_run(image, scenario, cache, work);
        // An entry's disks are recorded as checked once they are a second old.
        std::thread::sleep(Duration::from_millis(1100));
        let first = harness_run(image, scenario, cache, work);
        println!(
            "{label}: priming run {:.2}s; first run from the entry (checks it in full) {:.2}s",
            secs(primed.total),
            secs(first.total)
        );
    }
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    println!("| round | small: process | small: steps | large: process | large: steps | load |");
    println!("|---|---|---|---|---|---|");
    for round in 0..rounds {
        for (i, ((_, image), cache)) in images.iter().zip(&caches).enumerate() {
            runs[i].push(harness_run(image, scenario, cache, work));
        }
        let (s, l) = (&runs[0][round], &runs[1][round]);
        println!(
            "| {round} | {:.2}s | {:.2}s | {:.2}s | {:.2}s | {} |",
            secs(s.total),
            secs(s.steps),
            secs(l.total),
            secs(l.steps),
            load()
        );
    }
    let median = |runs: &[Run], f: fn(&Run) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let overhead = |r: &Run| r.total.saturating_sub(r.steps);
    let [small_runs, large_runs] = &runs;
    let (small_total, large_total) = (median(small_runs, |r| r.total), median(large_runs, |r| r.total));
    let (small_over, large_over) = (median(small_runs, overhead), median(large_runs, overhead));
    let mut diffs: Vec<f64> = small_runs
        .iter()
        .zip(large_runs)
        .map(|(s, l)| secs(l.total) - secs(s.total))
        .collect();
    diffs.sort_by(f64::total_cmp);
    println!(
        "medians: small {:.2}s (overhead beyond the steps {:.2}s), large {:.2}s (overhead {:.2}s)",
        secs(small_total),
        secs(small_over),
        secs(large_total),
        secs(large_over)
    );
    println!(
        "large − small, median of the rounds' differences: {:+.2}s (goal: at most 0.3 s); overhead goal: at most 0.5 s",
        diffs[diffs.len() / 2]
    );
}

/// The whole `harness run` process on `image` with the snapshot cache `cache`; it must pass.
fn harness_run(image: &Path, scenario: &Path, cache: &Path, work: &Path) -> Run {
    let transcripts = tempfile::tempdir_in(work).expect("tempdir");
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("run")
        .arg("--image")
        .arg(image)
        .arg("--transcripts")
        .arg(transcripts.path())
        .arg("--snapshot-cache")
        .arg(cache)
        .arg(scenario)
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .env("RUST_LOG", "timing=debug")
        .output()
        .expect("harness");
    let total = start.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "harness run failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    // `DEBUG timing: WHAT since_start=1.234s since_last=0.010s`: the last mark of `what`.
    let at = |what: &str| {
        let marked = format!("timing: {what} since_start=");
        stderr
            .lines()
            .filter_map(|l| l.split_once(&marked))
            .filter_map(|(_, after)| after.split('s').next()?.parse::<f64>().ok())
            .next_back()
            .unwrap_or(0.0)
    };
    let steps = at("steps done") - at("start reached (login or restored prompt checked)");
    Run {
        total,
        steps: Duration::from_secs_f64(steps.max(0.0)),
    }
}

fn under_nextest(large: &Path, work: &Path) {
    let rounds: usize = std::env::var("CACHED_LOGIN_NEXTEST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ten = work.join("ten");
    std::fs::create_dir_all(&ten).unwrap();
    for i in 1..=TESTS {
        let name = format!("login-true-{i:02}");
        std::fs::write(ten.join(format!("{name}.toml")), scenario_text(&name)).unwrap();
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let label = large
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".img")
        .to_owned();
    let nextest = |cache: &Path, extra: &[&str]| {
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
        command
            .current_dir(&workspace)
            .args(["nextest", "run", "-p", "r2s-tests", "--test", "scenarios"])
            .args(extra)
            .arg("-E")
            .arg(format!("test(/^qemu::{label}::/)"))
            .env("R2S_TEST_IMAGE", large)
            .env("R2S_TEST_SCENARIOS", &ten)
            .env("R2S_TEST_SNAPSHOT_CACHE", cache)
            .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD);
        command
    };
    // Built (and listed once) before anything is timed.
    let built = nextest(&work.join("unused"), &["--no-run"])
        .status()
        .expect("cargo nextest");
    assert!(built.success(), "cargo nextest run --no-run failed");
    let adapted = r2s_harness::adapt::adapt(large).expect("adapt");
    let shim = adapted
        .as_ref()
        .and_then(|a| a.shim.as_ref())
        .map(|s| s.disk().to_owned());
    println!("\nPart 2: {TESTS} login-start tests under `cargo nextest run` on the large image (empty snapshot cache: the priming boot included) against raw QEMU booting it to login");
    println!("| round | raw QEMU cold boot | cargo nextest run, {TESTS} tests | ratio | load |");
    println!("|---|---|---|---|---|");
    let (mut raws, mut runs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let raw = raw_qemu::raw_qemu(large, shim.as_deref());
        let cache = work.join(format!("nextest-snapshots-{round}"));
        let start = Instant::now();
        let output = nextest(&cache, &["--no-fail-fast"])
            .output()
            .expect("cargo nextest");
        let run = start.elapsed();
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cargo nextest run failed:\n{text}");
        let passed = text
            .lines()
            .rev()
            .find(|l| l.contains("Summary"))
            .unwrap_or("")
            .trim()
            .to_owned();
        assert!(
            passed.contains(&format!("{TESTS} tests run: {TESTS} passed")),
            "{passed}"
        );
        println!(
            "| {round} | {:.2}s | {:.2}s | {:.2} | {} |",
            secs(raw),
            secs(run),
            secs(run) / secs(raw),
            load()
        );
        raws.push(raw);
        runs.push(run);
    }
    raws.sort();
    runs.sort();
    let (raw, run) = (raws[raws.len() / 2], runs[runs.len() / 2]);
    println!(
        "medians: raw QEMU {:.2}s, nextest {:.2}s: ratio of medians {:.2} (goal: at most 1.2)",
        secs(raw),
        secs(run),
        secs(run) / secs(raw)
    );
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
