//! The serial target: a real board's console on a UART (a USB-UART's `/dev/serial/by-id/…`
//! path, or a pseudo-terminal), 8N1 without flow control, held exclusively.
//!
//! A dedicated thread reads the port, so the kernel's receive buffer is drained at the line rate
//! however busy the runner is. When the device vanishes (a USB-UART re-enumerating as the board
//! power-cycles, a pulled cable) the thread waits for the path to return, reopens it, and says
//! so through [`ConsoleNotices`]; if it does not return in time the console ends with the error
//! "console device gone: DEV".

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{DataBits, FlowControl, Parity, StopBits, TTYPort};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::{Console, ConsoleNotices, ConsolePort, LocalBoxFuture, PortError};

/// How long one blocking read waits before the reader thread looks at its stop flag.
const READ_POLL: Duration = Duration::from_millis(50);

/// How often a vanished device's path is looked for.
const RECONNECT_POLL: Duration = Duration::from_millis(50);

/// Read size: 64 KiB is 0.4 s of output at 1,500,000 baud.
const READ_CHUNK: usize = 64 * 1024;

/// Chunks queued between the reader thread and the runner. Bounded so that a runner that stops
/// reading cannot make the harness grow without limit; the matcher drains far faster than any
/// UART fills.
const QUEUE_CHUNKS: usize = 256;

/// A device that came back and failed again this soon is still the same outage: it keeps the
/// first deadline, so a device that opens but cannot be read does not keep the run alive forever.
const SETTLE: Duration = Duration::from_secs(1);

/// How to open the console.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// The device: `/dev/serial/by-id/…`, `/dev/ttyUSB0`, or a pseudo-terminal.
    pub path: PathBuf,
    /// Line rate; always 8 data bits, no parity, one stop bit, no flow control.
    pub baud: u32,
    /// How long a vanished device may take to come back.
    pub reconnect_timeout: Duration,
}

/// Why the console could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// Another program holds the port.
    #[error(
        "{path} is in use by another program (another harness, screen, picocom, minicom?); only one may hold a console"
    )]
    Busy { path: PathBuf },
    /// Nothing at that path.
    #[error("{path} does not exist: is the USB-UART plugged in? (ls -l /dev/serial/by-id/)")]
    NotFound { path: PathBuf },
    /// Any other failure to open or configure the device.
    #[error("cannot open {path} at {baud} baud 8N1: {detail}")]
    Open {
        path: PathBuf,
        baud: u32,
        detail: String,
    },
}

/// An open serial console. Dropping it stops the reader thread and closes the device.
pub struct SerialTarget {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl SerialTarget {
    /// Opens `config.path` exclusively at `config.baud` 8N1 and returns the target and its
    /// console. Fails at once if another program holds the port.
    pub fn open(config: &SerialConfig) -> Result<(SerialTarget, Console), SerialError> {
        let port = open_port(&config.path, config.baud)?;
        let writer_port = port.try_clone_native().map_err(|e| SerialError::Open {
            path: config.path.clone(),
            baud: config.baud,
            detail: e.to_string(),
        })?;
        let shared = SharedPort(Arc::new(Mutex::new(PortState::Open(writer_port))));
        let notices = ConsoleNotices::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let reader = ReaderThread {
            config: config.clone(),
            shared: shared.clone(),
            notices: notices.clone(),
            stop: stop.clone(),
            tx,
        };
        let handle = std::thread::Builder::new()
            .name("serial-reader".into())
            .spawn(move || reader.run(port))
            .map_err(|e| SerialError::Open {
                path: config.path.clone(),
                baud: config.baud,
                detail: format!("cannot start the reader thread: {e}"),
            })?;
        let console = Console {
            reader: Box::pin(ChannelReader::new(rx)),
            writer: Box::pin(PortWriter {
                shared,
                path: config.path.clone(),
                notices: notices.clone(),
            }),
            notices,
        };
        Ok((
            SerialTarget {
                path: config.path.clone(),
                stop,
                reader: Some(handle),
            },
            console,
        ))
    }

    /// The device path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SerialTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread notices within one READ_POLL; joining releases the device before the caller
        // moves on (powers the board off, lets another program open the port).
        if let Some(handle) = self.reader.take() {
            let _ = handle.join();
        }
    }
}

/// A UART as a board's [`ConsolePort`]: the device of `config`, held while open.
pub struct SerialPort {
    config: SerialConfig,
    open: Option<SerialTarget>,
}

impl SerialPort {
    /// The port `config` names; nothing is opened yet.
    pub fn new(config: SerialConfig) -> SerialPort {
        SerialPort { config, open: None }
    }
}

impl ConsolePort for SerialPort {
    fn describe(&self) -> String {
        self.config.path.display().to_string()
    }

    fn open(&mut self) -> LocalBoxFuture<'_, Result<Console, PortError>> {
        Box::pin(async move {
            self.open = None;
            match SerialTarget::open(&self.config) {
                Ok((target, console)) => {
                    self.open = Some(target);
                    Ok(console)
                }
                Err(e @ SerialError::NotFound { .. }) => Err(PortError::Absent(Box::new(e))),
                Err(e) => Err(PortError::Unusable(Box::new(e))),
            }
        })
    }

    fn close(&mut self) {
        self.open = None;
    }
}

/// Opens and configures the device, mapping serialport's errors to what the user should do.
fn open_port(path: &Path, baud: u32) -> Result<TTYPort, SerialError> {
    let name = path.to_string_lossy();
    // TTYPort opens with TIOCEXCL and an exclusive flock: a second opener fails with
    // NoDevice (EBUSY, or the lock held), even when it runs as root, which TIOCEXCL lets through.
    serialport::new(name, baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .timeout(READ_POLL)
        .open_native()
        .map_err(|e| match e.kind {
            serialport::ErrorKind::NoDevice => SerialError::Busy {
                path: path.to_owned(),
            },
            serialport::ErrorKind::Io(io::ErrorKind::NotFound) => SerialError::NotFound {
                path: path.to_owned(),
            },
            _ => SerialError::Open {
                path: path.to_owned(),
                baud,
                detail: e.description,
            },
        })
}

/// The port the writer uses, swapped by the reader thread across a reconnect.
#[derive(Clone)]
struct SharedPort(Arc<Mutex<PortState>>);

enum PortState {
    Open(TTYPort),
    /// Vanished; the reader thread is waiting for it.
    Away,
    /// Did not come back.
    Gone,
}

impl SharedPort {
    fn lock(&self) -> MutexGuard<'_, PortState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct ReaderThread {
    config: SerialConfig,
    shared: SharedPort,
    notices: ConsoleNotices,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl ReaderThread {
    fn run(mut self, mut port: TTYPort) {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut outage: Option<Instant> = None;
        let mut back_at: Option<Instant> = None;
        while !self.stopped() {
            let gone_because = match port.read(&mut buf) {
                Ok(0) => "end of file".to_owned(),
                Ok(n) => {
                    if !self.forward(Ok(buf[..n].to_vec())) {
                        return;
                    }
                    outage = None;
                    continue;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) =>
                {
                    if back_at.is_some_and(|at| at.elapsed() > SETTLE) {
                        outage = None;
                    }
                    continue;
                }
                // EIO, a hang-up (BrokenPipe) and anything else unexpected: the device is gone.
                Err(e) => e.to_string(),
            };
            let since = *outage.get_or_insert_with(Instant::now);
            // Both descriptors must be closed, or the old device's lock and node linger.
            drop(port);
            *self.shared.lock() = PortState::Away;
            match self.reconnect(since, &gone_because) {
                Some(back) => {
                    port = back;
                    back_at = Some(Instant::now());
                }
                None => return,
            }
        }
    }

    /// Waits for the device to return until `reconnect_timeout` after `since`, and reopens it.
    /// `None` when it did not return (the console has been told) or the target is closing.
    fn reconnect(&mut self, since: Instant, why: &str) -> Option<TTYPort> {
        let path = self.config.path.clone();
        self.notices.push(format!(
            "console device {} went away ({why}); waiting up to {} for it to come back",
            path.display(),
            humantime::format_duration(self.config.reconnect_timeout)
        ));
        let deadline = since + self.config.reconnect_timeout;
        loop {
            if self.stopped() {
                return None;
            }
            if Instant::now() >= deadline {
                return self.give_up(&path);
            }
            if path.exists() {
                if let Ok(port) = open_port(&path, self.config.baud) {
                    match port.try_clone_native() {
                        Ok(writer) => {
                            *self.shared.lock() = PortState::Open(writer);
                            self.notices.push(format!(
                                "console device {} is back after {:.1}s; console output in the gap is lost",
                                path.display(),
                                since.elapsed().as_secs_f64()
                            ));
                            return Some(port);
                        }
                        Err(_) => drop(port),
                    }
                }
            }
            std::thread::sleep(RECONNECT_POLL);
        }
    }

    fn give_up(&mut self, path: &Path) -> Option<TTYPort> {
        *self.shared.lock() = PortState::Gone;
        let message = format!("console device gone: {}", path.display());
        self.notices.push(message.clone());
        self.forward(Err(io::Error::new(io::ErrorKind::NotConnected, message)));
        None
    }

    /// Hands a chunk to the runner; `false` once nobody listens or the target is closing.
    fn forward(&self, item: io::Result<Vec<u8>>) -> bool {
        forward(&self.tx, item, &self.stop)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Hands a chunk from a reader thread to the runner, waiting while the queue is full; `false`
/// once nobody listens or `stop` is set (the target is closing).
pub(super) fn forward(
    tx: &mpsc::Sender<io::Result<Vec<u8>>>,
    mut item: io::Result<Vec<u8>>,
    stop: &AtomicBool,
) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The runner's side of a reader thread's queue (this file's, and the RFC 2217 port's).
pub(super) struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    /// A reader of the chunks `rx` receives; the sender dropping is end of file.
    pub(super) fn new(rx: mpsc::Receiver<io::Result<Vec<u8>>>) -> ChannelReader {
        ChannelReader {
            rx,
            pending: Vec::new(),
            pos: 0,
        }
    }
}

impl AsyncRead for ChannelReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos == self.pending.len() {
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // The reader thread ended: end of file.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(chunk))) => {
                    self.pending = chunk;
                    self.pos = 0;
                }
            }
        }
        let n = buf.remaining().min(self.pending.len() - self.pos);
        let pos = self.pos;
        buf.put_slice(&self.pending[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// Writes go straight to the port: input is a few bytes at a time and, without flow control,
/// a UART's transmit buffer never holds them back for long.
struct PortWriter {
    shared: SharedPort,
    path: PathBuf,
    notices: ConsoleNotices,
}

impl AsyncWrite for PortWriter {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        match &mut *state {
            PortState::Open(port) => match port.write_all(buf) {
                Ok(()) => Poll::Ready(Ok(buf.len())),
                // The reader thread sees the same failure and handles the outage; input typed
                // into a vanishing device is lost, as it would be on the wire.
                Err(e) => {
                    self.notices
                        .push(format!("{} bytes of input lost: {e}", buf.len()));
                    Poll::Ready(Ok(buf.len()))
                }
            },
            PortState::Away => {
                self.notices.push(format!(
                    "{} bytes of input lost while the console device was away",
                    buf.len()
                ));
                Poll::Ready(Ok(buf.len()))
            }
            PortState::Gone => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("console device gone: {}", self.path.display()),
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
