//! `--place NAME`: a board in a labgrid farm. A real coordinator and exporter on localhost
//! (see `support/labgrid.rs`) export the virtual bench: its pseudo-terminal through the ser2net
//! the exporter starts on acquire (RFC 2217), its power through a NetworkPowerPort. The harness
//! acquires the place, runs, and releases it however the run ends.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2s_tests::bench::VirtualBench;
use r2s_tests::labgrid::{path_with_labgrid, waiting_scenario, Farm, PLACE};
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

fn place_args<'a>(
    place: &'a str,
    farm: &'a Farm,
    profile: &'a Path,
    transcripts: &'a Path,
    scenario: &'a Path,
) -> Vec<&'a OsStr> {
    vec![
        OsStr::new("-v"),
        OsStr::new("run"),
        OsStr::new("--place"),
        OsStr::new(place),
        OsStr::new("--coordinator"),
        OsStr::new(farm.coordinator()),
        OsStr::new("--board"),
        profile.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
        scenario.as_os_str(),
    ]
}

/// The harness on the farm's place, labgrid-client on its PATH.
fn spawn_on_place(
    farm: &Farm,
    profile: &Path,
    transcripts: &Path,
    scenario: &Path,
) -> (std::process::Child, String) {
    spawn_on(PLACE, &[], farm, profile, transcripts, scenario)
}

/// The harness on `place` (a name or `+TOKEN`), labgrid-client on its PATH, `env` added.
fn spawn_on(
    place: &str,
    env: &[(&str, &str)],
    farm: &Farm,
    profile: &Path,
    transcripts: &Path,
    scenario: &Path,
) -> (std::process::Child, String) {
    let path: OsString = path_with_labgrid();
    let mut all: Vec<(&str, &OsStr)> = vec![("PATH", &path)];
    all.extend(env.iter().map(|(k, v)| (*k, OsStr::new(v))));
    spawn_harness_env(&place_args(place, farm, profile, transcripts, scenario), &all)
}

fn run_on_place(farm: &Farm, profile: &Path, transcripts: &Path, scenario: &Path) -> Finished {
    run_on(PLACE, &[], farm, profile, transcripts, scenario)
}

fn run_on(
    place: &str,
    env: &[(&str, &str)],
    farm: &Farm,
    profile: &Path,
    transcripts: &Path,
    scenario: &Path,
) -> Finished {
    let started = Instant::now();
    let (child, command) = spawn_on(place, env, farm, profile, transcripts, scenario);
    finish(child, command, started, LIMIT)
}

/// The place acquired by alice on ci-runner-2.
fn acquire_as_alice(farm: &Farm) {
    as_alice(farm, "acquire");
}

/// `labgrid-client -p PLACE WHAT` as alice on ci-runner-2, which succeeds.
fn as_alice(farm: &Farm, what: &str) {
    let theirs = [("LG_USERNAME", "alice"), ("LG_HOSTNAME", "ci-runner-2")];
    let done = farm.place_client_as(&[what], &theirs);
    assert!(
        done.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// The run ended at once with exit 2, naming alice as the place's holder.
fn assert_refused_naming_alice(run: &Finished) {
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains(&format!("place {PLACE} is held by ci-runner-2/alice")),
        "{}",
        run.explain()
    );
}

/// The virtual bench booting the default fixture, its board profile, and a farm exporting it.
fn bench_farm() -> (Arc<VirtualBench>, PathBuf, Farm) {
    let bench = Arc::new(VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE)));
    let profile = bench.profile("10s");
    let farm = Farm::start(bench.clone(), bench.dir());
    (bench, profile, farm)
}

/// Drops the farm, then the bench, and checks that every QEMU it started is gone.
fn tear_down(farm: Farm, bench: Arc<VirtualBench>) {
    drop(farm);
    let pids = bench.observed().all_qemu_pids;
    drop(bench);
    for pid in pids {
        assert!(!process_alive(pid), "QEMU {pid} outlived the bench");
    }
}

#[test]
fn boot_to_login_runs_on_a_labgrid_place_and_releases_it() {
    let (bench, profile, farm) = bench_farm();
    let transcripts = bench.dir().join("transcripts");
    let run = run_on_place(&farm, &profile, &transcripts, &scenario("boot-to-login"));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    assert!(
        run.stdout
            .contains(&format!("board: virtual-bench on place {PLACE} at 1500000 baud")),
        "{}",
        run.explain()
    );
    // `power cycle` is off then on; the run ends with off.
    assert_eq!(*farm.power_log.lock().unwrap(), ["off", "on", "off"]);
    let log = std::fs::read_to_string(transcripts.join("boot-to-login.log")).unwrap();
    assert!(log.contains(&format!("-p {PLACE} power cycle")), "{log}");
    assert_eq!(farm.holder(), "None", "the place was not released");
    // -v: the labgrid client calls and the power commands are in the debug log.
    for call in [
        "DEBUG labgrid: acquire: ",
        "DEBUG labgrid: release: ",
        "DEBUG power: cycle: ",
    ] {
        assert!(
            run.stderr.contains(call),
            "{call:?} not logged\n{}",
            run.explain()
        );
    }
    tear_down(farm, bench);
}

#[test]
fn a_place_the_user_acquired_beforehand_is_used_and_left_acquired() {
    let (bench, profile, farm) = bench_farm();
    let acquired = farm.place_client(&["acquire"]);
    assert!(
        acquired.status.success(),
        "{}",
        String::from_utf8_lossy(&acquired.stderr)
    );
    let ours = farm.holder();
    let transcripts = bench.dir().join("transcripts");
    let run = run_on_place(&farm, &profile, &transcripts, &scenario("boot-to-login"));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    assert_eq!(farm.holder(), ours, "the user's place was released");
    assert!(
        !run.stderr.contains("DEBUG labgrid: release: "),
        "{}",
        run.explain()
    );
    assert_eq!(*farm.power_log.lock().unwrap(), ["off", "on", "off"]);
    tear_down(farm, bench);
}

/// `labgrid-client reserve --wait` → `harness run --place +TOKEN` → release, as a CI job runs.
#[test]
fn a_reservation_token_names_the_place_as_labgrid_client_resolves_it() {
    let (bench, profile, farm) = bench_farm();
    let reserved = farm.client(&["reserve", "--wait", "--shell", &format!("name={PLACE}")]);
    let shell = String::from_utf8_lossy(&reserved.stdout).into_owned();
    assert!(
        reserved.status.success(),
        "{shell}{}",
        String::from_utf8_lossy(&reserved.stderr)
    );
    let token = shell
        .lines()
        .find_map(|line| line.trim().strip_prefix("export LG_TOKEN="))
        .unwrap_or_else(|| panic!("no token in {shell}"))
        .to_owned();
    let transcripts = bench.dir().join("transcripts");
    // `+` alone takes the token from LG_TOKEN, as labgrid-client does.
    for (place, env) in [
        (format!("+{token}"), vec![]),
        ("+".to_owned(), vec![("LG_TOKEN", token.as_str())]),
    ] {
        let run = run_on(
            &place,
            &env,
            &farm,
            &profile,
            &transcripts,
            &scenario("boot-to-login"),
        );
        assert_eq!(run.code(), Some(0), "{}", run.explain());
        assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
        assert_eq!(farm.holder(), "None", "the reserved place was not released");
    }
    tear_down(farm, bench);
}

#[test]
fn a_place_held_by_someone_else_is_refused_naming_the_holder() {
    let (bench, profile, farm) = bench_farm();
    acquire_as_alice(&farm);
    let transcripts = bench.dir().join("transcripts");
    let run = run_on_place(&farm, &profile, &transcripts, &scenario("boot-to-login"));
    assert_refused_naming_alice(&run);
    assert!(
        farm.power_log.lock().unwrap().is_empty(),
        "a held place's power was switched"
    );
    assert_eq!(farm.holder(), "ci-runner-2/alice");
    tear_down(farm, bench);
}

#[test]
fn lg_place_names_the_place_when_run_is_given_no_target() {
    let (bench, profile, farm) = bench_farm();
    acquire_as_alice(&farm);
    let path: OsString = path_with_labgrid();
    let transcripts = bench.dir().join("transcripts");
    let boot = scenario("boot-to-login");
    let args = [
        OsStr::new("run"),
        OsStr::new("--no-project"),
        OsStr::new("--board"),
        profile.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
        boot.as_os_str(),
    ];
    let env = [
        ("PATH", path.as_os_str()),
        ("LG_PLACE", OsStr::new(PLACE)),
        ("LG_COORDINATOR", OsStr::new(farm.coordinator())),
    ];
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&args, &env);
    let run = finish(child, command, started, LIMIT);
    // Refused by the coordinator naming alice: the run went to the place $LG_PLACE names.
    assert_refused_naming_alice(&run);
    tear_down(farm, bench);
}

#[test]
fn a_second_users_run_on_a_held_place_is_refused_and_sigterm_releases_it() {
    let (bench, profile, farm) = bench_farm();
    let transcripts = bench.dir().join("transcripts");
    let dir = bench.dir().to_owned();
    let waits = waiting_scenario(&dir);
    let started = Instant::now();
    let (first, command) = spawn_on_place(&farm, &profile, &transcripts, &waits);
    let log = transcripts.join("waits.log");
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("U-Boot 20")) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the first run never reached U-Boot"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bob = [("LG_USERNAME", "bob")];
    let second = run_on(
        PLACE,
        &bob,
        &farm,
        &profile,
        &dir.join("second"),
        &scenario("boot-to-login"),
    );
    assert_eq!(second.code(), Some(2), "{}", second.explain());
    assert!(
        second.stderr.contains(&format!("place {PLACE} is held by ")),
        "{}",
        second.explain()
    );
    // SAFETY: signals a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGTERM) }, 0);
    let first = finish(first, command, started, LIMIT);
    assert_eq!(first.code(), Some(143), "{}", first.explain());
    assert_eq!(
        farm.holder(),
        "None",
        "SIGTERM left the place acquired\n{}",
        first.explain()
    );
    assert_eq!(
        farm.power_log.lock().unwrap().last().map(String::as_str),
        Some("off")
    );
    tear_down(farm, bench);
}

#[test]
fn a_place_whose_serial_port_speaks_raw_tcp_is_reached_through_the_raw_tcp_target() {
    let bench = Arc::new(VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE)));
    let profile = bench.profile("10s");
    let device = std::fs::canonicalize(bench.device()).expect("the bench's pty");
    let server = r2s_tests::ser2net::Ser2net::start_raw(&device, bench.dir());
    let farm = Farm::start_raw(bench.clone(), bench.dir(), server.port());
    let transcripts = bench.dir().join("transcripts");
    let run = run_on_place(&farm, &profile, &transcripts, &scenario("boot-to-login"));
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    let log = std::fs::read_to_string(transcripts.join("boot-to-login.log")).unwrap();
    assert!(
        log.contains(&format!("tcp://127.0.0.1:{}", server.port())),
        "the console is the raw TCP port:\n{log}"
    );
    drop(server);
    tear_down(farm, bench);
}

/// The harness on the farm's place with `--place-wait WAIT`, as bob on this host.
fn spawn_waiting(
    wait: &str,
    farm: &Farm,
    profile: &Path,
    transcripts: &Path,
    scenario: &Path,
) -> (std::process::Child, String) {
    let mut args = place_args(PLACE, farm, profile, transcripts, scenario);
    args.splice(4..4, [OsStr::new("--place-wait"), OsStr::new(wait)]);
    let path: OsString = path_with_labgrid();
    spawn_harness_env(&args, &[("PATH", &path), ("LG_USERNAME", OsStr::new("bob"))])
}

/// A farm whose place alice holds, and bob's run of boot-to-login on it with `--place-wait
/// WAIT`, started when the returned instant was taken.
fn run_behind_alice(wait: &str) -> (Arc<VirtualBench>, Farm, std::process::Child, String, Instant) {
    let (bench, profile, farm) = bench_farm();
    acquire_as_alice(&farm);
    let transcripts = bench.dir().join("transcripts");
    let started = Instant::now();
    let (child, command) = spawn_waiting(wait, &farm, &profile, &transcripts, &scenario("boot-to-login"));
    (bench, farm, child, command, started)
}

fn assert_no_reservation(farm: &Farm) {
    assert_eq!(
        farm.reservations(),
        Vec::<String>::new(),
        "the reservation was left behind"
    );
}

/// Waits until the coordinator lists one reservation, waiting; returns its token.
fn await_waiting_reservation(farm: &Farm, started: Instant) -> String {
    loop {
        let reservations = farm.reservations();
        if let [one] = reservations.as_slice() {
            if let Some(token) = one.strip_suffix(" waiting") {
                return token.to_owned();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no waiting reservation: {reservations:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_run_with_place_wait_reserves_a_held_place_and_runs_once_its_holder_releases_it() {
    let (bench, farm, child, command, started) = run_behind_alice("2m");
    await_waiting_reservation(&farm, started);
    // Long enough for a look at the holder after the first.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        farm.power_log.lock().unwrap().is_empty(),
        "a held place's power was switched"
    );
    as_alice(&farm, "release");
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    let waiting = format!("harness: waiting for place {PLACE}: held by ci-runner-2/alice; waited ");
    let shown: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with(&waiting)).collect();
    // Seconds of waiting: one line, its reminder not due yet.
    assert!(
        matches!(shown.as_slice(), [line] if line.ends_with("s of 2m")),
        "{}",
        run.explain()
    );
    // The board line names the place, not the reservation's token.
    assert!(
        run.stdout
            .contains(&format!("board: virtual-bench on place {PLACE} at ")),
        "{}",
        run.explain()
    );
    assert_eq!(farm.holder(), "None", "the place was not released");
    assert_no_reservation(&farm);
    assert_eq!(*farm.power_log.lock().unwrap(), ["off", "on", "off"]);
    tear_down(farm, bench);
}

#[test]
fn a_place_wait_that_runs_out_ends_with_exit_2_naming_the_holder_and_cancels_the_reservation() {
    let (bench, farm, child, command, started) = run_behind_alice("5s");
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: place {PLACE} is still held by ci-runner-2/alice after waiting 5s; the reservation is cancelled"
        )),
        "{}",
        run.explain()
    );
    assert!(run.elapsed >= Duration::from_secs(5), "{}", run.explain());
    assert_no_reservation(&farm);
    assert_eq!(farm.holder(), "ci-runner-2/alice");
    assert!(
        farm.power_log.lock().unwrap().is_empty(),
        "a held place's power was switched"
    );
    tear_down(farm, bench);
}

#[test]
fn sigterm_during_a_place_wait_cancels_the_reservation() {
    let (bench, farm, child, command, started) = run_behind_alice("2m");
    await_waiting_reservation(&farm, started);
    // SAFETY: signals a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(143), "{}", run.explain());
    assert_no_reservation(&farm);
    assert_eq!(farm.holder(), "ci-runner-2/alice");
    tear_down(farm, bench);
}

/// A labgrid environment file's ShellDriver gives the login its prompt, user and password (and
/// its UBootDriver U-Boot's prompt):
/// the run has no R2S_PASSWORD, and the password is in no output, transcript or report.
#[test]
fn a_labgrid_environment_files_shell_driver_gives_the_login_its_prompt_user_and_password() {
    let (bench, profile, farm) = bench_farm();
    let dir = bench.dir().to_owned();
    let env_file = dir.join("r2s-env.yaml");
    std::fs::write(
        &env_file,
        format!(
            "targets:\n  main:\n    resources:\n      RemotePlace:\n        name: {PLACE}\n    drivers:\n    \
             - SerialDriver: {{}}\n    - ShellDriver:\n        prompt: 'root@ivy:[^\\]]*\\]# '\n        \
             login_prompt: ' login: '\n        username: root\n        password: '{}'\n    - UBootDriver:\n        \
             prompt: '=> '\n",
            r2s_images::ROOT_PASSWORD
        ),
    )
    .unwrap();
    let checks = dir.join("login-and-echo.toml");
    std::fs::write(
        &checks,
        "name = \"login-and-echo\"\n\n[[steps]]\nlogin = { user = \"root\", password_env = \"R2S_PASSWORD\" }\n\
         timeout = \"8m\"\n\n[[steps]]\nrun = \"echo lg-env-ok\"\noutput = \"^lg-env-ok$\"\ntimeout = \"30s\"\n",
    )
    .unwrap();
    let transcripts = dir.join("transcripts");
    let mut args = place_args(PLACE, &farm, &profile, &transcripts, &checks);
    args.splice(4..4, [OsStr::new("--lg-env"), env_file.as_os_str()]);
    let path: OsString = path_with_labgrid();
    let started = Instant::now();
    let (child, command) = spawn_harness_env_without(&args, &[("PATH", &path)], &["R2S_PASSWORD"]);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  login-and-echo  "), "{}", run.explain());
    let told = format!(
        "labgrid environment {}: shell prompt /root@ivy:[^\\]]*\\]# /, user root, a password, U-Boot prompt \"=> \"",
        env_file.display()
    );
    assert!(run.stdout.contains(&told), "{}", run.explain());
    let password = r2s_images::ROOT_PASSWORD;
    assert!(
        !run.stdout.contains(password) && !run.stderr.contains(password),
        "{}",
        run.explain()
    );
    for entry in std::fs::read_dir(&transcripts).unwrap() {
        let file = entry.unwrap().path();
        if file.is_file() {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(password.len()).any(|w| w == password.as_bytes()),
                "the password is in {}",
                file.display()
            );
        }
    }
    tear_down(farm, bench);
}

#[test]
fn attach_on_failure_on_a_place_hands_the_board_to_the_terminal_then_releases_the_place() {
    let (bench, profile, farm) = bench_farm();
    let transcripts = bench.dir().join("transcripts");
    let scenario = bench.dir().join("fails-on-place.toml");
    std::fs::write(
        &scenario,
        "name = \"fails-on-place\"\nstart = \"login\"\ntimeout = \"3m\"\n[[steps]]\nrun = \"false\"\n",
    )
    .unwrap();
    let mut args = place_args(PLACE, &farm, &profile, &transcripts, &scenario);
    args.push(OsStr::new("--attach-on-failure"));
    let path = path_with_labgrid();
    let mut terminal = r2s_tests::terminal::AtTerminal::spawn(&args, &[("PATH", path.as_os_str())]);
    terminal.expect("fails-on-place: step 1 failed: ", LIMIT);
    terminal.expect("press Ctrl-] to leave", Duration::from_secs(10));
    // Typed through the exporter's ser2net and the UART, answered by the board's shell; the
    // place is still held while a person is at its console.
    terminal.type_keys(b"echo on-place-$((6*7))\r");
    terminal.expect("on-place-42", Duration::from_secs(30));
    assert_ne!(
        farm.holder(),
        "None",
        "the place was released during the hand-over"
    );
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  fails-on-place"), "{shown}");
    assert_eq!(
        farm.power_log.lock().unwrap().last().map(String::as_str),
        Some("off")
    );
    assert_eq!(farm.holder(), "None", "the place was not released");
    let log = std::fs::read_to_string(transcripts.join("fails-on-place.log")).unwrap();
    assert!(log.contains("on-place-42"), "{log}");
    tear_down(farm, bench);
}
