//! The boot's countdowns end to end, on real QEMU and U-Boot: skipped by default under QEMU
//! (autoboot stopped, U-Boot's own bootcmd run, the menu's DEFAULT typed), said so in the
//! transcript and the timings, waited out with `--real-time-boot` or `real_time_boot = true`,
//! kept on a serial board unless its profile opts in, and never counted as a stage speed-up
//! against a baseline that waited them out.
//!
//! The runs boot only as far as "Starting kernel ...".

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use r2s_tests::bench::VirtualBench;
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(180);

/// U-Boot prints each second of its countdown after three backspaces; a countdown stopped at
/// once goes from 2 straight to 0.
const COUNTDOWN_TICK: &[u8] = b"\x08\x08\x08 1 ";

/// A scenario up to the kernel's start, with `extra` top-level keys.
fn to_kernel(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("to-kernel.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"to-kernel\"\ntimeout = \"2m\"\n{extra}\n[[steps]]\nexpect = \"Starting kernel ...\"\n"
        ),
    )
    .unwrap();
    path
}

fn run_qemu(dir: &Path, scenario: &Path, extra: &[&OsStr]) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    run_image(&image, &dir.join("transcripts"), extra, scenario, LIMIT)
}

/// The stages of a boot to the kernel whose countdowns were skipped.
const SKIPPED: [(&str, Option<&str>); 3] = [
    ("uboot", Some("autoboot")),
    ("menu", Some("menu")),
    ("kernel", None),
];

/// Each stage's name and the countdown it skipped, as the timings file says.
type StageWaits = Vec<(String, Option<String>)>;

/// The run's transcript log, raw bytes and the `skipped_wait` of each stage in its timings.
fn records(dir: &Path) -> (String, Vec<u8>, StageWaits) {
    let transcripts = dir.join("transcripts");
    let log = std::fs::read_to_string(transcripts.join("to-kernel.log")).unwrap();
    let raw = std::fs::read(transcripts.join("to-kernel.raw")).unwrap();
    let timings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(transcripts.join("to-kernel.timings.json")).unwrap()).unwrap();
    let stages = timings["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s.get("skipped_wait").map(|w| w.as_str().unwrap().to_owned()),
            )
        })
        .collect();
    (log, raw, stages)
}

fn stages(list: &[(&str, Option<&str>)]) -> StageWaits {
    list.iter()
        .map(|(name, wait)| ((*name).to_owned(), wait.map(str::to_owned)))
        .collect()
}

fn has_tick(raw: &[u8]) -> bool {
    memchr::memmem::find(raw, COUNTDOWN_TICK).is_some()
}

#[test]
fn qemu_skips_both_countdowns_and_the_transcript_and_timings_say_so() {
    let dir = temp_dir();
    let run = run_qemu(dir.path(), &to_kernel(dir.path(), ""), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let (log, raw, timings) = records(dir.path());
    assert!(
        log.contains("-- countdown skipped: U-Boot's autoboot stopped at once; running its own bootcmd"),
        "{log}"
    );
    assert!(
        log.contains("-- countdown skipped: extlinux menu entry 1 (its DEFAULT, which the timeout would choose) chosen at once"),
        "{log}"
    );
    assert!(log.contains(">> run bootcmd\\r"), "{log}");
    assert!(!has_tick(&raw), "the countdown ran its seconds");
    assert_eq!(timings, stages(&SKIPPED));
}

#[test]
fn real_time_boot_flag_waits_out_both_countdowns() {
    let dir = temp_dir();
    let run = run_qemu(
        dir.path(),
        &to_kernel(dir.path(), ""),
        &[OsStr::new("--real-time-boot")],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let (log, raw, timings) = records(dir.path());
    assert!(!log.contains("countdown skipped"), "{log}");
    assert!(has_tick(&raw), "the countdown did not run");
    assert_eq!(
        timings,
        stages(&[("uboot", None), ("menu", None), ("kernel", None)])
    );
}

#[test]
fn a_scenario_with_real_time_boot_waits_out_both_countdowns() {
    let dir = temp_dir();
    let run = run_qemu(dir.path(), &to_kernel(dir.path(), "real_time_boot = true"), &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let (log, raw, _) = records(dir.path());
    assert!(!log.contains("countdown skipped"), "{log}");
    assert!(has_tick(&raw), "the countdown did not run");
}

#[test]
fn a_baseline_that_waited_the_countdowns_is_not_beaten_by_skipping_them() {
    let dir = temp_dir();
    // A baseline recorded before countdowns were skipped: no stage marks a skipped wait, and
    // U-Boot and the menu took their 2 s and 3 s.
    let old = dir.path().join("old.json");
    std::fs::write(
        &old,
        r#"{"scenario": "to-kernel", "image": "x.img", "verdict": "pass", "total": 5.7,
            "stages": [{"name": "uboot", "start": 0, "duration": 2.5},
                       {"name": "menu", "start": 2.5, "duration": 3.2},
                       {"name": "kernel", "start": 5.7, "duration": 0.0}]}"#,
    )
    .unwrap();
    let run = run_qemu(
        dir.path(),
        &to_kernel(dir.path(), ""),
        &[OsStr::new("--baseline"), old.as_os_str()],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    for stage in ["uboot", "menu"] {
        let wait = if stage == "uboot" { "autoboot" } else { "menu" };
        let row = run
            .stdout
            .lines()
            .find(|l| l.contains(&format!("to-kernel {stage} ")))
            .unwrap_or_else(|| panic!("no row for {stage}\n{}", run.explain()));
        assert!(
            row.ends_with(&format!(
                "not compared: {wait} countdown skipped in this run only"
            )),
            "{row}"
        );
    }
}

/// A board profile for `bench` with `extra` top-level keys.
fn bench_profile(bench: &VirtualBench, extra: &str) -> PathBuf {
    let written = bench.profile("10s");
    let text = std::fs::read_to_string(&written).unwrap();
    let path = bench.dir().join("with-extra.toml");
    std::fs::write(&path, format!("{extra}\n{text}")).unwrap();
    path
}

fn run_serial(bench: &VirtualBench, profile: &Path, scenario: &Path) -> Finished {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let transcripts = bench.dir().join("transcripts");
    run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--serial"),
            bench.device().as_os_str(),
            OsStr::new("--board"),
            profile.as_os_str(),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
            scenario.as_os_str(),
        ],
        LIMIT,
    )
}

#[test]
fn a_serial_board_keeps_its_countdowns_unless_its_profile_opts_in() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let scenario = to_kernel(bench.dir(), "");

    let kept = run_serial(&bench, &bench_profile(&bench, ""), &scenario);
    assert_eq!(kept.code(), Some(0), "{}", kept.explain());
    let (log, raw, _) = records(bench.dir());
    assert!(!log.contains("countdown skipped"), "{log}");
    assert!(has_tick(&raw), "the countdown did not run");

    let skipped = run_serial(
        &bench,
        &bench_profile(&bench, "skip_countdowns = true"),
        &scenario,
    );
    assert_eq!(skipped.code(), Some(0), "{}", skipped.explain());
    let (log, raw, timings) = records(bench.dir());
    assert!(log.contains("-- countdown skipped: U-Boot's autoboot"), "{log}");
    assert!(
        log.contains("-- countdown skipped: extlinux menu entry 1"),
        "{log}"
    );
    assert!(!has_tick(&raw), "the countdown ran its seconds");
    assert_eq!(timings, stages(&SKIPPED));
}

/// A login's waits for its prompt are short ones, repeated (Enter pressed for a fresh prompt
/// between them); the countdowns must be skipped during those too, from power-on and in the
/// priming boot of a login snapshot.
#[test]
fn a_login_start_skips_both_countdowns_on_the_way_to_the_login_prompt() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let transcripts = dir.path().join("transcripts");
    let run = run_image(
        &image,
        &transcripts,
        &[OsStr::new("--no-snapshots")],
        &scenario("shell-checks"),
        LIMIT,
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let log = std::fs::read_to_string(transcripts.join("shell-checks.log")).unwrap();
    assert!(
        log.contains("-- countdown skipped: U-Boot's autoboot stopped at once"),
        "{log}"
    );
    assert!(
        log.contains("-- countdown skipped: extlinux menu entry 1"),
        "{log}"
    );
    let raw = std::fs::read(transcripts.join("shell-checks.raw")).unwrap();
    assert!(!has_tick(&raw), "the countdown ran its seconds");
}

/// NixOS 24.11's extlinux.conf for `boot.loader.timeout = 0`: a menu that waits for a key
/// forever. The board hangs there; under QEMU nothing types past it either.
const MENU_WAITS: &str = "broken-inspect-extlinux-menu-wait";

/// A limit far beyond what failing at the menu takes, well short of the scenario's timeout.
const AT_ONCE: Duration = Duration::from_secs(150);

fn run_menu_waits(dir: &Path, extra_keys: &str, extra: &[&OsStr]) -> Finished {
    let scenario = dir.join("to-kernel.toml");
    std::fs::write(
        &scenario,
        format!("name = \"to-kernel\"\ntimeout = \"10m\"\n[[steps]]\n{extra_keys}\n[[steps]]\nexpect = \"Starting kernel ...\"\n"),
    )
    .unwrap();
    run_image(
        &fixture(MENU_WAITS),
        &dir.join("transcripts"),
        extra,
        &scenario,
        LIMIT * 4,
    )
}

#[test]
fn a_menu_that_waits_forever_fails_at_the_menu_instead_of_being_typed_past() {
    for extra in [&[][..], &[OsStr::new("--real-time-boot")][..]] {
        let dir = temp_dir();
        let run = run_menu_waits(dir.path(), "expect = \"U-Boot\"", extra);
        assert_eq!(run.code(), Some(1), "{}", run.explain());
        assert!(
            run.stdout.contains(
                "the extlinux menu (3 entries, TIMEOUT -10) waits at `Enter choice:` for a key without limit"
            ),
            "{}",
            run.explain()
        );
        assert!(
            run.stdout.contains("boot.loader.timeout = 1"),
            "{}",
            run.explain()
        );
        assert!(run.elapsed < AT_ONCE, "took {:?}: {}", run.elapsed, run.explain());
        let log = std::fs::read_to_string(dir.path().join("transcripts/to-kernel.log")).unwrap();
        assert!(!log.contains("countdown skipped: extlinux menu"), "{log}");
    }
}

#[test]
fn a_menu_step_chooses_at_a_menu_that_waits_forever_and_the_boot_goes_on() {
    let dir = temp_dir();
    let run = run_menu_waits(dir.path(), "menu = 2", &[]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
}

/// What QEMU's U-Boot runs when its autoboot ends, and a command of the same length (so
/// nothing else in the default environment moves) that cannot load its kernel: U-Boot prints
/// its error and comes back to its prompt, with a line no fatal pattern knows — as a U-Boot
/// whose boot command (bootflow, a vendor script) gives up in words of its own would.
const BOOTCMD: &[u8] = b"bootcmd=run distro_bootcmd\0";
const BOOTCMD_THAT_GIVES_UP: &[u8] = b"bootcmd=load virtio 0 0 /x\0";

/// A copy of QEMU's U-Boot in `dir` whose boot command gives up ([`BOOTCMD_THAT_GIVES_UP`]).
fn firmware_that_gives_up(dir: &Path) -> PathBuf {
    let stock = r2s_harness::targets::firmware::find(None);
    let mut bytes = std::fs::read(&stock).unwrap_or_else(|e| panic!("{}: {e}", stock.display()));
    let at = bytes
        .windows(BOOTCMD.len())
        .position(|w| w == BOOTCMD)
        .unwrap_or_else(|| panic!("{} has no {BOOTCMD:?}", stock.display()));
    bytes[at..at + BOOTCMD.len()].copy_from_slice(BOOTCMD_THAT_GIVES_UP);
    let copy = dir.join("u-boot-gives-up.bin");
    std::fs::write(&copy, bytes).unwrap();
    copy
}

#[test]
fn uboot_back_at_its_prompt_after_autoboot_fails_the_run_at_once_skipping_countdowns_or_not() {
    for real_time in [false, true] {
        let dir = temp_dir();
        let firmware = firmware_that_gives_up(dir.path());
        let scenario = to_kernel(dir.path(), "");
        let mut extra = vec![OsStr::new("--firmware"), firmware.as_os_str()];
        if real_time {
            extra.push(OsStr::new("--real-time-boot"));
        }
        let run = run_qemu(dir.path(), &scenario, &extra);
        let countdown = if real_time { 2.0 } else { 0.0 };
        assert_gave_up_at_once(&run, &dir.path().join("transcripts"), countdown);
    }
}

/// `run` failed on U-Boot giving up, naming its last error, within 2 s of U-Boot's autoboot
/// line and its `countdown` (on the transcript's clock in `transcripts`), not at the step's
/// timeout.
fn assert_gave_up_at_once(run: &Finished, transcripts: &Path, countdown: f64) {
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "U-Boot gave up on the image: it is back at its prompt after running bootcmd (its autoboot), \
             before any kernel started, and no step types at it; its last error: "
        ),
        "{}",
        run.explain()
    );
    // U-Boot's own words for the missing file, whichever its version prints.
    let reason = run.report_field("reason");
    assert!(
        ["not found", "Failed to load", "Error"]
            .iter()
            .any(|error| reason.contains(error)),
        "{reason}"
    );
    let log = transcripts.join("to-kernel.log");
    let failed = log_time_of(&log, "-- FAIL").unwrap_or_else(|| panic!("no FAIL in {}", log.display()));
    let autoboot = log_time_of(&log, "Hit any key to stop autoboot").expect("autoboot in the log");
    assert!(
        failed - autoboot < countdown + 2.0,
        "failed {:.1}s after the autoboot line\n{}",
        failed - autoboot,
        run.explain()
    );
}

#[test]
fn on_a_board_whose_profile_keeps_the_countdowns_uboot_back_at_its_prompt_fails_the_run_at_once() {
    let dir = temp_dir();
    // The bench's board boots QEMU's default firmware, which this variable names; set before
    // the bench starts any QEMU (and nextest runs each test in a process of its own).
    std::env::set_var(
        r2s_harness::targets::firmware::FIRMWARE_ENV,
        firmware_that_gives_up(dir.path()),
    );
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let scenario = to_kernel(bench.dir(), "");
    let run = run_serial(&bench, &bench_profile(&bench, ""), &scenario);
    assert_gave_up_at_once(&run, &bench.dir().join("transcripts"), 2.0);
}
