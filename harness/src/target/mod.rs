//! Targets: things with a serial console to read and write, and power to switch.
//!
//! Scenarios never know which target they run on; the runner sees only a [`Console`].

pub mod qemu;
pub mod qemu_img;
pub mod qmp;

use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

pub use qemu::{QemuConfig, QemuTarget};

/// The two directions of a target's serial console.
pub struct Console {
    /// Bytes the board prints.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
    /// Bytes typed at the board.
    pub writer: Pin<Box<dyn AsyncWrite + Send>>,
}
