//! The diagnostic log on stderr, through `tracing`: what the harness says to QEMU's monitor
//! (QMP), the labgrid client calls, the RFC 2217 negotiation and the adaptation's decisions
//! are at debug level. `-q` shows errors only, nothing shows warnings, `-v` debug, `-vv`
//! trace; `RUST_LOG` (e.g. `RUST_LOG=qmp=debug,rfc2217=debug`) overrides both.

use tracing_subscriber::EnvFilter;

/// The filter directives `-q`/`-v` ask for, when `RUST_LOG` is not set.
pub fn directives(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    }
}

/// Installs the stderr log for the process. A `RUST_LOG` that does not parse is reported
/// and the flags' level is used.
pub fn init(quiet: bool, verbose: u8) {
    let fallback = directives(quiet, verbose);
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => EnvFilter::try_new(&text).unwrap_or_else(|e| {
            super::say(format!(
                "RUST_LOG={text:?} is not a log filter ({e}); using {fallback:?}"
            ));
            EnvFilter::new(fallback)
        }),
        _ => EnvFilter::new(fallback),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(super::progress::colour_allowed())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn quiet_shows_errors_default_warnings_v_debug_vv_trace() {
        assert_eq!(directives(true, 0), "error");
        assert_eq!(directives(false, 0), "warn");
        assert_eq!(directives(false, 1), "debug");
        assert_eq!(directives(false, 2), "trace");
        assert_eq!(directives(false, 5), "trace");
    }
}
