//! Console matcher throughput: our streaming `Matcher` against expectrl 0.9 doing the same job.
//!
//! `cargo bench -p r2s-harness --bench matcher` — prints markdown tables for BENCHMARKS.md.
//!
//! The job: 50 patterns (40 literals, 10 regexes: fatal messages and stage markers) over a
//! console transcript delivered in 4 KiB reads, the way a serial port or a pty delivers it. The
//! transcript is a recorded boot from `tests/transcripts/*.raw` repeated to size, or, when none
//! is recorded, a synthetic NixOS boot log with ANSI colours and `\r\n` line ends.
//!
//! expectrl has no watch list; the closest it offers is `expect(Any(needles))` in a loop, each
//! call consuming the buffer up to a match. It is driven through its own `Session` over an
//! in-memory stream that yields one 4 KiB read per poll, so it works exactly as it would on a
//! console: after every read, `Session::expect` checks every needle against the whole unconsumed
//! buffer. It sees raw bytes (it strips no ANSI codes), which only makes its job easier. Its
//! regex needle recompiles the regex on every check and 0.9 gives no way to pass a compiled one,
//! so a second column runs the 40 literal needles alone to separate rescanning from compiling.
//!
//! Two inputs: the boot repeated (stage markers match every boot, so expectrl's buffer is
//! consumed often), and the boot's lines that match no pattern repeated (what the runner sees
//! while it watches fatal patterns between two steps; expectrl's buffer then only grows).
//!
//! `MATCHER_BENCH_OURS_ONLY=1` runs only our matcher, for a profiler.

mod workload;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use expectrl::{Any, Expect, Needle, Session};
use r2s_harness::console::{Matcher, Pattern};
use workload::*;

const OUR_RUNS: usize = 7;
/// Stop growing expectrl's input once a run is projected to take longer than this.
const EXPECTRL_BUDGET: Duration = Duration::from_secs(75);

fn main() {
    let (boot, source) = boot_transcript();
    println!("Transcript: {source}, {} bytes per boot", boot.len());
    println!("Machine: {}, {} cores", cpu_model(), cores());
    println!();

    let literals = literal_patterns();
    let regexes = regex_patterns();
    let patterns = patterns();

    let ten = repeat_to(&boot, 10 * MIB);
    if std::env::var_os("MATCHER_BENCH_OURS_ONLY").is_some() {
        // For profiling: only our matcher, long enough to sample.
        for _ in 0..20 {
            time_ours(&ten, &patterns);
        }
        return;
    }
    let (throughput, hits) = our_throughput(&ten, &patterns);
    println!("## Ours, 10 MiB, 50 patterns, median of {OUR_RUNS} runs");
    println!();
    println!("{throughput:.0} MB/s ({hits} watch events per run)");
    println!();

    println!("## Growing input, boot repeated: ours vs expectrl 0.9 (`expect(Any(needles))` loop)");
    println!();
    compare(
        &boot,
        &[MIB / 4, MIB / 2, MIB, 2 * MIB, 4 * MIB, 10 * MIB],
        &patterns,
        &literals,
        &regexes,
    );

    // Between two steps the runner watches fatal patterns over output that matches none of them
    // (a healthy boot's kernel log); expectrl then never consumes its buffer.
    let quiet = quiet_lines(&boot, &patterns);
    println!();
    println!(
        "## Growing input with no match (the boot's {} lines that match no pattern, repeated)",
        quiet.iter().filter(|&&b| b == b'\n').count()
    );
    println!();
    compare(
        &quiet,
        &[
            MIB / 16,
            MIB / 8,
            MIB / 4,
            MIB / 2,
            MIB,
            2 * MIB,
            4 * MIB,
            10 * MIB,
        ],
        &patterns,
        &literals,
        &regexes,
    );
}

/// Prints one table row per size: our time (median of three) and expectrl's (one run, while
/// the next size is projected to fit the time budget).
fn compare(
    unit: &[u8],
    sizes: &[usize],
    patterns: &[Pattern],
    literals: &[&'static str],
    regexes: &[&'static str],
) {
    println!("| input | ours, 50 patterns | expectrl, 40 `&str` + 10 `expectrl::Regex` needles | expectrl, 40 `&str` needles only |");
    println!("|---|---|---|---|");
    let mut full = Budget::default();
    let mut literal_only = Budget::default();
    for &size in sizes {
        let input = repeat_to(unit, size);
        let mut runs: Vec<(Duration, usize)> = (0..3).map(|_| time_ours(&input, patterns)).collect();
        runs.sort();
        let (ours, our_hits) = runs[1];
        let with_regexes = full.run(size, || time_expectrl(&input, shipped_needles(literals, regexes)));
        let literals_only = literal_only.run(size, || time_expectrl(&input, literal_needles(literals)));
        let cell = |result: Option<(Duration, usize)>| {
            result.map_or(
                "not run (projected past the time budget)".to_owned(),
                |(took, hits)| {
                    format!(
                        "{} in {:.2} s ({hits} matches; {:.0}x our time)",
                        rate(size, took),
                        took.as_secs_f64(),
                        took.as_secs_f64() / ours.as_secs_f64()
                    )
                },
            )
        };
        println!(
            "| {} | {} ({our_hits} events) | {} | {} |",
            mib(size),
            rate(size, ours),
            cell(with_regexes),
            cell(literals_only),
        );
    }
}

/// The complete lines of `boot` in which no pattern matches.
fn quiet_lines(boot: &[u8], patterns: &[Pattern]) -> Vec<u8> {
    let mut quiet = Vec::new();
    for line in boot.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            continue;
        }
        let mut matcher = Matcher::new(patterns.to_vec());
        if matcher.feed(line).is_empty() {
            quiet.extend_from_slice(line);
        }
    }
    quiet
}

/// Runs expectrl at growing sizes while the next run is projected to fit the time budget.
#[derive(Default)]
struct Budget {
    last: Option<(usize, Duration)>,
    exhausted: bool,
}

impl Budget {
    fn run(&mut self, size: usize, job: impl FnOnce() -> (Duration, usize)) -> Option<(Duration, usize)> {
        // Project quadratically, as the rescanning would cost.
        let fits = self.last.is_none_or(|(last_size, took)| {
            let factor = size as f64 / last_size as f64;
            took.mul_f64(factor * factor) < EXPECTRL_BUDGET
        });
        if self.exhausted || !fits {
            self.exhausted = true;
            return None;
        }
        let result = job();
        self.last = Some((size, result.0));
        Some(result)
    }
}

/// Median throughput of our matcher on `input`, in MB/s (10^6 bytes per second).
fn our_throughput(input: &[u8], patterns: &[Pattern]) -> (f64, usize) {
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..OUR_RUNS {
        let (took, h) = time_ours(input, patterns);
        times.push(took);
        hits = h;
    }
    times.sort();
    let median = times[times.len() / 2];
    (input.len() as f64 / median.as_secs_f64() / 1e6, hits)
}

/// Runs expectrl's expect loop over `input` until EOF; returns the time and matches found.
fn time_expectrl(input: &[u8], needles: Vec<Box<dyn Needle>>) -> (Duration, usize) {
    let stream = ConsoleReads {
        data: input.to_vec(),
        at: 0,
        chunk_left: CHUNK,
    };
    let mut session = Session::new((), stream).expect("in-memory session");
    session.set_expect_timeout(None);
    let any = Any::boxed(needles);
    let started = Instant::now();
    let mut hits = 0;
    while session.expect(&any).is_ok() {
        hits += 1;
    }
    (started.elapsed(), hits)
}

/// Bytes as a console delivers them: one read of up to 4 KiB per poll, then "would block".
struct ConsoleReads {
    data: Vec<u8>,
    at: usize,
    chunk_left: usize,
}

impl Read for ConsoleReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.data.len() {
            return Ok(0);
        }
        if self.chunk_left == 0 {
            self.chunk_left = CHUNK;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.chunk_left).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        self.chunk_left -= n;
        Ok(n)
    }
}

impl Write for ConsoleReads {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl expectrl::process::NonBlocking for ConsoleReads {
    fn set_blocking(&mut self, _on: bool) -> io::Result<()> {
        Ok(())
    }
}

/// 40 literal needles only: isolates expectrl's rescanning from its regex compilation.
fn literal_needles(literals: &[&'static str]) -> Vec<Box<dyn Needle>> {
    literals.iter().map(|l| Box::new(*l) as Box<dyn Needle>).collect()
}

/// expectrl's own regex needle compiles its regex on every check, and expectrl 0.9 does not
/// export the `Match` type a `Needle` must return, so a needle holding a compiled regex cannot
/// be written outside the crate.
fn shipped_needles(literals: &[&'static str], regexes: &[&'static str]) -> Vec<Box<dyn Needle>> {
    literals
        .iter()
        .map(|l| Box::new(*l) as Box<dyn Needle>)
        .chain(
            regexes
                .iter()
                .map(|r| Box::new(expectrl::Regex(format!("(?m){r}"))) as Box<dyn Needle>),
        )
        .collect()
}

fn rate(bytes: usize, took: Duration) -> String {
    let rate = bytes as f64 / took.as_secs_f64() / 1e6;
    if rate < 1.0 {
        format!("{rate:.3} MB/s")
    } else {
        format!("{rate:.1} MB/s")
    }
}

fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes as f64 / MIB as f64)
}
