//! End-to-end: the harness binary boots real fixture images in real QEMU through real U-Boot and
//! a real arm64 kernel, and judges them by the shipped scenarios.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

/// Runs one shipped scenario and checks, whatever the verdict, that no QEMU of the run is left:
/// the run's temporary files (QEMU's overlay, on its command line) are kept under `dir`.
fn run_scenario(image: &Path, scenario_name: &str, dir: &Path) -> Finished {
    run_scenario_file(image, &scenario(scenario_name), dir, LIMIT)
}

fn assert_passes(scenario_name: &str) -> (Finished, tempfile::TempDir) {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let run = run_scenario(&image, scenario_name, dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!("PASS  {scenario_name}  ")),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.explain());
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit written");
    assert!(
        junit.contains(&format!("name=\"{scenario_name}\"")) && junit.contains("failures=\"0\""),
        "{junit}"
    );
    (run, dir)
}

#[test]
fn boot_to_login_passes_through_every_stage() {
    let (run, _dir) = assert_passes("boot-to-login");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("PASS  boot-to-login"))
        .unwrap();
    for stage in ["uboot", "menu", "kernel", "stage-1", "stage-2", "login"] {
        assert!(
            line.contains(&format!("{stage} ")),
            "stage {stage} missing from {line:?}"
        );
    }
}

#[test]
fn uboot_shell_runs_commands_at_the_uboot_prompt() {
    assert_passes("uboot-shell");
}

#[test]
fn extlinux_menu_boots_the_chosen_generation() {
    let (_run, dir) = assert_passes("extlinux-menu");
    let log = std::fs::read_to_string(dir.path().join("extlinux-menu.log")).unwrap();
    // The runner typed the number U-Boot gave nixos-2-default, and generation 2's system booted.
    assert!(log.contains(">> 2"), "menu choice not typed:\n{log}");
    assert!(
        log.contains("25.05.20250701.1a2b3c4"),
        "generation 2 not booted:\n{log}"
    );
}

#[test]
fn login_and_run_checks_output_and_status() {
    let (_run, dir) = assert_passes("login-and-run");
    let log = std::fs::read_to_string(dir.path().join("login-and-run.log")).unwrap();
    assert!(
        !log.contains(r2s_images::ROOT_PASSWORD),
        "the password reached the transcript"
    );
    assert!(
        log.contains("[redacted]"),
        "password input not shown redacted:\n{log}"
    );
    let cast = std::fs::read_to_string(dir.path().join("login-and-run.cast")).unwrap();
    assert!(
        cast.starts_with("{\"version\":2"),
        "asciicast header: {}",
        &cast[..cast.len().min(200)]
    );
    assert!(
        !cast.contains(r2s_images::ROOT_PASSWORD),
        "the password reached the asciicast"
    );
}

/// Console lines of a transcript log, without the harness's input (`>>`) and notes (`--`).
fn console_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter_map(|l| l.split_once("] ").map(|(_, text)| text))
        .filter(|text| !text.starts_with(">> ") && !text.starts_with("-- "))
        .collect()
}

#[test]
fn a_shell_session_types_each_line_at_its_prompt_and_retries_until_it_passes() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let scenario = dir.path().join("shell-session.toml");
    std::fs::write(
        &scenario,
        r#"name = "shell-session"
timeout = "5m"
# The expect consumes the getty's prompt: the login must get a fresh one.
[[steps]]
expect = "ivy login:"
timeout = "4m"
[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "1m"
[[steps]]
run = "echo one"
output = "^one$"
[[steps]]
run = """if true; then
  echo two
fi"""
output = "^two$"
[[steps]]
run = "test -e /tmp/tried || { touch /tmp/tried; false; }"
until = "30s"
timeout = "1m"
"#,
    )
    .unwrap();
    let run = run_scenario_file(&image, &scenario, dir.path(), LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("shell-session.log")).unwrap();
    assert!(
        log.contains("-- a login prompt is on screen but was matched by an earlier step; pressing Enter for a fresh one"),
        "{log}"
    );
    // Typed only at the prompt, a command line is echoed once (type-ahead showed it twice);
    // the retried command was typed twice.
    let console = console_lines(&log);
    for (command, times) in [
        ("{ echo one", 1),
        ("{ if true; then", 1),
        ("{ test -e /tmp/tried", 2),
    ] {
        let echoes = console.iter().filter(|l| l.contains(command)).count();
        assert_eq!(echoes, times, "{command:?} echoed {echoes} times:\n{log}");
    }
    // The shell's continuation prompt came before each further line was typed. QEMU's UART
    // may deliver its `>` and its space in two reads, the space after the next line was typed:
    // the log line is then `>` alone.
    assert!(console.iter().any(|l| l.starts_with('>')), "{log}");
    assert!(
        log.contains(
            "-- run \"test -e /tmp/tried || { touch /tmp/tried; false; }\" until it passes: passed on try 2"
        ),
        "{log}"
    );
}

#[test]
fn the_input_image_is_byte_identical_after_a_run() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let before = sha256(&image);
    let dir = temp_dir();
    let run = run_scenario(&image, "login-and-run", dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(sha256(&image), before, "the image changed");
}

/// A broken fixture must fail on its fatal line, within 2 s of that line reaching the console.
fn assert_fails_fast(fixture_name: &str, fatal_text: &str) {
    let image = fixture(fixture_name);
    let dir = temp_dir();
    let run = run_scenario(&image, "boot-to-login", dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("FAIL  boot-to-login"), "{}", run.explain());
    assert!(run.stdout.contains("reason: fatal pattern"), "{}", run.explain());
    assert!(run.stdout.contains(fatal_text), "{}", run.explain());
    assert!(
        run.stdout.contains("last ") && run.stdout.contains("console lines:"),
        "{}",
        run.explain()
    );
    let log = dir.path().join("boot-to-login.log");
    let seen =
        log_time_of(&log, fatal_text).unwrap_or_else(|| panic!("{fatal_text:?} not in {}", log.display()));
    // Both times are on the transcript's clock, so the harness's start-up (adapting the image,
    // creating overlays), which a loaded CI machine stretches, does not count as reaction time.
    let failed = log_time_of(&log, "-- FAIL").unwrap_or_else(|| panic!("no FAIL note in {}", log.display()));
    let reaction = failed - seen;
    assert!(
        reaction < 2.0,
        "the harness failed the run {reaction:.2}s after the fatal line\n{}",
        run.explain()
    );
}

#[test]
fn stage1_failure_fails_fast_with_the_stage1_error() {
    assert_fails_fast(
        "broken-stage1",
        "An error occurred in stage 1 of the boot process",
    );
}

#[test]
fn kernel_panic_fails_fast() {
    assert_fails_fast("broken-panic", "Kernel panic - not syncing");
}

#[test]
fn a_kernel_past_the_firmware_s_ramdisk_address_fails_fast_in_uboot() {
    // Its header asks for 68 MiB from 0x40400000; QEMU's U-Boot loads the ramdisk 60 MiB above.
    // The card's own (stock RK3328) U-Boot leaves 62 MiB, so the harness does not move QEMU's
    // ramdisk for it (see tests/load_addresses.rs for a kernel it does move it for).
    assert_fails_fast("broken-inspect-kernel-size", "ERROR: RD image overlaps OS image");
}

#[test]
fn missing_initrd_fails_fast_in_uboot() {
    assert_fails_fast("broken-initrd-missing", "for failure retrieving initrd");
}

#[test]
fn a_step_that_never_matches_fails_at_its_timeout_with_the_expected_text() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let scenario = dir.path().join("never.toml");
    std::fs::write(
        &scenario,
        "name = \"never\"\ntimeout = \"2m\"\n[[steps]]\nexpect = \"U-Boot 20\"\n[[steps]]\nexpect = \"this text is never printed\"\ntimeout = \"4s\"\n",
    )
    .unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let started = Instant::now();
    let (child, command) = spawn_harness_env(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            scenario.as_os_str(),
        ],
        &[("TMPDIR", tmp.as_os_str())],
    );
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert_no_qemu_left(&tmp, &run);
    assert!(
        run.stdout
            .contains("step 2: expect \"this text is never printed\""),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("reason: timeout after 4."),
        "{}",
        run.explain()
    );
    assert!(run.elapsed < Duration::from_secs(60), "{}", run.explain());
}

fn assert_signal_leaves_no_qemu(signal: libc::c_int, expected_code: i32) {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let started = Instant::now();
    let (child, command) = spawn_harness(&[
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.path().as_os_str(),
        scenario("boot-to-login").as_os_str(),
    ]);
    let pid = child.id();
    // Mid-boot: QEMU is running and U-Boot has printed something.
    let raw = dir.path().join("boot-to-login.raw");
    let qemus = wait_for_qemu_output(pid, &raw, Duration::from_secs(60));
    unsafe { libc::kill(pid as libc::pid_t, signal) };
    let run = finish(child, command, started, Duration::from_secs(30));
    assert_eq!(run.code(), Some(expected_code), "{}", run.explain());
    for qemu in qemus {
        assert!(
            !process_alive(qemu),
            "QEMU {qemu} outlived the harness\n{}",
            run.explain()
        );
    }
    assert!(raw.exists(), "the transcript was not kept");
}

#[test]
fn sigterm_mid_boot_leaves_no_qemu_behind() {
    assert_signal_leaves_no_qemu(libc::SIGTERM, 143);
}

#[test]
fn sigint_mid_boot_leaves_no_qemu_behind() {
    assert_signal_leaves_no_qemu(libc::SIGINT, 130);
}

/// A copy of `r2s-first-boot` (one generation, as a freshly built NixOS image has) whose system
/// sets the hostname `nixos-r2s`, NixOS's own choice for an R2S image, instead of the fixtures'
/// `ivy`: the system's `etc/hostname` is rewritten in the `etc` store path the system links to.
fn fresh_nixos_r2s_image(dir: &Path) -> std::path::PathBuf {
    let image = hostile::copy_of("r2s-first-boot", dir);
    let facts = r2s_harness::image::facts::ImageFacts::read(&image);
    let system = format!(
        "/nix/store/{}",
        facts.entries[0].system.as_ref().expect("init= in the store")
    );
    let etc = hostile::debugfs_link(&image, 2, &format!("{system}/etc"));
    let hostname = dir.join("hostname");
    std::fs::write(&hostname, "nixos-r2s\n").unwrap();
    hostile::debugfs(
        &image,
        2,
        &[
            &format!("rm {etc}/hostname"),
            &format!("write {} {etc}/hostname", hostname.display()),
        ],
    );
    image
}

/// The default run (no scenario named: the health check written from the image, then the
/// shipped set) on a fresh image with one generation and hostname `nixos-r2s`: the health
/// check (boot and login: the fixture has no systemd) and every shipped scenario that applies
/// pass, checking the image's own hostname, and the two that choose an older generation are
/// skipped with the reason, counted apart, in the text report, JUnit and the HTML page.
#[test]
fn the_shipped_set_passes_a_fresh_one_generation_image_and_skips_the_menu_scenarios_saying_why() {
    let dir = temp_dir();
    let image = fresh_nixos_r2s_image(dir.path());
    let transcripts = dir.path().join("run");
    std::fs::create_dir(&transcripts).unwrap();
    let junit = transcripts.join("junit.xml");
    let run = run_default(&image, &transcripts, Duration::from_secs(900));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let why = "(requires generations >= 2; the image's extlinux.conf has 1 entry)";
    for name in ["extlinux-menu", "menu-from-uboot"] {
        assert!(
            run.stdout.contains(&format!("SKIP  {name}  {why}")),
            "{}",
            run.explain()
        );
    }
    assert!(
        run.stdout.contains("9 passed, 0 failed, 2 skipped"),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("PASS  health  "), "{}", run.explain());
    let health = std::fs::read_to_string(transcripts.join("health.toml")).unwrap();
    assert!(health.contains("the image does not run systemd"), "{health}");
    // The system set the image's own name, which the hostname checks expected and saw.
    let log = std::fs::read_to_string(transcripts.join("login-and-run.log")).unwrap();
    assert!(log.contains("nixos-r2s login:"), "{log}");
    let checks = std::fs::read_to_string(transcripts.join("shell-checks.log")).unwrap();
    assert!(checks.contains("] nixos-r2s\n"), "{checks}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"11\" failures=\"0\" errors=\"0\" skipped=\"2\""),
        "{xml}"
    );
    let page = std::fs::read_to_string(transcripts.join("report.html")).unwrap();
    assert!(page.contains("9 passed, 0 failed, 2 skipped"), "the page's title");
    assert!(
        page.contains("\"verdict\":\"skip\""),
        "the skipped scenarios' data"
    );
}
