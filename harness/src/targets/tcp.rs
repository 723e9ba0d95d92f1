//! A board's console over raw TCP: a UART behind a serial server (ser2net's raw `tcp`
//! accepter, `socat TCP-LISTEN:…,fork FILE:/dev/ttyUSB0,raw`), named `tcp://HOST:PORT`.
//!
//! The bytes on the socket are the UART's, both ways, with nothing interpreted (no telnet
//! negotiation, no RFC 2217). The server sets the line rate; the board profile's `baud` only
//! labels the reports. The server closing the connection ends the console.

use std::time::Duration;

use tokio::net::TcpStream;

use super::{Console, ConsolePort, LocalBoxFuture, PortError};

/// How `--serial` names a console on a serial server.
pub const SCHEME: &str = "tcp://";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// `HOST:PORT` of a serial server's raw TCP port.
pub struct TcpPort {
    address: String,
}

/// Why the serial server could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {SCHEME}{address}: {source}")]
pub struct ConnectError {
    address: String,
    #[source]
    source: std::io::Error,
}

impl TcpPort {
    /// The port `name` gives, if it is a `tcp://HOST:PORT` name.
    pub fn parse(name: &str) -> Option<TcpPort> {
        let address = name.strip_prefix(SCHEME)?;
        Some(TcpPort {
            address: address.trim_end_matches('/').to_owned(),
        })
    }
}

impl ConsolePort for TcpPort {
    fn describe(&self) -> String {
        format!("{SCHEME}{}", self.address)
    }

    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>> {
        Box::pin(async move {
            let error = |source: std::io::Error| ConnectError {
                address: self.address.clone(),
                source,
            };
            let stream = match tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect(&self.address)).await {
                Ok(Ok(stream)) => stream,
                // Nothing listening yet: a serial server that starts with the board's power.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(PortError::Absent(Box::new(error(e))))
                }
                Ok(Err(e)) => return Err(PortError::Unusable(Box::new(error(e)))),
                Err(_) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {}", humantime::format_duration(CONNECT_LIMIT)),
                    );
                    return Err(PortError::Unusable(Box::new(error(e))));
                }
            };
            // Keys go out as they are typed: a login prompt must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            let (reader, writer) = stream.into_split();
            Ok(Console {
                reader: Box::pin(reader),
                writer: Box::pin(writer),
                notices: Default::default(),
            })
        })
    }

    fn close(&mut self) {
        // The socket belongs to the console; dropping it closes the connection.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_names_are_tcp_ports() {
        assert_eq!(
            TcpPort::parse("tcp://bench-pi:3001").map(|p| p.describe()),
            Some("tcp://bench-pi:3001".to_owned())
        );
        assert!(TcpPort::parse("/dev/ttyUSB0").is_none());
    }

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_absent_not_unusable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut port = TcpPort::parse(&format!("tcp://{address}")).unwrap();
        let error = port.open().await.err().expect("nothing listens");
        assert!(matches!(error, PortError::Absent(_)), "{error}");
    }
}
