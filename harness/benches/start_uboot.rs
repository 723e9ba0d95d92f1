//! `start = "uboot"` against a cold boot: the same checks from U-Boot's prompt restored from a
//! snapshot, and from power-on with U-Boot stopped (or autoboot skipped) on the way.
//!
//! `cargo bench -p r2s-harness --bench start_uboot` — two pairs on the default fixture, each a
//! whole `harness run` process, alternating within each round:
//! - a menu scenario: `extlinux-menu` (power-on; autoboot skipped, generation 2 chosen at the
//!   menu, login, one command) against `menu-from-uboot` (`start = "uboot"`: the same steps
//!   from the restored prompt, `run bootcmd` typed first);
//! - U-Boot commands: `uboot-shell` (power-on, autoboot interrupted, three commands) against
//!   `uboot-env` (`start = "uboot"`, two commands).
//!
//! Each pair starts with an empty snapshot cache, filled before its rounds by one run of its
//! `start = "uboot"` scenario, whose time (the priming run included) is printed too.

mod raw_qemu;

use std::path::{Path, PathBuf};
use std::time::Duration;

use raw_qemu::{harness_run, load, median};

const RUNS: usize = 7;

fn main() {
    let image =
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir()).expect("fixture");
    let harness = env!("CARGO_BIN_EXE_harness");
    let shipped = |name: &str| -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"))
    };
    println!("image {}; load average before {}", image.display(), load());
    let pairs = [("extlinux-menu", "menu-from-uboot"), ("uboot-shell", "uboot-env")];
    for (cold, restored) in pairs {
        // An empty cache for each pair, so that its first run builds the entry.
        let cache = tempfile::tempdir().expect("tempdir");
        let cache_dir = cache.path().to_str().expect("UTF-8 temporary directory");
        let snapshots = ["--snapshot-cache", cache_dir];
        let first = harness_run(harness, &image, &shipped(restored), &snapshots);
        println!(
            "{restored}, empty cache (priming run included): {:.2}s",
            first.as_secs_f64()
        );
        let (mut cold_runs, mut restored_runs) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            let c = harness_run(harness, &image, &shipped(cold), &[]);
            let r = harness_run(harness, &image, &shipped(restored), &snapshots);
            println!(
                "run {run}: {cold} (power-on) {:.2}s, {restored} (start = \"uboot\") {:.2}s (load {})",
                c.as_secs_f64(),
                r.as_secs_f64(),
                load()
            );
            cold_runs.push(c);
            restored_runs.push(r);
        }
        let (c, r): (Duration, Duration) = (median(&mut cold_runs), median(&mut restored_runs));
        println!(
            "median of {RUNS}: {cold} {:.2}s, {restored} {:.2}s; ratio {:.3}",
            c.as_secs_f64(),
            r.as_secs_f64(),
            r.as_secs_f64() / c.as_secs_f64()
        );
    }
    println!("load average after {}", load());
}
