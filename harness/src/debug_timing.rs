//! Where a run's time goes, at debug level: with `R2S_LOG=debug` in the environment, each
//! phase of setting up and starting a scenario (reading the scenario and board files, the
//! image's checks, the adaptation, the snapshot key, the entry's check, QEMU's start, the QMP
//! handshake, loading the machine state, the console, the login check) prints one line to stderr:
//!
//! ```text
//! harness: debug: 0.412s (+0.118s) snapshot key
//! ```
//!
//! the time since the process started (as the kernel counts it, so exec and dynamic linking
//! are included) and since the line before. Off, a mark costs one relaxed atomic load.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Not yet read from the environment, off, on.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// When the process started, and the last mark, as instants of this process.
static CLOCK: OnceLock<(Instant, Mutex<Instant>)> = OnceLock::new();

/// Whether `R2S_LOG` asks for debug lines (`debug`, or a comma-separated list holding it).
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var("R2S_LOG").is_ok_and(|v| v.split(',').any(|w| w.trim() == "debug"));
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            if on {
                clock();
            }
            on
        }
    }
}

/// Prints `what` with the time since the process started and since the last mark, if debug
/// lines are on.
pub fn mark(what: &str) {
    if !enabled() {
        return;
    }
    let (start, last) = clock();
    let now = Instant::now();
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    let since_last = now.saturating_duration_since(*last);
    *last = now;
    eprintln!(
        "harness: debug: {:.3}s (+{:.3}s) {what}",
        now.saturating_duration_since(*start).as_secs_f64(),
        since_last.as_secs_f64()
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

    #[test]
    fn this_process_started_before_now_and_after_the_machine() {
        let age = process_age().expect("/proc is readable");
        // Started at most as long ago as the machine booted; tests run for minutes, not days.
        assert!(age < Duration::from_secs(24 * 3600), "{age:?}");
    }
}
