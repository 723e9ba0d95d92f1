//! The NICs of a QEMU target, in the board's order: WAN first, LAN second, each with a fixed
//! MAC address so that the image (and a name given by MAC on its kernel command line) sees the
//! same NIC on every run.
//!
//! - WAN: QEMU's user-mode network, `restrict=on`: its DHCP server answers the image's WAN
//!   client, nothing beyond the host is routable, and host forwards are added over QMP once
//!   QEMU runs (`hostfwd_add`), each from a free host port, so parallel runs never collide and
//!   a restored snapshot gets forwards of its own.
//! - LAN: as root, a tap device QEMU creates, moved into a network namespace the harness
//!   creates and removes; `lan` steps run inside it as the router's LAN client. Elsewhere the
//!   LAN NIC is attached unconnected.
//!
//! The arguments that describe the devices do not depend on how the LAN is connected: a
//! snapshot saved with an unconnected LAN restores with a tap and back (the backend is not part
//! of the saved state), and the snapshot key (the devices are hashed in it) stays the same.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::network::{LanEnd, NetAccess, Network, Ports};
use super::qemu::{QemuConfig, QemuMachine};
use super::qmp::{Qmp, QmpError};
use crate::qemu_devices::{LAN_MAC, WAN_MAC};
use crate::scenario::{Forward, NetworkSpec, Nic, Protocol};

/// The NIC model: built into the stock arm64 kernels (`VIRTIO_NET`) and U-Boot's qemu_arm64.
pub const MODEL: &str = "virtio-net-pci";

/// The PCI slots of the NICs, fixed so that other devices never move them (a bus-path name
/// such as `enp0s16` stays the same).
const WAN_SLOT: u8 = 0x10;
const LAN_SLOT: u8 = 0x11;

/// The address the host reaches forwards on.
pub const HOST_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How many free ports are tried for one forward before giving up: another program may take
/// a port between the harness finding it free and QEMU binding it.
const PORT_ATTEMPTS: usize = 8;

/// How long QEMU may take to answer QMP after it started: restoring a snapshot (a GiB of RAM)
/// on a machine busy with other emulators takes tens of seconds.
const QEMU_READY: Duration = Duration::from_secs(180);

/// How long one QMP command or one `ip` command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(10);

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("setting up the network: {0}")]
    Qmp(QmpError),
    #[error("host forward {forward}: {source}")]
    Forward { forward: Forward, source: QmpError },
    #[error("host forward {forward}: no free host port after {PORT_ATTEMPTS} attempts: {detail}")]
    NoFreePort { forward: Forward, detail: String },
    #[error("LAN namespace: `{command}` failed: {detail}")]
    Ip { command: String, detail: String },
}

/// The QMP id of a NIC's device, for `set_link`.
pub fn device_id(nic: Nic) -> &'static str {
    match nic {
        Nic::Wan => "nic-wan",
        Nic::Lan => "nic-lan",
    }
}

/// QEMU arguments for the two NICs; `lan_tap` connects the LAN NIC to that tap device.
pub fn args(lan_tap: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "-netdev".to_owned(),
        "user,id=wan,restrict=on".to_owned(),
        "-device".to_owned(),
        // romfile= : no option ROM (QEMU would want efi-virtio.rom otherwise; U-Boot has its own
        // driver).
        format!(
            "{MODEL},netdev=wan,mac={WAN_MAC},id={},addr={WAN_SLOT:#x},romfile=",
            device_id(Nic::Wan)
        ),
    ];
    let lan_device = format!(
        "{MODEL},mac={LAN_MAC},id={},addr={LAN_SLOT:#x},romfile=",
        device_id(Nic::Lan)
    );
    match lan_tap {
        Some(tap) => {
            args.push("-netdev".to_owned());
            args.push(format!("tap,id=lan,ifname={tap},script=no,downscript=no"));
            args.push("-device".to_owned());
            args.push(format!("{lan_device},netdev=lan"));
        }
        None => {
            args.push("-device".to_owned());
            args.push(lan_device);
        }
    }
    args
}

/// The kernel command line arguments that give the NICs the R2S's own names: `ifname=` is
/// honoured by systemd-network-generator and udev (systemd images); initrds without systemd
/// ignore it.
pub fn ifname_args() -> String {
    format!("ifname=end0:{WAN_MAC} ifname=enu1:{LAN_MAC}")
}

/// Adds one host forward per entry of `forwards`, each from a free port of [`HOST_ADDRESS`],
/// and returns the host port of each.
pub async fn add_forwards(qmp: &mut Qmp, forwards: &[Forward]) -> Result<BTreeMap<Forward, u16>, NetError> {
    let mut ports = BTreeMap::new();
    for forward in forwards {
        let mut last = String::new();
        let mut added = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port(forward.protocol).map_err(|e| NetError::NoFreePort {
                forward: *forward,
                detail: e.to_string(),
            })?;
            let rule = format!(
                "hostfwd_add wan {}:{HOST_ADDRESS}:{port}-:{}",
                forward.protocol.as_str(),
                forward.port
            );
            match qmp.human_command(&rule, COMMAND_LIMIT).await {
                Ok(()) => {
                    added = Some(port);
                    break;
                }
                // QEMU says "Could not set up host forwarding rule" when the port was taken.
                Err(QmpError::Command { message, .. }) => last = message,
                Err(source) => {
                    return Err(NetError::Forward {
                        forward: *forward,
                        source,
                    })
                }
            }
        }
        let port = added.ok_or(NetError::NoFreePort {
            forward: *forward,
            detail: last,
        })?;
        ports.insert(*forward, port);
    }
    Ok(ports)
}

/// Switches a NIC's link over QMP (`set_link`).
pub async fn set_link(qmp: &mut Qmp, nic: Nic, up: bool) -> Result<(), QmpError> {
    qmp.execute(
        "set_link",
        json!({ "name": device_id(nic), "up": up }),
        COMMAND_LIMIT,
    )
    .await
    .map(|_| ())
}

/// A port of the host's loopback that nothing uses at this moment.
fn free_port(protocol: Protocol) -> std::io::Result<u16> {
    match protocol {
        Protocol::Tcp => Ok(TcpListener::bind((HOST_ADDRESS, 0))?.local_addr()?.port()),
        Protocol::Udp => Ok(UdpSocket::bind((HOST_ADDRESS, 0))?.local_addr()?.port()),
    }
}

/// Why `lan` steps cannot run here, or `None` when they can (root, and `ip` installed).
pub fn lan_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some(
            "the LAN needs a tap device in a network namespace, which only root can create; \
             run the harness as root, or leave `lan` steps out"
                .to_owned(),
        );
    }
    match ip(&["-V"]) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "the LAN needs `ip` (iproute2) to make its network namespace: {e}"
        )),
    }
}

/// A network namespace holding the LAN end of one QEMU target: created before QEMU starts,
/// given the tap device once QEMU has made it, removed (with the tap) when dropped.
#[derive(Debug)]
pub struct LanNamespace {
    name: String,
    tap: String,
}

impl LanNamespace {
    /// Creates the namespace for QEMU number `id` of this process (names stay under the
    /// kernel's 15 characters for the tap).
    pub fn create(id: u32) -> Result<LanNamespace, NetError> {
        let pid = std::process::id();
        let name = format!("r2s-lan-{pid}-{id}");
        // "r2s" + 12 hex digits at most: pid (up to 2^22) and a counter.
        let tap = format!("r2s{:x}t{:x}", pid, id % 0x1000);
        ip(&["netns", "add", &name])?;
        let ns = LanNamespace { name, tap };
        ns.ip_in(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The tap device QEMU is told to create.
    pub fn tap(&self) -> &str {
        &self.tap
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves QEMU's tap into the namespace and brings it up; called once QEMU has created it.
    pub fn take_tap(&self) -> Result<(), NetError> {
        ip(&["link", "set", "dev", &self.tap, "netns", &self.name])?;
        self.ip_in(&["link", "set", "dev", &self.tap, "up"])?;
        Ok(())
    }

    fn ip_in(&self, args: &[&str]) -> Result<String, NetError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }
}

impl Drop for LanNamespace {
    fn drop(&mut self) {
        // The tap goes with the namespace (and with QEMU closing it); a tap still in the host's
        // namespace (QEMU died before it moved) is removed by name.
        let _ = ip(&["netns", "delete", &self.name]);
        let _ = ip(&["link", "delete", &self.tap]);
    }
}

/// Runs `ip ARGS`, bounded by [`COMMAND_LIMIT`]; its stdout, or why it failed.
fn ip(args: &[&str]) -> Result<String, NetError> {
    let command = format!("ip {}", args.join(" "));
    let error = |detail: String| NetError::Ip {
        command: command.clone(),
        detail,
    };
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error(e.to_string()))?;
    let deadline = std::time::Instant::now() + COMMAND_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error(format!("no answer within {}s", COMMAND_LIMIT.as_secs())));
            }
            Err(e) => return Err(error(e.to_string())),
        }
    }
    let output = child.wait_with_output().map_err(|e| error(e.to_string()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(error(String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }
}

/// What a started QEMU's network offers the steps.
#[derive(Debug)]
pub struct RunningNetwork {
    /// Host port of each forward.
    pub ports: BTreeMap<Forward, u16>,
    /// The LAN namespace, or why there is none.
    pub lan: Result<LanNamespace, String>,
    /// QEMU's QMP socket, for `link` steps.
    pub qmp: PathBuf,
}

impl RunningNetwork {
    /// Sets up what QEMU, now running with QMP at `qmp`, needs for `forwards`: the forwards
    /// themselves and the LAN namespace's tap.
    pub async fn connect(
        qmp: &Path,
        forwards: &[Forward],
        lan: Result<LanNamespace, String>,
    ) -> Result<RunningNetwork, NetError> {
        let mut session = Qmp::connect_within(qmp, QEMU_READY)
            .await
            .map_err(NetError::Qmp)?;
        let ports = add_forwards(&mut session, forwards).await?;
        // QMP takes one client at a time: later `link` steps connect anew.
        drop(session);
        if let Ok(ns) = &lan {
            ns.take_tap()?;
        }
        Ok(RunningNetwork {
            ports,
            lan,
            qmp: qmp.to_owned(),
        })
    }
}

/// The configuration of a QEMU's next start and the LAN namespace it connects to (or why there
/// is none): with NICs, the tap is named for this start only.
pub fn start_config(
    config: &QemuConfig,
    network: Option<&NetworkSpec>,
) -> (QemuConfig, Result<LanNamespace, String>) {
    static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut config = config.clone();
    if network.is_none() {
        return (config, Err("no NICs are attached".to_owned()));
    }
    let lan = match lan_unavailable() {
        Some(why) => Err(why),
        None => LanNamespace::create(STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
            .map_err(|e| e.to_string()),
    };
    config.lan_tap = lan.as_ref().ok().map(|ns| ns.tap().to_owned());
    (config, lan)
}

/// Adds the forwards and hands the LAN namespace its tap, once QEMU (QMP at `qmp`) runs.
pub async fn connect(
    qmp: &Path,
    network: Option<&NetworkSpec>,
    lan: Result<LanNamespace, String>,
) -> Result<Option<RunningNetwork>, NetError> {
    match network {
        None => Ok(None),
        Some(spec) => RunningNetwork::connect(qmp, &spec.forwards, lan).await.map(Some),
    }
}

impl Network for QemuMachine {
    fn attach(&mut self, spec: &NetworkSpec) {
        self.config.nics = true;
        self.network = Some(spec.clone());
    }

    fn access(&self) -> NetAccess {
        let Some(net) = self.running.as_ref().and_then(|t| t.net.as_ref()) else {
            return NetAccess::default();
        };
        NetAccess {
            address: Some(HOST_ADDRESS.to_string()),
            ports: Ports::Forwarded(net.ports.clone()),
            lan: match &net.lan {
                Ok(ns) => Ok(LanEnd {
                    namespace: ns.name().to_owned(),
                    interface: ns.tap().to_owned(),
                }),
                Err(why) => Err(why.clone()),
            },
            qmp: Some(net.qmp.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wan_nic_comes_before_the_lan_nic_with_its_own_mac() {
        let args = args(None);
        let devices: Vec<&String> = args.iter().skip(1).step_by(2).collect();
        assert_eq!(
            devices,
            [
                "user,id=wan,restrict=on",
                "virtio-net-pci,netdev=wan,mac=52:54:00:52:32:01,id=nic-wan,addr=0x10,romfile=",
                "virtio-net-pci,mac=52:54:00:52:32:02,id=nic-lan,addr=0x11,romfile=",
            ]
        );
    }

    #[test]
    fn a_tap_connects_the_lan_nic_without_changing_its_device() {
        let unconnected = args(None);
        let tapped = args(Some("r2stap"));
        assert_eq!(
            tapped[tapped.len() - 3],
            "tap,id=lan,ifname=r2stap,script=no,downscript=no"
        );
        assert_eq!(
            tapped[tapped.len() - 1],
            format!("{},netdev=lan", unconnected[unconnected.len() - 1])
        );
    }

    #[test]
    fn ifname_names_the_nics_as_the_board_does() {
        assert_eq!(
            ifname_args(),
            "ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02"
        );
    }

    #[test]
    fn a_machine_given_a_network_offers_its_snapshots_a_configuration_with_nics() {
        use crate::targets::{QemuSpec, Snapshots};
        let spec = QemuSpec {
            config: QemuConfig::default(),
            image: "disk.img".into(),
            shim: None,
            unpacked_from: None,
        };
        let mut machine = QemuMachine::new(spec);
        assert!(!machine.spec().config.nics);
        machine.attach(&NetworkSpec { forwards: Vec::new() });
        // A snapshot's key is made from this configuration: a machine with NICs must not
        // share snapshots with one without.
        assert!(machine.spec().config.nics);
    }
}
