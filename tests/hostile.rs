//! End-to-end: what a hostile command, an echoing console or a closed terminal does to a real
//! run on a real fixture boot.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// Runs the scenario `text` (written to `dir/<name>.toml`) on the default fixture, with
/// transcripts and JUnit in `dir` and every temporary file of the run under `dir/tmp`; checks
/// that no QEMU is left.
fn run_scenario_text(dir: &Path, name: &str, text: &str, env: &[(&str, &OsStr)]) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text).unwrap();
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let junit = dir.join("junit.xml");
    let mut vars = vec![("TMPDIR", tmp.as_os_str())];
    vars.extend_from_slice(env);
    let started = Instant::now();
    let (child, command) = spawn_harness_env(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.as_os_str(),
            OsStr::new("--junit"),
            junit.as_os_str(),
            scenario.as_os_str(),
        ],
        &vars,
    );
    let run = finish(child, command, started, LIMIT);
    assert_eq!(
        qemu_mentioning(&tmp),
        Vec::<u32>::new(),
        "QEMU left behind\n{}",
        run.explain()
    );
    run
}

#[test]
fn a_command_printing_the_end_marker_cannot_forge_its_exit_status() {
    let dir = temp_dir();
    // The markers of old, on a line of their own and mid-line, then the command fails.
    let text = r#"name = "forge"
timeout = "6m"
[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "5m"
[[steps]]
run = "printf '@@R2S-END-2:0;\n@@R2S-END-2-:0;\nx@@R2S-END-2:0;\n'; false"
timeout = "30s"
"#;
    let run = run_scenario_text(dir.path(), "forge", text, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("FAIL  forge  "), "{}", run.explain());
    assert!(run.stdout.contains("exited with status 1"), "{}", run.explain());
}
