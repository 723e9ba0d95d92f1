//! A virtual bench: a fixture image booting in real QEMU whose console reaches the harness
//! through a pseudo-terminal, and power commands (the `bench-power` helper) that start and stop
//! that QEMU, as a relay would a board. The test can also pull the "USB-UART" out and plug it
//! back in.
//!
//! The bench runs on its own thread, which owns QEMU: QEMU dies with the bench, and, through its
//! parent-death signal, with the thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use r2s_harness::adapt::{self, Shim};
use r2s_harness::targets::qemu::{QemuConfig, QemuTarget};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::pty::{read_some, Pty};

/// What the bench can be told: power (by `bench-power` or the test), and the UART's cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchCommand {
    On,
    Off,
    Cycle,
    /// Pull the USB-UART: the device node and its by-id link disappear.
    Unplug,
    /// Plug it back in: a new device node behind the same link.
    Plug,
}

impl BenchCommand {
    fn parse(word: &str) -> Option<BenchCommand> {
        match word {
            "on" => Some(BenchCommand::On),
            "off" => Some(BenchCommand::Off),
            "cycle" => Some(BenchCommand::Cycle),
            _ => None,
        }
    }
}

type Reply = std::sync::mpsc::Sender<Result<(), String>>;

/// A bench with one virtual board. Dropping it powers the board off (QEMU is killed and reaped)
/// and removes the device link.
pub struct VirtualBench {
    dir: tempfile::TempDir,
    device: PathBuf,
    socket: PathBuf,
    commands: Option<mpsc::UnboundedSender<(BenchCommand, Reply)>>,
    thread: Option<JoinHandle<()>>,
    state: Arc<Mutex<Observed>>,
}

/// What the bench saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Power commands received from `bench-power`, in order.
    pub power_log: Vec<String>,
    /// The running QEMU's process id.
    pub qemu_pid: Option<u32>,
    /// Every QEMU process id the bench started.
    pub all_qemu_pids: Vec<u32>,
}

impl VirtualBench {
    /// A bench for `image` (raw), adapted for QEMU as `harness run --image` would. The board is
    /// off and the UART plugged in.
    pub fn new(image: &Path) -> VirtualBench {
        let shim = adapt::adapt(image)
            .expect("adapting the fixture for QEMU")
            .and_then(|a| a.shim);
        VirtualBench::start(image, shim, None)
    }

    /// A bench whose board boots from `card` (a file standing for its SD card), as it holds
    /// it at each power-on (adapted for QEMU then), and only while the SD-mux `mux_state`
    /// (a file whose content is the mux's mode) connects the card to the board (`dut`); without
    /// its card the board stays silent.
    pub fn with_card(card: &Path, mux_state: &Path) -> VirtualBench {
        VirtualBench::start(card, None, Some(mux_state.to_owned()))
    }

    fn start(image: &Path, shim: Option<Shim>, mux_state: Option<PathBuf>) -> VirtualBench {
        let dir = r2s_harness::scratch::dir("bench").expect("bench dir");
        let device = dir.path().join("ttyBENCH");
        let socket = dir.path().join("power.sock");
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(Observed::default()));
        let board = VirtualBoard {
            image: image.to_owned(),
            shim,
            mux_state,
            device: device.clone(),
            state: state.clone(),
            pty: Arc::new(Mutex::new(None)),
            to_qemu: Arc::new(Mutex::new(None)),
            running: None,
            pty_reader: None,
        };
        let listener_path = socket.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("virtual-bench".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("bench runtime");
                runtime.block_on(board.serve(listener_path, rx, ready_tx));
            })
            .expect("bench thread");
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("bench ready");
        VirtualBench {
            dir,
            device,
            socket,
            commands: Some(tx),
            thread: Some(thread),
            state,
        }
    }

    /// The console device the harness opens (a stable link, like `/dev/serial/by-id/…`).
    pub fn device(&self) -> &Path {
        &self.device
    }

    /// A private directory for the test's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a board profile whose power commands drive this bench, and returns its path.
    pub fn profile(&self, reconnect_timeout: &str) -> PathBuf {
        let helper = crate::built_bin("bench-power").display().to_string();
        let argv = |what: &str| {
            format!(
                "[{:?}, {:?}, {:?}]",
                helper,
                self.socket.display().to_string(),
                what
            )
        };
        let text = format!(
            "name = \"virtual-bench\"\nbaud = 1500000\nconsole = \"ttyAMA0\"\nchar_delay = \"0ms\"\n\
             reconnect_timeout = {reconnect_timeout:?}\n\n[power]\non = {}\noff = {}\ntimeout = \"60s\"\n",
            argv("on"),
            argv("off"),
        );
        let path = self.dir.path().join("virtual-bench.toml");
        std::fs::write(&path, text).expect("write profile");
        path
    }

    /// Tells the bench to do `command` and waits for it to be done.
    pub fn command(&self, command: BenchCommand) -> Result<(), String> {
        let (reply, done) = std::sync::mpsc::channel();
        self.commands
            .as_ref()
            .expect("bench running")
            .send((command, reply))
            .map_err(|_| "bench gone".to_owned())?;
        done.recv_timeout(Duration::from_secs(60))
            .map_err(|_| "bench did not answer".to_owned())?
    }

    /// What the bench saw so far.
    pub fn observed(&self) -> Observed {
        self.state.lock().unwrap().clone()
    }

    /// Drops the bench and checks that every QEMU it started is gone.
    pub fn tear_down(self) {
        let pids = self.observed().all_qemu_pids;
        drop(self);
        for pid in pids {
            assert!(!crate::process_alive(pid), "QEMU {pid} outlived the bench");
        }
    }
}

/// `harness run --serial SERIAL --board PROFILE --transcripts DIR SCENARIO`: SERIAL a device or
/// a URL (`tcp://`, `rfc2217://`).
pub fn serial_run_args<'a>(
    serial: &'a (impl AsRef<std::ffi::OsStr> + ?Sized),
    board: &'a Path,
    transcripts: &'a Path,
    scenario: &'a Path,
) -> Vec<&'a std::ffi::OsStr> {
    vec![
        std::ffi::OsStr::new("run"),
        std::ffi::OsStr::new("--serial"),
        serial.as_ref(),
        std::ffi::OsStr::new("--board"),
        board.as_os_str(),
        std::ffi::OsStr::new("--transcripts"),
        transcripts.as_os_str(),
        scenario.as_os_str(),
    ]
}

impl Drop for VirtualBench {
    fn drop(&mut self) {
        // Closing the command channel ends the bench loop, which powers the board off.
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A running QEMU and the task that carries its console to the pty.
struct Running {
    target: QemuTarget,
    pump: tokio::task::JoinHandle<()>,
    input: tokio::task::JoinHandle<()>,
}

/// The bench thread's state.
struct VirtualBoard {
    image: PathBuf,
    shim: Option<Shim>,
    /// With a card behind an SD-mux: the file holding the mux's mode.
    mux_state: Option<PathBuf>,
    device: PathBuf,
    state: Arc<Mutex<Observed>>,
    /// The UART, while plugged in.
    pty: Arc<Mutex<Option<Arc<Pty>>>>,
    /// Where typed bytes go, while QEMU runs.
    to_qemu: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>>,
    running: Option<Running>,
    pty_reader: Option<tokio::task::JoinHandle<()>>,
}

impl VirtualBoard {
    async fn serve(
        mut self,
        socket: PathBuf,
        mut commands: mpsc::UnboundedReceiver<(BenchCommand, Reply)>,
        ready: std::sync::mpsc::Sender<()>,
    ) {
        let listener = UnixListener::bind(&socket).expect("bind bench socket");
        self.plug().expect("plug the UART in");
        let _ = ready.send(());
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        self.power_request(stream).await;
                    }
                }
                command = commands.recv() => match command {
                    Some((command, reply)) => {
                        let result = self.apply(command).await;
                        let _ = reply.send(result);
                    }
                    None => break,
                },
            }
        }
        self.power_off().await;
        self.unplug();
    }

    /// One `bench-power` invocation: a word in, `ok` or `error: …` out.
    async fn power_request(&mut self, stream: tokio::net::UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let mut read = BufReader::new(read);
        if tokio::time::timeout(Duration::from_secs(5), read.read_line(&mut line))
            .await
            .is_err()
        {
            return;
        }
        let word = line.trim().to_owned();
        self.state.lock().unwrap().power_log.push(word.clone());
        let answer = match BenchCommand::parse(&word) {
            Some(command) => match self.apply(command).await {
                Ok(()) => "ok\n".to_owned(),
                Err(e) => format!("error: {e}\n"),
            },
            None => format!("error: unknown power command {word:?}\n"),
        };
        let _ = write.write_all(answer.as_bytes()).await;
    }

    async fn apply(&mut self, command: BenchCommand) -> Result<(), String> {
        match command {
            BenchCommand::On => self.power_on().await,
            BenchCommand::Off => {
                self.power_off().await;
                Ok(())
            }
            BenchCommand::Cycle => {
                self.power_off().await;
                self.power_on().await
            }
            BenchCommand::Unplug => {
                self.unplug();
                Ok(())
            }
            BenchCommand::Plug => self.plug(),
        }
    }

    async fn power_on(&mut self) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        if let Some(state) = &self.mux_state {
            let mode = std::fs::read_to_string(state).unwrap_or_default();
            if mode.trim() != "dut" {
                // The card is with the host (or nowhere): the board has nothing to boot.
                return Ok(());
            }
            // What the card holds now, adapted as `harness run --image` adapts an image.
            self.shim = adapt::adapt(&self.image)
                .map_err(|e| format!("adapting the card for QEMU: {e}"))?
                .and_then(|a| a.shim);
        }
        let shim = self.shim.as_ref().map(|s| s.disk());
        let (target, console) = QemuTarget::start(&QemuConfig::default(), &self.image, shim)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut state = self.state.lock().unwrap();
            state.qemu_pid = target.pid();
            state.all_qemu_pids.extend(target.pid());
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        *self.to_qemu.lock().unwrap() = Some(tx);
        let mut writer = console.writer;
        let input = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
        });
        let mut reader = console.reader;
        let pty = self.pty.clone();
        let pump = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let current = pty.lock().unwrap().clone();
                if let Some(pty) = current {
                    // A UART transmits whether or not anyone listens; a full buffer (nobody
                    // reading) loses the bytes after a while, as the wire would.
                    let _ = pty.write_all(&buf[..n], Duration::from_secs(1));
                }
            }
        });
        self.running = Some(Running { target, pump, input });
        Ok(())
    }

    async fn power_off(&mut self) {
        if let Some(running) = self.running.take() {
            running.pump.abort();
            running.input.abort();
            *self.to_qemu.lock().unwrap() = None;
            running.target.shutdown().await;
        }
        self.state.lock().unwrap().qemu_pid = None;
    }

    fn plug(&mut self) -> Result<(), String> {
        if self.pty.lock().unwrap().is_some() {
            return Ok(());
        }
        let pty = Arc::new(Pty::open(&self.device).map_err(|e| format!("openpty: {e}"))?);
        *self.pty.lock().unwrap() = Some(pty.clone());
        let to_qemu = self.to_qemu.clone();
        self.pty_reader = Some(tokio::spawn(forward_typing(pty, to_qemu)));
        Ok(())
    }

    fn unplug(&mut self) {
        if let Some(reader) = self.pty_reader.take() {
            reader.abort();
        }
        // The last reference closes the master: the slave hangs up and its node goes.
        self.pty.lock().unwrap().take();
    }
}

/// Carries what the harness types from the pty's master to QEMU's console. Polled: tokio's
/// readiness would stay "readable" for good once the master reported a hang-up (no slave open
/// yet), and typing needs no better than a few milliseconds.
async fn forward_typing(pty: Arc<Pty>, to_qemu: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        match read_some(pty.master(), &mut buf) {
            Ok(n) if n > 0 => {
                if let Some(tx) = to_qemu.lock().unwrap().as_ref() {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
            // Nothing typed (EAGAIN), or no one has the slave open (EIO).
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
