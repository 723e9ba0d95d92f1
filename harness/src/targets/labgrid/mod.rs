//! A labgrid place through `labgrid-client`: acquire, release, power, and where its serial port
//! is now.
//!
//! Every call runs `labgrid-client [-x COORDINATOR] -p PLACE …` within a time limit. The serial
//! port is read by `serial_port.py`, shipped inside the harness and run with the Python that
//! runs labgrid-client: it reads the acquired resources `labgrid-client show` prints (Python
//! reprs, read with Python's own literal parser; `labgrid-client env` leaves out the exporter's
//! proxy settings) and prints JSON.
//!
//! A proxy (`--proxy`, `LG_PROXY`, or an exporter started `--isolated`) is honoured as
//! labgrid-client honours it: labgrid-client gets `-P` and reaches the coordinator and the
//! power switch through it itself; the serial port is reached through an SSH forward
//! ([`ssh_forward`]).

pub mod ssh_forward;

pub mod sd_mux;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub mod reservation;

/// The helper that prints a place's NetworkSerialPort as JSON.
const SERIAL_PORT_HELPER: &str = include_str!("serial_port.py");

/// How long one labgrid-client call may take (it talks to the coordinator, which may ask an
/// exporter to start ser2net).
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// How much of a call's output is kept.
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// A place on a labgrid coordinator.
#[derive(Debug, Clone)]
pub struct Labgrid {
    /// The `labgrid-client` program.
    pub client: PathBuf,
    /// `HOST:PORT` of the coordinator; labgrid-client's own default (`LG_COORDINATOR`) if not
    /// given.
    pub coordinator: Option<String>,
    /// The place's name.
    pub place: String,
    /// The SSH host to reach the farm through (`-P`/`--proxy`, else `LG_PROXY`), as
    /// labgrid-client's `--proxy` takes it; an exporter that requires its own wins over it.
    pub proxy: Option<String>,
}

/// A place's serial port, as its exporter shares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct NetworkSerialPort {
    pub host: String,
    pub port: u16,
    /// The line rate the exporter configured; 0 if it gave none.
    pub speed: u32,
    /// `rfc2217` (ser2net's telnet accepter) or `raw`.
    pub protocol: String,
    /// The SSH host the exporter names for reaching it (its `extra.proxy`).
    #[serde(default)]
    pub proxy: Option<String>,
    /// Whether the exporter requires that proxy (started `--isolated`: its ports are not
    /// reachable from outside its host).
    #[serde(default)]
    pub proxy_required: bool,
}

impl NetworkSerialPort {
    /// The SSH host to reach the port through, as labgrid chooses it: the exporter's own proxy
    /// when it requires one, else `forced` (`--proxy`, `LG_PROXY`), else none (directly).
    pub fn proxy<'a>(&'a self, forced: Option<&'a str>) -> Option<&'a str> {
        match &self.proxy {
            Some(own) if self.proxy_required && !own.is_empty() => Some(own),
            _ => forced.filter(|proxy| !proxy.is_empty()),
        }
    }
}

/// How [`Labgrid::acquire`] found the place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquisition {
    /// Acquired by this call: release it when done.
    Acquired,
    /// This user on this host held it already: use it, and leave it acquired.
    AlreadyOurs,
}

/// What went wrong with a place.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// Someone (another user, or another run of this user) holds the place.
    #[error("place {place} is held by {holder}; wait for it, or ask them to release it (labgrid-client -p {place} release)")]
    Held { place: String, holder: String },
    /// labgrid-client failed.
    #[error("labgrid-client {what} for place {place} failed: {detail}")]
    Client {
        place: String,
        what: String,
        detail: String,
    },
    /// `--place-wait` ran out with the place still held.
    #[error("place {place} is still held by {holder} after waiting {}; the reservation is cancelled", humantime::format_duration(*waited))]
    WaitExpired {
        place: String,
        holder: String,
        waited: Duration,
    },
    /// The place's serial port is not one the harness can use.
    #[error("place {place}: {detail}")]
    SerialPort { place: String, detail: String },
    /// The place's SD-mux is not one the harness can write the card through.
    #[error("place {place}: {detail}")]
    SdMux { place: String, detail: String },
}

impl Labgrid {
    /// `labgrid-client [-x COORDINATOR] [-P PROXY]` as an argument vector.
    pub fn client_argv(&self) -> Vec<String> {
        let mut argv = vec![self.client.display().to_string()];
        if let Some(coordinator) = &self.coordinator {
            argv.extend(["-x".to_owned(), coordinator.clone()]);
        }
        if let Some(proxy) = &self.proxy {
            argv.extend(["-P".to_owned(), proxy.clone()]);
        }
        argv
    }

    /// `labgrid-client [-x COORDINATOR] [-P PROXY] -p PLACE` as an argument vector.
    pub fn base_argv(&self) -> Vec<String> {
        let mut argv = self.client_argv();
        argv.extend(["-p".to_owned(), self.place.clone()]);
        argv
    }

    /// The command that switches the place's power: `what` is `on`, `off` or `cycle`.
    pub fn power_argv(&self, what: &str) -> Vec<String> {
        let mut argv = self.base_argv();
        argv.extend(["power".to_owned(), what.to_owned()]);
        argv
    }

    /// Acquires the place for this user, or finds it acquired by this user on this host
    /// already (an `acquire` run beforehand, as labgrid users work); [`PlaceError::Held`] names
    /// who has it otherwise. `-p +TOKEN` (and `-p +` with `LG_TOKEN`) is resolved by
    /// labgrid-client itself, to the place allocated to that reservation.
    pub fn acquire(&self) -> Result<Acquisition, PlaceError> {
        let mut argv = self.base_argv();
        argv.push("acquire".to_owned());
        let done = run(&argv, "acquire", &self.place)?;
        if done.ok {
            return Ok(Acquisition::Acquired);
        }
        if acquired_by_us_here(&done.stderr) {
            return Ok(Acquisition::AlreadyOurs);
        }
        if let Some(holder) = holder_in(&done.stderr) {
            return Err(PlaceError::Held {
                place: self.place.clone(),
                holder,
            });
        }
        // Free, but allocated to a reservation of another user (who is about to acquire it).
        if done.stderr.contains("was not reserved for") {
            return Err(PlaceError::Held {
                place: self.place.clone(),
                holder: "another user's reservation".to_owned(),
            });
        }
        if done.stderr.contains("You have already acquired place") {
            return Err(PlaceError::Held {
                place: self.place.clone(),
                holder: "you on another host".to_owned(),
            });
        }
        Err(self.failed("acquire", done.stderr))
    }

    /// Releases the place; what went wrong is returned for the caller to report.
    pub fn release(&self) -> Result<(), PlaceError> {
        let mut argv = self.base_argv();
        argv.push("release".to_owned());
        let done = run(&argv, "release", &self.place)?;
        if done.ok {
            Ok(())
        } else {
            Err(self.failed("release", done.stderr))
        }
    }

    /// Where the place's serial port is now (its ser2net may have moved since last asked).
    pub fn serial_port(&self) -> Result<NetworkSerialPort, PlaceError> {
        let mut argv = vec![self.python(), "-c".to_owned(), SERIAL_PORT_HELPER.to_owned()];
        argv.extend(self.base_argv());
        let done = run(&argv, "env", &self.place)?;
        if !done.ok {
            return Err(self.failed("env", done.stderr));
        }
        serde_json::from_str(done.stdout.trim()).map_err(|e| PlaceError::SerialPort {
            place: self.place.clone(),
            detail: format!(
                "unreadable answer from the labgrid helper ({e}): {}",
                done.stdout.trim()
            ),
        })
    }

    /// The Python that runs labgrid-client (its `#!` line: labgrid lives in a virtualenv), else
    /// `python3`.
    fn python(&self) -> String {
        let client = which(&self.client).unwrap_or_else(|| self.client.clone());
        let mut head = [0u8; 256];
        let read = std::fs::File::open(&client).and_then(|mut f| f.read(&mut head));
        let line = match read {
            Ok(n) => String::from_utf8_lossy(&head[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
            Err(_) => String::new(),
        };
        match line.strip_prefix("#!") {
            Some(interpreter) if !interpreter.contains(' ') && interpreter.contains("python") => {
                interpreter.trim().to_owned()
            }
            _ => "python3".to_owned(),
        }
    }

    fn failed(&self, what: &str, stderr: String) -> PlaceError {
        PlaceError::Client {
            place: self.place.clone(),
            what: what.to_owned(),
            detail: if stderr.is_empty() {
                "(no output on stderr)".to_owned()
            } else {
                stderr
            },
        }
    }
}

/// `Place P is already acquired by HOST/USER.` → `HOST/USER`.
fn holder_in(stderr: &str) -> Option<String> {
    let (_, rest) = stderr.split_once("is already acquired by ")?;
    let holder = rest.split(['.', ' ', '\n']).next()?.trim();
    (!holder.is_empty()).then(|| holder.to_owned())
}

/// labgrid's refusal when this user on this host holds the place: `You have already acquired
/// place P.` (held by this user on another host, it goes on ` on HOST. To work …`).
fn acquired_by_us_here(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        line.split_once("You have already acquired place ")
            .is_some_and(|(_, rest)| rest.trim_end().ends_with('.') && !rest.contains(" on "))
    })
}

/// `program` found on PATH, if it is a bare name.
fn which(program: &std::path::Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_owned());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// What a finished call printed.
struct Done {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `argv` to completion within [`CALL_LIMIT`], killing it if it overruns.
fn run(argv: &[String], what: &str, place: &str) -> Result<Done, PlaceError> {
    let failed = |detail: String| PlaceError::Client {
        place: place.to_owned(),
        what: what.to_owned(),
        detail,
    };
    tracing::debug!(target: "labgrid", "{what}: {}", argv.join(" "));
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e} (is labgrid installed?)", argv[0])))?;
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(OUTPUT_LIMIT).read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).trim().to_owned()
        })
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < CALL_LIMIT => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "no answer within {}; killed",
                    humantime::format_duration(CALL_LIMIT)
                )));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let done = Done {
        ok: status.success(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    tracing::debug!(
        target: "labgrid",
        "{what}: {status}; stdout {:?}; stderr {:?}",
        done.stdout,
        done.stderr
    );
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_labgrids_refusal() {
        let stderr = "labgrid-client: Error: Place farm1 is already acquired by ci-runner-2/builder. To work simultaneously, builder can execute labgrid-client -p farm1 allow vm/root";
        assert_eq!(holder_in(stderr).as_deref(), Some("ci-runner-2/builder"));
        assert_eq!(holder_in("labgrid-client: Error: place farm1 not found"), None);
    }

    #[test]
    fn a_place_this_user_holds_here_is_told_from_one_held_elsewhere() {
        assert!(acquired_by_us_here(
            "labgrid-client: Error: You have already acquired place r2s."
        ));
        assert!(!acquired_by_us_here(
            "labgrid-client: Error: You have already acquired place r2s on ci-2. To work simultaneously, execute 'labgrid-client -p r2s allow me/you' on ci-2."
        ));
        assert!(!acquired_by_us_here("labgrid-client: Error: place r2s not found"));
    }

    #[test]
    fn power_goes_through_the_place() {
        let labgrid = Labgrid {
            client: PathBuf::from("labgrid-client"),
            coordinator: Some("farm:20408".to_owned()),
            place: "r2s-1".to_owned(),
            proxy: None,
        };
        assert_eq!(
            labgrid.power_argv("cycle"),
            [
                "labgrid-client",
                "-x",
                "farm:20408",
                "-p",
                "r2s-1",
                "power",
                "cycle"
            ]
        );
    }

    #[test]
    fn the_proxy_is_chosen_as_labgrid_client_chooses_it() {
        let port = |proxy: Option<&str>, proxy_required| NetworkSerialPort {
            host: "exporter-1".to_owned(),
            port: 20001,
            speed: 0,
            protocol: "rfc2217".to_owned(),
            proxy: proxy.map(str::to_owned),
            proxy_required,
        };
        // An exporter started --isolated: its own proxy, whatever was asked.
        assert_eq!(
            port(Some("exporter-1"), true).proxy(Some("gw")),
            Some("exporter-1")
        );
        assert_eq!(port(Some("exporter-1"), true).proxy(None), Some("exporter-1"));
        // Otherwise --proxy / LG_PROXY, or none.
        assert_eq!(port(Some("exporter-1"), false).proxy(Some("gw")), Some("gw"));
        assert_eq!(port(Some("exporter-1"), false).proxy(None), None);
        assert_eq!(port(None, false).proxy(Some("")), None);
    }

    #[test]
    fn the_proxy_is_handed_to_labgrid_client() {
        let labgrid = Labgrid {
            client: PathBuf::from("labgrid-client"),
            coordinator: None,
            place: "r2s-1".to_owned(),
            proxy: Some("gw@farm".to_owned()),
        };
        assert_eq!(
            labgrid.power_argv("on"),
            ["labgrid-client", "-P", "gw@farm", "-p", "r2s-1", "power", "on"]
        );
    }
}
