//! A board's console over raw TCP: a UART behind a serial server (ser2net's raw `tcp`
//! accepter, `socat TCP-LISTEN:…,fork FILE:/dev/ttyUSB0,raw`), named `tcp://HOST:PORT`.
//!
//! The bytes on the socket are the UART's, both ways, with nothing interpreted (no telnet
//! negotiation, no RFC 2217). The server sets the line rate; the board profile's `baud` only
//! labels the reports. A dropped connection (the server restarted) is made again within the
//! profile's `reconnect_timeout` and noted in the transcript, as every console port does (see
//! [`super::reconnecting_port`]); if it cannot be, the console ends with "console connection
//! gone".

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::reconnecting_port::{Kind, Link, Opened, ReconnectingPort, READ_POLL};
use super::{Console, ConsolePort, LocalBoxFuture, PortError};

/// How `--serial` names a console on a serial server.
pub const SCHEME: &str = "tcp://";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long a write to the server may block: input is a few bytes; a server that takes this
/// long to take them is gone.
const WRITE_LIMIT: Duration = Duration::from_secs(5);

/// `HOST:PORT` of a serial server's raw TCP port.
pub struct TcpPort {
    address: String,
    reconnect_timeout: Duration,
    open: Option<ReconnectingPort<TcpLink>>,
}

/// Why the serial server could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {SCHEME}{address}: {source}")]
pub struct ConnectError {
    address: String,
    #[source]
    source: io::Error,
}

impl TcpPort {
    /// The port `name` gives, if it is a `tcp://HOST:PORT` name; a dropped connection is made
    /// again for up to `reconnect_timeout`.
    pub fn parse(name: &str, reconnect_timeout: Duration) -> Option<TcpPort> {
        let address = name.strip_prefix(SCHEME)?;
        Some(TcpPort {
            address: address.trim_end_matches('/').to_owned(),
            reconnect_timeout,
            open: None,
        })
    }
}

impl TcpPort {
    /// The port at `address` (`HOST:PORT`).
    pub fn at(address: &str, reconnect_timeout: Duration) -> TcpPort {
        TcpPort {
            address: address.to_owned(),
            reconnect_timeout,
            open: None,
        }
    }
}

impl ConsolePort for TcpPort {
    fn describe(&self) -> String {
        format!("{SCHEME}{}", self.address)
    }

    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>> {
        Box::pin(async move {
            self.open = None;
            let link = TcpLink {
                address: self.address.clone(),
            };
            let (port, console) = ReconnectingPort::open(link, self.reconnect_timeout).await?;
            self.open = Some(port);
            Ok(console)
        })
    }

    fn close(&mut self) {
        self.open = None;
    }
}

/// Connects to `address` (`HOST:PORT`) for a console: keys go out as they are typed, reads
/// time out within [`READ_POLL`], a write blocks for at most [`WRITE_LIMIT`]. A connection
/// refused (nothing listens) keeps its kind.
pub(super) fn connect(address: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for socket in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket, CONNECT_LIMIT) {
            Ok(stream) => {
                // A login prompt must not wait for Nagle.
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(READ_POLL))?;
                stream.set_write_timeout(Some(WRITE_LIMIT))?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {}", humantime::format_duration(CONNECT_LIMIT)),
                );
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A failed connection as a [`PortError`], `wrap` saying where to: [`PortError::Absent`] when
/// nothing listens (a serial server that starts with the board's power, a bridge that is
/// restarting), else unusable.
pub(super) fn connect_failed<E>(source: io::Error, wrap: impl FnOnce(io::Error) -> E) -> PortError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let refused = source.kind() == io::ErrorKind::ConnectionRefused;
    let error = Box::new(wrap(source));
    if refused {
        PortError::Absent(error)
    } else {
        PortError::Unusable(error)
    }
}

/// A raw TCP connection to the server: the socket, read and written as it is.
struct TcpLink {
    address: String,
}

impl Link for TcpLink {
    type Reader = TcpStream;
    type Writer = TcpStream;
    type Error = PortError;

    fn open(&mut self) -> Result<Opened<Self>, PortError> {
        let address = &self.address;
        let failed = |source| {
            connect_failed(source, |source| ConnectError {
                address: address.clone(),
                source,
            })
        };
        let writer = connect(&self.address).map_err(failed)?;
        let reader = writer.try_clone().map_err(failed)?;
        Ok(Opened::new(reader, writer))
    }

    fn kind(&self) -> Kind<'_> {
        let label = format!("{SCHEME}{}", self.address);
        Kind::Connection {
            at: label.clone(),
            label,
            peer: "the server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_names_are_tcp_ports() {
        assert_eq!(
            TcpPort::parse("tcp://bench-pi:3001", Duration::ZERO).map(|p| p.describe()),
            Some("tcp://bench-pi:3001".to_owned())
        );
        assert!(TcpPort::parse("/dev/ttyUSB0", Duration::ZERO).is_none());
    }

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_absent_not_unusable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut port = TcpPort::parse(&format!("tcp://{address}"), Duration::ZERO).unwrap();
        let error = port.open().await.err().expect("nothing listens");
        assert!(matches!(error, PortError::Absent(_)), "{error}");
    }
}
