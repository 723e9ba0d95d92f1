//! One console link kept open across outages, for every port that can lose its link mid-run: a
//! USB-UART re-enumerating as the board power-cycles, a serial server restarting. The serial,
//! RFC 2217 and raw TCP ports each say how to open their [`Link`] and how to read and write it;
//! this file does the rest, once.
//!
//! A dedicated thread reads the link, so the kernel's receive buffer is drained at the line rate
//! however busy the runner is, and hands the bytes to the console through a bounded queue. When
//! a read fails or finds end of file, the thread opens the link again until the port's
//! reconnect limit has passed, saying in [`ConsoleNotices`] that the link dropped and that it is
//! back; if it does not come back, the console ends with the error the link words ("console
//! device gone: DEV"). Input typed while the link is down is lost, and noted.

use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use super::{Console, ConsoleNotices, PortError};

/// How long one blocking read may wait: a link's reader times out this often, so the reader
/// thread looks at its stop flag.
pub(super) const READ_POLL: Duration = Duration::from_millis(50);

/// Read size: 64 KiB is 0.4 s of output at 1,500,000 baud.
const READ_CHUNK: usize = 64 * 1024;

/// Chunks queued between the reader thread and the runner. Bounded so that a runner that stops
/// reading cannot make the harness grow without limit; the matcher drains far faster than any
/// UART fills.
const QUEUE_CHUNKS: usize = 256;

/// A link that came back and failed again this soon is still the same outage: it keeps the
/// first deadline, so a link that opens but cannot be read does not keep the run alive forever.
const SETTLE: Duration = Duration::from_secs(1);

/// One kind of console link: how to open it (again) and move bytes on it, and what it is called
/// in the transcript. The link itself lives on the reader thread, which reopens it; what it
/// opened is split into a reading side (the thread's) and a writing side (shared with the
/// console's writer, swapped on every reconnect).
pub(super) trait Link: Send + 'static {
    /// The side the reader thread reads. Its reads must time out within [`READ_POLL`].
    type Reader: Read + Send + 'static;
    /// The side input is written to.
    type Writer: Write + Send + 'static;
    /// Why opening failed: the port's own error for the first open, the "last attempt" of a
    /// reconnect that gave up.
    type Error: std::fmt::Display;

    /// Opens the link: a UART opened exclusively, a socket connected (and negotiated).
    fn open(&mut self) -> Result<Opened<Self>, Self::Error>;

    /// The console's bytes among `raw`, bytes as read. A protocol's own bytes are taken out
    /// here, and answered on `writer`. Every byte is the console's unless a link says otherwise.
    fn receive(writer: &mut Self::Writer, raw: &[u8]) -> Vec<u8> {
        let _ = writer;
        raw.to_vec()
    }

    /// What the link is: how its outages read, how often it is tried again.
    fn kind(&self) -> Kind<'_>;
}

/// What a link is: how the notices of its outages name it, and how often a link that dropped is
/// tried again.
pub(super) enum Kind<'a> {
    /// A device at a path, reopened at the same path: a UART.
    Device(&'a Path),
    /// A network connection to the port the user named `label`, reached last at `at`
    /// (`rfc2217://HOST:PORT`); `peer` is what may close it ("the bridge").
    Connection {
        label: String,
        at: String,
        peer: &'static str,
    },
}

impl Kind<'_> {
    /// How long to wait after a failed attempt to open the link again: a device's path is looked
    /// for often (a missing path costs nothing to open), a network port less often (at a
    /// labgrid place each attempt asks labgrid where the port is).
    fn retry(&self) -> Duration {
        match self {
            Kind::Device(_) => Duration::from_millis(50),
            Kind::Connection { .. } => Duration::from_millis(200),
        }
    }

    /// Why the link dropped when a read finds end of file.
    fn end_of_file(&self) -> String {
        match self {
            Kind::Device(_) => "end of file".to_owned(),
            Kind::Connection { peer, .. } => format!("closed by {peer}"),
        }
    }

    /// The notice when the link dropped (`why`) and will be reopened for up to `limit`.
    fn dropped(&self, why: &str, limit: Duration) -> String {
        let limit = humantime::format_duration(limit);
        match self {
            Kind::Device(path) => format!(
                "console device {} went away ({why}); waiting up to {limit} for it to come back",
                path.display()
            ),
            Kind::Connection { label, at, .. } => {
                format!("console connection {label} ({at}) dropped ({why}); reconnecting for up to {limit}")
            }
        }
    }

    /// The notice when the link is open again, `after` the outage began.
    fn back(&self, after: Duration) -> String {
        let after = after.as_secs_f64();
        match self {
            Kind::Device(path) => format!(
                "console device {} is back after {after:.1}s; console output in the gap is lost",
                path.display()
            ),
            Kind::Connection { label, at, .. } => format!(
                "console connection {label} is back after {after:.1}s at {at}; console output in the gap is lost"
            ),
        }
    }

    /// The console's closing error when the link did not come back; `last_attempt` is why the
    /// last attempt to open it failed, if one was made and failed.
    fn gone(&self, last_attempt: Option<&str>) -> String {
        match (self, last_attempt) {
            // Why the last attempt failed is left out: it is nearly always the path still missing.
            (Kind::Device(path), _) => format!("console device gone: {}", path.display()),
            (Kind::Connection { label, .. }, None) => format!("console connection gone: {label}"),
            (Kind::Connection { label, .. }, Some(last)) => {
                format!("console connection gone: {label} (last attempt: {last})")
            }
        }
    }

    /// The end of "N bytes of input lost …" for input typed while the link is down.
    fn while_away(&self) -> &'static str {
        match self {
            Kind::Device(_) => "while the console device was away",
            Kind::Connection { .. } => "while the console connection was down",
        }
    }
}

/// What [`Link::open`] opened.
pub(super) struct Opened<L: Link + ?Sized> {
    /// The side the reader thread reads.
    pub reader: L::Reader,
    /// The side input is written to.
    pub writer: L::Writer,
    /// Console bytes that arrived while opening (an RFC 2217 negotiation reads some).
    pub early: Vec<u8>,
}

impl<L: Link> Opened<L> {
    /// Both sides of a link that read nothing while opening.
    pub(super) fn new(reader: L::Reader, writer: L::Writer) -> Self {
        Opened {
            reader,
            writer,
            early: Vec::new(),
        }
    }
}

/// An open link's reader thread. Dropping it stops the thread and closes the link (both sides:
/// the device's lock, the connection), whoever still holds the console.
pub(super) struct ReconnectingPort<L: Link> {
    shared: Shared<L::Writer>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<L: Link> ReconnectingPort<L> {
    /// Starts the reader thread on `opened`, which `link` opened; the link is reopened for up
    /// to `limit` after it drops. Fails only if the thread cannot be started.
    pub(super) fn start(link: L, opened: Opened<L>, limit: Duration) -> io::Result<(Self, Console)> {
        let shared = Shared(Arc::new(Mutex::new(State::Open(opened.writer))));
        let notices = ConsoleNotices::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let writer = PortWriter {
            shared: shared.clone(),
            notices: notices.clone(),
            while_away: link.kind().while_away(),
        };
        let reader = ReaderThread {
            link,
            limit,
            shared: shared.clone(),
            notices: notices.clone(),
            stop: stop.clone(),
            tx,
        };
        let (first, early) = (opened.reader, opened.early);
        let thread = std::thread::Builder::new()
            .name("console-reader".into())
            .spawn(move || reader.run(first, early))?;
        let console = Console {
            reader: Box::pin(ChannelReader {
                rx,
                pending: Vec::new(),
                pos: 0,
            }),
            writer: Box::pin(writer),
            notices,
        };
        let port = ReconnectingPort {
            shared,
            stop,
            thread: Some(thread),
        };
        Ok((port, console))
    }

    /// Opens `link` and starts its reader thread, off the runtime's thread: connecting and
    /// negotiating block for up to seconds.
    pub(super) async fn open(mut link: L, limit: Duration) -> Result<(Self, Console), PortError>
    where
        L::Error: Into<PortError>,
    {
        tokio::task::spawn_blocking(move || {
            let opened = link.open().map_err(Into::into)?;
            ReconnectingPort::start(link, opened, limit).map_err(|e| PortError::Unusable(Box::new(e)))
        })
        .await
        .map_err(|e| PortError::Unusable(Box::new(e)))?
    }
}

impl<L: Link> Drop for ReconnectingPort<L> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread notices within one READ_POLL (or one attempt to reopen). Joined, and the
        // writing side dropped after it (a reconnect may have just put one back), so the link
        // is closed before the caller moves on: powers the board off, lets another program
        // open the port, releases the place.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        *self.shared.lock() = State::Closed;
    }
}

/// The writing side, swapped by the reader thread across a reconnect.
struct Shared<W>(Arc<Mutex<State<W>>>);

impl<W> Clone for Shared<W> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<W> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum State<W> {
    Open(W),
    /// Dropped; the reader thread is reopening it.
    Away,
    /// Did not come back: the console's closing error.
    Gone(String),
    /// The port was closed.
    Closed,
}

struct ReaderThread<L: Link> {
    link: L,
    limit: Duration,
    shared: Shared<L::Writer>,
    notices: ConsoleNotices,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl<L: Link> ReaderThread<L> {
    fn run(mut self, mut reader: L::Reader, early: Vec<u8>) {
        if !early.is_empty() && !self.forward(Ok(early)) {
            return;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        let mut outage: Option<Instant> = None;
        let mut back_at: Option<Instant> = None;
        while !self.stopped() {
            let dropped_because = match reader.read(&mut buf) {
                Ok(0) => self.link.kind().end_of_file(),
                Ok(n) => {
                    let bytes = match &mut *self.shared.lock() {
                        State::Open(writer) => L::receive(writer, &buf[..n]),
                        _ => Vec::new(),
                    };
                    if !bytes.is_empty() && !self.forward(Ok(bytes)) {
                        return;
                    }
                    outage = None;
                    continue;
                }
                Err(e) if is_timeout(&e) => {
                    if back_at.is_some_and(|at| at.elapsed() > SETTLE) {
                        outage = None;
                    }
                    continue;
                }
                // EIO, a hang-up, a reset and anything else unexpected: the link is down.
                Err(e) => e.to_string(),
            };
            if self.stopped() {
                return;
            }
            let since = *outage.get_or_insert_with(Instant::now);
            // Both sides are closed, or the old device's lock and node linger.
            drop(reader);
            *self.shared.lock() = State::Away;
            match self.reconnect(since, &dropped_because) {
                Some(back) => {
                    reader = back;
                    back_at = Some(Instant::now());
                }
                None => return,
            }
        }
    }

    /// Opens the link again until `limit` after `since`. `None` when it did not come back (the
    /// console has been told) or the port is closing.
    fn reconnect(&mut self, since: Instant, why: &str) -> Option<L::Reader> {
        self.notices.push(self.link.kind().dropped(why, self.limit));
        let deadline = since + self.limit;
        let mut last_attempt = None;
        loop {
            if self.stopped() {
                return None;
            }
            if Instant::now() >= deadline {
                self.give_up(last_attempt.as_deref());
                return None;
            }
            match self.link.open() {
                Ok(opened) => {
                    *self.shared.lock() = State::Open(opened.writer);
                    self.notices.push(self.link.kind().back(since.elapsed()));
                    if !opened.early.is_empty() && !self.forward(Ok(opened.early)) {
                        return None;
                    }
                    return Some(opened.reader);
                }
                Err(e) => last_attempt = Some(e.to_string()),
            }
            std::thread::sleep(self.link.kind().retry());
        }
    }

    fn give_up(&mut self, last_attempt: Option<&str>) {
        let message = self.link.kind().gone(last_attempt);
        *self.shared.lock() = State::Gone(message.clone());
        self.notices.push(message.clone());
        self.forward(Err(io::Error::new(io::ErrorKind::NotConnected, message)));
    }

    /// Hands a chunk to the runner, waiting while the queue is full; `false` once nobody
    /// listens or the port is closing.
    fn forward(&self, mut item: io::Result<Vec<u8>>) -> bool {
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if self.stopped() {
                        return false;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Whether a read or write only ran out of time (or was interrupted): the link is still up.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The runner's side of the reader thread's queue; the thread ending is end of file.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    pos: usize,
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

/// Writes go straight to the link: input is a few bytes at a time, and neither a UART without
/// flow control nor a socket holds them back for long.
struct PortWriter<W> {
    shared: Shared<W>,
    notices: ConsoleNotices,
    /// The end of "N bytes of input lost …" while the link is down.
    while_away: &'static str,
}

impl<W: Write> AsyncWrite for PortWriter<W> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.shared.lock();
        match &mut *state {
            State::Open(writer) => {
                // The reader thread sees the same failure and handles the outage; input typed
                // into a vanishing link is lost, as it would be on the wire.
                if let Err(e) = writer.write_all(buf) {
                    self.notices
                        .push(format!("{} bytes of input lost: {e}", buf.len()));
                }
                Poll::Ready(Ok(buf.len()))
            }
            State::Away => {
                self.notices
                    .push(format!("{} bytes of input lost {}", buf.len(), self.while_away));
                Poll::Ready(Ok(buf.len()))
            }
            State::Gone(message) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, message.clone())))
            }
            State::Closed => Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, "console closed"))),
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
    //! The shared port as the raw TCP console uses it, against real sockets on 127.0.0.1: the
    //! test plays the serial server.

    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::targets::tcp::TcpPort;
    use crate::targets::ConsolePort;

    /// Longer than anything here should take.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A serial server's listening socket and the `tcp://` name of it.
    fn server() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("tcp://{}", listener.local_addr().unwrap());
        (listener, url)
    }

    /// Opens `url`'s console, reconnecting for up to `limit`.
    async fn open(url: &str, limit: Duration) -> (TcpPort, Console) {
        let mut port = TcpPort::parse(url, limit).unwrap();
        let console = port.open().await.expect("the server listens");
        (port, console)
    }

    /// Reads until `want` has arrived; everything read.
    async fn read_until(console: &mut Console, want: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains(want) {
            let n = tokio::time::timeout(PATIENCE, console.reader.read(&mut buf))
                .await
                .expect("console output in time")
                .expect("console output");
            assert_ne!(
                n,
                0,
                "end of file before {want:?}: {:?}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// The console's closing error, once it ends.
    async fn closing_error(console: &mut Console) -> io::Error {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(PATIENCE, console.reader.read(&mut buf)).await {
                Err(_) => panic!("the console did not end in time"),
                Ok(Ok(0)) => panic!("the console ended without an error"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return e,
            }
        }
    }

    fn notices(console: &Console) -> Vec<String> {
        console.notices.take().into_iter().map(|(_, text)| text).collect()
    }

    /// Waits until a notice starting with `prefix` has been made; the notices made so far.
    async fn await_notice(console: &Console, prefix: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while !seen.iter().any(|n: &String| n.starts_with(prefix)) {
            assert!(Instant::now() < deadline, "no notice {prefix:?} in {seen:?}");
            seen.extend(notices(console));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        seen
    }

    #[tokio::test]
    async fn output_reaches_the_console_and_input_reaches_the_link() {
        let (listener, url) = server();
        let (_port, mut console) = open(&url, PATIENCE).await;
        let (mut board, _) = listener.accept().unwrap();
        board.write_all(b"U-Boot 2024.01\r\n").unwrap();
        assert_eq!(read_until(&mut console, "\r\n").await, "U-Boot 2024.01\r\n");
        console.writer.write_all(b"root\n").await.unwrap();
        let mut typed = [0u8; 5];
        board.read_exact(&mut typed).unwrap();
        assert_eq!(&typed, b"root\n");
        assert!(notices(&console).is_empty());
    }

    #[tokio::test]
    async fn a_dropped_link_is_opened_again_and_both_ends_of_the_gap_are_noted() {
        let (listener, url) = server();
        let (_port, mut console) = open(&url, PATIENCE).await;
        let (mut first, _) = listener.accept().unwrap();
        first.write_all(b"before\n").unwrap();
        drop(first);
        let (mut second, _) = listener.accept().unwrap();
        second.write_all(b"after\n").unwrap();
        assert_eq!(read_until(&mut console, "after\n").await, "before\nafter\n");
        let said = notices(&console);
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(
            said[0],
            format!(
                "console connection {url} ({url}) dropped (closed by the server); reconnecting for up to 10s"
            )
        );
        assert!(
            said[1].starts_with(&format!("console connection {url} is back after ")),
            "{said:?}"
        );
        assert!(
            said[1].ends_with(&format!("s at {url}; console output in the gap is lost")),
            "{said:?}"
        );
    }

    #[tokio::test]
    async fn a_link_down_past_the_limit_ends_the_console_and_input_with_gone() {
        let (listener, url) = server();
        let limit = Duration::from_millis(500);
        let (_port, mut console) = open(&url, limit).await;
        let (board, _) = listener.accept().unwrap();
        drop(listener);
        let dropped_at = Instant::now();
        drop(board);
        let error = closing_error(&mut console).await;
        let waited = dropped_at.elapsed();
        assert!(waited >= limit && waited < limit * 4, "gave up after {waited:?}");
        let gone = format!("console connection gone: {url} (last attempt: cannot connect to {url}: ");
        assert_eq!(error.kind(), io::ErrorKind::NotConnected);
        assert!(error.to_string().starts_with(&gone), "{error}");
        let said = notices(&console);
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[1], error.to_string());
        let typed = console.writer.write_all(b"root\n").await.unwrap_err();
        assert_eq!(typed.to_string(), error.to_string());
    }

    #[tokio::test]
    async fn a_link_that_keeps_dropping_at_once_gives_up_at_the_first_deadline() {
        let (listener, url) = server();
        let limit = Duration::from_secs(1);
        let (_port, mut console) = open(&url, limit).await;
        // Every connection is taken and closed at once, as a server that cannot reach its UART
        // might: each reconnect succeeds, and the outage still ends at its first deadline.
        let started = Instant::now();
        std::thread::spawn(move || {
            while started.elapsed() < PATIENCE {
                drop(listener.accept());
            }
        });
        let error = closing_error(&mut console).await;
        let waited = started.elapsed();
        assert!(waited >= limit && waited < limit * 4, "gave up after {waited:?}");
        assert_eq!(error.to_string(), format!("console connection gone: {url}"));
    }

    #[tokio::test]
    async fn input_typed_while_the_link_is_down_is_lost_and_noted() {
        let (listener, url) = server();
        let (_port, mut console) = open(&url, PATIENCE).await;
        let (board, _) = listener.accept().unwrap();
        drop(listener);
        drop(board);
        await_notice(&console, &format!("console connection {url} ({url}) dropped")).await;
        console.writer.write_all(b"root\n").await.unwrap();
        assert_eq!(
            notices(&console),
            ["5 bytes of input lost while the console connection was down"]
        );
    }

    #[tokio::test]
    async fn closing_the_port_closes_the_link_though_the_console_lives_on() {
        let (listener, url) = server();
        let (mut port, mut console) = open(&url, PATIENCE).await;
        let (mut board, _) = listener.accept().unwrap();
        port.close();
        board.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(board.read(&mut [0u8; 16]).unwrap(), 0, "the connection is closed");
        let typed = console.writer.write_all(b"root\n").await.unwrap_err();
        assert_eq!(typed.to_string(), "console closed");
        assert!(notices(&console).is_empty());
    }
}
