//! U-Boot's default environment, found in the bytes of a U-Boot binary (a `u-boot.bin`, or the
//! U-Boot image inside a `u-boot.itb` FIT).
//!
//! U-Boot compiles its default environment into the binary as one block of NUL-terminated
//! `name=value` strings ending in an empty string (`default_environment[]`, `env/common.c`).
//! Nothing marks where the block starts, so it is found from a name it must hold
//! (`kernel_addr_r`, which distro boot needs) and grown entry by entry in both directions for as
//! long as the strings read as `name=value`. Every byte is untrusted: the search is bounded by
//! the slice it is given, the block by [`ENV_BLOCK`], and nothing is allocated from a size read
//! from the bytes.

use std::ops::Range;

/// The largest block taken as an environment: U-Boot's `CONFIG_ENV_SIZE` is 8 KiB to 256 KiB,
/// and the default environment must fit in it.
pub const ENV_BLOCK: usize = 256 << 10;

/// The name the block is found by: distro boot loads kernels at `${kernel_addr_r}`.
const ANCHOR: &[u8] = b"\0kernel_addr_r=";

/// A default environment found in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultEnv {
    /// Where the block's first entry starts in the bytes searched.
    pub offset: usize,
    entries: Vec<Entry>,
}

/// One `name=value` of the block, by its place in the bytes searched.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    value: String,
    /// The value's bytes in the searched slice (for writing a changed copy of the binary).
    value_at: Range<usize>,
}

/// Why an address variable could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The environment does not set it.
    #[error("{name} is not set")]
    Missing { name: String },
    /// It is set to something that is not one number (`${...}`, a list, text).
    #[error("{name}={value:?} is not a hexadecimal address")]
    NotANumber { name: String, value: String },
}

impl DefaultEnv {
    /// The first default environment in `bytes` holding `kernel_addr_r`, if there is one.
    pub fn find(bytes: &[u8]) -> Option<DefaultEnv> {
        // The first `kernel_addr_r=` that is itself a whole entry: one with a value that is not
        // text is other bytes that happen to spell it. Each candidate is checked up to its own
        // end only, which comes before the next candidate's start: the search stays linear.
        let mut from = 0;
        let anchor = loop {
            let anchor = from + find_bytes(&bytes[from..], ANCHOR)? + 1;
            let end = anchor + bytes[anchor..].iter().position(|&b| b == 0)?;
            if parse_entry(&bytes[anchor..end]).is_some() {
                break anchor;
            }
            from = end;
        };
        let mut start = anchor;
        // Back over the entries before the anchor: each is preceded by a NUL.
        while start >= 2 && bytes[start - 1] == 0 && anchor - start < ENV_BLOCK {
            let previous_end = start - 1;
            let previous_start = bytes[..previous_end]
                .iter()
                .rposition(|&b| b == 0)
                .map_or(0, |nul| nul + 1);
            if previous_start == previous_end || parse_entry(&bytes[previous_start..previous_end]).is_none() {
                break;
            }
            start = previous_start;
        }
        let mut entries = Vec::new();
        let mut at = start;
        while at < bytes.len() && at.saturating_sub(anchor) < ENV_BLOCK {
            let end = match bytes[at..].iter().position(|&b| b == 0) {
                Some(len) => at + len,
                // A block that runs off the end of the bytes was cut short: not an environment.
                None => return None,
            };
            if end == at {
                break;
            }
            let Some(eq) = parse_entry(&bytes[at..end]) else {
                break;
            };
            entries.push(Entry {
                name: String::from_utf8_lossy(&bytes[at..at + eq]).into_owned(),
                value: String::from_utf8_lossy(&bytes[at + eq + 1..end]).into_owned(),
                value_at: at + eq + 1..end,
            });
            at = end + 1;
        }
        Some(DefaultEnv {
            offset: start,
            entries,
        })
    }

    /// The value of `name`, if the environment sets it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entry(name).map(|e| e.value.as_str())
    }

    /// Where the value of `name` lies in the bytes searched.
    pub fn value_at(&self, name: &str) -> Option<Range<usize>> {
        self.entry(name).map(|e| e.value_at.clone())
    }

    /// The number of `name=value` entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the block has no entries (never, for a block found by [`DefaultEnv::find`]).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `name` as U-Boot reads an address (`hextoul`: hexadecimal, with or without `0x`).
    pub fn address(&self, name: &str) -> Result<u64, AddressError> {
        let value = self.get(name).ok_or_else(|| AddressError::Missing {
            name: name.to_owned(),
        })?;
        parse_address(value).ok_or_else(|| AddressError::NotANumber {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        // U-Boot's import keeps the last of two entries of one name.
        self.entries.iter().rev().find(|e| e.name == name)
    }
}

/// A hexadecimal address as U-Boot writes and reads one: `0x02080000` or `2080000`.
pub fn parse_address(value: &str) -> Option<u64> {
    let digits = value.trim();
    let digits = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .unwrap_or(digits);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The position of the `=` of a `name=value` entry: a name of letters, digits, `_`, `.` or `-`,
/// a value of printable text (tabs and newlines allowed, as in multi-line scripts).
fn parse_entry(entry: &[u8]) -> Option<usize> {
    let eq = entry.iter().position(|&b| b == b'=')?;
    let name_ok = eq > 0
        && entry[..eq]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    let value_ok = entry[eq + 1..]
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t' || b == b'\n');
    (name_ok && value_ok).then_some(eq)
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rodata as a U-Boot binary has it: other strings, the block, other strings.
    fn binary(entries: &[&str]) -> Vec<u8> {
        let mut bytes = b"\x7fELF junk\0Insufficient RAM for page table: 0x%lx\0".to_vec();
        for entry in entries {
            bytes.extend_from_slice(entry.as_bytes());
            bytes.push(0);
        }
        bytes.extend_from_slice(b"\0\0, fiber\0");
        bytes
    }

    const RK3328: &[&str] = &[
        "bootcmd=run distro_bootcmd",
        "bootdelay=2",
        "fdt_addr_r=0x01f00000",
        "kernel_addr_r=0x02080000",
        "ramdisk_addr_r=0x06000000",
        "distro_bootcmd=for target in ${boot_targets}; do run bootcmd_${target}; done",
    ];

    #[test]
    fn the_block_is_found_from_kernel_addr_r_and_read_whole() {
        let bytes = binary(RK3328);
        let env = DefaultEnv::find(&bytes).unwrap();
        assert_eq!(env.len(), 6);
        assert_eq!(env.get("bootcmd"), Some("run distro_bootcmd"));
        assert_eq!(env.address("ramdisk_addr_r"), Ok(0x0600_0000));
        assert_eq!(env.address("fdt_addr_r"), Ok(0x01f0_0000));
        assert_eq!(&bytes[env.offset..env.offset + 8], b"bootcmd=");
    }

    #[test]
    fn value_at_points_at_the_value_bytes() {
        let bytes = binary(RK3328);
        let env = DefaultEnv::find(&bytes).unwrap();
        assert_eq!(&bytes[env.value_at("ramdisk_addr_r").unwrap()], b"0x06000000");
    }

    #[test]
    fn a_binary_without_kernel_addr_r_has_no_environment() {
        assert_eq!(DefaultEnv::find(&binary(&["bootcmd=boot", "bootdelay=2"])), None);
        assert_eq!(DefaultEnv::find(b""), None);
    }

    #[test]
    fn a_reference_to_kernel_addr_r_is_not_an_entry() {
        let bytes = b"\0load mmc 0 ${kernel_addr_r} Image\0".to_vec();
        assert_eq!(DefaultEnv::find(&bytes), None);
    }

    #[test]
    fn a_kernel_addr_r_whose_value_is_not_text_is_passed_over() {
        // Found by the fuzzer: the anchor's own entry is not an entry, so no block holds it.
        assert_eq!(
            DefaultEnv::find(b"rodata\0kernel_addr_r=\x0b\0\0\0un distro"),
            None
        );
        let mut bytes = b"rodata\0kernel_addr_r=\x0b\0".to_vec();
        bytes.extend_from_slice(&binary(RK3328));
        let env = DefaultEnv::find(&bytes).unwrap();
        assert_eq!(env.address("kernel_addr_r"), Ok(0x0208_0000));
    }

    #[test]
    fn a_block_cut_off_by_the_end_of_the_bytes_is_refused() {
        assert_eq!(DefaultEnv::find(b"\0kernel_addr_r=0x02080000"), None);
    }

    #[test]
    fn an_unset_or_non_numeric_address_is_an_error_naming_it() {
        let bytes = binary(&["kernel_addr_r=${loadaddr}", "bootdelay=2"]);
        let env = DefaultEnv::find(&bytes).unwrap();
        assert_eq!(
            env.address("kernel_addr_r"),
            Err(AddressError::NotANumber {
                name: "kernel_addr_r".into(),
                value: "${loadaddr}".into()
            })
        );
        assert_eq!(
            env.address("ramdisk_addr_r").unwrap_err().to_string(),
            "ramdisk_addr_r is not set"
        );
    }

    #[test]
    fn addresses_read_as_hexadecimal_with_or_without_0x() {
        assert_eq!(parse_address("0x44000000"), Some(0x4400_0000));
        assert_eq!(parse_address("44000000"), Some(0x4400_0000));
        assert_eq!(parse_address("0x"), None);
        assert_eq!(parse_address("0x1_0000"), None);
        assert_eq!(parse_address("0x11112222333344445"), None);
    }

    #[test]
    fn the_block_is_bounded_however_long_the_run_of_entries() {
        let mut bytes = vec![0u8];
        while bytes.len() < 2 * ENV_BLOCK {
            bytes.extend_from_slice(b"a=b\0");
        }
        bytes.extend_from_slice(b"kernel_addr_r=0x1\0");
        bytes.extend_from_slice(&b"c=d\0".repeat(ENV_BLOCK));
        let env = DefaultEnv::find(&bytes).unwrap();
        assert!(env.len() <= ENV_BLOCK / 4 * 2 + 2, "{}", env.len());
        assert_eq!(env.address("kernel_addr_r"), Ok(1));
    }
}
