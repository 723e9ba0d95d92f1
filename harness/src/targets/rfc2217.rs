//! A board's console on a network serial port that speaks RFC 2217 (Telnet COM-PORT-OPTION),
//! named `rfc2217://HOST:PORT`: ser2net's `telnet(rfc2217)` accepter, which is how a labgrid
//! exporter shares a USB-UART.
//!
//! The Telnet side (option negotiation, IAC escaping both ways, the SET-BAUDRATE, -DATASIZE,
//! -PARITY and -STOPSIZE round) is the `rfc2217` crate's sans-I/O client; this file only moves
//! bytes. On connecting, the port is set to the profile's baud 8N1 without flow control, as
//! labgrid's NetworkSerialPort sets its speed, and the bridge must confirm it.
//!
//! When the connection drops (the exporter restarted, ser2net moved to a new port as the
//! adapter re-enumerated) the port asks where it is now (a fixed address, or a labgrid place
//! again), reconnects within the profile's `reconnect_timeout`, and says so in the transcript
//! (see [`super::reconnecting_port`]); if it cannot, the console ends with "console connection
//! gone".

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rfc2217::{Client, DataBits, FlowControl, NotReady, Parity, PortSettings, StopBits};

use super::reconnecting_port::{is_timeout, Kind, Link, Opened, ReconnectingPort};
use super::tcp::{connect, connect_failed};
use super::{Console, ConsolePort, LocalBoxFuture, PortError};

/// How `--serial` names a console on an RFC 2217 port.
pub const SCHEME: &str = "rfc2217://";

/// How long the bridge has to accept COM-PORT-OPTION and confirm the line settings.
const NEGOTIATE_LIMIT: Duration = Duration::from_secs(5);

/// Where the port is now, as `HOST:PORT`: a fixed address, or one asked of a board farm each
/// time (its ser2net may get a new port whenever it restarts).
pub type Locate = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Why the port could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Rfc2217Error {
    /// Where the port is could not be found out.
    #[error("cannot find {what}: {detail}")]
    Locate { what: String, detail: String },
    /// No TCP connection.
    #[error("cannot connect to {SCHEME}{address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    /// Connected, but the bridge did not do RFC 2217 or did not take the settings.
    #[error("{SCHEME}{address}: {reason}")]
    Negotiate { address: String, reason: String },
}

/// The settings `baud` 8N1 without flow control.
fn settings(baud: u32) -> PortSettings {
    PortSettings {
        baud_rate: baud,
        data_bits: DataBits::Eight,
        parity: Parity::None,
        stop_bits: StopBits::One,
        flow_control: FlowControl::None,
    }
}

/// An RFC 2217 network serial port as a board's [`ConsolePort`].
pub struct Rfc2217Port {
    label: String,
    locate: Locate,
    baud: u32,
    reconnect_timeout: Duration,
    open: Option<ReconnectingPort<Rfc2217Link>>,
}

impl Rfc2217Port {
    /// The port `name` gives, if it is an `rfc2217://HOST:PORT` name, set to `baud` 8N1.
    pub fn parse(name: &str, baud: u32, reconnect_timeout: Duration) -> Option<Rfc2217Port> {
        let address = name.strip_prefix(SCHEME)?.trim_end_matches('/').to_owned();
        let label = format!("{SCHEME}{address}");
        Some(Rfc2217Port::located(
            label,
            Arc::new(move || Ok(address.clone())),
            baud,
            reconnect_timeout,
        ))
    }

    /// A port found by `locate` each time it is opened or reopened, described as `label`.
    pub fn located(label: String, locate: Locate, baud: u32, reconnect_timeout: Duration) -> Rfc2217Port {
        Rfc2217Port {
            label,
            locate,
            baud,
            reconnect_timeout,
            open: None,
        }
    }
}

impl ConsolePort for Rfc2217Port {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>> {
        Box::pin(async move {
            self.open = None;
            let link = Rfc2217Link {
                label: self.label.clone(),
                locate: self.locate.clone(),
                baud: self.baud,
                address: String::new(),
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

/// How to reach the port, and where it was reached last.
struct Rfc2217Link {
    label: String,
    locate: Locate,
    baud: u32,
    /// `HOST:PORT` of the connection opened last.
    address: String,
}

/// A negotiated connection: the socket, the protocol state and serial data that arrived while
/// negotiating.
struct Connection {
    stream: TcpStream,
    client: Client,
    early: Vec<u8>,
}

/// The writing side of a connection: input goes through the client (IAC doubled) to the socket.
struct Rfc2217Writer {
    stream: TcpStream,
    /// Boxed: the client keeps its buffers inline (about half a KiB).
    client: Box<Client>,
}

impl Write for Rfc2217Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.client.write_data(buf);
        let output = self.client.take_output();
        self.stream.write_all(&output)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Link for Rfc2217Link {
    type Reader = TcpStream;
    type Writer = Rfc2217Writer;
    type Error = PortError;

    /// Finds the port, connects and negotiates. [`PortError::Absent`] when nothing listens (a
    /// bridge that is restarting, a place whose ser2net is not up yet).
    fn open(&mut self) -> Result<Opened<Self>, PortError> {
        let address = (self.locate)().map_err(|detail| {
            PortError::Absent(Box::new(Rfc2217Error::Locate {
                what: self.label.clone(),
                detail,
            }))
        })?;
        let failed = |source| {
            connect_failed(source, |source| Rfc2217Error::Connect {
                address: address.clone(),
                source,
            })
        };
        let stream = connect(&address).map_err(failed)?;
        let reader = stream.try_clone().map_err(failed)?;
        let connection = negotiate(&address, stream, self.baud)?;
        self.address = address;
        Ok(Opened {
            reader,
            writer: Rfc2217Writer {
                stream: connection.stream,
                client: Box::new(connection.client),
            },
            early: connection.early,
        })
    }

    /// The serial data in `raw`; the client's answers (Telnet replies, settings) go out.
    fn receive(writer: &mut Rfc2217Writer, raw: &[u8]) -> Vec<u8> {
        let payload = writer.client.receive(raw);
        while writer.client.poll_event().is_some() {}
        let answer = writer.client.take_output();
        // A failed answer is the same failure the next read sees.
        let _ = writer.stream.write_all(&answer);
        payload
    }

    fn kind(&self) -> Kind<'_> {
        Kind::Connection {
            label: self.label.clone(),
            at: format!("{SCHEME}{}", self.address),
            peer: "the bridge",
        }
    }
}

/// Offers COM-PORT-OPTION, sends the line settings and waits for the bridge to confirm them.
fn negotiate(address: &str, mut stream: TcpStream, baud: u32) -> Result<Connection, PortError> {
    let mut client = Client::new(settings(baud));
    tracing::debug!(target: "rfc2217", "{address}: offering COM-PORT-OPTION, asking {baud} baud 8N1");
    let mut early = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + NEGOTIATE_LIMIT;
    let failed = |reason: String| {
        PortError::Unusable(Box::new(Rfc2217Error::Negotiate {
            address: address.to_owned(),
            reason,
        }))
    };
    loop {
        let output = client.take_output();
        stream
            .write_all(&output)
            .map_err(|e| failed(format!("connection failed while negotiating: {e}")))?;
        match client.readiness() {
            Ok(()) => {
                tracing::debug!(target: "rfc2217", "{address}: the bridge confirmed {baud} baud 8N1");
                break;
            }
            Err(e @ (NotReady::Refused | NotReady::Mismatched(_))) => {
                return Err(failed(format!("cannot set {baud} baud 8N1: {e}")))
            }
            Err(NotReady::Negotiating) if Instant::now() >= deadline => {
                return Err(failed(format!(
                    "no RFC 2217 answer within {} (a raw TCP port? use tcp:// for that)",
                    humantime::format_duration(NEGOTIATE_LIMIT)
                )))
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(failed(format!("cannot set {baud} baud 8N1: {e}")))
            }
            Err(_) => {}
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(failed(
                    "the bridge closed the connection while negotiating".to_owned(),
                ))
            }
            Ok(n) => early.extend(client.receive(&buf[..n])),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(failed(format!("connection failed while negotiating: {e}"))),
        }
        while let Some(event) = client.poll_event() {
            tracing::debug!(target: "rfc2217", "{address}: {event:?}");
        }
    }
    Ok(Connection {
        stream,
        client,
        early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rfc2217_names_are_rfc2217_ports() {
        let port = Rfc2217Port::parse("rfc2217://exporter-1:20001/", 1_500_000, Duration::from_secs(10));
        assert_eq!(
            port.map(|p| p.describe()),
            Some("rfc2217://exporter-1:20001".to_owned())
        );
        assert!(Rfc2217Port::parse("tcp://exporter-1:20001", 1_500_000, Duration::ZERO).is_none());
        assert!(Rfc2217Port::parse("/dev/ttyUSB0", 1_500_000, Duration::ZERO).is_none());
    }

    #[tokio::test]
    async fn a_port_nobody_listens_on_is_absent_not_unusable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut port = Rfc2217Port::parse(&format!("rfc2217://{address}"), 115_200, Duration::ZERO).unwrap();
        let error = port.open().await.err().expect("nothing listens");
        assert!(matches!(error, PortError::Absent(_)), "{error}");
    }

    #[tokio::test]
    async fn a_raw_tcp_port_is_refused_as_not_rfc2217() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // Accepts and says nothing, as a raw port in front of a quiet board does.
        let server = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let mut port = Rfc2217Port::parse(&format!("rfc2217://{address}"), 115_200, Duration::ZERO).unwrap();
        let error = port.open().await.err().expect("no RFC 2217 there");
        assert!(matches!(error, PortError::Unusable(_)), "{error}");
        assert!(error.to_string().contains("no RFC 2217 answer"), "{error}");
        drop(server.join());
    }
}
