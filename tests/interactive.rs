//! End-to-end: a person debugging where it happened, at a real pseudo-terminal, on real QEMU.
//! `harness console --from login` puts them at a root shell restored from the snapshot cache;
//! `run --attach-on-failure` hands them the failed machine's console; a `pause` step and
//! `--pause-at` stop before a step. Each test types into the guest, sees its answer, leaves
//! with Ctrl-] and checks the run went on as it would have, with nothing left running.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::terminal::AtTerminal;
use r2s_tests::*;

/// A busybox boot and a priming run under TCG on a loaded machine, with room.
const LIMIT: Duration = Duration::from_secs(240);

/// The banner a console handed to a person starts with, and how they leave.
const HANDED_OVER: &str = "You are at its console; press Ctrl-] to leave and let the run go on.";

/// Types a command whose answer only the guest's shell can compute, and waits for the answer.
fn guest_answers(terminal: &mut AtTerminal, tag: &str) {
    terminal.type_keys(format!("echo {tag}-$((6*7))\r").as_bytes());
    terminal.expect(&format!("{tag}-42"), Duration::from_secs(30));
}

/// The run's temporary directory (`TMPDIR`), where QEMU's overlays go; checked empty of QEMU
/// processes once the run ends.
fn run_tmp(dir: &Path) -> std::path::PathBuf {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    tmp
}

fn assert_nothing_left_running(tmp: &Path, shown: &str) {
    assert_eq!(
        qemu_mentioning(tmp),
        Vec::<u32>::new(),
        "QEMU left behind; terminal:\n{shown}"
    );
}

/// `harness run --image FIXTURE --transcripts DIR --snapshot-cache DIR/snapshots OPTIONS SCENARIO`
/// at a terminal.
fn run_at_terminal(dir: &Path, scenario_body: &str, options: &[&str]) -> AtTerminal {
    let scenario = dir.join("debug-me.toml");
    std::fs::write(&scenario, format!("name = \"debug-me\"\n{scenario_body}")).unwrap();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let snapshots = dir.join("snapshots");
    let tmp = run_tmp(dir);
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
        OsStr::new("--snapshot-cache"),
        snapshots.as_os_str(),
    ];
    args.extend(options.iter().map(OsStr::new));
    args.push(scenario.as_os_str());
    AtTerminal::spawn(&args, &[("TMPDIR", tmp.as_os_str())])
}

/// `harness console --image FIXTURE --from STATE` at a terminal, with a snapshot cache, the
/// transcripts and `TMPDIR` under `dir`; returns it and the `TMPDIR`.
fn console_from(dir: &Path, state: &str) -> (AtTerminal, std::path::PathBuf) {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let snapshots = dir.join("snapshots");
    let transcripts = dir.join("transcripts");
    let tmp = run_tmp(dir);
    let terminal = AtTerminal::spawn(
        &[
            OsStr::new("console"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--from"),
            OsStr::new(state),
            OsStr::new("--snapshot-cache"),
            snapshots.as_os_str(),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
        ],
        &[("TMPDIR", tmp.as_os_str())],
    );
    (terminal, tmp)
}

#[test]
fn console_from_login_is_a_root_shell_of_the_image_thrown_away_on_leaving() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let transcripts = dir.path().join("transcripts");
    let before = sha256(&image);
    let (mut terminal, tmp) = console_from(dir.path(), "login");
    terminal.expect(HANDED_OVER, LIMIT);
    guest_answers(&mut terminal, "restored");
    terminal.type_keys(b"id -u\r");
    terminal.expect("\r\n0\r\n", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("left with Ctrl-]; the run goes on"), "{shown}");
    assert!(shown.contains("harness console: the machine is gone"), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
    assert_eq!(sha256(&image), before, "the image was modified");
    let log = std::fs::read_to_string(transcripts.join("console.log")).unwrap();
    assert!(log.contains("interactive session begins"), "{log}");
    assert!(log.contains("restored-42"), "{log}");
    assert!(
        log.contains("interactive session ends: left with Ctrl-]"),
        "{log}"
    );
}

#[test]
fn attach_on_failure_hands_over_the_failed_machine_and_the_verdict_stands() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"echo broken; false\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &["--attach-on-failure"]);
    terminal.expect("debug-me: step 1 failed: ", LIMIT);
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    // The failed machine is the one the scenario ran on: its shell still has the step's result.
    guest_answers(&mut terminal, "after-failure");
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  debug-me"), "{shown}");
    assert_nothing_left_running(&dir.path().join("tmp"), &shown);
    let log = std::fs::read_to_string(dir.path().join("debug-me.log")).unwrap();
    let begins = log
        .find("interactive session begins")
        .expect("interactive part marked");
    assert!(log.find("FAIL: ").unwrap() < begins, "{log}");
    assert!(log[begins..].contains("after-failure-42"), "{log}");
}

#[test]
fn attach_on_failure_without_a_terminal_is_refused_before_anything_boots() {
    let dir = temp_dir();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "name = \"s\"\nstart = \"login\"\n[[steps]]\nrun = \"true\"\n",
    )
    .unwrap();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            OsStr::new("--attach-on-failure"),
            scenario.as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains("--attach-on-failure needs a terminal (stdin and stdout)"),
        "{}",
        run.explain()
    );
    assert!(!dir.path().join("s.log").exists(), "a scenario ran");
}

#[test]
fn a_pause_step_hands_over_the_console_and_the_steps_after_it_see_what_was_typed() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\npause = true\n\
                [[steps]]\nrun = \"cat /tmp/typed-by-a-person\"\noutput = \"^hello$\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &[]);
    terminal.expect("debug-me: paused at step 1 (a pause step)", LIMIT);
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    terminal.type_keys(b"echo hello > /tmp/typed-by-a-person; echo written-$((6*7))\r");
    terminal.expect("written-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("PASS  debug-me"), "{shown}");
    assert_nothing_left_running(&dir.path().join("tmp"), &shown);
}

#[test]
fn pause_at_stops_before_the_step_named_only_in_the_scenario_named() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"touch /tmp/step-1-ran\"\n\
                [[steps]]\nrun = \"true\"\n";
    let mut terminal = run_at_terminal(
        dir.path(),
        body,
        &["--pause-at", "other:1", "--pause-at", "debug-me:2"],
    );
    terminal.expect("debug-me: paused before step 2 (--pause-at)", LIMIT);
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    // Step 1 ran before the pause; step 2 did not yet.
    terminal.type_keys(b"test -e /tmp/step-1-ran && echo step1-$((6*7))\r");
    terminal.expect("step1-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("PASS  debug-me"), "{shown}");
    assert!(!shown.contains("paused before step 1"), "{shown}");
}

#[test]
fn without_a_terminal_a_pause_step_is_noted_and_the_run_goes_on() {
    let dir = temp_dir();
    let scenario = dir.path().join("paused.toml");
    std::fs::write(
        &scenario,
        "name = \"paused\"\nstart = \"login\"\ntimeout = \"5m\"\n[[steps]]\npause = true\n[[steps]]\nrun = \"true\"\n",
    )
    .unwrap();
    let snapshots = dir.path().join("snapshots");
    let run = run_scenario_file_with(
        &fixture(r2s_images::DEFAULT_FIXTURE),
        &scenario,
        dir.path(),
        LIMIT,
        &["--snapshot-cache", snapshots.to_str().unwrap()],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("paused.log")).unwrap();
    assert!(
        log.contains("paused: paused at step 1 (a pause step): no terminal to hand the console to; going on"),
        "{log}"
    );
}

#[test]
fn keep_failed_saves_the_failed_machine_which_states_lists_and_console_reopens() {
    let dir = temp_dir();
    let scenario = dir.path().join("keeps.toml");
    std::fs::write(
        &scenario,
        "name = \"keeps\"\nstart = \"login\"\ntimeout = \"5m\"\n\
         [[steps]]\nrun = \"echo left-by-the-scenario > /tmp/at-failure\"\n[[steps]]\nrun = \"false\"\n",
    )
    .unwrap();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let snapshots = dir.path().join("snapshots");
    let cache = ["--snapshot-cache", snapshots.to_str().unwrap()];
    let mut options = vec!["--keep-failed"];
    options.extend(cache);
    let run = run_scenario_file_with(&image, &scenario, dir.path(), LIMIT, &options);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("keeps.log")).unwrap();
    assert!(
        log.contains("--keep-failed: the failed machine is kept as state failed-keeps"),
        "{log}"
    );

    let listed = run_harness(
        &[OsStr::new("states"), OsStr::new(cache[0]), OsStr::new(cache[1])],
        Duration::from_secs(30),
    );
    assert_eq!(listed.code(), Some(0), "{}", listed.explain());
    assert!(listed.stdout.contains("failed-keeps  "), "{}", listed.explain());
    assert!(
        listed
            .stdout
            .contains("scenario keeps: step 2: \"false\" exited with status 1"),
        "{}",
        listed.explain()
    );

    let tmp = run_tmp(dir.path());
    let mut terminal = AtTerminal::spawn(
        &[
            OsStr::new("console"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--from"),
            OsStr::new("failed-keeps"),
            OsStr::new(cache[0]),
            OsStr::new(cache[1]),
            OsStr::new("--transcripts"),
            dir.path().join("console").as_os_str(),
        ],
        &[("TMPDIR", tmp.as_os_str())],
    );
    terminal.expect("Press Ctrl-] to leave.", LIMIT);
    // The machine as the failure left it: the file its first step wrote is there.
    terminal.type_keys(b"cat /tmp/at-failure\r");
    terminal.expect("left-by-the-scenario", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
}

#[test]
fn console_from_uboot_is_at_u_boots_prompt() {
    let dir = temp_dir();
    let (mut terminal, tmp) = console_from(dir.path(), "uboot");
    terminal.expect(HANDED_OVER, LIMIT);
    // U-Boot's own command, answered by U-Boot: the machine is at its prompt, not booting.
    terminal.type_keys(b"echo uboot-says-hello\r");
    terminal.expect("\r\nuboot-says-hello", Duration::from_secs(30));
    terminal.type_keys(b"printenv bootcmd\r");
    terminal.expect("bootcmd=", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
}

#[test]
fn console_from_a_state_a_scenario_saves_is_that_state() {
    let dir = temp_dir();
    // The shipped `configure-state` saves `configured` after writing /tmp/r2s-state.
    let (mut terminal, tmp) = console_from(dir.path(), "configured");
    terminal.expect(HANDED_OVER, LIMIT);
    terminal.type_keys(b"cat /tmp/r2s-state\r");
    terminal.expect("\r\nr2s-configured", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
}

#[test]
fn console_of_a_zstd_image_unpacks_it_into_the_cache_and_reaches_login() {
    let dir = temp_dir();
    let image = compressed_fixture("zstd", "zst", dir.path());
    let cache = dir.path().join("cache");
    let transcripts = dir.path().join("transcripts");
    let tmp = run_tmp(dir.path());
    let mut terminal = AtTerminal::spawn(
        &[
            OsStr::new("console"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--cache-dir"),
            cache.as_os_str(),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
        ],
        &[("TMPDIR", tmp.as_os_str())],
    );
    terminal.expect(
        &format!(
            "{} is zstd-compressed: unpacked to {}",
            image.display(),
            cache.display()
        ),
        LIMIT,
    );
    terminal.expect("login: ", LIMIT);
    terminal.type_keys(b"root\r");
    terminal.expect("Password: ", Duration::from_secs(30));
    terminal.type_keys(format!("{}\r", r2s_images::ROOT_PASSWORD).as_bytes());
    terminal.expect("built-in shell", Duration::from_secs(30));
    guest_answers(&mut terminal, "unpacked");
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
    let unpacked: Vec<_> = std::fs::read_dir(cache.join("unpacked"))
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(unpacked.len(), 1, "{shown}");
    let log = std::fs::read_to_string(transcripts.join("console.log")).unwrap();
    assert!(log.contains("unpacked-42"), "{log}");
}
