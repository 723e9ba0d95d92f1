//! The board profile as serde reads it. Values check themselves while they are deserialized, so
//! the TOML deserializer attaches the value's span to their errors and every such error points
//! at the value in the file.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::model::CharPacing;
use crate::config::{DurationError, FileDuration, Table, Timeout};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoard {
    pub name: Name,
    pub description: Option<String>,
    pub baud: Baud,
    pub console: Name,
    pub char_delay: Option<CharPacing>,
    pub skip_countdowns: Option<bool>,
    /// Under QEMU, add the image's own disk drivers to an initrd that has none (default true).
    pub adapt_initrd_modules: Option<bool>,
    pub reconnect_timeout: Option<Timeout>,
    pub power: Option<Table<RawPower>>,
    pub sdmux: Option<Table<super::sdmux::RawSdMux>>,
    /// Where the host reaches the board (`[network] address`).
    pub network: Option<Table<RawBoardNetwork>>,
    /// Diagnostics run at the shell when a step fails, after the scenario's own.
    #[serde(default)]
    pub on_failure: Vec<String>,
    /// The board U-Boot's load addresses (`[load_addresses]`).
    pub load_addresses: Option<Table<RawLoadAddresses>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoadAddresses {
    pub kernel_addr_r: Option<Address>,
    pub ramdisk_addr_r: Option<Address>,
    pub fdt_addr_r: Option<Address>,
}

/// A physical address as U-Boot's environment has it: a TOML integer (`0x08000000`) or the
/// text `printenv` shows (`"0x08000000"`), below arm64's 48-bit physical address space.
pub(crate) struct Address(pub u64);

/// arm64 physical addresses have at most 48 bits.
const ADDRESS_LIMIT: u64 = 1 << 48;

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AddressVisitor;
        impl Visitor<'_> for AddressVisitor {
            type Value = Address;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"an address such as 0x08000000 or "0x08000000""#)
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Address, E> {
                match u64::try_from(value) {
                    Ok(address) => self.visit_u64(address),
                    Err(_) => Err(E::custom(format!("address {value} is negative"))),
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Address, E> {
                if value >= ADDRESS_LIMIT {
                    return Err(E::custom(format!(
                        "address {value:#x} is beyond arm64's 48-bit physical address space"
                    )));
                }
                Ok(Address(value))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Address, E> {
                // As U-Boot reads it: hexadecimal, with or without 0x.
                let digits = text
                    .strip_prefix("0x")
                    .or_else(|| text.strip_prefix("0X"))
                    .unwrap_or(text);
                match u64::from_str_radix(digits, 16) {
                    Ok(value) if digits.bytes().all(|b| b.is_ascii_hexdigit()) => self.visit_u64(value),
                    _ => Err(E::custom(format!(
                        r#"{text:?} is not a hexadecimal address; write it as U-Boot does, e.g. 0x08000000"#
                    ))),
                }
            }
        }
        deserializer.deserialize_any(AddressVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoardNetwork {
    /// The board's address as the harness's machine reaches it (`192.168.2.1`).
    pub address: Option<Name>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPower {
    pub on: Option<Argv>,
    pub off: Option<Argv>,
    pub cycle: Option<Argv>,
    pub manual: Option<Spanned<bool>>,
    /// How long one power command may take.
    pub timeout: Option<Timeout>,
}

/// A non-empty string without whitespace: a profile name or a kernel console name (`ttyS2`).
pub(crate) struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(de::Error::custom(format!("{text:?} must not contain whitespace")));
        }
        Ok(Name(text))
    }
}

/// The UART's line rate in bits per second.
pub(crate) struct Baud(pub u32);

/// Below this no boot console runs; above it no USB-UART does.
const BAUD_RANGE: std::ops::RangeInclusive<u64> = 300..=12_000_000;

impl<'de> Deserialize<'de> for Baud {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        match u64::try_from(value) {
            Ok(rate) if BAUD_RANGE.contains(&rate) => Ok(Baud(rate as u32)),
            _ => Err(de::Error::custom(format!(
                "baud rate {value} is out of range ({}..={}); the R2S console runs at 1500000",
                BAUD_RANGE.start(),
                BAUD_RANGE.end()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for CharPacing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PacingVisitor;
        impl Visitor<'_> for PacingVisitor {
            type Value = CharPacing;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a pause between typed characters such as "0ms" or "2ms", or "echo""#)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<CharPacing, E> {
                if text == "echo" {
                    return Ok(CharPacing::Echo);
                }
                FileDuration::parse(text)
                    .map(|pause| CharPacing::Delay(pause.get()))
                    .map_err(|e| match e {
                        DurationError::Syntax { reason, .. } => E::custom(format!(
                            r#"invalid char_delay {text:?} ({reason}): write a pause such as "0ms" or "2ms", or "echo" to wait for each character's echo"#
                        )),
                        other => E::custom(other),
                    })
            }
        }
        deserializer.deserialize_str(PacingVisitor)
    }
}

/// A command as its argument vector: run directly, never through a shell.
pub(crate) struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let argv = match Vec::<String>::deserialize(deserializer) {
            Ok(argv) => argv,
            Err(e) => {
                let e = e.to_string();
                return Err(de::Error::custom(format!(
                    r#"{}; a power command is an array of arguments, e.g. ["uhubctl", "-l", "1-1", "-p", "2", "-a", "on"]"#,
                    e.trim_end()
                )));
            }
        };
        match argv.first() {
            None => Err(de::Error::custom("a power command needs at least a program")),
            Some(program) if program.is_empty() => Err(de::Error::custom("the program name is empty")),
            Some(_) => Ok(Argv(argv)),
        }
    }
}
