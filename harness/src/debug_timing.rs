//! Where a run's time goes: each phase of setting up and starting a scenario (reading the
//! scenario and board files, the image's checks, the adaptation, the snapshot key, the entry's
//! check, QEMU's start, the QMP handshake, loading the machine state, the console, the login
//! check) is a `tracing` event of target [`TARGET`] at debug level, shown by `-v` or
//! `RUST_LOG=timing=debug` like every other log line:
//!
//! ```text
//! DEBUG timing: snapshot key since_start=0.412s since_last=0.118s
//! ```
//!
//! the time since the process started (as the kernel counts it, so exec and dynamic linking
//! are included) and since the mark before. Off, a mark costs tracing's check of its
//! callsite's interest (a relaxed atomic load once the subscriber is known).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The target of the timing events: `RUST_LOG=timing=debug` shows them alone.
pub const TARGET: &str = "timing";

/// When the process started, and the last mark, as instants of this process.
static CLOCK: OnceLock<(Instant, Mutex<Instant>)> = OnceLock::new();

/// Logs `what` with the time since the process started and since the last mark, when the
/// log shows debug events of [`TARGET`].
pub fn mark(what: &str) {
    if !tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        return;
    }
    let (start, last) = clock();
    let now = Instant::now();
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    let since_last = now.saturating_duration_since(*last);
    *last = now;
    tracing::debug!(
        target: TARGET,
        since_start = %format_args!("{:.3}s", now.saturating_duration_since(*start).as_secs_f64()),
        since_last = %format_args!("{:.3}s", since_last.as_secs_f64()),
        "{what}"
    );
}

fn clock() -> &'static (Instant, Mutex<Instant>) {
    CLOCK.get_or_init(|| {
        let now = Instant::now();
        let start = now.checked_sub(process_age().unwrap_or_default()).unwrap_or(now);
        (start, Mutex::new(start))
    })
}

/// How long ago the kernel started this process: `/proc/self/stat`'s start time (in clock
/// ticks after boot) against `/proc/uptime`. `None` where either cannot be read.
fn process_age() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 22 (starttime) is the 20th after the name.
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf reads a constant and touches no memory of ours.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_second <= 0 {
        return None;
    }
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let started = ticks as f64 / per_second as f64;
    Some(Duration::from_secs_f64((uptime - started).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log lines a subscriber showing `directives` writes while `work` runs.
    fn logged(directives: &str, work: impl FnOnce()) -> String {
        let written = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, work);
        let bytes = written.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_mark_is_a_debug_event_of_the_timing_target_with_both_times() {
        let shown = logged("timing=debug", || mark("image opened"));
        assert!(
            shown.contains(" DEBUG timing: image opened since_start="),
            "{shown}"
        );
        assert!(
            shown.trim_end().ends_with('s') && shown.contains(" since_last="),
            "{shown}"
        );
    }

    #[test]
    fn a_mark_is_not_shown_at_the_default_warning_level() {
        assert_eq!(logged("warn", || mark("image opened")), "");
    }

    #[test]
    fn this_process_started_before_now_and_after_the_machine() {
        let age = process_age().expect("/proc is readable");
        // Started at most as long ago as the machine booted; tests run for minutes, not days.
        assert!(age < Duration::from_secs(24 * 3600), "{age:?}");
    }
}
