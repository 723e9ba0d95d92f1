//! Patterns watched on every console byte for the whole run: fatal errors and stage markers.

use super::Stage;
use crate::console::Pattern;

/// U-Boot's last line before the kernel runs.
pub const KERNEL_MARKER: &str = "Starting kernel ...";

/// What seeing a watched pattern means.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchKind {
    /// The boot cannot succeed any more; the scenario ends at once.
    Fatal,
    /// A boot stage begins.
    Stage(Stage),
}

/// A watched pattern and its meaning.
#[derive(Debug, Clone)]
pub struct Watch {
    pub kind: WatchKind,
    pub pattern: Pattern,
}

fn literal(kind: WatchKind, text: &str) -> Watch {
    Watch {
        kind,
        pattern: Pattern::literal(text),
    }
}

fn regex(kind: WatchKind, source: &str) -> Watch {
    Watch {
        kind,
        pattern: Pattern::regex(source).expect("built-in pattern is valid"),
    }
}

/// Failures of U-Boot, the kernel and NixOS stage 1 after which waiting is
/// pointless. NixOS's stage 1 in particular waits for a key forever.
pub fn builtin_fatal() -> Vec<Watch> {
    use WatchKind::Fatal;
    vec![
        regex(Fatal, r"Skipping \S+ for failure retrieving"),
        literal(Fatal, "SCRIPT FAILED"),
        // sysboot could not parse extlinux.conf (a syntax it rejects, an INCLUDE loop past
        // "Maximum nesting"); distro boot then tries the network, which a board never answers.
        literal(Fatal, "Error parsing config file"),
        literal(Fatal, "Bad Linux ARM64 Image magic!"),
        literal(Fatal, "Wrong Ramdisk Image Format"),
        literal(Fatal, "### ERROR ### Please RESET the board ###"),
        literal(Fatal, "Synchronous Abort"),
        literal(Fatal, "Retry count exceeded"),
        literal(Fatal, "Resetting CPU"),
        literal(Fatal, "Kernel panic - not syncing"),
        literal(Fatal, "Unable to handle kernel"),
        literal(Fatal, "Internal error: Oops"),
        literal(Fatal, "An error occurred in stage 1 of the boot process"),
    ]
}

/// Markers that open each boot stage after the first.
pub fn stage_markers() -> Vec<Watch> {
    let at = WatchKind::Stage;
    vec![
        regex(at(Stage::Menu), r"Retrieving file: \S*extlinux\.conf"),
        literal(at(Stage::Kernel), KERNEL_MARKER),
        literal(at(Stage::Stage1), "<<< NixOS Stage 1 >>>"),
        literal(at(Stage::Stage2), "<<< NixOS Stage 2 >>>"),
        literal(at(Stage::Login), "<<< Welcome to NixOS"),
    ]
}
