//! The console engine against real QEMU boots of the fixture images, recorded byte for byte in
//! `tests/transcripts/` (see its README for how each was made).

mod console_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use console_support::{assert_same_run, lit, re, run_steps, Run, CHUNK_SIZES};
use r2s_harness::console::{Matcher, Pattern, Transcript};

fn transcripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/transcripts")
}

fn recorded(name: &str) -> Vec<u8> {
    let path = transcripts_dir().join(format!("{name}.raw"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_recordings() -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(transcripts_dir())
        .expect("tests/transcripts exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "raw"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no recordings in tests/transcripts");
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("readable recording"))
        })
        .collect()
}

// Watch indices, named for the assertions.
const PANIC: usize = 0;
const STAGE_1_ERROR: usize = 1;
const SKIPPED_ENTRY: usize = 2;
const EXTLINUX_FAILED: usize = 3;
const STARTING_KERNEL: usize = 4;
const LINUX: usize = 5;
const STAGE_1: usize = 6;
const STAGE_2: usize = 7;
const WELCOME: usize = 8;

/// Fatal messages and stage markers, as a scenario would watch them.
fn watches() -> Vec<Pattern> {
    vec![
        lit("Kernel panic - not syncing"),
        lit("An error occurred in stage 1 of the boot process"),
        re(r"^Skipping \S+ for failure retrieving (kernel|initrd|FDT)"),
        lit("EXTLINUX FAILED"),
        lit("Starting kernel ..."),
        lit("Booting Linux on physical CPU"),
        lit("<<< NixOS Stage 1 >>>"),
        lit("<<< NixOS Stage 2 >>>"),
        re(r"<<< Welcome to NixOS \S+ \(aarch64\) - \w+ >>>"),
    ]
}

/// The steps of booting to a shell and running one command.
fn login_steps() -> Vec<Vec<Pattern>> {
    vec![
        vec![lit("Hit any key to stop autoboot")],
        vec![lit("Enter choice: ")],
        vec![re(r"^append: init=(\S+)/init ")],
        vec![lit("Starting kernel ...")],
        vec![lit("login: ")],
        vec![lit("Password: ")],
        vec![re(r"\[root@ivy:~\]# ")],
        vec![re(r"\[root@ivy:~\]# ")],
    ]
}

fn watch_indices(run: &Run) -> Vec<usize> {
    run.watches.iter().map(|(index, _)| *index).collect()
}

fn matched(run: &Run) -> Vec<(usize, String)> {
    run.expected
        .iter()
        .map(|(step, e)| (*step, e.matched.clone()))
        .collect()
}

/// The system a boot's `append: init=<system>/init` line names.
fn system_in_append(run: &Run) -> String {
    let (_, append) = &run.expected[2];
    let system = append.matched.strip_prefix("append: init=").expect("append line");
    system.strip_suffix("/init ").expect("init path").to_owned()
}

#[test]
fn healthy_boot_passes_every_stage_and_runs_a_command() {
    let run = run_steps(&recorded("r2s-busybox"), usize::MAX, watches(), &login_steps());
    assert_eq!(
        watch_indices(&run),
        [STARTING_KERNEL, LINUX, STAGE_1, STAGE_2, WELCOME]
    );
    let system = system_in_append(&run);
    assert!(system.starts_with("/nix/store/"), "{system}");
    assert_eq!(
        matched(&run),
        [
            (0, "Hit any key to stop autoboot".to_owned()),
            (1, "Enter choice: ".to_owned()),
            (2, format!("append: init={system}/init ")),
            (3, "Starting kernel ...".to_owned()),
            (4, "login: ".to_owned()),
            (5, "Password: ".to_owned()),
            (6, "[root@ivy:~]# ".to_owned()),
            (7, "[root@ivy:~]# ".to_owned()),
        ]
    );
    // The prompt's colour, window title and cursor query are gone from the captured output.
    assert_eq!(
        run.expected[7].1.before,
        format!("readlink /run/booted-system\n{system}\n\n")
    );
}

#[test]
fn second_menu_entry_boots_the_generation_it_names() {
    let run = run_steps(
        &recorded("r2s-busybox-menu-entry-2"),
        usize::MAX,
        watches(),
        &login_steps(),
    );
    assert_eq!(run.expected[1].1.line, "Enter choice: 2");
    let system = system_in_append(&run);
    assert!(
        system.ends_with("-nixos-system-ivy-25.05.20250701.1a2b3c4"),
        "{system}"
    );
    assert_eq!(
        run.expected[7].1.before,
        format!("readlink /run/booted-system\n{system}\n\n")
    );
}

#[test]
fn kernel_panic_is_reported_with_its_line_each_time_it_is_printed() {
    let run = run_steps(
        &recorded("broken-panic"),
        usize::MAX,
        watches(),
        &login_steps()[..4],
    );
    assert_eq!(watch_indices(&run), [STARTING_KERNEL, LINUX, PANIC, PANIC]);
    let (_, first) = &run.watches[2];
    assert!(
        first.starts_with('[')
            && first.ends_with("] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"),
        "{first}"
    );
    let (_, last) = &run.watches[3];
    assert!(
        last.contains("] ---[ end Kernel panic - not syncing: Attempted to kill init!"),
        "{last}"
    );
}

#[test]
fn stage_1_failure_is_reported_on_the_line_that_starts_the_dialog() {
    let run = run_steps(&recorded("broken-stage1"), usize::MAX, watches(), &login_steps());
    assert_eq!(
        watch_indices(&run),
        [STARTING_KERNEL, LINUX, STAGE_1, STAGE_1_ERROR]
    );
    assert_eq!(
        run.watches[3].1,
        "An error occurred in stage 1 of the boot process, which must mount the"
    );
    // The boot never reached a login prompt.
    assert_eq!(run.expected.len(), 4);
}

#[test]
fn missing_initrd_skips_every_entry_and_ends_at_the_u_boot_prompt() {
    let steps = [vec![lit("Enter choice: ")], vec![re(r"^=> $")]];
    let run = run_steps(&recorded("broken-initrd-missing"), usize::MAX, watches(), &steps);
    assert_eq!(
        watch_indices(&run),
        [SKIPPED_ENTRY, SKIPPED_ENTRY, SKIPPED_ENTRY, EXTLINUX_FAILED]
    );
    let skipped: Vec<&str> = run.watches[..3].iter().map(|(_, line)| line.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "Skipping nixos-default for failure retrieving initrd",
            "Skipping nixos-2-default for failure retrieving initrd",
            "Skipping nixos-1-default for failure retrieving initrd",
        ]
    );
    assert_eq!(
        matched(&run),
        [(0, "Enter choice: ".to_owned()), (1, "=> ".to_owned())]
    );
    // U-Boot's terminal-size probe (`ESC 7 ESC [r ESC [999;999H ESC [6n ESC 8`) leaves no trace.
    assert!(run.expected[1]
        .1
        .before
        .contains("\nEXTLINUX FAILED: continuing...\nNo EFI system partition\n"));
}

#[test]
fn every_recording_gives_the_same_events_in_every_chunking() {
    for (name, bytes) in all_recordings() {
        let whole = run_steps(&bytes, usize::MAX, watches(), &login_steps());
        assert!(!whole.expected.is_empty(), "{name}: no step matched");
        for size in CHUNK_SIZES {
            let run = run_steps(&bytes, size, watches(), &login_steps());
            assert_same_run(&whole, &run, &format!("{name}, chunk size {size}"));
        }
    }
}

#[test]
fn recorded_consoles_are_printable_but_for_backspaces_and_bells() {
    for (name, bytes) in all_recordings() {
        let mut matcher = Matcher::new(vec![]);
        matcher.feed(&bytes);
        let stats = matcher.byte_stats();
        // U-Boot's countdown backspaces over itself; the shell's window-title sequence ends in BEL.
        let expected = bytes.iter().filter(|&&b| b == 0x08 || b == 0x07).count() as u64;
        assert_eq!(
            (stats.total, stats.non_printable),
            (bytes.len() as u64, expected),
            "{name}"
        );
        assert!(stats.non_printable_ratio() < 0.01, "{name}: {stats:?}");
    }
}

#[test]
fn transcript_of_a_recording_holds_its_bytes_clean_lines_and_cast() {
    let bytes = recorded("r2s-busybox");
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "r2s-busybox", "r2s-busybox").unwrap();
    for (i, chunk) in bytes.chunks(7).enumerate() {
        transcript.output(Duration::from_millis(i as u64), chunk).unwrap();
    }
    let paths = transcript.finish().unwrap();

    assert_eq!(std::fs::read(&paths.raw).unwrap(), bytes);

    let log = std::fs::read_to_string(&paths.log).unwrap();
    let texts: Vec<&str> = log
        .lines()
        .map(|line| &line[line.find("] ").expect("timestamp") + 2..])
        .collect();
    assert!(texts.contains(&"<<< NixOS Stage 2 >>>"), "{log}");
    assert!(
        texts.contains(&"[root@ivy:~]# readlink /run/booted-system"),
        "{log}"
    );
    assert!(!log.contains('\x1b') && !log.contains('\r'));
    assert_eq!(texts.last(), Some(&"[root@ivy:~]# "));

    let cast = std::fs::read_to_string(&paths.cast).unwrap();
    let output: String = cast
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<(f64, String, String)>(line).unwrap())
        .map(|(_, kind, data)| {
            assert_eq!(kind, "o");
            data
        })
        .collect();
    assert_eq!(output.as_bytes(), bytes);
}
