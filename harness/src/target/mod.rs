//! Targets: things with a serial console to read and write, and power to switch.
//!
//! Scenarios never know which target they run on; the runner sees only a [`Console`].

pub mod notices;
pub mod power;
pub mod qemu;
pub mod qemu_img;
pub mod qmp;
pub mod serial;

use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

pub use notices::ConsoleNotices;
pub use qemu::{QemuConfig, QemuTarget};
pub use serial::{SerialConfig, SerialError, SerialTarget};

/// The two directions of a target's serial console.
pub struct Console {
    /// Bytes the board prints.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes typed at the board.
    pub writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// What the target says about the console besides its bytes; the runner records it in the
    /// transcript.
    pub notices: ConsoleNotices,
}
