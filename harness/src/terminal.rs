//! The person's terminal, for the moments the harness hands them a console: `harness console`,
//! a run that attaches at a failure (`--attach-on-failure`) or pauses before a step (`pause`,
//! `--pause-at`). Keys come from one reader of stdin for the whole process (a blocking read
//! cannot be cancelled, so there is only ever one), started by the first hand-over so that
//! nothing before it competes for stdin; one console holds the terminal at a time, the others
//! queue in order; the terminal is raw while held and restored however the hold ends. While it
//! is held, [`held`] tells the progress line to keep quiet and [`write_or_defer`] keeps the
//! reports' lines until it is let go.

use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, Mutex, MutexGuard};

/// Ctrl-]: what telnet uses, and nothing a shell or U-Boot needs.
pub const ESCAPE: u8 = 0x1d;

/// Whether a console holds the terminal now, and the output that waits for it to be let go. A
/// std mutex, never held across an await: `Drop` and plain threads take it.
static OUTPUT: std::sync::Mutex<Output> = std::sync::Mutex::new(Output {
    held: false,
    deferred: Vec::new(),
});

/// The terminal's output outside the console that holds it.
struct Output {
    held: bool,
    /// Lines for stdout (`false`) or stderr (`true`), in order, written when the hold ends.
    deferred: Vec<(bool, Vec<u8>)>,
}

/// The most output kept back while a console holds the terminal; past it the oldest goes
/// (a person at a console for hours while other scenarios report).
const DEFERRED_CAP: usize = 4 << 20;

fn output() -> std::sync::MutexGuard<'static, Output> {
    // Poisoned only by a panic while writing, which leaves the data usable.
    OUTPUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a console holds the terminal now: output meant for the terminal (the progress line)
/// waits.
pub fn held() -> bool {
    output().held
}

/// Writes `text` to stderr (`to_stderr`) or stdout, or, while a console holds the terminal,
/// keeps it until the hold ends: other scenarios' results must not land in the middle of a
/// person's session.
pub fn write_or_defer(to_stderr: bool, text: &[u8]) {
    let mut out = output();
    if out.held {
        out.deferred.push((to_stderr, text.to_vec()));
        let mut total: usize = out.deferred.iter().map(|(_, t)| t.len()).sum();
        while total > DEFERRED_CAP && out.deferred.len() > 1 {
            total -= out.deferred.remove(0).1.len();
        }
        return;
    }
    write_now(to_stderr, text);
}

fn write_now(to_stderr: bool, text: &[u8]) {
    let _ = if to_stderr {
        let mut stderr = std::io::stderr();
        stderr.write_all(text).and_then(|()| stderr.flush())
    } else {
        let mut stdout = std::io::stdout();
        stdout.write_all(text).and_then(|()| stdout.flush())
    };
}

/// Whether stdin and stdout are both terminals: a person can type and see.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The process's terminal: its keys and the right to hold it.
pub struct Terminal {
    /// The keys' reader, started by the first hold: until a console is handed over, stdin is
    /// left to whatever else reads it (a confirmation prompt).
    keys: Mutex<Option<mpsc::UnboundedReceiver<Vec<u8>>>>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Terminal")
    }
}

impl Terminal {
    /// The process's terminal (stdin and stdout, whatever they are); its key reader starts
    /// when a console is first handed over.
    pub fn shared() -> Arc<Terminal> {
        static SHARED: OnceLock<Arc<Terminal>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Arc::new(Terminal {
                    keys: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits for the terminal (consoles that asked before hold it first), then holds it: raw,
    /// keys going to the holder, until the hold is dropped. Keys typed before go to the holder
    /// too: a console the person asked for and typed ahead into.
    pub async fn hold(&self) -> Hold<'_> {
        self.hold_with(true).await
    }

    /// [`Terminal::hold`], dropping the keys typed before it: they were meant for no console
    /// (typed while a run boots, minutes before a failure), or for an earlier one.
    pub async fn hold_fresh(&self) -> Hold<'_> {
        self.hold_with(false).await
    }

    async fn hold_with(&self, keep_typed_ahead: bool) -> Hold<'_> {
        let mut keys = self.keys.lock().await;
        output().held = true;
        let raw = RawTerminal::enter();
        if !keep_typed_ahead {
            discard_typed_ahead();
        }
        let receiver = keys.get_or_insert_with(stdin_keys);
        while !keep_typed_ahead && receiver.try_recv().is_ok() {}
        Hold { keys, raw: Some(raw) }
    }
}

/// The terminal, held by one console.
pub struct Hold<'a> {
    keys: MutexGuard<'a, Option<mpsc::UnboundedReceiver<Vec<u8>>>>,
    /// Restored first when the hold ends, so that the output kept back meanwhile is written
    /// to a cooked terminal.
    raw: Option<RawTerminal>,
}

impl Hold<'_> {
    /// The next keys typed; `None` once stdin ends.
    pub async fn keys(&mut self) -> Option<Vec<u8>> {
        // Started by the hold; never absent while it lives.
        self.keys.as_mut()?.recv().await
    }

    /// Shows console output.
    pub fn show(&mut self, bytes: &[u8]) {
        let mut stdout = std::io::stdout();
        // A terminal that cannot keep up blocks us briefly; the console's reader keeps draining
        // the UART meanwhile.
        let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
    }

    /// Says something of the harness's own, on a line of its own, apart from console output.
    pub fn say(&mut self, text: &str) {
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "\r\n[harness: {}]\r\n", text.replace('\n', "\r\n"));
        let _ = stderr.flush();
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        drop(self.raw.take());
        let mut out = output();
        out.held = false;
        for (to_stderr, text) in std::mem::take(&mut out.deferred) {
            write_now(to_stderr, &text);
        }
    }
}

/// Drops what was typed at the terminal and not read yet (nothing when stdin is no terminal).
fn discard_typed_ahead() {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // SAFETY: tcflush on an open descriptor.
        unsafe { libc::tcflush(stdin.as_raw_fd(), libc::TCIFLUSH) };
    }
}

/// Keys as they are typed, read by a plain thread: a blocking read cannot be cancelled, and a
/// runtime task stuck in one would hold up the harness's exit.
fn stdin_keys() -> mpsc::UnboundedReceiver<Vec<u8>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: reads into a live buffer of the given length.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 || tx.send(buf[..n as usize].to_vec()).is_err() {
                return;
            }
        }
    });
    rx
}

/// The terminal in raw mode while it lives (Ctrl-C goes to the console); restored on drop, on
/// every way out. Nothing happens when stdin is not a terminal.
struct RawTerminal {
    saved: Option<libc::termios>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let fd = stdin.as_raw_fd();
        // SAFETY: termios is plain data, filled by tcgetattr before it is used.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return RawTerminal { saved: None };
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return RawTerminal { saved: None };
            }
            RawTerminal { saved: Some(saved) }
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores settings read from the same descriptor.
            unsafe {
                libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, saved);
            }
        }
    }
}

/// Splits typed keys at the escape key: what goes to the console, and whether the person left.
pub fn split_at_escape(keys: &[u8]) -> (&[u8], bool) {
    match keys.iter().position(|&b| b == ESCAPE) {
        Some(at) => (&keys[..at], true),
        None => (keys, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_after_the_escape_key_are_not_typed() {
        assert_eq!(split_at_escape(b"ls\r"), (&b"ls\r"[..], false));
        assert_eq!(split_at_escape(b"ls\x1dexit\r"), (&b"ls"[..], true));
        assert_eq!(split_at_escape(b"\x1d"), (&b""[..], true));
    }
}
