//! Cold boot to the login prompt: the harness against raw QEMU started with the same arguments.
//!
//! `cargo bench -p r2s-harness --bench boot` — prints each run and the ratio of medians.
//! Runs alternate (raw, harness, raw, …) so that a noisy machine slows both sides alike.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use r2s_harness::target::qemu::{QemuConfig, QemuTarget};

const RUNS: usize = 7;
const PROMPT: &[u8] = b"login: ";

fn main() {
    let image =
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir()).expect("fixture");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/boot-to-login.toml");
    let harness = env!("CARGO_BIN_EXE_harness");
    // Raw QEMU gets the disks the harness attaches: the image behind an overlay and, when the
    // image names the R2S console, the shim disk that adaptation builds (built here once, outside
    // the timing; the harness builds its own inside its run).
    let adapted = r2s_harness::adapt::adapt(&image).expect("adapt");
    let shim = adapted.as_ref().map(|a| a.shim.disk().to_owned());
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    for run in 0..RUNS {
        let r = raw_qemu(&image, shim.as_deref());
        let h = harness_run(harness, &image, &scenario);
        println!(
            "run {run}: raw QEMU {:.2}s, harness {:.2}s",
            r.as_secs_f64(),
            h.as_secs_f64()
        );
        raw.push(r);
        ours.push(h);
    }
    let (r, h) = (median(&mut raw), median(&mut ours));
    println!(
        "median of {RUNS}: raw QEMU {:.2}s, harness {:.2}s, ratio {:.3}",
        r.as_secs_f64(),
        h.as_secs_f64(),
        h.as_secs_f64() / r.as_secs_f64()
    );
}

/// QEMU with the harness's own arguments, overlay creation included, until the login prompt.
fn raw_qemu(image: &Path, shim: Option<&Path>) -> Duration {
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

/// The whole harness process: start, boot-to-login scenario, shutdown, report.
fn harness_run(harness: &str, image: &Path, scenario: &Path) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let status = Command::new(harness)
        .arg("run")
        .arg("--image")
        .arg(image)
        .arg("--transcripts")
        .arg(dir.path())
        .arg(scenario)
        .stdout(Stdio::null())
        .status()
        .expect("harness");
    let elapsed = start.elapsed();
    assert!(status.success(), "harness run failed");
    elapsed
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
