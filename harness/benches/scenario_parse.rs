//! Parsing a scenario file grows linearly with its steps.
//!
//! `cargo bench -p r2s-harness --bench scenario_parse` — prints the parse time of files of
//! 1,000 to 100,000 steps, in `[[steps]]` tables and on one line (`steps = [ … ]`), and the
//! time per step, which stays flat when parsing is linear.

use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

/// A file of `steps` steps: literal expects, a `run` with its `output` regex every tenth step.
fn tables(steps: usize) -> String {
    let mut text = String::from("name = \"big\"\ntimeout = \"1h\"\n");
    for i in 0..steps {
        if i % 10 == 9 {
            text.push_str(&format!("\n[[steps]]\nrun = \"echo {i}\"\noutput = \"^{i}$\"\n"));
        } else {
            text.push_str(&format!("\n[[steps]]\nexpect = \"line {i}\"\ntimeout = \"5s\"\n"));
        }
    }
    text
}

/// The same steps as inline tables on one line.
fn one_line(steps: usize) -> String {
    let items: Vec<String> = (0..steps)
        .map(|i| format!("{{ expect = \"line {i}\" }}"))
        .collect();
    format!("name = \"big\"\nsteps = [{}]\n", items.join(", "))
}

fn median(text: &str) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            let scenario = r2s_harness::scenario::parse(text, Path::new("big.toml")).expect("valid");
            let took = started.elapsed();
            assert!(!scenario.steps.is_empty());
            took
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn main() {
    println!("| steps | layout | file size | parse time (median of {RUNS}) | per step |");
    println!("|---|---|---|---|---|");
    for steps in [1_000, 10_000, 100_000] {
        for (layout, text) in [("[[steps]] tables", tables(steps)), ("one line", one_line(steps))] {
            let took = median(&text);
            println!(
                "| {steps} | {layout} | {:.1} MiB | {:.3} s | {:.2} µs |",
                text.len() as f64 / 1024.0 / 1024.0,
                took.as_secs_f64(),
                took.as_secs_f64() * 1e6 / steps as f64
            );
        }
    }
}
