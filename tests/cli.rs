//! End-to-end: the command line's conventions on real runs of the busybox fixture under QEMU:
//! `--list` and `--filter`, `--retries` and flaky results, `--message-format json`, `-vv`
//! with a password set, the project file, shell completions, and a progress line that
//! honours `NO_COLOR`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use r2s_tests::{assert_no_qemu_left, finish, fixture, harness_bin, repo_root, scenario, temp_dir, Finished};

/// A boot to the login prompt takes under a minute; under load, much longer.
const LIMIT: Duration = Duration::from_secs(900);

fn write_scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("name = \"{name}\"\n{body}")).expect("writing the scenario");
    path
}

/// `harness ARGS` in `cwd` with `env`, `R2S_PASSWORD` and the variables in `unset` removed,
/// its temporary files under `dir/tmp`; fails the test if a QEMU of it is left running.
fn harness_in(cwd: &Path, dir: &Path, args: &[&OsStr], env: &[(&str, &OsStr)], unset: &[&str]) -> Finished {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("creating the run's temporary directory");
    let mut command = Command::new(harness_bin());
    command
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", &tmp)
        .env_remove("R2S_PASSWORD")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in unset {
        command.env_remove(name);
    }
    let line = format!("harness {args:?} in {}", cwd.display());
    let started = Instant::now();
    let child = command.spawn().unwrap_or_else(|e| panic!("spawning {line}: {e}"));
    let run = finish(child, line, started, LIMIT);
    assert_no_qemu_left(&tmp, &run);
    run
}

/// `harness run --image FIXTURE --transcripts DIR ARGS` with the fixture's password set.
fn run_fixture(dir: &Path, args: &[&str]) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let mut all: Vec<&OsStr> = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
    ];
    all.extend(args.iter().map(OsStr::new));
    harness_in(
        dir,
        dir,
        &all,
        &[("R2S_PASSWORD", OsStr::new(r2s_images::ROOT_PASSWORD))],
        &[],
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn run_list_prints_the_filtered_scenario_names_as_reports_name_them_without_booting() {
    let dir = temp_dir();
    let scenarios = repo_root().join("scenarios");
    // An image that does not exist: listing reads none.
    let missing = dir.path().join("no-such.img");
    let run = harness_in(
        dir.path(),
        dir.path(),
        &[
            OsStr::new("run"),
            OsStr::new("--list"),
            OsStr::new("--image"),
            missing.as_os_str(),
            OsStr::new("--filter"),
            OsStr::new("uboot-*"),
            OsStr::new("--filter"),
            OsStr::new("login"),
            scenarios.as_os_str(),
        ],
        &[],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(
        run.stdout,
        "boot-to-login\nlogin-and-run\nuboot-env\nuboot-shell\n",
        "{}",
        run.explain()
    );
}

#[test]
fn a_filter_runs_only_the_matching_scenarios() {
    let dir = temp_dir();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    write_scenario(&scenarios, "kept-host-step", "[[steps]]\nhost = \"true\"\n");
    write_scenario(&scenarios, "left-out", "[[steps]]\nhost = \"false\"\n");
    let run = run_fixture(dir.path(), &["--filter", "kept", scenarios.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  kept-host-step"), "{}", run.explain());
    assert!(!run.stdout.contains("left-out"), "{}", run.explain());
    assert!(run.stdout.ends_with("1 passed, 0 failed\n"), "{}", run.explain());
}

#[test]
fn quiet_leaves_only_the_results_and_the_totals_on_stdout() {
    let dir = temp_dir();
    let scenario = write_scenario(dir.path(), "quiet-host-step", "[[steps]]\nhost = \"true\"\n");
    let run = run_fixture(dir.path(), &["-q", scenario.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.explain());
    assert!(
        lines[0].starts_with("PASS  quiet-host-step  "),
        "{}",
        run.explain()
    );
    assert_eq!(lines[1], "1 passed, 0 failed");
}

/// `-q` shows errors only: a warning (`--pause-at` without a terminal to pause on) is said
/// without it and not with it.
#[test]
fn quiet_silences_warnings() {
    let dir = temp_dir();
    let scenario = write_scenario(dir.path(), "warned-host-step", "[[steps]]\nhost = \"true\"\n");
    let warning = "harness: warning: no terminal (stdin and stdout): --pause-at is ignored";
    let told = run_fixture(dir.path(), &["--pause-at", "1", scenario.to_str().unwrap()]);
    assert_eq!(told.code(), Some(0), "{}", told.explain());
    assert!(told.stderr.contains(warning), "{}", told.explain());
    let quiet = run_fixture(dir.path(), &["-q", "--pause-at", "1", scenario.to_str().unwrap()]);
    assert_eq!(quiet.code(), Some(0), "{}", quiet.explain());
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.explain());
}

/// Runs `scenario` with `--retries 2`; the run and its JUnit file.
fn run_with_two_retries(dir: &Path, scenario: &Path) -> (Finished, String) {
    let junit = dir.join("junit.xml");
    let run = run_fixture(
        dir,
        &[
            "--retries",
            "2",
            "--junit",
            junit.to_str().unwrap(),
            scenario.to_str().unwrap(),
        ],
    );
    let xml = read(&junit);
    (run, xml)
}

#[test]
fn a_scenario_passing_on_its_second_try_is_reported_flaky_with_its_failed_try_kept() {
    let dir = temp_dir();
    let marker = dir.path().join("tried");
    // Fails on the first try (which leaves the marker), passes on the second.
    let scenario = write_scenario(
        dir.path(),
        "flaky",
        &format!(
            "[[steps]]\nhost = \"test -e {m} || {{ touch {m}; exit 1; }}\"\n",
            m = marker.display()
        ),
    );
    let (run, xml) = run_with_two_retries(dir.path(), &scenario);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("TRY 1 FAIL  flaky"), "{}", run.explain());
    assert!(run.stdout.contains("FLAKY  flaky  "), "{}", run.explain());
    assert!(run.stdout.contains("passed on try 2"), "{}", run.explain());
    assert!(
        run.stdout.ends_with("1 passed, 0 failed, 1 flaky\n"),
        "{}",
        run.explain()
    );
    assert_eq!(xml.matches("<flakyFailure ").count(), 1, "{xml}");
    assert!(!xml.contains("<failure "), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(read(&dir.path().join("flaky.try1.log")).contains("host"));
    assert!(dir.path().join("flaky.log").is_file());
}

#[test]
fn a_scenario_failing_every_try_is_one_failure_with_a_rerun_failure_per_retry() {
    let dir = temp_dir();
    let scenario = write_scenario(dir.path(), "always-fails", "[[steps]]\nhost = \"exit 1\"\n");
    let (run, xml) = run_with_two_retries(dir.path(), &scenario);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("TRY 2 FAIL  always-fails"),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("failed all 3 tries"), "{}", run.explain());
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert_eq!(xml.matches("<rerunFailure ").count(), 2, "{xml}");
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn message_format_json_writes_one_versioned_object_per_event_and_the_text_report_to_stderr() {
    let dir = temp_dir();
    let boot = scenario("boot-to-login");
    let run = run_fixture(dir.path(), &["--message-format", "json", boot.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}\n{}", run.explain())))
        .collect();
    assert!(events.iter().all(|e| e["format"] == 1), "{}", run.stdout);
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"suite-started"), "{names:?}");
    assert_eq!(names.last(), Some(&"suite-finished"), "{names:?}");
    let started = names
        .iter()
        .position(|n| *n == "scenario-started")
        .expect("scenario-started");
    let finished = names
        .iter()
        .position(|n| *n == "scenario-finished")
        .expect("scenario-finished");
    assert!(started < finished, "{names:?}");
    let stages: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "stage-entered")
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages.first(), Some(&"uboot"), "{stages:?}");
    assert!(
        stages.contains(&"kernel") && stages.contains(&"login"),
        "{stages:?}"
    );
    // Every step that started finished, passed, in order.
    let steps = |kind: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["step"].as_u64().unwrap())
            .collect()
    };
    assert!(!steps("step-started").is_empty(), "{names:?}");
    assert_eq!(steps("step-started"), steps("step-finished"), "{names:?}");
    assert!(events
        .iter()
        .filter(|e| e["event"] == "step-finished")
        .all(|e| e["passed"] == true));
    assert_eq!(events[0]["scenarios"], 1);
    assert_eq!(events[finished]["result"]["verdict"], "pass");
    assert_eq!(events[finished]["result"]["name"], "boot-to-login");
    assert_eq!(events.last().unwrap()["passed"], 1);
    // The people's report is still there, on stderr.
    assert!(run.stderr.contains("PASS  boot-to-login"), "{}", run.explain());
    assert!(run.stderr.contains("1 passed, 0 failed"), "{}", run.explain());
}

#[test]
fn the_most_verbose_log_of_a_login_shows_qmp_traffic_and_never_the_password() {
    let dir = temp_dir();
    let cache = dir.path().join("snapshots");
    // A login-start scenario: a boot, a login typing the password, a QMP snapshot and restore.
    let shell = scenario("shell-checks");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let run = harness_in(
        dir.path(),
        dir.path(),
        &[
            OsStr::new("-vv"),
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            OsStr::new("--snapshot-cache"),
            cache.as_os_str(),
            OsStr::new("--message-format"),
            OsStr::new("json"),
            shell.as_os_str(),
        ],
        &[
            ("R2S_PASSWORD", OsStr::new(r2s_images::ROOT_PASSWORD)),
            ("RUST_LOG", OsStr::new("trace")),
        ],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stderr
            .contains("DEBUG qmp: -> {\"arguments\":{},\"execute\":\"qmp_capabilities\"}"),
        "{}",
        run.explain()
    );
    assert!(
        run.stderr.contains("DEBUG qmp: <- {\"return\""),
        "{}",
        run.explain()
    );
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(r2s_images::ROOT_PASSWORD),
            "the password reached {stream}\n{}",
            run.explain()
        );
    }
}

/// `RUST_LOG` alone, without `-v`, sets what the log shows: `timing=debug` shows the timing
/// marks of setting up a run and nothing else at debug level; without it they are off.
#[test]
fn rust_log_alone_shows_the_timing_marks_which_are_off_without_it() {
    let dir = temp_dir();
    let scenario = write_scenario(dir.path(), "host-step", "[[steps]]\nhost = \"true\"\n");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let args = [
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.path().as_os_str(),
        scenario.as_os_str(),
    ];
    let logged = harness_in(
        dir.path(),
        dir.path(),
        &args,
        &[("RUST_LOG", OsStr::new("timing=debug"))],
        &[],
    );
    assert_eq!(logged.code(), Some(0), "{}", logged.explain());
    for mark in [
        "main: arguments parsed",
        "scenario files read",
        "adapted for QEMU",
    ] {
        let line = format!("DEBUG timing: {mark} since_start=");
        assert!(logged.stderr.contains(&line), "{line}\n{}", logged.explain());
    }
    // Only the target asked for: the adaptation's own debug lines stay off.
    assert!(!logged.stderr.contains("DEBUG adapt"), "{}", logged.explain());
    let plain = harness_in(dir.path(), dir.path(), &args, &[], &[]);
    assert_eq!(plain.code(), Some(0), "{}", plain.explain());
    assert!(!plain.stderr.contains("timing"), "{}", plain.explain());
}

#[test]
fn the_project_file_gives_the_image_the_scenarios_and_where_the_password_is() {
    let dir = temp_dir();
    let project = dir.path().join("project");
    let deeper = project.join("src/deeper");
    std::fs::create_dir_all(&deeper).unwrap();
    std::fs::create_dir_all(project.join("checks")).unwrap();
    std::fs::copy(
        scenario("login-and-run"),
        project.join("checks/login-and-run.toml"),
    )
    .unwrap();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    std::fs::write(
        project.join("r2s-harness.toml"),
        format!(
            "image = {:?}\nscenarios = [\"checks\"]\n[passwords]\nR2S_PASSWORD = {{ env = \"PROJECT_ROOT_SECRET\" }}\n",
            image.display().to_string()
        ),
    )
    .unwrap();
    let transcripts = dir.path().join("transcripts");
    let run = harness_in(
        &deeper,
        dir.path(),
        &[
            OsStr::new("run"),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
        ],
        &[("PROJECT_ROOT_SECRET", OsStr::new(r2s_images::ROOT_PASSWORD))],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  login-and-run"), "{}", run.explain());
    assert!(run.stdout.ends_with("1 passed, 0 failed\n"), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "project file {}",
            project.join("r2s-harness.toml").display()
        )),
        "{}",
        run.explain()
    );
}

/// The firmware of `harness run` in `cwd` (holding a project file) with `args` and `env`, as
/// the error for a firmware that does not exist names it.
fn firmware_named(cwd: &Path, args: &[&OsStr], env: &[(&str, &OsStr)]) -> String {
    // Not the tester's own R2S_FIRMWARE: only the one `env` gives.
    let given = env.iter().any(|(name, _)| *name == "R2S_FIRMWARE");
    let unset: &[&str] = if given { &[] } else { &["R2S_FIRMWARE"] };
    let run = harness_in(cwd, cwd, args, env, unset);
    assert_ne!(run.code(), Some(0), "{}", run.explain());
    let said = format!("{}\n{}", run.stdout, run.stderr);
    let at = said
        .find("firmware /nowhere/")
        .unwrap_or_else(|| panic!("no firmware named: {}", run.explain()));
    said[at + "firmware ".len()..]
        .split([' ', ':'])
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_firmware_is_the_flag_then_r2s_firmware_then_the_project_file() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    std::fs::write(
        dir.path().join("r2s-harness.toml"),
        format!(
            "image = {:?}\nfirmware = \"/nowhere/project/u-boot.bin\"\n",
            image.display().to_string()
        ),
    )
    .unwrap();
    let uboot = scenario("uboot-shell");
    let run = [OsStr::new("run"), OsStr::new("--no-snapshots"), uboot.as_os_str()];
    let flagged = [
        OsStr::new("run"),
        OsStr::new("--no-snapshots"),
        OsStr::new("--firmware"),
        OsStr::new("/nowhere/flag/u-boot.bin"),
        uboot.as_os_str(),
    ];
    let env = [("R2S_FIRMWARE", OsStr::new("/nowhere/env/u-boot.bin"))];
    assert_eq!(
        firmware_named(dir.path(), &run, &[]),
        "/nowhere/project/u-boot.bin"
    );
    assert_eq!(firmware_named(dir.path(), &run, &env), "/nowhere/env/u-boot.bin");
    assert_eq!(
        firmware_named(dir.path(), &flagged, &env),
        "/nowhere/flag/u-boot.bin"
    );
}

#[test]
fn the_project_file_gives_the_board_and_the_flag_overrides_it() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let profile = dir.path().join("boards/missing.toml");
    std::fs::write(
        dir.path().join("r2s-harness.toml"),
        format!(
            "image = {:?}\nboard = {:?}\n",
            image.display().to_string(),
            profile.display().to_string()
        ),
    )
    .unwrap();
    let uboot = scenario("uboot-shell");
    let from_project = harness_in(
        dir.path(),
        dir.path(),
        &[OsStr::new("run"), uboot.as_os_str()],
        &[],
        &[],
    );
    assert_eq!(from_project.code(), Some(2), "{}", from_project.explain());
    assert!(
        from_project.stderr.contains(&profile.display().to_string()),
        "the project's board was loaded: {}",
        from_project.explain()
    );
    let args = [
        OsStr::new("run"),
        OsStr::new("--board"),
        OsStr::new("qemu-virt"),
        uboot.as_os_str(),
    ];
    let flagged = harness_in(dir.path(), dir.path(), &args, &[], &[]);
    assert_eq!(flagged.code(), Some(0), "{}", flagged.explain());
    assert!(
        flagged.stdout.contains("PASS  uboot-shell"),
        "{}",
        flagged.explain()
    );
}

#[test]
fn a_project_file_with_an_unknown_key_stops_the_run_naming_the_file_and_key() {
    let dir = temp_dir();
    let file = dir.path().join("r2s-harness.toml");
    std::fs::write(&file, "image = \"x.img\"\nscenario = [\"checks\"]\n").unwrap();
    let run = harness_in(dir.path(), dir.path(), &[OsStr::new("run")], &[], &[]);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.starts_with(&format!(
            "harness: {}:2:1: unknown field `scenario`, expected one of",
            file.display()
        )),
        "{}",
        run.explain()
    );
}

#[test]
fn the_bash_completion_script_loads_and_completes_the_subcommands() {
    let dir = temp_dir();
    let run = harness_in(
        dir.path(),
        dir.path(),
        &[OsStr::new("completions"), OsStr::new("bash")],
        &[],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let script = dir.path().join("harness.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // Loads the script and asks it for the words after `harness ru`, as bash does on Tab.
    let probe = format!(
        "source {}; COMP_WORDS=(harness ru); COMP_CWORD=1; COMP_LINE='harness ru'; COMP_POINT=10; \
         _harness harness ru harness; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash").arg("-c").arg(probe).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run\n");
}

#[test]
fn man_dir_writes_a_page_per_subcommand_naming_runs_flags() {
    let dir = temp_dir();
    let run = harness_in(
        dir.path(),
        dir.path(),
        &[OsStr::new("man"), OsStr::new("--dir"), dir.path().as_os_str()],
        &[],
        &[],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    for page in ["harness.1", "harness-run.1", "harness-completions.1"] {
        assert!(dir.path().join(page).is_file(), "{page} not written");
    }
    let roff = read(&dir.path().join("harness-run.1"));
    assert!(roff.contains("\\-\\-retries"), "{roff}");
    assert!(roff.contains("\\-\\-message\\-format"), "{roff}");
}

/// Everything written to the pseudo-terminal `pty` until every writer closed it (or `LIMIT`).
fn read_terminal(pty: r2s_tests::pty::Pty) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + LIMIT;
        let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
        while Instant::now() < deadline {
            match r2s_tests::pty::read_some(pty.master(), &mut buf) {
                Ok(0) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                // EIO: the last writer (the harness, its QEMU) closed the terminal.
                Err(_) => break,
            }
        }
        seen
    })
}

#[test]
fn with_no_color_on_a_terminal_progress_is_plain_lines_without_escapes_or_carriage_returns() {
    plain_progress_on_a_terminal(&[("NO_COLOR", "1"), ("TERM", "xterm-256color")]);
}

#[test]
fn with_term_dumb_on_a_terminal_progress_is_plain_lines_without_escapes_or_carriage_returns() {
    plain_progress_on_a_terminal(&[("TERM", "dumb")]);
}

/// `harness -v run` of boot-to-login with stderr a terminal and `env` (NO_COLOR not set unless
/// it says so): plain progress lines and an uncoloured log, no escape, no carriage return.
fn plain_progress_on_a_terminal(env: &[(&str, &str)]) {
    let dir = temp_dir();
    let pty = r2s_tests::pty::Pty::open(&dir.path().join("terminal")).expect("a pseudo-terminal");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(pty.slave())
        .expect("opening the terminal");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let mut command = Command::new(harness_bin());
    command
        .args([
            OsStr::new("-v"),
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
        ])
        .arg("--transcripts")
        .arg(dir.path())
        .arg(scenario("boot-to-login"))
        .env("TMPDIR", &tmp)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(terminal);
    let started = Instant::now();
    let child = command.spawn().expect("spawning the harness");
    // Only the harness holds the terminal now: its end is the reader's end.
    drop(command);
    let reader = read_terminal(pty);
    let run = finish(
        child,
        "harness -v run … boot-to-login (stderr a terminal)".into(),
        started,
        LIMIT,
    );
    assert_no_qemu_left(&tmp, &run);
    let shown = String::from_utf8_lossy(&reader.join().expect("reader")).into_owned();
    assert_eq!(
        run.code(),
        Some(0),
        "{}\n--- terminal ---\n{shown}",
        run.explain()
    );
    assert!(
        !shown.contains('\u{1b}'),
        "an escape sequence on the terminal:\n{shown:?}"
    );
    assert!(
        !shown.contains('\r'),
        "a carriage return on the terminal:\n{shown:?}"
    );
    assert!(
        shown.contains("\n  boot-to-login · kernel · "),
        "no plain progress line:\n{shown}"
    );
    // The log is there too, uncoloured.
    assert!(shown.contains(" DEBUG adapt: "), "no debug log:\n{shown}");
}

#[test]
fn every_command_taking_an_image_says_in_its_help_that_it_may_be_compressed() {
    let help = |command: &str| {
        let run = r2s_tests::run_harness(
            &[OsStr::new(command), OsStr::new("--help")],
            Duration::from_secs(30),
        );
        assert_eq!(run.code(), Some(0), "{}", run.explain());
        run.stdout
    };
    for command in ["run", "console", "inspect", "flash"] {
        let text = help(command);
        assert!(!text.contains("(raw)"), "{command}: {text}");
        assert!(text.contains(".zst"), "{command}: {text}");
    }
    let run = help("run");
    for said in [
        "a compressed image's unpacked copy",
        "its initrd without the disk drivers otherwise added to it",
        "the firmware's load addresses unmoved",
    ] {
        assert!(run.contains(said), "{said:?} not in: {run}");
    }
}
