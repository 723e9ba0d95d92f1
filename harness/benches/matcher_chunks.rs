//! The matcher's throughput by read size: 10 MiB of recorded boots, the 50 patterns of the
//! matcher benchmark, fed in reads of 4 KiB (a pty's), 16 KiB (what a scenario's session
//! reads at most) and larger.
//!
//! `cargo bench -p r2s-harness --bench matcher_chunks` — under a minute; median of 7 runs each.
//! Read sizes in KiB given after `--` (`-- 4` to profile 4 KiB reads alone) replace the four;
//! a size ending in `B` is in bytes (`-- 64B`: the small reads a UART's trickle makes).
//! `MATCHER_BENCH_RUNS=N` runs each size N times instead: under
//! `valgrind --tool=cachegrind`, the counts of a run with N = 3 less those with N = 1 are two
//! runs' instructions, which no other load on the machine changes.

mod workload;

use workload::*;

/// Runs per read size, unless `MATCHER_BENCH_RUNS` says otherwise.
const RUNS: usize = 7;

fn main() {
    let runs: usize = match std::env::var("MATCHER_BENCH_RUNS") {
        Ok(runs) => runs.parse().expect("MATCHER_BENCH_RUNS is a number of runs"),
        Err(_) => RUNS,
    };
    assert!(runs > 0, "MATCHER_BENCH_RUNS must be at least 1");
    let (boot, source) = boot_transcript();
    let ten = repeat_to(&boot, 10 * MIB);
    let patterns = patterns();
    println!("Transcript: {source}; 10 MiB; 50 patterns");
    println!(
        "Machine: {}, {} cores, load average {}",
        cpu_model(),
        cores(),
        load()
    );
    println!();
    println!("| read size | MB/s | watch events |");
    println!("|---|---|---|");
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| match arg.strip_suffix('B') {
            Some(bytes) => bytes.parse::<usize>().ok(),
            None => arg.parse::<usize>().ok().map(|kib| kib << 10),
        })
        .filter(|&size| size > 0)
        .collect();
    if sizes.is_empty() {
        sizes = vec![4 << 10, 16 << 10, 64 << 10, 256 << 10];
    }
    for chunk in sizes {
        let mut timed: Vec<_> = (0..runs).map(|_| time_ours_in(&ten, &patterns, chunk)).collect();
        timed.sort();
        let (median, hits) = timed[runs / 2];
        let size = if chunk % 1024 == 0 {
            format!("{} KiB", chunk >> 10)
        } else {
            format!("{chunk} B")
        };
        println!(
            "| {size} | {:.0} | {hits} |",
            ten.len() as f64 / median.as_secs_f64() / 1e6
        );
    }
    println!();
    println!("load average after: {}", load());
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}
