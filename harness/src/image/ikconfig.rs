//! The kernel configuration built into a kernel image (`CONFIG_IKCONFIG`): gzip data between
//! the markers `IKCFG_ST` and `IKCFG_ED`, inflated up to [`limits::KERNEL_CONFIG`] bytes, and
//! its `CONFIG_…` lines. Pure: it reads the bytes it is given and allocates no more than the
//! limit, whatever the gzip stream claims.

use std::collections::BTreeMap;
use std::io::Read;

use super::limits;

/// The marker before the gzip data.
pub const START: &[u8; 8] = b"IKCFG_ST";
/// The marker after it.
pub const END: &[u8; 8] = b"IKCFG_ED";

/// Why a kernel's configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IkconfigError {
    /// No `IKCFG_ST` marker: the kernel was built without `CONFIG_IKCONFIG` (or with it as a
    /// module, `configs.ko`).
    #[error("no embedded configuration (no IKCFG_ST marker; CONFIG_IKCONFIG=y puts one in the kernel)")]
    NotEmbedded,
    /// `IKCFG_ST` without `IKCFG_ED` after it.
    #[error("IKCFG_ST at byte {start} has no IKCFG_ED after it")]
    NoEnd {
        /// Where the start marker is.
        start: usize,
    },
    /// The data between the markers is not gzip.
    #[error("the embedded configuration at byte {start} is not valid gzip: {error}")]
    Gzip {
        /// Where the data starts.
        start: usize,
        /// What the decoder said.
        error: std::io::Error,
    },
    /// More than the limit once inflated.
    #[error("the embedded configuration inflates to more than {limit} bytes")]
    TooLarge {
        /// [`limits::KERNEL_CONFIG`].
        limit: u64,
    },
}

/// A kernel configuration: option name (`CONFIG_…`) to value (`y`, `m`, `"text"`, a number);
/// `# CONFIG_X is not set` lines are `n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// The options in name order.
    pub options: BTreeMap<String, String>,
}

impl KernelConfig {
    /// Parses `.config` text; lines that are neither an assignment nor "is not set" are skipped.
    pub fn parse(text: &str) -> KernelConfig {
        let mut options = BTreeMap::new();
        for line in text.lines() {
            if let Some((name, value)) = line.split_once('=') {
                if name.starts_with("CONFIG_") && !name.contains(' ') {
                    options.insert(name.to_owned(), value.to_owned());
                }
            } else if let Some(name) = line
                .strip_prefix("# ")
                .and_then(|rest| rest.strip_suffix(" is not set"))
            {
                if name.starts_with("CONFIG_") {
                    options.insert(name.to_owned(), "n".to_owned());
                }
            }
        }
        KernelConfig { options }
    }

    /// The value of `name` (`CONFIG_…`), `None` if the configuration does not mention it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }
}

/// The configuration text embedded in `kernel` (an uncompressed Image), inflated.
pub fn extract(kernel: &[u8]) -> Result<String, IkconfigError> {
    let start = memchr::memmem::find(kernel, START).ok_or(IkconfigError::NotEmbedded)?;
    let data_at = start + START.len();
    let len = memchr::memmem::find(&kernel[data_at..], END).ok_or(IkconfigError::NoEnd { start })?;
    let limit = limits::KERNEL_CONFIG;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&kernel[data_at..data_at + len])
        .take(limit + 1)
        .read_to_end(&mut text)
        .map_err(|error| IkconfigError::Gzip {
            start: data_at,
            error,
        })?;
    if text.len() as u64 > limit {
        return Err(IkconfigError::TooLarge { limit });
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    /// A fake kernel: padding, the markers around `payload`, padding.
    fn kernel(payload: &[u8]) -> Vec<u8> {
        let mut k = vec![0u8; 4096];
        k.extend_from_slice(START);
        k.extend_from_slice(payload);
        k.extend_from_slice(END);
        k.extend_from_slice(&[0u8; 512]);
        k
    }

    #[test]
    fn the_embedded_configuration_is_inflated_and_parsed() {
        let config = b"#\n# Automatically generated file\n#\nCONFIG_EXT4_FS=y\nCONFIG_F2FS_FS=m\n# CONFIG_SQUASHFS is not set\nCONFIG_CMDLINE=\"console=ttyS2\"\n";
        let text = extract(&kernel(&gzip(config))).unwrap();
        let parsed = KernelConfig::parse(&text);
        assert_eq!(parsed.get("CONFIG_EXT4_FS"), Some("y"));
        assert_eq!(parsed.get("CONFIG_F2FS_FS"), Some("m"));
        assert_eq!(parsed.get("CONFIG_SQUASHFS"), Some("n"));
        assert_eq!(parsed.get("CONFIG_CMDLINE"), Some("\"console=ttyS2\""));
        assert_eq!(parsed.get("CONFIG_NOPE"), None);
    }

    #[test]
    fn a_kernel_without_the_markers_says_it_has_no_configuration() {
        assert!(matches!(extract(&[0u8; 8192]), Err(IkconfigError::NotEmbedded)));
        let mut cut = kernel(&gzip(b"CONFIG_A=y\n"));
        cut.truncate(4096 + 12);
        assert!(matches!(extract(&cut), Err(IkconfigError::NoEnd { start: 4096 })));
    }

    #[test]
    fn garbage_between_the_markers_is_a_gzip_error() {
        let error = extract(&kernel(b"not gzip")).unwrap_err();
        assert!(
            matches!(error, IkconfigError::Gzip { start: 4104, .. }),
            "{error}"
        );
    }

    #[test]
    fn a_configuration_inflating_past_the_limit_is_refused() {
        let huge = vec![b'#'; limits::KERNEL_CONFIG as usize + 1];
        let error = extract(&kernel(&gzip(&huge))).unwrap_err();
        assert!(matches!(error, IkconfigError::TooLarge { .. }), "{error}");
    }
}
