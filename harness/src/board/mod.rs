//! Board profiles: one TOML file per board (line rate, console name, input pacing, power
//! commands), read into a raw struct and validated into a [`Board`]. Two are built in,
//! `nanopi-r2s` and `qemu-virt`; any other is a file given by path.
//!
//! Every problem in a profile is reported as `path:line:column: message`, with the line and a
//! caret under the place.

mod error;
mod model;
mod raw;
mod sdmux;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::{BoardError, BoardErrorKind};
pub use model::{
    Board, CharPacing, LoadAddressKeys, Power, PowerCommands, DEFAULT_POWER_TIMEOUT,
    DEFAULT_RECONNECT_TIMEOUT,
};

pub use sdmux::{SdMux, DEFAULT_DEVICE_TIMEOUT, DEFAULT_SDMUX_TIMEOUT};

use crate::config::{read_text, SourceText, Table};
use raw::RawBoard;

/// The built-in profiles, by name.
pub const BUILTIN: [(&str, &str); 2] = [
    ("nanopi-r2s", include_str!("../../boards/nanopi-r2s.toml")),
    ("qemu-virt", include_str!("../../boards/qemu-virt.toml")),
];

/// The profile `run --serial` uses when no `--board` is given.
pub const DEFAULT_SERIAL_BOARD: &str = "nanopi-r2s";

/// The profile of the QEMU target.
pub const QEMU_BOARD: &str = "qemu-virt";

impl Board {
    /// A built-in profile by name, or a profile file by path. A name that is an existing file
    /// (or looks like a path: it has a `/` or ends in `.toml`) is read as a file.
    pub fn load(spec: &str) -> Result<Board, BoardError> {
        let path = Path::new(spec);
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
        if path.is_file() || looks_like_path {
            let text = read_text(path, BoardErrorKind::Read)?;
            return Board::parse(&text, path);
        }
        Board::builtin(spec).ok_or_else(|| {
            BoardError::new(
                path,
                BoardErrorKind::Unknown {
                    builtin: BUILTIN.map(|(name, _)| name).join(", "),
                },
            )
        })
    }

    /// A built-in profile, if there is one of that name.
    pub fn builtin(name: &str) -> Option<Board> {
        let (_, text) = BUILTIN.iter().find(|(builtin, _)| *builtin == name)?;
        let source = PathBuf::from(format!("<built-in {name}>"));
        Some(Board::parse(text, &source).expect("built-in board profiles are valid"))
    }

    /// Parses and validates profile text; `source` names the file in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Board, BoardError> {
        let file = SourceText::new(text, source);
        let error = |span: Option<std::ops::Range<usize>>, kind| file.error(span, kind);
        let raw: RawBoard = toml::from_str(text).map_err(|e| {
            error(
                e.span(),
                BoardErrorKind::Schema {
                    message: e.message().trim_end().to_owned(),
                },
            )
        })?;
        let power = match raw.power {
            None => Power::None,
            Some(Table(power)) => {
                let has_commands = power.on.is_some() || power.off.is_some() || power.cycle.is_some();
                match power.manual {
                    Some(manual) if *manual.get_ref() && has_commands => {
                        return Err(error(
                            Some(manual.span()),
                            BoardErrorKind::Invalid(
                                "manual = true asks the operator to switch the board; remove it or the on/off/cycle commands"
                                    .to_owned(),
                            ),
                        ))
                    }
                    Some(manual) if *manual.get_ref() => Power::Manual,
                    _ if !has_commands => Power::None,
                    _ => Power::Commands(PowerCommands {
                        on: power.on.map(|a| a.0),
                        off: power.off.map(|a| a.0),
                        cycle: power.cycle.map(|a| a.0),
                        timeout: power.timeout.map_or(DEFAULT_POWER_TIMEOUT, |t| t.get()),
                    }),
                }
            }
        };
        Ok(Board {
            name: raw.name.0,
            description: raw.description,
            baud: raw.baud.0,
            console: raw.console.0,
            pacing: raw.char_delay.unwrap_or_default(),
            reconnect_timeout: raw
                .reconnect_timeout
                .map_or(DEFAULT_RECONNECT_TIMEOUT, |t| t.get()),
            power,
            skip_countdowns: raw.skip_countdowns.unwrap_or(false),
            adapt_initrd_modules: raw.adapt_initrd_modules.unwrap_or(true),
            sdmux: raw.sdmux.map(|Table(sdmux)| SdMux::from(sdmux)),
            address: raw
                .network
                .and_then(|Table(network)| network.address)
                .map(|a| a.0),
            on_failure: raw
                .on_failure
                .into_iter()
                .filter(|c| !c.trim().is_empty())
                .collect(),
            load_addresses: raw
                .load_addresses
                .map_or_else(LoadAddressKeys::default, |Table(keys)| LoadAddressKeys {
                    kernel_addr_r: keys.kernel_addr_r.map(|a| a.0),
                    ramdisk_addr_r: keys.ramdisk_addr_r.map(|a| a.0),
                    fdt_addr_r: keys.fdt_addr_r.map(|a| a.0),
                }),
            source: source.to_owned(),
        })
    }
}
