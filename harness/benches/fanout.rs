//! Snapshot fan-out: 10 `start = "login"` scenarios booted cold each against restored from one
//! login snapshot (the priming boot included), and one cold boot for scale.
//!
//! `cargo bench -p r2s-harness --bench fanout` — prints the wall-clock times and the ratios.
//! Every harness run is the whole `harness run` process on the default fixture, with the same
//! `--jobs` (default: the core count); the fan-out run starts from an empty snapshot cache, so
//! it pays for the priming boot. `FANOUT_BENCH_JOBS=N` sets `--jobs`. For scale, raw QEMU
//! boots the image as it is to its login prompt (median of 3), in the same run.

mod raw_qemu;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raw_qemu::load;

const SCENARIOS: usize = 10;

fn main() {
    let image =
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir()).expect("fixture");
    let harness = env!("CARGO_BIN_EXE_harness");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/shell-checks.toml");
    let template = std::fs::read_to_string(&shipped).expect("shell-checks.toml");
    let work = tempfile::tempdir().expect("tempdir");
    let ten = work.path().join("ten");
    let one = work.path().join("one");
    std::fs::create_dir_all(&ten).unwrap();
    std::fs::create_dir_all(&one).unwrap();
    for i in 1..=SCENARIOS {
        let renamed = template.replacen(
            "name = \"shell-checks\"",
            &format!("name = \"shell-checks-{i:02}\""),
            1,
        );
        assert_ne!(renamed, template, "shell-checks.toml has no name line to rename");
        std::fs::write(ten.join(format!("shell-checks-{i:02}.toml")), renamed).unwrap();
    }
    std::fs::copy(&shipped, one.join("shell-checks.toml")).unwrap();
    let jobs = std::env::var("FANOUT_BENCH_JOBS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string()
    });

    println!("Machine: {} cores, load average {}", cores(), load());
    println!("Image: {}; --jobs {jobs}", image.display());
    let adapted = r2s_harness::adapt::adapt(&image).expect("adapt");
    let shim = adapted
        .as_ref()
        .and_then(|a| a.shim.as_ref())
        .map(|s| s.disk().to_owned());
    let mut raw: Vec<Duration> = (0..3)
        .map(|_| raw_qemu::raw_qemu(&image, shim.as_deref()))
        .collect();
    raw.sort();
    let raw = raw[1];
    println!("raw QEMU cold boot to login (median of 3): {:.2}s", secs(raw));
    let cold_one = harness_run(harness, &image, &one, &jobs, None, work.path());
    println!(
        "one cold boot (1 scenario, --no-snapshots): {:.2}s",
        secs(cold_one)
    );
    let cold_each = harness_run(harness, &image, &ten, &jobs, None, work.path());
    println!(
        "{SCENARIOS} scenarios, cold each (--no-snapshots): {:.2}s",
        secs(cold_each)
    );
    let cache = work.path().join("snapshots");
    let fanout = harness_run(harness, &image, &ten, &jobs, Some(&cache), work.path());
    println!(
        "{SCENARIOS} scenarios, fan-out from an empty cache (priming boot included): {:.2}s",
        secs(fanout)
    );
    println!();
    println!("cold each / fan-out: {:.2}", secs(cold_each) / secs(fanout));
    println!(
        "fan-out / one cold boot: {:.2} (goal: at most 2)",
        secs(fanout) / secs(cold_one)
    );
    println!(
        "fan-out / raw QEMU cold boot: {:.2} (goal: at most 1.3)",
        secs(fanout) / secs(raw)
    );
    println!("load average after: {}", load());
}

/// The whole `harness run` process, from spawn to exit; it must pass.
fn harness_run(
    harness: &str,
    image: &Path,
    scenarios: &Path,
    jobs: &str,
    cache: Option<&Path>,
    work: &Path,
) -> Duration {
    let transcripts = tempfile::tempdir_in(work).expect("tempdir");
    let mut command = Command::new(harness);
    command
        .arg("run")
        .arg("--image")
        .arg(image)
        .arg("--transcripts")
        .arg(transcripts.path())
        .arg("--jobs")
        .arg(jobs)
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .stdout(Stdio::piped());
    match cache {
        Some(dir) => command.arg("--snapshot-cache").arg(dir),
        None => command.arg("--no-snapshots"),
    };
    command.arg(scenarios);
    let start = Instant::now();
    let output = command.output().expect("harness");
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "harness run failed:\n{stdout}");
    elapsed
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
