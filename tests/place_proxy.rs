//! `--place` behind an SSH proxy (`LG_PROXY`, `--proxy`): the farm (coordinator, exporter, the
//! ser2net it starts, the power relay) runs in a network namespace whose only way in is a real
//! sshd (see `support/gateway.rs`). The exporter's serial port is unreachable from the host;
//! labgrid-client reaches the coordinator and the power switch through the gateway itself, and
//! the harness must reach the serial port through an SSH forward, as labgrid-client would.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2s_tests::bench::VirtualBench;
use r2s_tests::gateway::{exporter_fqdn, Gateway, GATEWAY};
use r2s_tests::labgrid::{path_with_labgrid, waiting_scenario, Farm, PLACE};
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

/// The port of the place's ser2net while the farm's own client holds the place.
fn serial_port_while_acquired(farm: &Farm) -> u16 {
    let acquired = farm.place_client(&["acquire"]);
    assert!(
        acquired.status.success(),
        "{}",
        String::from_utf8_lossy(&acquired.stderr)
    );
    let shown = farm.place_client(&["show"]);
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    let port = text
        .split("'cls': 'NetworkSerialPort'")
        .nth(1)
        .and_then(|rest| rest.split("'port': ").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no serial port in\n{text}"));
    port
}

/// The harness run on the place with `args` added and `env` set, the gateway's `ssh` and
/// labgrid-client on its PATH.
fn run_behind(
    gateway: &Gateway,
    farm: &Farm,
    bench: &VirtualBench,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Finished {
    let started = Instant::now();
    let (child, command) = spawn_behind(gateway, farm, bench, extra, env, &scenario("boot-to-login"));
    finish(child, command, started, LIMIT)
}

/// [`run_behind`] on `scenario_file`, not waited for.
fn spawn_behind(
    gateway: &Gateway,
    farm: &Farm,
    bench: &VirtualBench,
    extra: &[&str],
    env: &[(&str, &str)],
    scenario_file: &Path,
) -> (std::process::Child, String) {
    let profile = bench.profile("10s");
    let transcripts = bench.dir().join("transcripts");
    let mut paths = vec![gateway.bin().to_owned()];
    paths.extend(std::env::split_paths(&path_with_labgrid()));
    let path: OsString = std::env::join_paths(paths).unwrap();
    let mut args: Vec<&OsStr> = ["-v", "run", "--place", PLACE, "--coordinator", farm.coordinator()]
        .map(OsStr::new)
        .to_vec();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("--board"),
        profile.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
        scenario_file.as_os_str(),
    ]);
    let mut all: Vec<(&str, &OsStr)> = vec![("PATH", &path)];
    all.extend(env.iter().map(|(k, v)| (*k, OsStr::new(v))));
    spawn_harness_env(&args, &all)
}

/// The SSH forwards still running.
fn forwards_left(gateway: &Gateway) -> Vec<String> {
    gateway
        .ssh_clients()
        .into_iter()
        .filter(|client| client.contains(" -L 127.0.0.1:"))
        .collect()
}

/// The local and remote ports of the forward the harness logged (`forward: 127.0.0.1:L ->
/// HOST:P through PROXY`), the last one made.
fn forward_in(run: &Finished) -> (u16, String) {
    let line = run
        .stderr
        .lines()
        .rev()
        .find(|line| line.contains("labgrid: forward: 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no forward logged\n{}", run.explain()));
    let (_, rest) = line.split_once("forward: 127.0.0.1:").unwrap();
    let local = rest.split(' ').next().unwrap().parse().unwrap();
    let target = rest
        .split(" -> ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    (local, target)
}

/// The run passed on the place through the gateway: boot to login, the place released, the
/// serial port's connection forwarded by sshd, no forward left running.
fn assert_passed_through_the_gateway(run: &Finished, farm: &Farm, gateway: &Gateway) {
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    assert_eq!(farm.holder(), "None", "the place was not released");
    assert_eq!(*farm.power_log.lock().unwrap(), ["off", "on", "off"]);
    let (local, target) = forward_in(run);
    let (host, port) = target.rsplit_once(':').unwrap();
    assert_eq!(host, "127.0.0.1");
    assert!(
        gateway
            .sshd_log()
            .contains(&format!("target 127.0.0.1 port {port}")),
        "sshd forwarded no connection to the serial port {port}:\n{}",
        gateway.sshd_log()
    );
    // -v: the console's RFC 2217 connection went to the forward's local port.
    assert!(
        run.stderr
            .contains(&format!("127.0.0.1:{local}: offering COM-PORT-OPTION")),
        "the console is not the forward\n{}",
        run.explain()
    );
    let left = forwards_left(gateway);
    assert!(left.is_empty(), "forwards left running: {left:?}");
}

/// Drops the farm, its gateway, then the bench, and checks that every QEMU it started is gone.
fn tear_down(farm: Farm, gateway: Gateway, bench: Arc<VirtualBench>) {
    drop(farm);
    drop(gateway);
    let pids = bench.observed().all_qemu_pids;
    drop(bench);
    for pid in pids {
        assert!(!process_alive(pid), "QEMU {pid} outlived the bench");
    }
}

#[test]
fn a_place_behind_an_ssh_proxy_boots_to_login_through_a_forward() {
    let bench = Arc::new(VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE)));
    let gateway = Gateway::start(bench.dir());
    let farm = Farm::start_behind(bench.clone(), bench.dir(), gateway.namespace());
    // The exporter's ser2net listens inside the farm's network only: a direct connection from
    // here is refused.
    let port = serial_port_while_acquired(&farm);
    // The exporter starts ser2net when it sees the place acquired.
    let started = Instant::now();
    while !gateway.reachable_inside(port) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ser2net not listening on {port} in the farm; the exporter said:\n{}",
            std::fs::read_to_string(bench.dir().join("exporter.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let direct = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        direct.is_err(),
        "the exporter's port {port} is reachable directly"
    );
    let released = farm.place_client(&["release"]);
    assert!(
        released.status.success(),
        "{}",
        String::from_utf8_lossy(&released.stderr)
    );

    // $LG_PROXY, then --proxy, as labgrid-client takes them.
    let proxy_option = ["--proxy", GATEWAY];
    let lg_proxy = [("LG_PROXY", GATEWAY)];
    for (args, env) in [(&[][..], &lg_proxy[..]), (&proxy_option[..], &[][..])] {
        farm.power_log.lock().unwrap().clear();
        let run = run_behind(&gateway, &farm, &bench, args, env);
        assert_passed_through_the_gateway(&run, &farm, &gateway);
    }
    tear_down(farm, gateway, bench);
}

#[test]
fn sigterm_ends_the_ssh_forward_and_releases_the_place() {
    let bench = Arc::new(VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE)));
    let gateway = Gateway::start(bench.dir());
    let farm = Farm::start_behind(bench.clone(), bench.dir(), gateway.namespace());
    let waits = waiting_scenario(bench.dir());
    let started = Instant::now();
    let (run, command) = spawn_behind(&gateway, &farm, &bench, &[], &[("LG_PROXY", GATEWAY)], &waits);
    let log = bench.dir().join("transcripts").join("waits.log");
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("U-Boot 20")) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never reached U-Boot"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        forwards_left(&gateway).len(),
        1,
        "no forward while the console runs"
    );
    // SAFETY: signals a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGTERM) }, 0);
    let run = finish(run, command, started, LIMIT);
    assert_eq!(run.code(), Some(143), "{}", run.explain());
    assert_eq!(
        forwards_left(&gateway),
        Vec::<String>::new(),
        "SIGTERM left the forward running"
    );
    assert_eq!(
        farm.holder(),
        "None",
        "SIGTERM left the place acquired\n{}",
        run.explain()
    );
    tear_down(farm, gateway, bench);
}

/// An exporter started `--isolated` requires its own host as the proxy: the harness goes through
/// it, not through `LG_PROXY` (which labgrid-client still takes to the coordinator).
#[test]
fn an_isolated_exporters_own_proxy_wins_over_lg_proxy() {
    let bench = Arc::new(VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE)));
    let gateway = Gateway::start(bench.dir());
    let farm = Farm::start_isolated_behind(bench.clone(), bench.dir(), gateway.namespace());
    let run = run_behind(&gateway, &farm, &bench, &[], &[("LG_PROXY", GATEWAY)]);
    assert_passed_through_the_gateway(&run, &farm, &gateway);
    let through = format!(" through {} after ", exporter_fqdn());
    assert!(
        run.stderr
            .lines()
            .any(|line| line.contains("labgrid: forward: 127.0.0.1:") && line.contains(&through)),
        "the forward did not go through the exporter's own proxy{through}\n{}",
        run.explain()
    );
    tear_down(farm, gateway, bench);
}
