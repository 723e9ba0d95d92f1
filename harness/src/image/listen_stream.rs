//! The TCP sockets a systemd socket unit listens on (`ListenStream=`), and the address the
//! system itself connects to, to see that something answers there.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `ListenStream=` of a socket unit that is a TCP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenStream {
    /// The address it binds, when the line names one (`192.168.2.1:53`, `[::]:22`).
    pub address: Option<IpAddr>,
    /// The port.
    pub port: u16,
}

impl ListenStream {
    /// Where the system reaches it: its own address, or loopback for an unnamed or "any"
    /// address (a port alone binds every address, IPv4 included).
    pub fn connect_to(&self) -> IpAddr {
        match self.address {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(IpAddr::V4(any)) if any.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(IpAddr::V6(any)) if any.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Some(address) => address,
        }
    }
}

impl fmt::Display for ListenStream {
    /// As the unit file writes it: `22`, `0.0.0.0:22`, `[::]:22`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            None => write!(f, "{}", self.port),
            Some(IpAddr::V4(v4)) => write!(f, "{v4}:{}", self.port),
            Some(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
        }
    }
}

/// The TCP sockets of a socket unit's text, each once: `ListenStream=22`, `0.0.0.0:22`,
/// `[::]:22`. Paths (`/run/…`), abstract sockets (`@…`), `vsock:`, addresses with an interface
/// scope (`[fe80::1%eth0]:22`) and port 0 are not sockets the system can be asked about here.
pub fn listen_streams(unit: &str) -> Vec<ListenStream> {
    let mut found = Vec::new();
    for line in unit.lines() {
        let Some(value) = line.trim().strip_prefix("ListenStream=") else {
            continue;
        };
        if let Some(stream) = parse(value.trim()) {
            if !found.contains(&stream) {
                found.push(stream);
            }
        }
    }
    found
}

/// One `ListenStream=` value, if it is a TCP port.
fn parse(value: &str) -> Option<ListenStream> {
    let (address, port) = if let Some(rest) = value.strip_prefix('[') {
        let (address, port) = rest.split_once("]:")?;
        (Some(IpAddr::V6(address.parse().ok()?)), port)
    } else if let Some((address, port)) = value.rsplit_once(':') {
        (Some(IpAddr::V4(address.parse().ok()?)), port)
    } else {
        (None, value)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(ListenStream { address, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_listen_streams_are_read_with_their_addresses_and_others_are_not() {
        let unit = "[Socket]\nListenStream=22\nListenStream=0.0.0.0:80\nListenStream=[::]:443\n\
                    ListenStream=192.168.2.1:53\nListenStream=/run/foo.sock\nListenStream=@abstract\n\
                    ListenStream=vsock:2:22\nListenStream=[fe80::1%eth0]:22\nListenDatagram=53\n\
                    ListenStream=0\nListenStream=22\n";
        let shown: Vec<String> = listen_streams(unit).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["22", "0.0.0.0:80", "[::]:443", "192.168.2.1:53"]);
    }

    #[test]
    fn the_system_connects_to_loopback_for_any_address_and_to_a_named_one_as_named() {
        let to = |value: &str| parse(value).unwrap().connect_to().to_string();
        assert_eq!(to("22"), "127.0.0.1");
        assert_eq!(to("0.0.0.0:22"), "127.0.0.1");
        assert_eq!(to("[::]:22"), "::1");
        assert_eq!(to("192.168.2.1:53"), "192.168.2.1");
    }
}
