//! The RFC 2217 console target, `--serial rfc2217://HOST:PORT`: the virtual bench's UART (a
//! pseudo-terminal carrying real QEMU's console) served by real ser2net with the telnet
//! RFC 2217 accepter a labgrid exporter uses; the harness sets the line to 1,500,000 8N1.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r2s_tests::bench::{serial_run_args, VirtualBench};
use r2s_tests::ser2net::Ser2net;
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(180);

/// A scenario file in `dir`: `steps` are `(expect, timeout)` pairs.
fn scenario_file(dir: &Path, name: &str, steps: &[(&str, &str)]) -> PathBuf {
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

/// Runs the shipped scenario `name` over ser2net on a fresh bench with `-v`: it passes, its
/// transcript names the port and the line rate, the debug log shows the RFC 2217 negotiation,
/// and the password typed (if any) is in neither output stream.
fn passes_over_ser2net(name: &str) {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let bench = VirtualBench::new(&image);
    let profile = bench.profile("10s");
    let server = Ser2net::start(bench.device(), bench.dir());
    let url = server.url();
    let transcripts = bench.dir().join("transcripts");
    let scenario = scenario(name);
    let mut args = serial_run_args(&url, &profile, &transcripts, &scenario);
    // The image on the card tells the values the shipped scenarios expect (its hostname).
    args.extend([OsStr::new("--image"), image.as_os_str(), OsStr::new("-v")]);
    let run = run_harness(&args, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!("PASS  {name}  ")),
        "{}",
        run.explain()
    );
    assert_eq!(bench.observed().power_log, ["off", "on", "off"]);
    let log = std::fs::read_to_string(transcripts.join(format!("{name}.log"))).unwrap();
    let said = format!("-- board virtual-bench on {url} at 1500000 baud 8N1");
    assert!(log.contains(&said), "{log}");
    assert!(
        run.stderr.contains("DEBUG rfc2217: ")
            && run.stderr.contains(": the bridge confirmed 1500000 baud 8N1"),
        "{}",
        run.explain()
    );
    assert!(
        !run.stdout.contains(r2s_images::ROOT_PASSWORD) && !run.stderr.contains(r2s_images::ROOT_PASSWORD),
        "{}",
        run.explain()
    );
    drop(server);
    bench.tear_down();
}

#[test]
fn boot_to_login_passes_over_rfc2217_at_1500000_baud() {
    passes_over_ser2net("boot-to-login");
}

#[test]
fn login_and_run_types_over_rfc2217() {
    passes_over_ser2net("login-and-run");
}

/// A harness started on `bench` over `server` with a scenario that waits for U-Boot and then a
/// login prompt; returns once U-Boot is in its transcript.
struct PastUboot {
    child: std::process::Child,
    command: String,
    started: Instant,
    log: PathBuf,
}

fn start_past_uboot(
    bench: &VirtualBench,
    server: &Ser2net,
    reconnect_timeout: &str,
    name: &str,
) -> PastUboot {
    let profile = bench.profile(reconnect_timeout);
    let transcripts = bench.dir().join("transcripts");
    // Output in a gap is lost, so this scenario skips the lines a gap may swallow.
    let scenario = scenario_file(bench.dir(), name, &[("U-Boot 20", "1m"), ("login:", "2m")]);
    let started = Instant::now();
    let url = server.url();
    let (child, command) = spawn_harness(&serial_run_args(&url, &profile, &transcripts, &scenario));
    let log = transcripts.join(format!("{name}.log"));
    wait_for_console(&log.with_extension("raw"), "U-Boot 20", Duration::from_secs(60));
    PastUboot {
        child,
        command,
        started,
        log,
    }
}

#[test]
fn ser2net_restarted_mid_boot_is_reconnected_and_the_gap_noted() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let server = Ser2net::start(bench.device(), bench.dir());
    let url = server.url();
    let harness = start_past_uboot(&bench, &server, "20s", "survives-restart");
    let server = server.restart(bench.device());
    let run = finish(harness.child, harness.command, harness.started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let text = std::fs::read_to_string(&harness.log).unwrap();
    assert!(
        text.contains(&format!("-- console connection {url} ({url}) dropped (")),
        "{text}"
    );
    assert!(
        text.contains(&format!("-- console connection {url} is back after ")),
        "{text}"
    );
    drop(server);
    bench.tear_down();
}

#[test]
fn ser2net_gone_for_good_fails_with_console_connection_gone() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let server = Ser2net::start(bench.device(), bench.dir());
    let url = server.url();
    let harness = start_past_uboot(&bench, &server, "2s", "never-back");
    drop(server);
    let run = finish(harness.child, harness.command, harness.started, LIMIT);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let gone = format!("console connection gone: {url}");
    assert!(
        run.stdout.contains(&format!("reason: console closed: {gone}")),
        "{}",
        run.explain()
    );
    // The board was powered off all the same.
    assert_eq!(bench.observed().power_log, ["off", "on", "off"]);
    bench.tear_down();
}

#[test]
fn no_ser2net_at_all_is_a_clear_error_naming_the_port() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("2s");
    let url = format!("rfc2217://127.0.0.1:{}", r2s_tests::ser2net::free_port());
    let transcripts = bench.dir().join("transcripts");
    let run = run_harness(
        &serial_run_args(&url, &profile, &transcripts, &scenario("boot-to-login")),
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!(
            "ERROR  boot-to-login  (could not run: {url} did not appear within 2s"
        )),
        "{}",
        run.explain()
    );
    bench.tear_down();
}

#[test]
fn attach_on_failure_over_rfc2217_hands_the_board_to_the_terminal() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let server = Ser2net::start(bench.device(), bench.dir());
    let url = server.url();
    let transcripts = bench.dir().join("transcripts");
    let scenario = bench.dir().join("fails-over-rfc2217.toml");
    std::fs::write(
        &scenario,
        "name = \"fails-over-rfc2217\"\nstart = \"login\"\ntimeout = \"3m\"\n[[steps]]\nrun = \"false\"\n",
    )
    .unwrap();
    let mut args = serial_run_args(&url, &profile, &transcripts, &scenario);
    args.push(OsStr::new("--attach-on-failure"));
    let mut terminal = r2s_tests::terminal::AtTerminal::spawn(&args, &[]);
    terminal.expect("fails-over-rfc2217: step 1 failed: ", LIMIT);
    terminal.expect("press Ctrl-] to leave", Duration::from_secs(10));
    // Typed through ser2net and the UART, answered by the board's shell.
    terminal.type_keys(b"echo over-rfc2217-$((6*7))\r");
    terminal.expect("over-rfc2217-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  fails-over-rfc2217"), "{shown}");
    assert_eq!(bench.observed().power_log.last().map(String::as_str), Some("off"));
    drop(server);
    bench.tear_down();
}
