//! The serial target on a virtual bench (see `support/bench.rs`): real QEMU booting a fixture,
//! its console on a pseudo-terminal opened at 1,500,000 baud, its power switched by commands in
//! a user board profile. Faults a bench suffers are played on the same pseudo-terminals: the
//! UART unplugged and plugged back, garbage at a wrong baud, an endless line, a second harness.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r2s_tests::bench::{serial_run_args, BenchCommand, VirtualBench};
use r2s_tests::pty::Pty;
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(180);

/// `harness run --serial DEV --board PROFILE --transcripts DIR SCENARIO` to completion.
fn run_serial(device: &Path, board: &Path, transcripts: &Path, scenario: &Path) -> Finished {
    run_harness(&serial_run_args(device, board, transcripts, scenario), LIMIT)
}

/// A board the test plays itself: a pseudo-terminal behind a stable link, and a profile for it.
struct ScriptedBoard {
    dir: tempfile::TempDir,
    device: PathBuf,
    pty: Option<Pty>,
    profile: PathBuf,
}

/// A harness started on a scripted board, holding its console.
struct Started {
    child: std::process::Child,
    command: String,
    at: Instant,
}

impl ScriptedBoard {
    /// `profile_extra` is appended to a minimal profile (1,500,000 baud, ttyS2): a
    /// `reconnect_timeout`, a `[power]` table.
    fn new(profile_extra: &str) -> ScriptedBoard {
        let dir = temp_dir();
        let device = dir.path().join("ttyUSB-scripted");
        let pty = Pty::open(&device).unwrap();
        let profile = dir.path().join("scripted.toml");
        let text = format!("name = \"scripted\"\nbaud = 1500000\nconsole = \"ttyS2\"\n{profile_extra}");
        std::fs::write(&profile, text).unwrap();
        ScriptedBoard {
            dir,
            device,
            pty: Some(pty),
            profile,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes what the board prints.
    fn print(&self, bytes: &[u8]) {
        let pty = self.pty.as_ref().expect("plugged in");
        pty.write_all(bytes, Duration::from_secs(60)).unwrap();
    }

    /// Pulls the adapter: the device node and its link go.
    fn unplug(&mut self) {
        self.pty = None;
    }

    /// `harness run` on `scenario`, waiting until it holds the console (it creates the
    /// transcript right after opening it).
    fn start(&self, scenario: &Path, transcripts: &Path) -> Started {
        let at = Instant::now();
        let (child, command) = spawn_harness(&serial_run_args(
            &self.device,
            &self.profile,
            transcripts,
            scenario,
        ));
        let stem = scenario.file_stem().unwrap().to_string_lossy();
        wait_for_file(&transcripts.join(format!("{stem}.log")), Duration::from_secs(10));
        Started { child, command, at }
    }

    /// `harness run` on `scenario` to completion.
    fn run(&self, scenario: &Path, transcripts: &Path) -> Finished {
        run_serial(&self.device, &self.profile, transcripts, scenario)
    }
}

impl Started {
    fn finish(self, limit: Duration) -> Finished {
        finish(self.child, self.command, self.at, limit)
    }
}

/// A scenario file in `dir`: `steps` are `(expect, timeout)` pairs.
fn scenario_file(dir: &Path, name: &str, steps: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = format!("name = {name:?}\n");
    for (expect, timeout) in steps {
        text.push_str(&format!(
            "\n[[steps]]\nexpect = {expect:?}\ntimeout = {timeout:?}\n"
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn boot_to_login_passes_through_the_serial_target_with_power_by_command() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let run = run_serial(bench.device(), &profile, &transcripts, &scenario("boot-to-login"));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    assert!(
        run.stdout.contains("board: virtual-bench on ") && run.stdout.contains(" at 1500000 baud"),
        "{}",
        run.explain()
    );
    // No cycle command: off then on at the start, off at the end.
    assert_eq!(bench.observed().power_log, ["off", "on", "off"]);
    assert_eq!(bench.observed().qemu_pid, None, "the board was left powered");
    let log = std::fs::read_to_string(transcripts.join("boot-to-login.log")).unwrap();
    assert!(log.contains("-- power on: "), "{log}");
    assert!(log.contains("-- power off: "), "{log}");
    bench.tear_down();
}

#[test]
fn login_and_run_types_through_the_serial_target() {
    login_and_run_on_the_bench(&fixture(r2s_images::DEFAULT_FIXTURE), &[]);
}

/// The image given to a board run may be compressed: unpacked into the cache to be read.
#[test]
fn a_board_run_reads_the_values_of_a_zstd_image() {
    let dir = temp_dir();
    let packed = compressed_fixture("zstd", "zst", dir.path());
    let cache = dir.path().join("cache");
    let run = login_and_run_on_the_bench(&packed, &[OsStr::new("--cache-dir"), cache.as_os_str()]);
    assert!(
        run.stderr
            .contains(&format!("{} is zstd-compressed: unpacked to ", packed.display())),
        "{}",
        run.explain()
    );
}

/// login-and-run on a bench booting the default fixture, with `--image image` (whose values
/// tell the hostname the scenario expects) and `extra`: passes.
fn login_and_run_on_the_bench(image: &Path, extra: &[&OsStr]) -> Finished {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let scenario = scenario("login-and-run");
    let mut args = serial_run_args(bench.device(), &profile, &transcripts, &scenario);
    // The image on the card tells the hostname the scenario expects.
    args.extend([OsStr::new("--image"), image.as_os_str()]);
    args.extend_from_slice(extra);
    let run = run_harness(&args, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  login-and-run  "), "{}", run.explain());
    bench.tear_down();
    run
}

#[test]
fn without_the_image_a_scenario_that_needs_its_values_is_skipped_on_a_board_saying_why() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let dir = bench.dir().to_owned();
    let junit = dir.join("junit.xml");
    let scenario = scenario("login-and-run");
    let mut args = serial_run_args(bench.device(), &profile, &dir, &scenario);
    args.extend([OsStr::new("--junit"), junit.as_os_str()]);
    let run = run_harness(&args, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "SKIP  login-and-run  (needs what the image does not tell: ${IMAGE_HOSTNAME}: no image was given \
             to tell (pass --image))"
        ),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("0 passed, 0 failed, 1 skipped"),
        "{}",
        run.explain()
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("failures=\"0\" errors=\"0\" skipped=\"1\""), "{xml}");
    assert!(
        xml.contains("<skipped message=\"needs what the image does not tell"),
        "{xml}"
    );
    // Nothing was switched on for a scenario that did not run.
    assert!(
        bench.observed().power_log.is_empty(),
        "{:?}",
        bench.observed().power_log
    );
    bench.tear_down();
}

#[test]
fn console_unplugged_mid_boot_and_plugged_back_is_reopened_and_the_gap_noted() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    // Output in the gap is lost, so this scenario skips the lines the gap may swallow.
    let scenario = scenario_file(
        bench.dir(),
        "survives-replug",
        &[("U-Boot 20", "1m"), ("login:", "2m")],
    );
    let started = Instant::now();
    let (child, command) = spawn_harness(&serial_run_args(
        bench.device(),
        &profile,
        &transcripts,
        &scenario,
    ));
    let log = transcripts.join("survives-replug.log");
    wait_for_console(&log.with_extension("raw"), "U-Boot 20", Duration::from_secs(60));
    bench.command(BenchCommand::Unplug).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    bench.command(BenchCommand::Plug).unwrap();
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let text = std::fs::read_to_string(&log).unwrap();
    let device = bench.device().display().to_string();
    assert!(
        text.contains(&format!("-- console device {device} went away")),
        "{text}"
    );
    assert!(
        text.contains(&format!("-- console device {device} is back after ")),
        "{text}"
    );
    bench.tear_down();
}

#[test]
fn kernel_panic_on_the_console_fails_within_two_seconds_of_the_line() {
    let bench = VirtualBench::new(&fixture("broken-panic"));
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let run = run_serial(bench.device(), &profile, &transcripts, &scenario("boot-to-login"));
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout
            .contains("reason: fatal pattern \"Kernel panic - not syncing\""),
        "{}",
        run.explain()
    );
    let log = transcripts.join("boot-to-login.log");
    let seen = log_time_of(&log, "Kernel panic - not syncing").expect("panic line in the log");
    // Both on the transcript's clock: the power commands before and after do not count.
    let failed = log_time_of(&log, "-- FAIL: fatal pattern").expect("failure noted in the log");
    let reaction = failed - seen;
    assert!(
        reaction < 2.0,
        "the run failed {reaction:.2}s after the panic\n{}",
        run.explain()
    );
    bench.tear_down();
}

#[test]
fn qemu_is_gone_when_the_bench_is() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    bench.command(BenchCommand::On).unwrap();
    let pid = bench.observed().qemu_pid.expect("QEMU started");
    assert!(process_alive(pid));
    bench.tear_down();
}

#[test]
fn console_unplugged_for_good_fails_with_console_device_gone() {
    let mut board = ScriptedBoard::new("reconnect_timeout = \"2s\"\n");
    let steps = [("U-Boot 20", "5s"), ("login:", "30s")];
    let scenario = scenario_file(board.dir.path(), "never-back", &steps);
    let transcripts = board.path("transcripts");
    let harness = board.start(&scenario, &transcripts);
    let log = transcripts.join("never-back.log");
    board.print(b"U-Boot 2023.01 (Jan 01 2023)\r\n");
    wait_for_console(
        &log.with_extension("raw"),
        "U-Boot 2023.01",
        Duration::from_secs(10),
    );
    board.unplug();
    let run = harness.finish(Duration::from_secs(30));
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let gone = format!("console device gone: {}", board.device.display());
    assert!(
        run.stdout.contains(&format!("reason: console closed: {gone}")),
        "{}",
        run.explain()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("-- {gone}")), "{text}");
}

#[test]
fn garbage_at_a_wrong_baud_rate_is_reported_as_a_baud_mismatch() {
    let board = ScriptedBoard::new("");
    // What a 1,500,000 baud receiver makes of a 115,200 baud U-Boot: framing errors, mostly
    // bytes that are neither text nor UTF-8.
    let garbage: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 0x80)
        .collect();
    board.print(&garbage);
    let scenario = scenario_file(board.dir.path(), "garbled", &[("U-Boot 20", "3s")]);
    let run = board.run(&scenario, &board.path("transcripts"));
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout
            .contains("hint: console output looks like a baud-rate mismatch: ")
            && run.stdout.contains(" bytes were not printable at 1500000 baud"),
        "{}",
        run.explain()
    );
}

#[test]
fn ten_megabytes_without_a_newline_neither_hang_nor_grow_the_harness() {
    // A run on a one-byte line first: its peak is what the harness binary itself costs, which
    // grows with the binary (a debug build) and is not what this test is about.
    let (_, baseline_kib) = flood_run(1);
    let (run, flood_kib) = flood_run(10 * 1024 * 1024);
    // Bounded buffers (the matcher's retained text, line context, the read buffer) come to
    // about 5 MiB; holding on to the 10 MiB line would add at least 10 MiB.
    let grown_kib = flood_kib - baseline_kib;
    assert!(
        grown_kib < 8 * 1024,
        "a 10 MiB line grew the harness by {grown_kib} KiB (peak {flood_kib} KiB, \
         {baseline_kib} KiB on a one-byte line)\n{}",
        run.explain()
    );
}

/// Runs a scenario that expects text sent after `bytes` bytes of one line; returns the run and
/// the largest peak resident set of this process's children so far, in KiB.
fn flood_run(bytes: usize) -> (Finished, i64) {
    let board = ScriptedBoard::new("");
    // The expected text ends the stream, so a pass means every byte was read.
    let scenario = scenario_file(board.dir.path(), "flood", &[("U-Boot 2023.01 ready", "60s")]);
    let transcripts = board.path("transcripts");
    let harness = board.start(&scenario, &transcripts);
    let line = vec![b'x'; bytes];
    board.print(&line);
    let tail = b"\r\nU-Boot 2023.01 ready";
    board.print(tail);
    let run = harness.finish(Duration::from_secs(90));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    // Every byte arrived: the raw transcript holds exactly what the board sent.
    let raw = std::fs::metadata(transcripts.join("flood.raw")).unwrap().len();
    assert_eq!(raw, (line.len() + tail.len()) as u64);
    (run, children_peak_rss_kib())
}

/// The largest peak resident set of this process's waited-for children, in KiB.
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss
}

#[test]
fn second_harness_on_the_same_port_is_refused_at_once() {
    let board = ScriptedBoard::new("");
    let scenario = scenario_file(board.dir.path(), "holder", &[("never printed", "60s")]);
    let mut first = board.start(&scenario, &board.path("first"));

    let second = board.run(&scenario, &board.path("second"));
    assert_eq!(second.code(), Some(2), "{}", second.explain());
    assert!(second.elapsed < Duration::from_secs(2), "{}", second.explain());
    // The scenario could not run: an error result, not a verdict on the board.
    assert!(
        second.stdout.contains(&format!(
            "ERROR  holder  (could not run: {} is in use by another program",
            board.device.display()
        )),
        "{}",
        second.explain()
    );
    // The refused run still leaves a transcript that says why.
    let log = std::fs::read_to_string(board.path("second").join("holder.log")).unwrap();
    assert!(
        log.contains("-- ERROR: ") && log.contains("is in use by another program"),
        "{log}"
    );

    let _ = first.child.kill();
    let _ = first.finish(Duration::from_secs(10));
}

#[test]
fn console_passes_keys_to_the_board_and_leaves_on_ctrl_close_bracket() {
    use std::io::Write;
    let dir = temp_dir();
    let device = dir.path().join("ttyUSB-console");
    let pty = Pty::open(&device).unwrap();
    let transcripts = dir.path().join("transcripts");
    let (mut child, command) = spawn_console_on(&device, &transcripts);
    let started = Instant::now();
    wait_for_file(&transcripts.join("console.log"), Duration::from_secs(10));
    pty.write_all(b"U-Boot 2023.01\r\n=> ", Duration::from_secs(5))
        .unwrap();
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(b"version\r").unwrap();
    keys.flush().unwrap();
    let mut typed = Vec::new();
    let mut buf = [0u8; 256];
    while !typed.ends_with(b"version\r") && started.elapsed() < Duration::from_secs(10) {
        match r2s_tests::pty::read_some(pty.master(), &mut buf) {
            Ok(n) if n > 0 => typed.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(typed, b"version\r", "keys did not reach the board");
    // The board's output and the keys travel separate ways: leave only once the terminal has
    // shown what the board printed, as a user would.
    let shown = read_in_background(child.stdout.take().unwrap());
    let banner = "U-Boot 2023.01\r\n=> ";
    while !shown.lock().unwrap().contains(banner) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    keys.write_all(&[0x1d]).unwrap();
    keys.flush().unwrap();
    let run = finish(child, command, started, Duration::from_secs(10));
    let shown = shown.lock().unwrap().clone();
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        shown.contains(banner),
        "terminal showed {shown:?}\n{}",
        run.explain()
    );
    assert!(run.stderr.contains("Press Ctrl-] to leave."), "{}", run.explain());
    assert!(
        run.stderr.contains("harness console: left (Ctrl-])"),
        "{}",
        run.explain()
    );
    let log = std::fs::read_to_string(transcripts.join("console.log")).unwrap();
    assert!(log.contains("] U-Boot 2023.01"), "{log}");
    assert!(log.contains("] >> version\\r"), "{log}");
}

#[test]
fn console_boots_an_image_in_qemu_and_stops_it_on_leaving() {
    use std::io::{Read, Write};
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let mut child = std::process::Command::new(harness_bin())
        .arg("console")
        .arg("--image")
        .arg(&image)
        .arg("--transcripts")
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let started = Instant::now();
    let logged_in = || memchr::memmem::find(&seen.lock().unwrap(), b"login: ").is_some();
    while !logged_in() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let qemu = qemu_children(child.id());
    assert!(logged_in(), "{}", String::from_utf8_lossy(&seen.lock().unwrap()));
    assert_eq!(qemu.len(), 1, "one QEMU while attached");
    child.stdin.as_mut().unwrap().write_all(&[0x1d]).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{status}");
    assert!(!process_alive(qemu[0]), "QEMU outlived the console");
}

#[test]
fn failing_power_command_fails_the_run_with_its_stderr() {
    let board = ScriptedBoard::new(
        "[power]\non = [\"sh\", \"-c\", \"echo 'usbrelay: no relay board found' >&2; exit 1\"]\n",
    );
    let scenario = scenario_file(board.dir.path(), "powered", &[("U-Boot 20", "30s")]);
    let run = board.run(&scenario, &board.path("transcripts"));
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.elapsed < Duration::from_secs(10), "{}", run.explain());
    assert!(
        run.stdout.contains("expected: power the board on")
            && run
                .stdout
                .contains("(exit status: 1): usbrelay: no relay board found"),
        "{}",
        run.explain()
    );
}

#[test]
fn malformed_board_profile_is_refused_naming_file_line_and_column() {
    let dir = temp_dir();
    let device = dir.path().join("ttyUSB-unused");
    let profile = dir.path().join("typo.toml");
    std::fs::write(
        &profile,
        "name = \"typo\"\nbaud = \"fast\"\nconsole = \"ttyS2\"\n",
    )
    .unwrap();
    let run = run_serial(
        &device,
        &profile,
        &dir.path().join("transcripts"),
        &scenario("boot-to-login"),
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: {}:2:8: invalid type: string \"fast\"",
            profile.display()
        )),
        "{}",
        run.explain()
    );
}

#[test]
fn manual_power_asks_the_operator_and_starts_at_the_bootloader_banner() {
    let board = ScriptedBoard::new("[power]\nmanual = true\n");
    let scenario = scenario_file(board.dir.path(), "by-hand", &[("U-Boot 20", "30s")]);
    let transcripts = board.path("transcripts");
    let harness = board.start(&scenario, &transcripts);
    // The operator takes a while; the scenario's clock starts at the banner, not before.
    std::thread::sleep(Duration::from_millis(1500));
    board.print(b"DDR version 1.16 20190528\r\nU-Boot 2023.01\r\n");
    let run = harness.finish(Duration::from_secs(30));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: power-cycle board scripted now; waiting up to 5m for its bootloader on {}",
            board.device.display()
        )),
        "{}",
        run.explain()
    );
    let banner = log_time_of(&transcripts.join("by-hand.log"), "DDR version").expect("banner logged");
    assert!(banner < 0.5, "scenario clock started {banner}s before the banner");
}

#[test]
fn sigterm_mid_run_still_powers_the_board_off() {
    let marks = temp_dir();
    let (on, off) = (marks.path().join("powered-on"), marks.path().join("powered-off"));
    let touch = |path: &Path| format!("[\"touch\", {:?}]", path.display().to_string());
    let board = ScriptedBoard::new(&format!(
        "[power]\non = {}\noff = {}\ncycle = {}\n",
        touch(&on),
        touch(&off),
        touch(&on)
    ));
    let scenario = scenario_file(board.dir.path(), "interrupted", &[("never printed", "60s")]);
    let harness = board.start(&scenario, &board.path("transcripts"));
    wait_for_file(&on, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!off.exists(), "powered off before the run ended");
    // SAFETY: signals a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(harness.child.id() as i32, libc::SIGTERM) }, 0);
    let run = harness.finish(Duration::from_secs(20));
    assert_eq!(run.code(), Some(143), "{}", run.explain());
    assert!(off.exists(), "the board was left on\n{}", run.explain());
}

#[test]
fn a_board_already_at_a_shell_is_kept_for_the_next_login_start_scenario() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    // Power on only: the board stays up after each scenario, as a bench without a relay's
    // `off` leaves it.
    let with_off = std::fs::read_to_string(bench.profile("10s")).unwrap();
    let text: String = with_off
        .lines()
        .filter(|line| !line.starts_with("off = "))
        .map(|line| format!("{line}\n"))
        .collect();
    let profile = bench.dir().join("power-on-only.toml");
    std::fs::write(&profile, text).unwrap();
    let shipped = std::fs::read_to_string(scenario("shell-checks")).unwrap();
    let first = bench.dir().join("first.toml");
    let second = bench.dir().join("second.toml");
    std::fs::write(
        &first,
        shipped.replace("name = \"shell-checks\"", "name = \"first\""),
    )
    .unwrap();
    std::fs::write(
        &second,
        shipped.replace("name = \"shell-checks\"", "name = \"second\""),
    )
    .unwrap();
    let transcripts = bench.dir().join("transcripts");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let mut args = serial_run_args(bench.device(), &profile, &transcripts, &first);
    args.extend([second.as_os_str(), OsStr::new("--image"), image.as_os_str()]);
    let run = run_harness(&args, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  first  "), "{}", run.explain());
    assert!(run.stdout.contains("PASS  second  "), "{}", run.explain());
    // The first scenario found the board off and booted it; the second found its shell.
    assert_eq!(bench.observed().power_log, ["on"]);
    let first_log = std::fs::read_to_string(transcripts.join("first.log")).unwrap();
    assert!(first_log.contains("-- power on: "), "{first_log}");
    let second_log = std::fs::read_to_string(transcripts.join("second.log")).unwrap();
    assert!(
        second_log.contains("the board answered at a shell; kept as it is, no power switched"),
        "{second_log}"
    );
    assert!(!second_log.contains("-- power on: "), "{second_log}");
    bench.tear_down();
}

#[test]
fn menu_by_label_on_a_board_reads_the_labels_from_the_image_given() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let bench = VirtualBench::new(&image);
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let menu = scenario("extlinux-menu");
    let mut args = serial_run_args(bench.device(), &profile, &transcripts, &menu);
    args.extend([OsStr::new("--image"), image.as_os_str()]);
    let run = run_harness(&args, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  extlinux-menu  "), "{}", run.explain());
    bench.tear_down();
}

#[test]
fn attach_on_failure_on_a_serial_board_hands_its_uart_to_the_terminal() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let scenario = bench.dir().join("fails-on-board.toml");
    std::fs::write(
        &scenario,
        "name = \"fails-on-board\"\nstart = \"login\"\ntimeout = \"3m\"\n[[steps]]\nrun = \"false\"\n",
    )
    .unwrap();
    let mut args = serial_run_args(bench.device(), &profile, &transcripts, &scenario);
    args.push(OsStr::new("--attach-on-failure"));
    let mut terminal = r2s_tests::terminal::AtTerminal::spawn(&args, &[]);
    terminal.expect("fails-on-board: step 1 failed: ", LIMIT);
    terminal.expect("press Ctrl-] to leave", Duration::from_secs(10));
    // Typed through the UART at 1,500,000 baud, answered by the board's shell.
    terminal.type_keys(b"echo uart-$((6*7))\r");
    terminal.expect("uart-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  fails-on-board"), "{shown}");
    // The board is powered off after the person left, as after any run.
    assert_eq!(bench.observed().power_log.last().map(String::as_str), Some("off"));
    bench.tear_down();
}
