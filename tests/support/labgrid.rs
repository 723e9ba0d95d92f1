//! A labgrid farm on localhost: a real coordinator and a real exporter (labgrid from the
//! virtualenv `.ci/setup` makes, at `$R2S_LABGRID` or /opt/r2s-labgrid) exporting one place
//! whose serial port is a device (the virtual bench's pseudo-terminal, shared by the ser2net
//! the exporter starts on acquire) and whose power is a `simplerest` NetworkPowerPort: an HTTP
//! relay in this process that switches the bench. Every process is stopped when dropped. A farm
//! may run in a network namespace of its own (behind an SSH gateway, see `gateway.rs`): its
//! processes and the relay's socket are then in that namespace.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::bench::{BenchCommand, VirtualBench};
use crate::sd_mux::SdMuxStandIn;
use crate::ser2net::free_port;

/// How long the coordinator and exporter may take to come up.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The labgrid virtualenv's `bin` directory.
pub fn labgrid_bin() -> PathBuf {
    let root =
        std::env::var_os("R2S_LABGRID").map_or_else(|| PathBuf::from("/opt/r2s-labgrid"), PathBuf::from);
    let bin = root.join("bin");
    assert!(
        bin.join("labgrid-client").is_file(),
        "labgrid not installed at {} (run .ci/setup)",
        root.display()
    );
    bin
}

/// `PATH` with the labgrid virtualenv first, for the harness to find labgrid-client.
pub fn path_with_labgrid() -> std::ffi::OsString {
    let mut paths = vec![labgrid_bin()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).expect("PATH")
}

/// `DIR/waits.toml`: a scenario that reaches U-Boot, then waits minutes for what never comes (a
/// run to stop midway).
pub fn waiting_scenario(dir: &Path) -> PathBuf {
    let waits = dir.join("waits.toml");
    std::fs::write(
        &waits,
        "name = \"waits\"\n\n[[steps]]\nexpect = \"U-Boot 20\"\ntimeout = \"1m\"\n\n\
         [[steps]]\nexpect = \"never printed\"\ntimeout = \"3m\"\n",
    )
    .expect("write the waiting scenario");
    waits
}

/// A coordinator, an exporter and one place, `PLACE`.
pub struct Farm {
    coordinator: String,
    /// The network namespace the farm runs in, if not the host's.
    namespace: Option<String>,
    processes: Vec<Child>,
    relay_stop: Arc<AtomicBool>,
    /// Power requests the relay served, `on` / `off`, in order.
    pub power_log: Arc<Mutex<Vec<String>>>,
}

/// The place every farm has.
pub const PLACE: &str = "r2s-bench";

impl Farm {
    /// A farm whose place is `bench`'s board; its files go in `dir`.
    pub fn start(bench: Arc<VirtualBench>, dir: &Path) -> Farm {
        Farm::start_sharing(bench, dir, None, "", None)
    }

    /// [`Farm::start`], the place also having `mux`, a USBSDMuxDevice, whose tool the exporter's
    /// host runs when labgrid-client switches it (over SSH: see `exporter_ssh.rs`).
    pub fn start_with_sd_mux(bench: Arc<VirtualBench>, dir: &Path, mux: &SdMuxStandIn) -> Farm {
        Farm::start_sharing(bench, dir, None, &mux.exporter_resource(), None)
    }

    /// [`Farm::start`] inside the network namespace `namespace`: reachable from the host only
    /// through that namespace's SSH gateway.
    pub fn start_behind(bench: Arc<VirtualBench>, dir: &Path, namespace: &str) -> Farm {
        Farm::start_sharing(bench, dir, None, "", Some((namespace, false)))
    }

    /// [`Farm::start_behind`], the exporter started `--isolated`: its resources say they are
    /// reachable only through the exporter's own host (its FQDN) as an SSH proxy.
    pub fn start_isolated_behind(bench: Arc<VirtualBench>, dir: &Path, namespace: &str) -> Farm {
        Farm::start_sharing(bench, dir, None, "", Some((namespace, true)))
    }

    /// [`Farm::start`], the place's serial port a static NetworkSerialPort speaking raw TCP at
    /// `raw_port` on localhost (a serial server the test runs) instead of the bench's pty
    /// shared by the exporter's ser2net.
    pub fn start_raw(bench: Arc<VirtualBench>, dir: &Path, raw_port: u16) -> Farm {
        Farm::start_sharing(bench, dir, Some(raw_port), "", None)
    }

    /// The farm, `more` (YAML) added to its place's resources; `behind`: the namespace to run
    /// in, and whether the exporter is `--isolated`.
    fn start_sharing(
        bench: Arc<VirtualBench>,
        dir: &Path,
        raw_port: Option<u16>,
        more: &str,
        behind: Option<(&str, bool)>,
    ) -> Farm {
        let namespace = behind.map(|(namespace, _)| namespace);
        let isolated = behind.is_some_and(|(_, isolated)| isolated);
        let power_log = Arc::new(Mutex::new(Vec::new()));
        let relay_stop = Arc::new(AtomicBool::new(false));
        let relay = start_relay(
            Arc::downgrade(&bench),
            power_log.clone(),
            relay_stop.clone(),
            namespace.map(str::to_owned),
        );
        let coordinator = format!("127.0.0.1:{}", free_port());
        let bin = labgrid_bin();
        let mut farm = Farm {
            coordinator: coordinator.clone(),
            namespace: namespace.map(str::to_owned),
            processes: Vec::new(),
            relay_stop,
            power_log,
        };
        farm.spawn(
            // It keeps places.yaml and resources.yaml in its working directory.
            farm.command(&bin.join("labgrid-coordinator"))
                .args(["-l", &coordinator])
                .current_dir(dir),
            &dir.join("coordinator.log"),
        );
        farm.wait_for(
            |farm| farm.client(&["places"]).status.success(),
            "the coordinator",
        );
        // The exporter starts ser2net on a /dev path only: the pty itself, not the bench's link.
        let device = std::fs::canonicalize(bench.device()).expect("the bench's pty");
        let config = dir.join("exporter.yaml");
        let serial = match raw_port {
            None => format!("  RawSerialPort:\n    port: {}\n    speed: 1500000\n", device.display()),
            Some(port) => format!(
                "  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {port}\n    speed: 1500000\n    protocol: raw\n"
            ),
        };
        let text = format!(
            "bench:\n{serial}  NetworkPowerPort:\n    \
             model: simplerest\n    host: 'http://127.0.0.1:{relay}/relay/{{index}}/{{value}}'\n    index: 0\n{more}"
        );
        std::fs::write(&config, text).expect("write the exporter config");
        farm.spawn(
            farm.command(&bin.join("labgrid-exporter"))
                .args([
                    "-c",
                    &coordinator,
                    "--hostname",
                    "127.0.0.1",
                    "-n",
                    "bench-exporter",
                ])
                .args(isolated.then_some("--isolated"))
                .arg(&config),
            &dir.join("exporter.log"),
        );
        farm.wait_for(
            |farm| {
                let listed = farm.client(&["resources"]);
                String::from_utf8_lossy(&listed.stdout).contains("bench-exporter/bench/NetworkSerialPort")
            },
            "the exporter's resources",
        );
        for args in [&["create"][..], &["add-match", "bench-exporter/bench/*"]] {
            let done = farm.place_client(args);
            assert!(
                done.status.success(),
                "labgrid-client {args:?}: {}",
                String::from_utf8_lossy(&done.stderr)
            );
        }
        farm
    }

    /// `HOST:PORT` of the coordinator.
    pub fn coordinator(&self) -> &str {
        &self.coordinator
    }

    /// Runs `labgrid-client -x COORDINATOR ARGS…` to completion.
    pub fn client(&self, args: &[&str]) -> Output {
        self.client_as(args, &[])
    }

    /// [`Farm::client`] on the place, with extra environment (another user's `LG_USERNAME`).
    pub fn place_client_as(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["-p", PLACE];
        all.extend_from_slice(args);
        self.client_as(&all, env)
    }

    /// [`Farm::client`] on the place.
    pub fn place_client(&self, args: &[&str]) -> Output {
        self.place_client_as(args, &[])
    }

    /// `program`, run in the farm's namespace.
    fn command(&self, program: &Path) -> Command {
        match &self.namespace {
            None => Command::new(program),
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]).arg(program);
                command
            }
        }
    }

    fn client_as(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut child = self
            .command(&labgrid_bin().join("labgrid-client"))
            .args(["-x", &self.coordinator])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("labgrid-client");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("labgrid-client output")
    }

    /// The tokens of the coordinator's reservations, as `labgrid-client reservations` lists
    /// them, with their states: `TOKEN waiting`, ….
    pub fn reservations(&self) -> Vec<String> {
        let listed = self.client(&["reservations"]);
        assert!(
            listed.status.success(),
            "{}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        let mut found = Vec::new();
        for line in text.lines() {
            if let Some(token) = line
                .strip_prefix("Reservation '")
                .and_then(|t| t.strip_suffix("':"))
            {
                found.push(token.to_owned());
            } else if let (Some(state), Some(last)) = (line.trim().strip_prefix("state: "), found.last_mut())
            {
                last.push_str(&format!(" {state}"));
            }
        }
        found
    }

    /// Who holds the place, as `labgrid-client show` says (`None` when free).
    pub fn holder(&self) -> String {
        let shown = self.place_client(&["show"]);
        let text = String::from_utf8_lossy(&shown.stdout).into_owned();
        text.lines()
            .find_map(|line| line.trim().strip_prefix("acquired: ").map(str::to_owned))
            .unwrap_or_else(|| panic!("no acquired line in {text}"))
    }

    fn spawn(&mut self, command: &mut Command, log: &Path) {
        let log = std::fs::File::create(log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // A group of its own: the exporter's ser2net children stop with it.
            .process_group(0)
            .spawn()
            .expect("start labgrid (installed by .ci/setup)");
        self.processes.push(child);
    }

    fn wait_for(&mut self, ready: impl Fn(&Farm) -> bool, what: &str) {
        let started = Instant::now();
        while !ready(self) {
            for child in &mut self.processes {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("a labgrid process exited ({status}) while waiting for {what}");
                }
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "{what} not up within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        // The exporter first (it stops its ser2net), then the coordinator.
        for child in self.processes.iter_mut().rev() {
            let group = child.id() as i32;
            // SAFETY: signals the process group of a child this farm started and has not reaped.
            unsafe { libc::kill(-group, libc::SIGTERM) };
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
        }
        self.relay_stop.store(true, Ordering::Relaxed);
    }
}

/// The simplerest relay: `GET /relay/0/1` powers the bench on, `/relay/0/0` off, `/relay/0`
/// answers `1` or `0`. Returns its port; the thread ends when `stop` is set. It holds the bench
/// weakly, so the bench still goes (and its QEMU with it) when the test drops it. Its socket is
/// made in `namespace`, when given (a socket stays in the namespace it was made in).
fn start_relay(
    bench: Weak<VirtualBench>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    namespace: Option<String>,
) -> u16 {
    let listener = match namespace {
        None => TcpListener::bind("127.0.0.1:0").expect("bind the power relay"),
        Some(namespace) => crate::gateway::in_namespace(&namespace, || {
            TcpListener::bind("127.0.0.1:0").expect("bind the power relay")
        }),
    };
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).expect("nonblocking relay");
    std::thread::spawn(move || {
        let mut on = false;
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = String::new();
            if BufReader::new(&stream).read_line(&mut request).is_err() {
                continue;
            }
            let switch = |command: BenchCommand| match bench.upgrade() {
                Some(bench) => bench.command(command),
                None => Err("the bench is gone".to_owned()),
            };
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path.trim_end_matches('/') {
                "/relay/0/1" => {
                    log.lock().unwrap().push("on".to_owned());
                    on = true;
                    match switch(BenchCommand::On) {
                        Ok(()) => ("200 OK", String::new()),
                        Err(e) => ("500 Internal Server Error", e),
                    }
                }
                "/relay/0/0" => {
                    log.lock().unwrap().push("off".to_owned());
                    on = false;
                    let _ = switch(BenchCommand::Off);
                    ("200 OK", String::new())
                }
                "/relay/0" => ("200 OK", if on { "1" } else { "0" }.to_owned()),
                _ => ("404 Not Found", String::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}
