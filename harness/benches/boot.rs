//! Cold boot to the login prompt: the harness against raw QEMU running the image as it is
//! (the harness's arguments and disks, every countdown waited out).
//!
//! `cargo bench -p r2s-harness --bench boot` — prints each run and the ratios of medians: the
//! harness as it runs by default (countdowns skipped) and with `--real-time-boot`, each against
//! raw QEMU. Runs alternate (raw, harness, harness real-time, raw, …) so that a noisy machine
//! slows every side alike. `BOOT_BENCH_FIXTURE=debian-systemd` boots another fixture (built
//! first if it is not cached), `BOOT_BENCH_RUNS=N` sets the rounds (default 7) and
//! `BOOT_BENCH_REAL_TIME=0` leaves out the `--real-time-boot` side (printed as 0). Each round
//! also prints the CPU time of the raw and the default side, and how many cores that kept busy.

mod raw_qemu;

use std::path::Path;

use std::time::Duration;

use raw_qemu::{harness_run, load, median, raw_qemu, with_cpu};

fn main() {
    let fixture =
        std::env::var("BOOT_BENCH_FIXTURE").unwrap_or_else(|_| r2s_images::DEFAULT_FIXTURE.to_owned());
    let runs: usize = std::env::var("BOOT_BENCH_RUNS")
        .ok()
        .map(|n| n.parse().expect("BOOT_BENCH_RUNS is a number"))
        .unwrap_or(7);
    // A systemd boot takes minutes under TCG: BOOT_BENCH_REAL_TIME=0 leaves out the third side.
    let real_time_side = std::env::var("BOOT_BENCH_REAL_TIME").map_or(true, |v| v != "0");
    let image = r2s_images::build(&fixture, &r2s_images::default_cache_dir()).expect("fixture");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/boot-to-login.toml");
    let harness = env!("CARGO_BIN_EXE_harness");
    // Raw QEMU gets the disks the harness attaches: the image behind an overlay and, when the
    // image names the R2S console, the shim disk that adaptation builds (built here once, outside
    // the timing; the harness builds its own inside its run).
    let adapted = r2s_harness::adapt::adapt(&image).expect("adapt");
    let shim = adapted
        .as_ref()
        .and_then(|a| a.shim.as_ref())
        .map(|s| s.disk().to_owned());
    println!("image {}; load average before {}", image.display(), load());
    let (mut raw, mut skipped, mut real_time) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (r, r_cpu) = with_cpu(|| raw_qemu(&image, shim.as_deref()));
        let (s, s_cpu) = with_cpu(|| harness_run(harness, &image, &scenario, &[]));
        let t = if real_time_side {
            harness_run(harness, &image, &scenario, &["--real-time-boot"])
        } else {
            Duration::ZERO
        };
        println!(
            "run {run}: raw QEMU {:.2}s, harness {:.2}s, harness --real-time-boot {:.2}s (load {})",
            r.as_secs_f64(),
            s.as_secs_f64(),
            t.as_secs_f64(),
            load()
        );
        // The cores the emulated machine kept busy: a boot that keeps them busy throughout
        // has no wait left for the harness to skip.
        println!(
            "  CPU time: raw QEMU {:.1}s ({:.2} cores busy), harness and its QEMU {:.1}s ({:.2} cores busy)",
            r_cpu.as_secs_f64(),
            r_cpu.as_secs_f64() / r.as_secs_f64(),
            s_cpu.as_secs_f64(),
            s_cpu.as_secs_f64() / s.as_secs_f64()
        );
        raw.push(r);
        skipped.push(s);
        real_time.push(t);
    }
    let (r, s, t) = (median(&mut raw), median(&mut skipped), median(&mut real_time));
    println!(
        "median of {runs}: raw QEMU {:.2}s, harness {:.2}s, harness --real-time-boot {:.2}s",
        r.as_secs_f64(),
        s.as_secs_f64(),
        t.as_secs_f64()
    );
    println!(
        "ratio harness / raw QEMU {:.3} (goal <= 0.6); --real-time-boot / raw QEMU {:.3}",
        s.as_secs_f64() / r.as_secs_f64(),
        t.as_secs_f64() / r.as_secs_f64()
    );
    println!("load average after {}", load());
}
