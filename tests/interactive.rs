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
/// at a terminal, on the default fixture.
fn run_at_terminal(dir: &Path, scenario_body: &str, options: &[&str]) -> AtTerminal {
    run_image_at_terminal(r2s_images::DEFAULT_FIXTURE, dir, scenario_body, options)
}

/// [`run_at_terminal`] on the fixture `image`.
fn run_image_at_terminal(image: &str, dir: &Path, scenario_body: &str, options: &[&str]) -> AtTerminal {
    let scenario = dir.join("debug-me.toml");
    std::fs::write(&scenario, format!("name = \"debug-me\"\n{scenario_body}")).unwrap();
    let image = fixture(image);
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

/// `harness states` with the snapshot cache option `cache` (`--snapshot-cache DIR`).
fn states(cache: &[&str; 2]) -> Finished {
    run_harness(
        &[OsStr::new("states"), OsStr::new(cache[0]), OsStr::new(cache[1])],
        Duration::from_secs(30),
    )
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
fn keys_typed_while_console_from_starts_reach_the_restored_shell() {
    let dir = temp_dir();
    let (mut terminal, tmp) = console_from(dir.path(), "login");
    // Typed at once, as a person types while the machine is restored.
    terminal.type_keys(b"echo ahead-$((6*7))\r");
    terminal.expect(HANDED_OVER, LIMIT);
    terminal.expect("ahead-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert_nothing_left_running(&tmp, &shown);
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
fn time_at_a_pause_step_does_not_count_against_the_scenarios_timeout() {
    let dir = temp_dir();
    // The login entry built first, so that the scenario's own short timeout covers only the
    // restore, the pause and its step.
    let warm = dir.path().join("warm.toml");
    std::fs::write(
        &warm,
        "name = \"warm\"\nstart = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"true\"\n",
    )
    .unwrap();
    let snapshots = dir.path().join("snapshots");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let cache = ["--snapshot-cache", snapshots.to_str().unwrap()];
    let run = run_scenario_file_with(&image, &warm, dir.path(), LIMIT, &cache);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let body = "start = \"login\"\ntimeout = \"20s\"\n[[steps]]\npause = true\n\
                [[steps]]\nrun = \"echo after-the-pause\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &[]);
    terminal.expect(HANDED_OVER, LIMIT);
    // Longer than the whole scenario's limit.
    std::thread::sleep(Duration::from_secs(25));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("PASS  debug-me"), "{shown}");
}

#[test]
fn time_at_a_failed_machine_is_not_in_the_scenarios_reported_duration() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"false\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &["--attach-on-failure"]);
    terminal.expect(HANDED_OVER, LIMIT);
    std::thread::sleep(Duration::from_secs(10));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    let timings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("debug-me.timings.json")).unwrap()).unwrap();
    let total = timings["total"].as_f64().unwrap();
    assert!(total < 10.0, "the person's 10 s were counted: {timings}");
}

/// Runs `body` on `image` with `--attach-on-failure`, waits for the hand-over `banner` says
/// (the failed machine still there), leaves, and checks the verdict (FAIL, exit 1), that
/// nothing is left running, and that the transcript whose name starts with `log` marks the
/// interactive part.
fn attach_after(image: &str, body: &str, banner: &str, log: &str) -> String {
    attach_after_with(image, body, &[], banner, log)
}

/// [`attach_after`] with `options` added; returns the transcript.
fn attach_after_with(image: &str, body: &str, options: &[&str], banner: &str, log: &str) -> String {
    let dir = temp_dir();
    let mut all = vec!["--attach-on-failure"];
    all.extend(options);
    let mut terminal = run_image_at_terminal(image, dir.path(), body, &all);
    terminal.expect(banner, LIMIT);
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  debug-me"), "{shown}");
    assert!(shown.contains("left with Ctrl-]; the run goes on"), "{shown}");
    assert_nothing_left_running(&dir.path().join("tmp"), &shown);
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(log) && name.ends_with(".log")
        })
        .unwrap_or_else(|| panic!("no {log}*.log in {}", dir.path().display()));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("interactive session ends: left with Ctrl-]"),
        "{log}"
    );
    log
}

#[test]
fn attach_on_failure_hands_over_a_power_on_run_that_timed_out() {
    let _ = attach_after(
        r2s_images::DEFAULT_FIXTURE,
        "timeout = \"5m\"\n[[steps]]\nexpect = \"never printed by this image\"\ntimeout = \"10s\"\n",
        "debug-me: step 1 failed: timeout",
        "debug-me.",
    );
}

#[test]
fn attach_on_failure_hands_over_a_power_on_run_a_fatal_line_ended() {
    let _ = attach_after(
        "broken-panic",
        "timeout = \"5m\"\n[[steps]]\nexpect = \"login:\"\n",
        "debug-me: step 1 failed: fatal",
        "debug-me.",
    );
}

/// The transcript of the boot to the login snapshot a run's scenarios share, less its key.
const LOGIN_BOOT_LOG: &str = "login-snapshot-";

#[test]
fn attach_on_failure_hands_over_the_boot_to_a_login_start_that_timed_out() {
    // Too short for the boot to the login state.
    let _ = attach_after(
        r2s_images::DEFAULT_FIXTURE,
        "start = \"login\"\ntimeout = \"2s\"\n[[steps]]\nrun = \"true\"\n",
        "the boot to state login (for the snapshot of a start = \"login\"): reaching the start state failed: timeout",
        LOGIN_BOOT_LOG,
    );
}

#[test]
fn attach_on_failure_hands_over_the_boot_to_a_login_start_a_fatal_line_ended() {
    let log = attach_after_with(
        "broken-panic",
        "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"true\"\n",
        &["--keep-failed"],
        "the boot to state login (for the snapshot of a start = \"login\"): reaching the start state failed: fatal",
        LOGIN_BOOT_LOG,
    );
    // The shared boot's machine is not a scenario's to keep; the transcript says so.
    assert!(
        log.contains("--keep-failed: this machine is not kept (it is the snapshot cache's shared boot"),
        "{log}"
    );
}

#[test]
fn keys_typed_before_a_hand_over_are_not_typed_into_it() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"false\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &["--attach-on-failure"]);
    // Typed while the run boots, before anything was handed over.
    terminal.type_keys(b"echo typed-early-$((6*7))\r");
    terminal.expect(HANDED_OVER, LIMIT);
    guest_answers(&mut terminal, "typed-late");
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(!shown.contains("typed-early-42"), "{shown}");
}

#[test]
fn the_password_typed_or_shown_at_a_restored_console_is_in_no_transcript_file() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\npause = true\n";
    let mut terminal = run_at_terminal(dir.path(), body, &[]);
    terminal.expect(HANDED_OVER, LIMIT);
    let password = r2s_images::ROOT_PASSWORD;
    // One key at a time, as a person types.
    for key in format!("echo {password}-shown\r").bytes() {
        terminal.type_keys(&[key]);
        std::thread::sleep(Duration::from_millis(30));
    }
    // The terminal shows the console as the records do, the harness's secrets cut out.
    terminal.expect("\n[redacted]-shown", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    for file in ["debug-me.log", "debug-me.raw", "debug-me.cast"] {
        let text = String::from_utf8_lossy(&std::fs::read(dir.path().join(file)).unwrap()).into_owned();
        assert!(!text.contains(password), "{file} holds the password:\n{text}");
        assert!(text.contains("[redacted]-shown"), "{file}:\n{text}");
    }
}

#[test]
fn parallel_failures_are_handed_over_one_at_a_time_in_order_with_no_report_inside_a_session() {
    let dir = temp_dir();
    let later = dir.path().join("later.toml");
    std::fs::write(
        &later,
        "name = \"later\"\nstart = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"sleep 6; false\"\n",
    )
    .unwrap();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"false\"\n";
    let options = ["--attach-on-failure", "--jobs", "2", later.to_str().unwrap()];
    let mut terminal = run_at_terminal(dir.path(), body, &options);
    terminal.expect("debug-me: step 1 failed: ", LIMIT);
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    // `later` fails meanwhile, and waits for the terminal.
    std::thread::sleep(Duration::from_secs(15));
    guest_answers(&mut terminal, "first");
    terminal.type_keys(&[0x1d]);
    terminal.expect("later: step 1 failed: ", Duration::from_secs(30));
    terminal.expect(HANDED_OVER, Duration::from_secs(10));
    let second = terminal.shown().len();
    // Long enough for debug-me's machine to stop and its result to be reported.
    std::thread::sleep(Duration::from_secs(10));
    guest_answers(&mut terminal, "second");
    let inside = terminal.shown()[second..].to_owned();
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(
        !inside.contains("FAIL  debug-me"),
        "a result inside the session:\n{inside}"
    );
    let after = &shown[second + inside.len()..];
    assert!(
        after.contains("FAIL  debug-me") && after.contains("FAIL  later"),
        "{shown}"
    );
    assert_nothing_left_running(&dir.path().join("tmp"), &shown);
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
fn time_at_a_pause_counts_against_no_deadline_and_no_reported_duration() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\npause = true\n\
                [[steps]]\nrun = \"echo after-the-pause\"\ntimeout = \"5s\"\n";
    let mut terminal = run_at_terminal(dir.path(), body, &["--pause-at", "debug-me:2"]);
    // At the pause step, then before step 2, each time longer than step 2's limit.
    for _ in 0..2 {
        terminal.expect(HANDED_OVER, LIMIT);
        std::thread::sleep(Duration::from_secs(8));
        terminal.type_keys(&[0x1d]);
    }
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("PASS  debug-me"), "{shown}");
    let timings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("debug-me.timings.json")).unwrap()).unwrap();
    let total = timings["total"].as_f64().unwrap();
    assert!(total < 8.0, "the person's 16 s were counted: {timings}");
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
fn pause_at_a_scenario_the_run_does_not_have_or_a_step_past_its_last_is_warned_of() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"true\"\n";
    let options = ["--pause-at", "no-such-scenario:1", "--pause-at", "debug-me:2"];
    let terminal = run_at_terminal(dir.path(), body, &options);
    let (status, shown) = terminal.wait(LIMIT);
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(
            "warning: --pause-at no-such-scenario:1: no scenario of this run is named \"no-such-scenario\"; it never pauses"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            "warning: --pause-at debug-me:2: step 2 is past the last step (1 at most); it never pauses"
        ),
        "{shown}"
    );
    assert!(!shown.contains(HANDED_OVER), "{shown}");
}

#[test]
fn pause_at_does_not_pause_the_run_that_builds_a_saved_state() {
    let dir = temp_dir();
    let body = "start = \"login\"\ntimeout = \"5m\"\n[[steps]]\nrun = \"true\"\n\
                [[steps]]\nsave_state = \"checked\"\n[[steps]]\nrun = \"true\"\n";
    let terminal = run_at_terminal(dir.path(), body, &["--pause-at", "debug-me:1"]);
    let (status, shown) = terminal.wait(LIMIT);
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("warning: --pause-at debug-me:1: with a snapshot cache, steps 1 to 2 of debug-me run only while its state \"checked\" is built"),
        "{shown}"
    );
    assert!(!shown.contains(HANDED_OVER), "{shown}");
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
        &["--snapshot-cache", snapshots.to_str().unwrap(), "--pause-at", "2"],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stderr
            .contains("warning: no terminal (stdin and stdout): the pause step of paused (step 1, "),
        "{}",
        run.explain()
    );
    assert!(
        run.stderr
            .contains("warning: no terminal (stdin and stdout): --pause-at is ignored"),
        "{}",
        run.explain()
    );
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

    let listed = states(&cache);
    assert_eq!(listed.code(), Some(0), "{}", listed.explain());
    assert!(listed.stdout.contains("failed-keeps  "), "{}", listed.explain());
    assert!(
        listed
            .stdout
            .contains("scenario keeps: step 2: \"false\" exited with status 1"),
        "{}",
        listed.explain()
    );

    // The same snapshot cache, DIR/snapshots.
    let (mut terminal, tmp) = console_from(dir.path(), "failed-keeps");
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
fn a_kept_machine_of_a_network_scenario_reopens_with_its_nics_and_the_oldest_kept_is_evicted() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let snapshots = dir.path().join("snapshots");
    let cache = ["--snapshot-cache", snapshots.to_str().unwrap()];
    let keep = ["--keep-failed", "--keep-failed-max", "1", cache[0], cache[1]];
    let fails = |name: &str, network: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!("name = \"{name}\"\nstart = \"login\"\ntimeout = \"5m\"\n{network}[[steps]]\nrun = \"false\"\n"),
        )
        .unwrap();
        let run = run_scenario_file_with(&image, &path, dir.path(), LIMIT, &keep);
        assert_eq!(run.code(), Some(1), "{}", run.explain());
    };
    fails("plain-keeps", "");
    fails("net-keeps", "[network]\nforward = [\"tcp:22\"]\n");
    let log = std::fs::read_to_string(dir.path().join("net-keeps.log")).unwrap();
    assert!(
        log.contains("--keep-failed: the oldest kept states were removed (failed-plain-keeps), 1 are kept"),
        "{log}"
    );
    let listed = states(&cache);
    assert!(
        listed.stdout.contains("failed-net-keeps  "),
        "{}",
        listed.explain()
    );
    assert!(
        !listed.stdout.contains("failed-plain-keeps"),
        "{}",
        listed.explain()
    );

    // The same snapshot cache, DIR/snapshots.
    let (mut terminal, tmp) = console_from(dir.path(), "failed-net-keeps");
    terminal.expect("network of the kept machine: ", LIMIT);
    terminal.expect("PORT_TCP_22=", Duration::from_secs(5));
    terminal.expect("Press Ctrl-] to leave.", LIMIT);
    guest_answers(&mut terminal, "kept-with-nics");
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
