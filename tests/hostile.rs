//! End-to-end: what a hostile command, an echoing console or a closed terminal does to a real
//! run on a real fixture boot.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// A scenario `name` that logs in as root with the fixture's password, then runs `steps`.
fn logged_in(name: &str, steps: &str) -> String {
    format!(
        "name = \"{name}\"\ntimeout = \"6m\"\n[[steps]]\n\
         login = {{ user = \"root\", password_env = \"R2S_PASSWORD\" }}\ntimeout = \"5m\"\n{steps}"
    )
}

/// Starts `harness run` on the default fixture with `args` after the image, transcripts in
/// `dir`, every temporary file of the run under `dir/tmp` (returned) and the variables `env`.
fn spawn_run(
    dir: &Path,
    args: &[&OsStr],
    env: &[(&str, &OsStr)],
) -> (std::process::Child, String, std::path::PathBuf) {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut all = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
    ];
    all.extend_from_slice(args);
    let mut vars = vec![("TMPDIR", tmp.as_os_str())];
    vars.extend_from_slice(env);
    let (child, command) = spawn_harness_env(&all, &vars);
    (child, command, tmp)
}

/// Runs the scenario `text` (written to `dir/<name>.toml`) with JUnit in `dir` (see
/// [`spawn_run`]); checks that no QEMU is left.
fn run_scenario_text(dir: &Path, name: &str, text: &str) -> Finished {
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, text).unwrap();
    let junit = dir.join("junit.xml");
    let started = Instant::now();
    let args = [OsStr::new("--junit"), junit.as_os_str(), scenario.as_os_str()];
    let (child, command, tmp) = spawn_run(dir, &args, &[]);
    let run = finish(child, command, started, LIMIT);
    assert_no_qemu_left(&tmp, &run);
    run
}

#[test]
fn a_command_printing_the_end_marker_cannot_forge_its_exit_status() {
    let dir = temp_dir();
    // The markers of old, on a line of their own and mid-line, then the command fails.
    let steps = r#"[[steps]]
run = "printf '@@R2S-END-2:0;\n@@R2S-END-2-:0;\nx@@R2S-END-2:0;\n'; false"
timeout = "30s"
"#;
    let run = run_scenario_text(dir.path(), "forge", &logged_in("forge", steps));
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
    let dir = temp_dir();
    let started = Instant::now();
    let scenario = scenario("boot-to-login");
    let (child, command, tmp) = spawn_run(dir.path(), &[scenario.as_os_str()], &[]);
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

/// Logs in, then makes the shell show a login prompt of its own that reads the password with
/// the terminal echoing it (the prompts are typed split, so their echo is not a prompt), and
/// logs in there with `password`; then says `Login incorrect` if `refuse`.
fn echoing_login_scenario(password: &str, refuse: bool) -> String {
    let verdict = if refuse {
        "echo 'Login incor''rect'"
    } else {
        "true"
    };
    let steps = format!(
        r#"[[steps]]
send_line = "printf 'ivy log''in: '; read u; printf 'Pass''word: '; read p; {verdict}"
[[steps]]
login = {{ user = "root", password = "{password}" }}
timeout = "30s"
"#
    );
    logged_in("secret", &steps)
}

/// Every file the run wrote into `dir` (transcripts, JUnit; not the scenario file, which holds
/// the password) and its stdout and stderr, with what each is called.
fn everything_written(dir: &Path, run: &Finished) -> Vec<(String, String)> {
    let mut out = vec![
        ("stdout".to_owned(), run.stdout.clone()),
        ("stderr".to_owned(), run.stderr.clone()),
    ];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() && entry.path().extension() != Some(OsStr::new("toml")) {
            let bytes = std::fs::read(entry.path()).unwrap();
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn an_echoed_password_reaches_no_file_and_no_output() {
    let dir = temp_dir();
    let secret = "typed-at-an-echoing-prompt-4711";
    let text = echoing_login_scenario(secret, false);
    let run = run_scenario_text(dir.path(), "secret", &text);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("secret.log")).unwrap();
    assert!(
        log.contains("-- a typed secret in the console output was replaced by [redacted]"),
        "{log}"
    );
    for (what, text) in everything_written(dir.path(), &run) {
        assert!(!text.contains(secret), "the password reached {what}:\n{text}");
    }
}

#[test]
fn an_echoed_password_that_is_refused_reaches_neither_the_report_nor_junit_nor_any_file() {
    let dir = temp_dir();
    let secret = "refused-at-an-echoing-prompt-4711";
    let text = echoing_login_scenario(secret, true);
    let run = run_scenario_text(dir.path(), "secret", &text);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("was refused"), "{}", run.explain());
    // The last console lines in the report show where the echo was.
    assert!(
        run.stdout.contains("| Password: [redacted]\n"),
        "{}",
        run.explain()
    );
    for (what, text) in everything_written(dir.path(), &run) {
        assert!(!text.contains(secret), "the password reached {what}:\n{text}");
    }
}

/// Every directory and file under `dir` whose mode is not `dir_mode` or `file_mode`.
fn not_private(dir: &Path, dir_mode: u32, file_mode: u32) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut wrong = Vec::new();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    if mode != dir_mode {
        wrong.push(format!("{} {mode:o}", dir.display()));
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            wrong.extend(not_private(&path, dir_mode, file_mode));
        } else if path.extension() == Some(OsStr::new("qcow2")) {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if mode != file_mode {
                wrong.push(format!("{} {mode:o}", path.display()));
            }
        }
    }
    wrong
}

#[test]
fn the_snapshot_cache_holding_the_guests_memory_is_readable_by_its_owner_only() {
    let dir = temp_dir();
    let cache = dir.path().join("cache/snapshots");
    let started = Instant::now();
    let scenario = scenario("shell-checks");
    let args = [
        OsStr::new("--snapshot-cache"),
        cache.as_os_str(),
        scenario.as_os_str(),
    ];
    let (child, command, _tmp) = spawn_run(dir.path(), &args, &[]);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(
        not_private(&dir.path().join("cache"), 0o700, 0o600),
        Vec::<String>::new()
    );
}

#[test]
fn harness_console_keeps_a_password_typed_at_a_prompt_and_its_echo_out_of_the_transcript() {
    use std::io::Write;
    let dir = temp_dir();
    let device = dir.path().join("ttyUSB-console");
    let pty = r2s_tests::pty::Pty::open(&device).unwrap();
    let transcripts = dir.path().join("transcripts");
    let (mut child, command) = spawn_console_on(&device, &transcripts);
    let started = Instant::now();
    let log = transcripts.join("console.log");
    wait_for_file(&log, Duration::from_secs(10));
    let secret = b"typed-at-the-console-4711";
    pty.write_all(b"ivy login: root\r\nPassword: ", Duration::from_secs(5))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(secret).unwrap();
    keys.write_all(b"\r").unwrap();
    keys.flush().unwrap();
    let mut typed = Vec::new();
    let mut buf = [0u8; 256];
    while !typed.ends_with(b"\r") && started.elapsed() < Duration::from_secs(10) {
        match r2s_tests::pty::read_some(pty.master(), &mut buf) {
            Ok(n) if n > 0 => typed.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(&typed[..secret.len()], secret, "keys did not reach the board");
    // The board echoes the password, as busybox login on a terminal in echo mode does.
    pty.write_all(secret, Duration::from_secs(5)).unwrap();
    pty.write_all(b"\r\n[root@ivy:~]# ", Duration::from_secs(5))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    keys.write_all(&[0x1d]).unwrap();
    keys.flush().unwrap();
    let run = finish(child, command, started, Duration::from_secs(10));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let secret = std::str::from_utf8(secret).unwrap();
    for ext in ["raw", "log", "cast"] {
        let path = transcripts.join(format!("console.{ext}"));
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !text.contains(secret),
            "the password reached console.{ext}:\n{text}"
        );
        assert!(text.contains("[redacted]"), "console.{ext}:\n{text}");
    }
}

#[test]
fn transcript_limit_bounds_every_transcript_file_of_a_chatty_run() {
    let dir = temp_dir();
    let scenario = dir.path().join("chatty.toml");
    let steps = r#"[[steps]]
run = "seq 1 30000"
output = "\n30000\\z"
timeout = "2m"
"#;
    std::fs::write(&scenario, logged_in("chatty", steps)).unwrap();
    let started = Instant::now();
    let args = [
        OsStr::new("--transcript-limit"),
        OsStr::new("64KiB"),
        scenario.as_os_str(),
    ];
    let (child, command, _tmp) = spawn_run(dir.path(), &args, &[]);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let size = |ext: &str| {
        std::fs::metadata(dir.path().join(format!("chatty.{ext}")))
            .unwrap()
            .len()
    };
    assert_eq!(size("raw"), 64 * 1024);
    assert!(size("log") <= 65 * 1024, "log {}", size("log"));
    assert!(size("cast") <= 65 * 1024, "cast {}", size("cast"));
    let log = std::fs::read_to_string(dir.path().join("chatty.log")).unwrap();
    assert!(log.contains("] 30000\n"), "the log's tail is missing");
    assert!(log.contains("-- transcript limit: "), "{log}");
}

#[test]
fn a_megabyte_send_the_console_cannot_take_in_time_fails_saying_how_much_it_took() {
    // The emulated UART takes a few KiB a second under TCG: far less than a megabyte in 20 s.
    let dir = temp_dir();
    let megabyte = format!("{}\\n", "a".repeat(1023)).repeat(1024);
    let steps = format!(
        r#"[[steps]]
send_line = "cat > /dev/null"
[[steps]]
send = "{megabyte}"
timeout = "20s"
"#
    );
    let run = run_scenario_text(dir.path(), "big-send", &logged_in("big-send", &steps));
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let reason = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("reason: "))
        .unwrap_or_else(|| panic!("no reason\n{}", run.explain()));
    assert!(
        reason.contains("the console took only ")
            && reason.ends_with(
                " of the 1048576 bytes sent before the step's time ran out; send less, or give \
                 the step a longer timeout"
            ),
        "{reason}"
    );
    assert!(
        run.stdout.len() < 64 * 1024,
        "stdout holds {} bytes",
        run.stdout.len()
    );
}

#[test]
fn a_failed_priming_boot_leaves_no_half_built_snapshot_behind() {
    let dir = temp_dir();
    let cache = dir.path().join("snapshots");
    let scenario = scenario("shell-checks");
    let args = [
        OsStr::new("--snapshot-cache"),
        cache.as_os_str(),
        scenario.as_os_str(),
    ];
    let started = Instant::now();
    // The login the snapshot saves is refused.
    let wrong = [("R2S_PASSWORD", OsStr::new("wrong-password"))];
    let (child, command, _tmp) = spawn_run(dir.path(), &args, &wrong);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let left: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // The image's digest is kept (`digests/`): it is the image's, whatever the boot did.
        .filter(|name| !name.ends_with(".lock") && name != "digests")
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{}", run.explain());
}

/// A scenario whose command prints backspaces, the C1 control sequence introducer, BEL, DEL, a
/// bidi override and isolate and a line separator, after a `\r` that would put `FAKE PASS` at
/// the start of the report's line if the bytes reached a terminal.
const CONTROL_PRINTING: &str = r#"name = "escape"
start = "login"
[[steps]]
run = "printf 'a\\rFAKE PASS\\b\\b\\xc2\\x9b2J\\x07 \\xe2\\x80\\xae evil\\x7f \\xe2\\x81\\xa6iso\\xe2\\x80\\xa8sep\\n'"
output = "nope"
"#;

#[test]
fn console_control_characters_reach_the_report_junit_and_stderr_only_escaped() {
    let dir = temp_dir();
    let run = run_scenario_text(dir.path(), "escape", CONTROL_PRINTING);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let raw = [
        '\u{8}', '\u{7}', '\u{9b}', '\u{7f}', '\u{202e}', '\u{2066}', '\u{2028}',
    ];
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("junit", &junit),
    ] {
        for c in raw {
            assert!(!text.contains(c), "{c:?} reached {what} raw:\n{}", run.explain());
        }
    }
    let shown = r"aFAKE PASS\u{8}\u{8}\u{9b}2J\u{7} \u{202e} evil\u{7f} \u{2066}iso\u{2028}sep";
    assert!(
        run.stdout.contains(&format!(
            "\n  reason: output did not match /nope/:\n    {shown}\n"
        )),
        "the reason:\n{}",
        run.explain()
    );
    assert!(
        run.stdout.contains(&format!("\n    | {shown}\n")),
        "the excerpt:\n{}",
        run.explain()
    );
    assert!(
        junit.contains(&format!(
            "<failure message=\"output did not match /nope/:&#10;{shown}\""
        )),
        "{junit}"
    );
    assert!(junit.contains(&format!("\n    | {shown}\n")), "{junit}");
}
