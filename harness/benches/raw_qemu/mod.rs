//! What the boot benchmarks share: raw QEMU booting an image as it is, for scale (the
//! harness's own QEMU arguments and disks, no harness, timed from the first `qemu-img` to
//! `login: `), a whole `harness run` process timed, and the machine's load.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use r2s_harness::targets::qemu::{QemuConfig, QemuTarget};

const PROMPT: &[u8] = b"login: ";

/// The machine's load average, as `uptime` prints it.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// QEMU with the harness's own arguments, overlay creation included, until the login prompt.
pub fn raw_qemu(image: &Path, shim: Option<&Path>) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = QemuConfig::default();
    let start = Instant::now();
    // The shim goes last: U-Boot's `virtio 0`, as in `QemuTarget::start`.
    let mut disks = Vec::new();
    for (backing, name) in std::iter::once((image, "disk.qcow2")).chain(shim.map(|s| (s, "shim.qcow2"))) {
        let overlay = dir.path().join(name);
        let status = Command::new(&config.qemu_img)
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(backing)
            .arg(&overlay)
            .status()
            .expect("qemu-img");
        assert!(status.success());
        disks.push(overlay);
    }
    let args = QemuTarget::args(&config, &disks, &dir.path().join("qmp.sock"));
    let mut child = Command::new(&config.qemu)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu");
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 16384];
    let elapsed = loop {
        let n = out.read(&mut buf).expect("read");
        assert!(n > 0, "QEMU exited before the login prompt");
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(PROMPT.len()).any(|w| w == PROMPT) {
            break start.elapsed();
        }
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - 64);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

/// The whole harness process: start, the scenario, shutdown, report; `extra` options before the
/// scenario file.
pub fn harness_run(harness: &str, image: &Path, scenario: &Path, extra: &[&str]) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = std::time::Instant::now();
    let status = std::process::Command::new(harness)
        .arg("run")
        .arg("--image")
        .arg(image)
        .arg("--transcripts")
        .arg(dir.path())
        .args(extra)
        .arg(scenario)
        // The fixture's root password, for the scenarios that log in.
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("harness");
    let elapsed = start.elapsed();
    assert!(status.success(), "harness run of {} failed", scenario.display());
    elapsed
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time (user and system) of this process's children that have ended and been waited for:
/// QEMU for [`raw_qemu`], the harness and the QEMU it reaped for [`harness_run`]. The difference
/// across one call is that call's CPU time, which says how much of a boot's wall-clock time the
/// emulated machine kept the host's cores busy.
pub fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `run`'s wall-clock time (what it returns) and the CPU time of the children it waited for.
pub fn with_cpu(run: impl FnOnce() -> Duration) -> (Duration, Duration) {
    let before = children_cpu();
    let wall = run();
    (wall, children_cpu().saturating_sub(before))
}
