//! Stage timings end to end: the harness writes them as JSON beside the transcript, writes a
//! combined baseline on request, and fails a run whose stage regressed against a baseline.
//!
//! The runs boot only as far as NixOS stage 1: a few seconds of QEMU each.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(120);

/// Boots to NixOS stage 1, so that the run has stages of a second or more.
fn run_to_stage1(dir: &Path, extra: &[&OsStr]) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let transcripts = dir.join("transcripts");
    let scenario = dir.join("to-stage-1.toml");
    std::fs::write(
        &scenario,
        "name = \"to-stage-1\"\ntimeout = \"2m\"\n[[steps]]\nexpect = \"<<< NixOS Stage 1 >>>\"\n",
    )
    .unwrap();
    run_image(&image, &transcripts, extra, &scenario, LIMIT)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn timings_are_written_and_a_baseline_gates_regressions() {
    let dir = temp_dir();
    let written = dir.path().join("baseline.json");
    // A baseline in which every stage took a minute: today's run is faster, so it passes.
    let slow = dir.path().join("slow.json");
    let minute = |name: &str| format!("{{\"name\": \"{name}\", \"start\": 0, \"duration\": 60}}");
    std::fs::write(
        &slow,
        format!(
            "{{\"scenario\": \"to-stage-1\", \"image\": \"x.img\", \"verdict\": \"pass\", \"total\": 240, \"stages\": [{}]}}",
            ["uboot", "menu", "kernel", "stage-1"].map(minute).join(", ")
        ),
    )
    .unwrap();
    let first = run_to_stage1(
        dir.path(),
        &[
            OsStr::new("--write-baseline"),
            written.as_os_str(),
            OsStr::new("--baseline"),
            slow.as_os_str(),
        ],
    );
    assert_eq!(first.code(), Some(0), "{}", first.explain());
    assert!(
        first.stdout.contains("0 stage regressions"),
        "{}",
        first.explain()
    );

    let timings = read_json(&dir.path().join("transcripts/to-stage-1.timings.json"));
    assert_eq!(timings["scenario"], "to-stage-1", "{timings}");
    assert_eq!(timings["verdict"], "pass", "{timings}");
    let stages = timings["stages"].as_array().expect("stages");
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["uboot", "menu", "kernel", "stage-1"], "{timings}");
    assert_eq!(stages[0]["start"], 0.0, "{timings}");
    let sum: f64 = stages.iter().map(|s| s["duration"].as_f64().unwrap()).sum();
    let total = timings["total"].as_f64().expect("total in seconds");
    assert!(
        (sum - total).abs() < 0.01,
        "stages do not add up to the total: {timings}"
    );
    // The kernel stage (Starting kernel ... to stage 1) is the one that lasts over the floor.
    let kernel = stages[2]["duration"].as_f64().unwrap();
    assert!(kernel > 0.6, "{timings}");
    let combined = read_json(&written);
    assert_eq!(combined["format"], "r2s-harness-baseline/1", "{combined}");
    assert_eq!(combined["scenarios"][0], timings);

    // A baseline in which the kernel took a tenth of a second: today's run is a regression.
    // Every other stage gets a minute, so that a loaded machine slowing this run's short
    // stages (the menu takes well under a second once its countdown is skipped) cannot add
    // regressions of its own.
    let fast = dir.path().join("fast.json");
    let mut doctored = combined.clone();
    for stage in doctored["scenarios"][0]["stages"].as_array_mut().unwrap() {
        stage["duration"] = 60.0.into();
    }
    doctored["scenarios"][0]["stages"][2]["duration"] = 0.1.into();
    std::fs::write(&fast, doctored.to_string()).unwrap();
    let second = run_to_stage1(dir.path(), &[OsStr::new("--baseline"), fast.as_os_str()]);
    assert_eq!(second.code(), Some(1), "{}", second.explain());
    assert!(second.stdout.contains("PASS  to-stage-1"), "{}", second.explain());
    let row = second
        .stdout
        .lines()
        .find(|l| l.contains("to-stage-1 kernel"))
        .unwrap_or_else(|| panic!("no comparison row\n{}", second.explain()));
    assert!(
        row.contains("0.10s ->") && row.ends_with("REGRESSION"),
        "{row}\n{}",
        second.explain()
    );
    assert!(
        second
            .stdout
            .contains("1 stage regression (limit +20% and +0.5s)"),
        "{}",
        second.explain()
    );
}

#[test]
fn an_unreadable_baseline_is_a_usage_error_before_anything_boots() {
    let dir = temp_dir();
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"hello\": 1}").unwrap();
    let run = run_to_stage1(dir.path(), &[OsStr::new("--baseline"), bogus.as_os_str()]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(run.stderr.contains("bogus.json"), "{}", run.explain());
    // Reported as not run (no report is left looking green), and never booted: no transcript.
    assert!(
        run.stdout.contains("ERROR  to-stage-1  (could not run: ") && run.stdout.contains("bogus.json"),
        "{}",
        run.explain()
    );
    assert!(
        !dir.path().join("transcripts/to-stage-1.raw").exists(),
        "a boot was started\n{}",
        run.explain()
    );
}
