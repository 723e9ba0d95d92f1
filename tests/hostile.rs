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

/// Entries of `dir` named like the harness's scratch directories.
fn scratch_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("r2s-"))
        .collect();
    names.sort();
    names
}

#[test]
fn sighup_mid_boot_kills_qemu_removes_the_scratch_dirs_and_exits_129() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let started = Instant::now();
    let (child, command) = spawn_harness_env(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--no-snapshots"),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            scenario("boot-to-login").as_os_str(),
        ],
        &[("TMPDIR", tmp.as_os_str())],
    );
    let pid = child.id();
    let raw = dir.path().join("boot-to-login.raw");
    let qemus = wait_for_qemu_output(pid, &raw, Duration::from_secs(60));
    assert_ne!(
        scratch_entries(&tmp),
        Vec::<String>::new(),
        "no scratch dir while QEMU runs"
    );
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    let run = finish(child, command, started, Duration::from_secs(30));
    assert_eq!(run.code(), Some(129), "{}", run.explain());
    for qemu in qemus {
        assert!(
            !process_alive(qemu),
            "QEMU {qemu} outlived the harness\n{}",
            run.explain()
        );
    }
    assert_eq!(scratch_entries(&tmp), Vec::<String>::new(), "{}", run.explain());
}

#[test]
fn a_scratch_dir_left_by_a_killed_run_is_swept_by_the_next_run() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let tmp = dir.path().join("tmp");
    // A PID beyond the kernel's largest: that process is certainly gone.
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stale = tmp.join(format!("r2s-{}-qemu-AbC123", pid_max + 1));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("overlay.qcow2"), vec![0u8; 4096]).unwrap();
    let live = tmp.join(format!("r2s-{}-qemu-XyZ789", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    let started = Instant::now();
    let (child, command) = spawn_harness_env(
        &[OsStr::new("inspect"), image.as_os_str()],
        &[("TMPDIR", tmp.as_os_str())],
    );
    // Whatever inspect finds: the sweep comes first, in every command.
    let run = finish(child, command, started, Duration::from_secs(60));
    assert!(
        !stale.exists(),
        "the stale scratch dir was kept\n{}",
        run.explain()
    );
    assert!(live.is_dir(), "a live process's scratch dir was removed");
}
