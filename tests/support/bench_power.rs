//! `bench-power SOCKET on|off|cycle`: the virtual bench's power switch, as a board profile's
//! power commands call a relay or a smart plug. Prints the bench's complaint on stderr and exits
//! 1 when the bench refuses.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [socket, word] = args.as_slice() else {
        eprintln!("usage: bench-power SOCKET on|off|cycle");
        return ExitCode::from(2);
    };
    match switch(socket, word) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-power: {message}");
            ExitCode::FAILURE
        }
    }
}

fn switch(socket: &str, word: &str) -> Result<(), String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("no bench at {socket}: {e}"))?;
    // Starting QEMU takes a moment; a bench that does not answer in this time is stuck.
    let limit = Some(Duration::from_secs(60));
    stream.set_read_timeout(limit).map_err(|e| e.to_string())?;
    stream.set_write_timeout(limit).map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{word}\n").as_bytes())
        .map_err(|e| format!("cannot talk to the bench: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("no answer from the bench: {e}"))?;
    match answer.trim() {
        "ok" => Ok(()),
        other => Err(other.strip_prefix("error: ").unwrap_or(other).to_owned()),
    }
}
