//! SIGINT and SIGTERM end the run cleanly: the running command's future is dropped, which kills
//! QEMU (or closes the serial port and powers the board off), and the harness exits with 128 + the
//! signal number.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the exit code once SIGINT or SIGTERM arrives.
pub async fn terminated() -> u8 {
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        // Without handlers the default action still kills the process; QEMU then dies of its
        // parent-death signal.
        return std::future::pending().await;
    };
    let (name, code) = tokio::select! {
        _ = int.recv() => ("SIGINT", 130),
        _ = term.recv() => ("SIGTERM", 143),
    };
    eprintln!("\nharness: {name} received; stopping the target (QEMU killed, board powered off) and exiting");
    code
}
