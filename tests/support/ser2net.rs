//! ser2net, the serial server a labgrid exporter runs, serving a device (the virtual bench's
//! pseudo-terminal) on a free localhost port with an RFC 2217 accepter, as the exporter
//! configures it. Runs in the foreground; killed and reaped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long ser2net may take to listen.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A running ser2net.
pub struct Ser2net {
    child: Child,
    port: u16,
    config: PathBuf,
    dir: PathBuf,
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl Ser2net {
    /// ser2net serving `device` at 1,500,000 8N1 on a free port; its files go in `dir`.
    pub fn start(device: &Path, dir: &Path) -> Ser2net {
        Ser2net::start_on(device, dir, free_port())
    }

    /// ser2net serving `device` on `port` (to restart one where it was).
    pub fn start_on(device: &Path, dir: &Path, port: u16) -> Ser2net {
        // As labgrid's exporter writes it for a USBSerialPort or RawSerialPort.
        Ser2net::start_accepting(device, dir, port, "telnet(rfc2217,mode=server),tcp")
    }

    /// ser2net serving `device` on a free port as raw TCP: bytes as they are, no telnet, as a
    /// console server's port is.
    pub fn start_raw(device: &Path, dir: &Path) -> Ser2net {
        Ser2net::start_accepting(device, dir, free_port(), "tcp")
    }

    fn start_accepting(device: &Path, dir: &Path, port: u16, accepter: &str) -> Ser2net {
        let config = dir.join(format!("ser2net-{port}.yaml"));
        let text = format!(
            "connection: &bench\n  accepter: {accepter},127.0.0.1,{port}\n  \
             connector: serialdev(nouucplock=true),{},1500000n81,local\n  options:\n    kickolduser: true\n",
            device.display()
        );
        std::fs::write(&config, text).expect("write the ser2net config");
        let child = Command::new("ser2net")
            .arg("-n")
            .arg("-c")
            .arg(&config)
            .arg("-P")
            .arg(dir.join(format!("ser2net-{port}.pid")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ser2net (installed by .ci/setup)");
        let mut server = Ser2net {
            child,
            port,
            config,
            dir: dir.to_owned(),
        };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ser2net exited ({status}) with config {}", self.config.display());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "ser2net did not listen within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // That probe was a client: give ser2net a moment to drop it before the real one comes.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How `--serial` names it.
    pub fn url(&self) -> String {
        format!("rfc2217://127.0.0.1:{}", self.port)
    }

    /// Kills it and starts another on the same port and device, as an exporter restart does.
    pub fn restart(self, device: &Path) -> Ser2net {
        let (dir, port) = (self.dir.clone(), self.port);
        drop(self);
        Ser2net::start_on(device, &dir, port)
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
