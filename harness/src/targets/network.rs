//! What a target's network offers the steps: where the host reaches it, through which ports,
//! whether a LAN client can run, and how a link is switched.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::scenario::{Forward, NetworkSpec};

/// A target whose network the scenarios use (QEMU's NICs, a board's address).
pub trait Network {
    /// Attaches the board's NICs at the next start, with these forwards. Called before the
    /// target starts or is restored; a restored snapshot then has the same NICs it was saved
    /// with (they are part of its key).
    fn attach(&mut self, spec: &NetworkSpec);

    /// What the steps can reach, once the target runs.
    fn access(&self) -> NetAccess;
}

/// Where host and LAN steps find the target.
#[derive(Clone, Debug)]
pub struct NetAccess {
    /// The address the host reaches the target's services on (`127.0.0.1` for QEMU's forwards,
    /// the board's address on a bench); `None` when the target has none.
    pub address: Option<String>,
    /// The host port of each forwarded guest port. On a board, a port is reached as it is.
    pub ports: Ports,
    /// The LAN end `lan` steps run at, or why there is none.
    pub lan: Result<LanEnd, String>,
    /// QEMU's QMP socket, for `link` steps; `None` where links cannot be switched.
    pub qmp: Option<PathBuf>,
}

/// The host's end of the target's LAN: a network namespace holding one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanEnd {
    /// The namespace's name (`ip netns exec NAME …`).
    pub namespace: String,
    /// The interface in it that the target's LAN NIC is wired to (`${LAN_IF}` in `lan` steps).
    pub interface: String,
}

/// How guest ports map to what the host connects to.
#[derive(Clone, Debug, Default)]
pub enum Ports {
    /// No forwards: the target has no network the harness knows of.
    #[default]
    None,
    /// Each declared forward's host port (QEMU).
    Forwarded(BTreeMap<Forward, u16>),
    /// Every guest port is reached as it is, at the board's address.
    Direct,
}

impl Default for NetAccess {
    /// A target without a network.
    fn default() -> Self {
        NetAccess {
            address: None,
            ports: Ports::None,
            lan: Err("this target has no LAN the harness is connected to".to_owned()),
            qmp: None,
        }
    }
}

impl NetAccess {
    /// The host port that reaches `forward`, or why there is none.
    pub fn port(&self, forward: &Forward) -> Result<u16, String> {
        match &self.ports {
            Ports::Direct => Ok(forward.port),
            Ports::Forwarded(ports) => ports.get(forward).copied().ok_or_else(|| {
                format!("{forward} is not forwarded: add it to `[network] forward` in the scenario or board profile")
            }),
            Ports::None => Err(format!(
                "{forward} is not reachable: this target has no network; give the scenario a `[network]` table with `forward = [\"{forward}\"]` (QEMU) or the board profile an `address`"
            )),
        }
    }

    /// The value of a variable host steps may name: `TARGET_ADDRESS`, or `PORT_TCP_22` and the
    /// like (on a board, any port is itself).
    pub fn lookup(&self, name: &str) -> Option<String> {
        if name == "TARGET_ADDRESS" {
            return self.address.clone();
        }
        if name == "LAN_IF" {
            return self.lan.as_ref().ok().map(|lan| lan.interface.clone());
        }
        let rest = name.strip_prefix("PORT_")?;
        let (protocol, port) = rest.split_once('_')?;
        let forward = Forward::parse(&format!("{}:{port}", protocol.to_ascii_lowercase())).ok()?;
        self.port(&forward).ok().map(|p| p.to_string())
    }

    /// The variables host steps see: `TARGET_ADDRESS`, `LAN_IF` and one `PORT_<PROTO>_<PORT>`
    /// per forward.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        if let Some(address) = &self.address {
            vars.push(("TARGET_ADDRESS".to_owned(), address.clone()));
        }
        if let Ok(lan) = &self.lan {
            vars.push(("LAN_IF".to_owned(), lan.interface.clone()));
        }
        if let Ports::Forwarded(ports) = &self.ports {
            for (forward, port) in ports {
                vars.push((forward.variable(), port.to_string()));
            }
        }
        vars
    }
}
