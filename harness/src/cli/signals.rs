//! SIGINT, SIGTERM and SIGHUP end the run cleanly: the running command's future is dropped,
//! which kills QEMU (or closes the serial port and powers the board off) and removes the run's
//! scratch directories, and the harness exits with 128 + the signal number. SIGHUP is what a
//! closed terminal or SSH session sends; it is a request to stop like any other.

use std::io::Write;

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the exit code once SIGINT, SIGTERM or SIGHUP arrives.
pub async fn terminated() -> u8 {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Without handlers the default action still kills the process; QEMU then dies of its
        // parent-death signal.
        return std::future::pending().await;
    };
    let (name, code) = tokio::select! {
        _ = int.recv() => ("SIGINT", 130),
        _ = term.recv() => ("SIGTERM", 143),
        _ = hup.recv() => ("SIGHUP", 129),
    };
    // After a hang-up the terminal may be gone: a failed write must not stop the cleanup.
    let _ = writeln!(
        std::io::stderr(),
        "\nharness: {name} received; stopping the target (QEMU killed, board powered off) and exiting"
    );
    code
}
