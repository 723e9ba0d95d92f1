//! A board's console on a network serial port that speaks RFC 2217 (Telnet COM-PORT-OPTION),
//! named `rfc2217://HOST:PORT`: ser2net's `telnet(rfc2217)` accepter, which is how a labgrid
//! exporter shares a USB-UART.
//!
//! The Telnet side (option negotiation, IAC escaping both ways, the SET-BAUDRATE, -DATASIZE,
//! -PARITY and -STOPSIZE round) is the `rfc2217` crate's sans-I/O client; this file only moves
//! bytes. On connecting, the port is set to the profile's baud 8N1 without flow control, as
//! labgrid's NetworkSerialPort sets its speed, and the bridge must confirm it.
//!
//! A dedicated thread reads the socket, as the serial target's thread reads a UART. When the
//! connection drops (the exporter restarted, ser2net moved to a new port as the adapter
//! re-enumerated) the thread asks where the port is now (a fixed address, or a labgrid place
//! again), reconnects within the profile's `reconnect_timeout`, and says so in the transcript;
//! if it cannot, the console ends with "console connection gone".

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rfc2217::{Client, DataBits, FlowControl, NotReady, Parity, PortSettings, StopBits};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use super::serial::{forward, ChannelReader};
use super::{Console, ConsoleNotices, ConsolePort, LocalBoxFuture, PortError};

/// How `--serial` names a console on an RFC 2217 port.
pub const SCHEME: &str = "rfc2217://";

/// How long connecting may take before the bridge counts as unreachable.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long the bridge has to accept COM-PORT-OPTION and confirm the line settings.
const NEGOTIATE_LIMIT: Duration = Duration::from_secs(5);

/// How long one blocking read waits before the reader thread looks at its stop flag.
const READ_POLL: Duration = Duration::from_millis(50);

/// How often a dropped connection is retried.
const RECONNECT_POLL: Duration = Duration::from_millis(200);

/// Read size: 64 KiB is 0.4 s of output at 1,500,000 baud.
const READ_CHUNK: usize = 64 * 1024;

/// Chunks queued between the reader thread and the runner (see the serial target).
const QUEUE_CHUNKS: usize = 256;

/// How long a write to the bridge may block: input is a few bytes; a bridge that takes this
/// long to take them is gone.
const WRITE_LIMIT: Duration = Duration::from_secs(5);

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
    open: Option<Link>,
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
            let dial = Dial {
                label: self.label.clone(),
                locate: self.locate.clone(),
                baud: self.baud,
            };
            let reconnect_timeout = self.reconnect_timeout;
            // Connecting and negotiating block for up to seconds: off the runtime's thread.
            let opened = tokio::task::spawn_blocking(move || {
                let connection = dial.connect()?;
                Ok::<_, PortError>(Link::start(dial, connection, reconnect_timeout))
            })
            .await
            .map_err(|e| PortError::Unusable(Box::new(e)))??;
            let (link, console) = opened;
            self.open = Some(link);
            Ok(console)
        })
    }

    fn close(&mut self) {
        self.open = None;
    }
}

/// How to reach the port: everything a reconnect needs.
struct Dial {
    label: String,
    locate: Locate,
    baud: u32,
}

/// A negotiated connection: the socket, the protocol state and serial data that arrived while
/// negotiating.
struct Connection {
    address: String,
    stream: TcpStream,
    client: Client,
    early: Vec<u8>,
}

impl Dial {
    /// Finds the port, connects and negotiates. [`PortError::Absent`] when nothing listens (a
    /// bridge that is restarting, a place whose ser2net is not up yet).
    fn connect(&self) -> Result<Connection, PortError> {
        let address = (self.locate)().map_err(|detail| {
            PortError::Absent(Box::new(Rfc2217Error::Locate {
                what: self.label.clone(),
                detail,
            }))
        })?;
        let connect_error = |source: io::Error| Rfc2217Error::Connect {
            address: address.clone(),
            source,
        };
        let socket = address
            .to_socket_addrs()
            .map_err(|e| PortError::Unusable(Box::new(connect_error(e))))?
            .next()
            .ok_or_else(|| {
                PortError::Unusable(Box::new(connect_error(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the name has no address",
                ))))
            })?;
        let stream = match TcpStream::connect_timeout(&socket, CONNECT_LIMIT) {
            Ok(stream) => stream,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(PortError::Absent(Box::new(connect_error(e))))
            }
            Err(e) => return Err(PortError::Unusable(Box::new(connect_error(e)))),
        };
        let setup = |e: io::Error| PortError::Unusable(Box::new(connect_error(e)));
        // Keys go out as they are typed: a login prompt must not wait for Nagle.
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_read_timeout(Some(READ_POLL)).map_err(setup)?;
        stream.set_write_timeout(Some(WRITE_LIMIT)).map_err(setup)?;
        negotiate(address.clone(), stream, self.baud)
    }
}

/// Offers COM-PORT-OPTION, sends the line settings and waits for the bridge to confirm them.
fn negotiate(address: String, mut stream: TcpStream, baud: u32) -> Result<Connection, PortError> {
    let mut client = Client::new(settings(baud));
    let mut early = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + NEGOTIATE_LIMIT;
    let failed = |reason: String| {
        PortError::Unusable(Box::new(Rfc2217Error::Negotiate {
            address: address.clone(),
            reason,
        }))
    };
    loop {
        let output = client.take_output();
        stream
            .write_all(&output)
            .map_err(|e| failed(format!("connection failed while negotiating: {e}")))?;
        match client.readiness() {
            Ok(()) => break,
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
        while client.poll_event().is_some() {}
    }
    Ok(Connection {
        address,
        stream,
        client,
        early,
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The writing side of a connection, swapped by the reader thread across a reconnect.
#[derive(Clone)]
struct Shared(Arc<Mutex<LinkState>>);

enum LinkState {
    /// The client is boxed: it keeps its buffers inline (about half a KiB).
    Open { stream: TcpStream, client: Box<Client> },
    /// Dropped; the reader thread is reconnecting.
    Away,
    /// Did not come back.
    Gone,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An open console's reader thread. Dropping it stops the thread and closes the connection.
struct Link {
    shared: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts the reader thread on `connection`; returns it and the console.
    fn start(dial: Dial, connection: Connection, reconnect_timeout: Duration) -> (Link, Console) {
        let reading = connection.stream.try_clone();
        let shared = Shared(Arc::new(Mutex::new(LinkState::Open {
            stream: connection.stream,
            client: Box::new(connection.client),
        })));
        let notices = ConsoleNotices::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let reader = ReaderThread {
            dial,
            reconnect_timeout,
            address: connection.address,
            shared: shared.clone(),
            notices: notices.clone(),
            stop: stop.clone(),
            tx,
        };
        let early = connection.early;
        let thread = std::thread::Builder::new()
            .name("rfc2217-reader".into())
            .spawn(move || reader.run(reading, early))
            .ok();
        let console = Console {
            reader: Box::pin(ChannelReader::new(rx)),
            writer: Box::pin(LinkWriter {
                shared: shared.clone(),
                notices: notices.clone(),
            }),
            notices,
        };
        (Link { shared, stop, thread }, console)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let LinkState::Open { stream, .. } = &*self.shared.lock() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Joined, so the connection is closed before the caller moves on (powers the board off,
        // releases the place).
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct ReaderThread {
    dial: Dial,
    reconnect_timeout: Duration,
    address: String,
    shared: Shared,
    notices: ConsoleNotices,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl ReaderThread {
    fn run(mut self, reading: io::Result<TcpStream>, early: Vec<u8>) {
        let Ok(mut stream) = reading else {
            self.give_up("cannot read the connection");
            return;
        };
        if !early.is_empty() && !self.forward(Ok(early)) {
            return;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        while !self.stopped() {
            let dropped_because = match stream.read(&mut buf) {
                Ok(0) => "closed by the bridge".to_owned(),
                Ok(n) => {
                    let payload = self.receive(&buf[..n]);
                    if !payload.is_empty() && !self.forward(Ok(payload)) {
                        return;
                    }
                    continue;
                }
                Err(e) if is_timeout(&e) => continue,
                Err(e) => e.to_string(),
            };
            if self.stopped() {
                return;
            }
            *self.shared.lock() = LinkState::Away;
            match self.reconnect(&dropped_because) {
                Some(back) => stream = back,
                None => return,
            }
        }
    }

    /// The serial data in `bytes`; the client's answers (Telnet replies, settings) go out.
    fn receive(&self, bytes: &[u8]) -> Vec<u8> {
        let mut state = self.shared.lock();
        let LinkState::Open { stream, client } = &mut *state else {
            return Vec::new();
        };
        let payload = client.receive(bytes);
        while client.poll_event().is_some() {}
        let answer = client.take_output();
        // A failed answer is the same failure the next read sees.
        let _ = stream.write_all(&answer);
        payload
    }

    /// Connects again, asking where the port is each time, until `reconnect_timeout` has passed.
    fn reconnect(&mut self, why: &str) -> Option<TcpStream> {
        let since = Instant::now();
        self.notices.push(format!(
            "console connection {} ({SCHEME}{}) dropped ({why}); reconnecting for up to {}",
            self.dial.label,
            self.address,
            humantime::format_duration(self.reconnect_timeout)
        ));
        let mut last_error = String::new();
        loop {
            if self.stopped() {
                return None;
            }
            if since.elapsed() >= self.reconnect_timeout {
                self.give_up(&last_error);
                return None;
            }
            match self.dial.connect() {
                Ok(connection) => {
                    let Ok(reading) = connection.stream.try_clone() else {
                        std::thread::sleep(RECONNECT_POLL);
                        continue;
                    };
                    self.address = connection.address;
                    *self.shared.lock() = LinkState::Open {
                        stream: connection.stream,
                        client: Box::new(connection.client),
                    };
                    self.notices.push(format!(
                        "console connection {} is back after {:.1}s at {SCHEME}{}; console output in the gap is lost",
                        self.dial.label,
                        since.elapsed().as_secs_f64(),
                        self.address
                    ));
                    if !connection.early.is_empty() && !self.forward(Ok(connection.early)) {
                        return None;
                    }
                    return Some(reading);
                }
                Err(e) => last_error = e.to_string(),
            }
            std::thread::sleep(RECONNECT_POLL);
        }
    }

    fn give_up(&mut self, last_error: &str) {
        *self.shared.lock() = LinkState::Gone;
        let mut message = format!("console connection gone: {}", self.dial.label);
        if !last_error.is_empty() {
            message.push_str(&format!(" (last attempt: {last_error})"));
        }
        self.notices.push(message.clone());
        self.forward(Err(io::Error::new(io::ErrorKind::NotConnected, message)));
    }

    /// Hands a chunk to the runner; `false` once nobody listens or the port is closing.
    fn forward(&self, item: io::Result<Vec<u8>>) -> bool {
        forward(&self.tx, item, &self.stop)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Input goes through the client (IAC doubled) straight to the socket.
struct LinkWriter {
    shared: Shared,
    notices: ConsoleNotices,
}

impl AsyncWrite for LinkWriter {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        match &mut *state {
            LinkState::Open { stream, client } => {
                client.write_data(buf);
                let output = client.take_output();
                if let Err(e) = stream.write_all(&output) {
                    // The reader thread sees the same failure and reconnects; input typed into
                    // a dropping connection is lost, as it would be on the wire.
                    self.notices
                        .push(format!("{} bytes of input lost: {e}", buf.len()));
                }
                Poll::Ready(Ok(buf.len()))
            }
            LinkState::Away => {
                self.notices.push(format!(
                    "{} bytes of input lost while the console connection was down",
                    buf.len()
                ));
                Poll::Ready(Ok(buf.len()))
            }
            LinkState::Gone => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "console connection gone",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
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
