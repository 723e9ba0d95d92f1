//! The raw-TCP console target, `--serial tcp://HOST:PORT`: the virtual bench's UART (a
//! pseudo-terminal carrying real QEMU's console) behind a serial server that relays its bytes
//! to one TCP connection, as ser2net's raw `tcp` accepter or socat would.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use r2s_tests::bench::{serial_run_args, VirtualBench};
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(180);

/// A serial server on 127.0.0.1 for `device`: accepts one connection, then carries the
/// device's bytes to it and its bytes to the device, untouched, until the client leaves.
struct SerialServer {
    address: SocketAddr,
}

impl SerialServer {
    fn start(device: &Path) -> SerialServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the serial server");
        let address = listener.local_addr().unwrap();
        let device = device.to_owned();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            // The pty is raw already (see support/pty.rs); O_NOCTTY keeps it from becoming the
            // test's controlling terminal.
            let tty = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(&device)
                .expect("open the bench's UART");
            relay(tty, client);
        });
        SerialServer { address }
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.address)
    }
}

/// Copies both ways until the client closes its end. The device-to-client copy ends when its
/// next write finds the connection gone.
fn relay(tty: File, client: TcpStream) {
    let (mut tty_in, mut client_out) = (tty.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tty_in.read(&mut buf) {
            if n == 0 || client_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let (mut client_in, mut tty_out) = (client, tty);
    let mut buf = [0u8; 4096];
    while let Ok(n) = client_in.read(&mut buf) {
        if n == 0 || tty_out.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

#[test]
fn boot_to_login_passes_over_a_raw_tcp_console_with_power_by_command() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let server = SerialServer::start(bench.device());
    let url = server.url();
    let transcripts = bench.dir().join("transcripts");
    let scenario = scenario("boot-to-login");
    let run = run_harness(&serial_run_args(&url, &profile, &transcripts, &scenario), LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    // Off then on at the start, off at the end, as on a UART.
    assert_eq!(bench.observed().power_log, ["off", "on", "off"]);
    assert_eq!(bench.observed().qemu_pid, None, "the board was left powered");
    let log = std::fs::read_to_string(transcripts.join("boot-to-login.log")).unwrap();
    let said = format!("-- board virtual-bench on {url} at 1500000 baud 8N1");
    assert!(log.contains(&said), "{log}");
    bench.tear_down();
}

#[test]
fn attach_on_failure_over_a_raw_tcp_console_hands_the_board_to_the_terminal() {
    let bench = VirtualBench::new(&fixture(r2s_images::DEFAULT_FIXTURE));
    let profile = bench.profile("10s");
    let server = SerialServer::start(bench.device());
    let url = server.url();
    let transcripts = bench.dir().join("transcripts");
    let scenario = bench.dir().join("fails-over-tcp.toml");
    std::fs::write(
        &scenario,
        "name = \"fails-over-tcp\"\nstart = \"login\"\ntimeout = \"3m\"\n[[steps]]\nrun = \"false\"\n",
    )
    .unwrap();
    let mut args = serial_run_args(&url, &profile, &transcripts, &scenario);
    args.push(OsStr::new("--attach-on-failure"));
    let mut terminal = r2s_tests::terminal::AtTerminal::spawn(&args, &[]);
    terminal.expect("fails-over-tcp: step 1 failed: ", LIMIT);
    terminal.expect("press Ctrl-] to leave", Duration::from_secs(10));
    // Typed through the TCP connection and the UART, answered by the board's shell.
    terminal.type_keys(b"echo over-tcp-$((6*7))\r");
    terminal.expect("over-tcp-42", Duration::from_secs(30));
    terminal.type_keys(&[0x1d]);
    let (status, shown) = terminal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL  fails-over-tcp"), "{shown}");
    assert_eq!(bench.observed().power_log.last().map(String::as_str), Some("off"));
    let log = std::fs::read_to_string(transcripts.join("fails-over-tcp.log")).unwrap();
    assert!(log.contains("over-tcp-42"), "{log}");
    bench.tear_down();
}
