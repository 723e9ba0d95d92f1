//! Console matcher throughput against pexpect (Python), side by side in one run: the same
//! 10 MiB transcript (the recorded boots repeated) and the same 50 patterns as the `matcher`
//! bench.
//!
//! `cargo bench -p r2s-harness --bench matcher_pexpect` — needs `python3` with pexpect
//! (`apt-get install python3-pexpect`). Prints both throughputs and their ratio.
//!
//! pexpect runs `benches/pexpect_matcher.py`: an `expect_list` loop over the compiled patterns,
//! 4 KiB reads from the transcript file. Its time is measured inside Python around the loop
//! alone, so interpreter start-up and pattern compilation are not counted against it.

mod workload;

use std::process::Command;

use workload::*;

const OUR_RUNS: usize = 7;

fn main() {
    let (boot, source) = boot_transcript();
    let input = repeat_to(&boot, 10 * MIB);
    let patterns = patterns();
    println!("Transcript: {source}, repeated to {} bytes", input.len());
    println!("Machine: {}, {} cores", cpu_model(), cores());

    let dir = tempfile::tempdir().expect("tempdir");
    let transcript = dir.path().join("transcript.raw");
    std::fs::write(&transcript, &input).expect("write transcript");
    let spec = dir.path().join("patterns.json");
    let json = serde_json::json!({ "literals": literal_patterns(), "regexes": regex_patterns() });
    std::fs::write(&spec, json.to_string()).expect("write patterns");

    let mut runs: Vec<_> = (0..OUR_RUNS).map(|_| time_ours(&input, &patterns)).collect();
    runs.sort();
    let (ours, our_events) = runs[OUR_RUNS / 2];

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pexpect_matcher.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&transcript)
        .arg(&spec)
        .output()
        .expect("python3 (install python3-pexpect)");
    if !output.status.success() {
        eprintln!(
            "pexpect side failed ({}); is python3-pexpect installed (apt-get install python3-pexpect)?\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        std::process::exit(1);
    }
    let theirs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("pexpect JSON line");
    let their_secs = theirs["seconds"].as_f64().expect("seconds");
    let mb = input.len() as f64 / 1e6;
    println!();
    println!("| 10 MiB, 50 patterns | time | throughput | matches |");
    println!("|---|---|---|---|");
    println!(
        "| ours (median of {OUR_RUNS}) | {:.3} s | {:.0} MB/s | {our_events} watch events |",
        ours.as_secs_f64(),
        mb / ours.as_secs_f64()
    );
    println!(
        "| pexpect {} (Python {}, one run) | {:.3} s | {:.1} MB/s | {} expect matches |",
        theirs["pexpect"].as_str().unwrap_or("?"),
        theirs["python"].as_str().unwrap_or("?"),
        their_secs,
        mb / their_secs,
        theirs["matches"]
    );
    println!();
    println!(
        "ours is {:.0}x pexpect's throughput",
        their_secs / ours.as_secs_f64()
    );
}
