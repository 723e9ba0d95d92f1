//! A place's SD-mux (a USB-SD-Mux or an SDWire): which one it is, where its card appears, and
//! the commands that switch it, `labgrid-client -p PLACE sd-mux host|dut`, which run the mux's
//! own tool (`usbsdmux`, `sd-mux-ctrl`, `sdwire`) on the exporter's host over SSH.
//!
//! The card is written by the harness's own flash code, with every guard of `harness flash`,
//! so its block device must be one of this machine's: the exporter's host must be this one.

use std::net::{ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use super::{run, Labgrid, PlaceError};

/// How long one switch may take: labgrid-client connects to the coordinator and over SSH to
/// the exporter's host, where the mux's tool runs.
pub const SD_MUX_LIMIT: Duration = Duration::from_secs(60);

/// The helper that prints a place's SD-muxes as JSON.
const SD_MUX_HELPER: &str = include_str!("sd_mux.py");

/// An SD-mux of a place, as its exporter shares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PlaceSdMux {
    /// `NetworkUSBSDMuxDevice`, `NetworkUSBSDWireDevice` or `NetworkUSBSDWire3Device`.
    pub class: String,
    /// The resource's name in the exporter's configuration.
    pub name: String,
    /// The exporter's host, where the mux and its card reader are plugged in.
    pub host: String,
    /// The card's block device on that host; `None` while the exporter has not found it.
    pub path: Option<String>,
}

impl Labgrid {
    /// The place's SD-mux and its card's block device, which must be on this machine. A place
    /// with no SD-mux, or with several, is refused: `labgrid-client sd-mux` would have to guess.
    pub fn sd_mux(&self) -> Result<(PlaceSdMux, PathBuf), PlaceError> {
        let mut argv = vec![self.python(), "-c".to_owned(), SD_MUX_HELPER.to_owned()];
        argv.extend(self.base_argv());
        let done = run(&argv, "env", &self.place)?;
        if !done.ok {
            return Err(self.failed("env", done.stderr));
        }
        let muxes: Vec<PlaceSdMux> = serde_json::from_str(done.stdout.trim()).map_err(|e| {
            self.sd_mux_refused(format!(
                "unreadable answer from the labgrid helper ({e}): {}",
                done.stdout.trim()
            ))
        })?;
        let mux = match muxes.as_slice() {
            [one] => one.clone(),
            [] => return Err(self.sd_mux_refused(
                "it has no SD-mux (a USBSDMuxDevice, USBSDWireDevice or USBSDWire3Device in its exporter's \
                     configuration), and --flash writes the card through one"
                    .to_owned(),
            )),
            several => {
                let names: Vec<&str> = several.iter().map(|m| m.name.as_str()).collect();
                return Err(self.sd_mux_refused(format!(
                    "it has {} SD-muxes ({}), and --flash writes the card of a place with one",
                    several.len(),
                    names.join(", ")
                )));
            }
        };
        let Some(path) = mux.path.clone() else {
            return Err(self.sd_mux_refused(format!(
                "its SD-mux {} has no card reader yet: the exporter on {} has not found its block device",
                mux.name, mux.host
            )));
        };
        if !on_this_machine(&mux.host) {
            return Err(self.sd_mux_refused(format!(
                "its SD-mux {} and the card's block device {path} are on {}, and the harness writes the card on \
                 this machine: run it on {}",
                mux.name, mux.host, mux.host
            )));
        }
        Ok((mux, PathBuf::from(path)))
    }

    /// `labgrid-client -v … -p PLACE sd-mux MODE` (`host` or `dut`): `-v`, so that a failure's
    /// output holds the mux tool's own words ([`sd_mux_cause`]).
    pub fn sd_mux_argv(&self, mode: &str) -> Vec<String> {
        let mut argv = self.base_argv();
        argv.insert(1, "-v".to_owned());
        argv.extend(["sd-mux".to_owned(), mode.to_owned()]);
        argv
    }

    fn sd_mux_refused(&self, detail: String) -> PlaceError {
        PlaceError::SdMux {
            place: self.place.clone(),
            detail,
        }
    }
}

/// What stopped a failed `labgrid-client -v … sd-mux` (`stderr`, its output): the mux tool's
/// own lines, which labgrid logs as `Process: [PID] LINE`, else the output's last line
/// (labgrid's error, or the exception a traceback ends with).
pub fn sd_mux_cause(stderr: &str) -> String {
    let tool: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.split_once("Process:").map(|(_, rest)| rest.trim_start()))
        .filter_map(|rest| rest.strip_prefix('['))
        .filter_map(|rest| rest.split_once("] ").map(|(_, said)| said.trim()))
        .filter(|said| !said.is_empty() && !said.starts_with("command: "))
        .collect();
    if !tool.is_empty() {
        return tool.join("; ");
    }
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no output on stderr)")
        .to_owned()
}

/// Whether `host` names this machine: its hostname, a loopback address, or an address of one
/// of its interfaces (one a socket can be bound to).
fn on_this_machine(host: &str) -> bool {
    let short = |name: &str| name.split('.').next().unwrap_or("").to_ascii_lowercase();
    if hostname().is_some_and(|name| name.eq_ignore_ascii_case(host) || short(&name) == short(host)) {
        return true;
    }
    let Ok(addresses) = (host, 0).to_socket_addrs() else {
        return false;
    };
    addresses
        .map(|address| address.ip())
        .any(|ip| ip.is_loopback() || UdpSocket::bind((ip, 0)).is_ok())
}

/// This machine's hostname.
fn hostname() -> Option<String> {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let done = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    if done != 0 {
        return None;
    }
    let end = name.iter().position(|b| *b == 0)?;
    String::from_utf8(name[..end].to_vec())
        .ok()
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mux_tools_own_words_are_the_cause() {
        let stderr =
            "INFO            Process:    [8981] command: ssh -x 127.0.0.1 -- usbsdmux /dev/sg1 host\n\
                      INFO            Process:    [8981] usbsdmux: cannot open /dev/sg1: No such device\n\
                      Traceback (most recent call last):\n  File \"client.py\", line 1239, in sd_mux\n\
                      subprocess.CalledProcessError: Command '[...]' returned non-zero exit status 1.";
        assert_eq!(
            sd_mux_cause(stderr),
            "usbsdmux: cannot open /dev/sg1: No such device"
        );
    }

    #[test]
    fn without_the_tools_words_the_last_line_is_the_cause() {
        let stderr = "labgrid-client: error: place r2s is not acquired\n";
        assert_eq!(
            sd_mux_cause(stderr),
            "labgrid-client: error: place r2s is not acquired"
        );
        assert_eq!(sd_mux_cause(""), "(no output on stderr)");
    }

    #[test]
    fn loopback_and_this_hostname_are_this_machine_and_a_far_address_is_not() {
        assert!(on_this_machine("127.0.0.1"));
        assert!(on_this_machine("localhost"));
        assert!(on_this_machine(&hostname().unwrap()));
        // TEST-NET-1 (RFC 5737): never an address of a real interface.
        assert!(!on_this_machine("192.0.2.1"));
    }

    #[test]
    fn the_switch_is_labgrid_clients_sd_mux_in_verbose_mode() {
        let labgrid = Labgrid {
            client: PathBuf::from("labgrid-client"),
            coordinator: Some("farm:20408".to_owned()),
            place: "r2s-1".to_owned(),
            proxy: None,
        };
        assert_eq!(
            labgrid.sd_mux_argv("host"),
            [
                "labgrid-client",
                "-v",
                "-x",
                "farm:20408",
                "-p",
                "r2s-1",
                "sd-mux",
                "host"
            ]
        );
    }
}
