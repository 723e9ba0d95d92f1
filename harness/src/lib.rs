//! Boots NanoPi R2S (RK3328) NixOS disk images under QEMU, or on a real board over a UART, and
//! judges the serial console against scenario files.
//!
//! Data flows one way: image → target → console stream → matcher → scenario runner → suite
//! events → reporters. [`layers::LAYERS`] writes that order down module by module, and a test
//! there fails on any `crate::…` path that goes against it.

pub mod adapt;
pub mod board;
pub mod config;
pub mod console;
pub mod debug_timing;
pub mod disk_cache;
pub mod escape;
pub mod file_memo;
pub mod flash;
pub mod hex;
pub mod image;
pub mod inspect;
pub mod layers;
pub mod private;
pub mod qemu_devices;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod scratch;
pub mod snapshot;
pub mod suite;
pub mod targets;
pub mod terminal;
pub mod unpacked;
