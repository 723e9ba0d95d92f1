//! Helpers shared by the end-to-end tests: fixture images, the harness binary, QEMU process
//! checks, and a command runner whose failures show everything needed to debug them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod bench;
pub mod exporter_ssh;
pub mod flake;
pub mod gateway;
pub mod hostile;
pub mod install;
pub mod labgrid;
pub mod loop_device;
pub mod pty;
pub mod sd_mux;
pub mod ser2net;
pub mod strip_modules;
pub mod terminal;
pub mod vfat;
pub mod xz_modules;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// A shipped scenario file by name, e.g. `scenario("boot-to-login")`.
pub fn scenario(name: &str) -> PathBuf {
    repo_root().join("scenarios").join(format!("{name}.toml"))
}

/// Builds (or reuses) a fixture image; concurrent test processes share one build.
pub fn fixture(name: &str) -> PathBuf {
    r2s_images::build(name, &r2s_images::default_cache_dir())
        .unwrap_or_else(|e| panic!("building fixture {name}: {e}"))
}

/// The default fixture compressed by `tool` (`zstd`, `xz`, `gzip`, `bzip2`) into `dir`, named
/// as nixpkgs' sd-image names its output (`….img.<suffix>`); the compressed file's path.
pub fn compressed_fixture(tool: &str, suffix: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("nixos-image-sd-card-25.05-aarch64-linux.img.{suffix}"));
    // The fastest level: the data is mostly zeros, and CI's two cores are shared.
    let level: &[&str] = match tool {
        "xz" => &["-q", "-c", "-T2", "-0"],
        "zstd" => &["-q", "-c", "-T2", "-1"],
        _ => &["-q", "-c", "-1"],
    };
    let output = std::process::Command::new(tool)
        .args(level)
        .arg(fixture(r2s_images::DEFAULT_FIXTURE))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        output.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&out, output.stdout).unwrap();
    out
}

/// The `harness` binary built alongside this test.
pub fn harness_bin() -> PathBuf {
    built_bin("harness")
}

/// A binary of this workspace built alongside this test (cargo puts binaries one level above
/// the test executables in `deps/`).
pub fn built_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{name} binary not found at {} (build the workspace first)",
        bin.display()
    );
    bin
}

/// A fresh private directory for one test, named like the harness's scratch directories
/// (`r2s-<pid>-test-…`), so one left by an interrupted test run is swept by the next run; this
/// process sweeps those first.
pub fn temp_dir() -> tempfile::TempDir {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| {
        r2s_harness::scratch::sweep_stale();
    });
    r2s_harness::scratch::dir("test").expect("temp dir")
}

/// What a finished harness run left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub command: String,
}

impl Finished {
    /// The value of the text report's `  NAME: ` line (a failure's `hint`, `at`, …); panics
    /// naming the run when there is none.
    pub fn report_field(&self, name: &str) -> &str {
        let prefix = format!("  {name}: ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name:?} line in the report:\n{}", self.explain()))
    }

    /// Asserts that each of `needles` is on stdout, each after the one before.
    pub fn assert_stdout_in_order(&self, needles: &[&str]) {
        let mut from = 0;
        for needle in needles {
            match self.stdout[from..].find(needle) {
                Some(at) => from += at + needle.len(),
                None => panic!(
                    "{needle:?} not on stdout after what came before\n{}",
                    self.explain()
                ),
            }
        }
    }

    /// The exit code (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Everything about the run, for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "command: {}\nstatus: {}\nelapsed: {:.1}s\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.status,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// A finished command's status and output, for assertion messages.
pub fn explain_output(output: &std::process::Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The harness started with `args`, stdout and stderr captured.
pub fn spawn_harness(args: &[&std::ffi::OsStr]) -> (Child, String) {
    spawn_harness_env(args, &[])
}

/// [`spawn_harness`] with extra environment variables, e.g. `TMPDIR` to keep every file and
/// QEMU command line of the run under one test directory.
pub fn spawn_harness_env(args: &[&std::ffi::OsStr], env: &[(&str, &std::ffi::OsStr)]) -> (Child, String) {
    spawn_harness_env_without(args, env, &[])
}

/// [`spawn_harness_env`] with the variables in `unset` removed from the environment.
pub fn spawn_harness_env_without(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
    unset: &[&str],
) -> (Child, String) {
    let bin = harness_bin();
    let command = shown_command(&bin, args);
    let mut command_line = Command::new(&bin);
    command_line
        .args(args)
        // As a user would: the fixture's root password in the variable the scenarios name.
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .envs(env.iter().copied());
    for name in unset {
        command_line.env_remove(name);
    }
    let child = command_line
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command}: {e}"));
    (child, command)
}

/// `bin ARGS` as a report shows the command.
pub fn shown_command(bin: &Path, args: &[&std::ffi::OsStr]) -> String {
    let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    format!("{} {}", bin.display(), args.join(" "))
}

/// Waits for `child` up to `limit`, killing it if it overruns, and collects its output.
pub fn finish(mut child: Child, command: String, started: Instant, limit: Duration) -> Finished {
    // A test that reads a stream itself while the harness runs has taken it: it is empty here.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut stdout) = stdout {
            let _ = stdout.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut s);
        }
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            panic!("{command} overran {limit:?} and was killed ({status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
        command,
    }
}

/// `harness run --image IMAGE --transcripts DIR EXTRA… SCENARIO` to completion (at most
/// `limit`).
pub fn run_image(
    image: &Path,
    transcripts: &Path,
    extra: &[&std::ffi::OsStr],
    scenario: &Path,
    limit: Duration,
) -> Finished {
    let mut args = vec![
        std::ffi::OsStr::new("run"),
        std::ffi::OsStr::new("--image"),
        image.as_os_str(),
        std::ffi::OsStr::new("--transcripts"),
        transcripts.as_os_str(),
    ];
    args.extend_from_slice(extra);
    args.push(scenario.as_os_str());
    run_harness(&args, limit)
}

/// Runs the harness to completion (at most `limit`).
pub fn run_harness(args: &[&std::ffi::OsStr], limit: Duration) -> Finished {
    let started = Instant::now();
    let (child, command) = spawn_harness(args);
    finish(child, command, started, limit)
}

/// Writes `dest` as a copy of the first `len` bytes of `source`: an image cut short, as an
/// interrupted download or `dd` leaves it.
pub fn write_truncated_copy(source: &Path, len: usize, dest: &Path) {
    let mut head = vec![0u8; len];
    std::fs::File::open(source)
        .and_then(|mut f| f.read_exact(&mut head))
        .unwrap_or_else(|e| panic!("reading {len} bytes of {}: {e}", source.display()));
    std::fs::write(dest, head).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

/// Writes `dest` as 1 MiB of pseudo-random bytes: no partition table, no filesystem.
pub fn write_garbage_image(dest: &Path) {
    let bytes: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dest, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

/// SHA-256 of a file, streamed.
pub fn sha256(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("{:x}", hasher.finalize())
}

/// Waits (up to `limit`) until the harness `pid` runs QEMU and the console has printed into
/// `raw`: mid-boot. Returns the QEMU children; panics if QEMU never started.
pub fn wait_for_qemu_output(pid: u32, raw: &Path, limit: Duration) -> Vec<u32> {
    let started = Instant::now();
    let mut qemus = Vec::new();
    while started.elapsed() < limit {
        qemus = qemu_children(pid);
        let printed = std::fs::metadata(raw).map(|m| m.len() > 0).unwrap_or(false);
        if !qemus.is_empty() && printed {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!qemus.is_empty(), "QEMU never started under the harness");
    qemus
}

/// Process ids of the QEMU children of `parent`.
pub fn qemu_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, …
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        let comm = stat
            .split_once('(')
            .and_then(|(_, r)| r.rsplit_once(')'))
            .map(|(c, _)| c)
            .unwrap_or("");
        if ppid == Some(parent) && comm.starts_with("qemu-system") {
            out.push(pid);
        }
    }
    out
}

/// Process ids of live QEMU processes (any parent) whose command line mentions `needle`.
pub fn qemu_mentioning(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains("qemu-system") && cmdline.contains(&needle) && process_alive(*pid)
        })
        .collect()
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(") ").map(|(_, r)| r.chars().next()),
            Some(Some('Z'))
        ),
        Err(_) => false,
    }
}

/// The timestamp (seconds from power-on) of the first transcript log line containing `needle`.
/// Log lines look like `[  12.345] text`.
pub fn log_time_of(log: &Path, needle: &str) -> Option<f64> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find(|l| l.contains(needle)).and_then(|l| {
        let inner = l.strip_prefix('[')?.split_once(']')?.0;
        inner.trim().parse().ok()
    })
}

/// Runs `harness run` of the scenario file `scenario` on `image` (at most `limit`), with
/// transcripts and a JUnit file in `dir` and the run's temporary files (QEMU's overlay, on its
/// command line) under `dir/tmp`, and checks, whatever the verdict, that no QEMU of it is left.
pub fn run_scenario_file(image: &Path, scenario: &Path, dir: &Path, limit: Duration) -> Finished {
    run_scenario_file_with(image, scenario, dir, limit, &[])
}

/// [`run_scenario_file`] with `options` added to `harness run`'s command line.
pub fn run_scenario_file_with(
    image: &Path,
    scenario: &Path,
    dir: &Path,
    limit: Duration,
    options: &[&str],
) -> Finished {
    let mut args: Vec<&std::ffi::OsStr> = options.iter().map(std::ffi::OsStr::new).collect();
    args.push(scenario.as_os_str());
    run_with_own_tmp(image, dir, &args, limit)
}

/// `harness run --image IMAGE --transcripts DIR --junit DIR/junit.xml EXTRA…` with its
/// temporary files under `dir/tmp`, to completion (at most `limit`), checking that no QEMU of it
/// is left whatever the verdict.
fn run_with_own_tmp(image: &Path, dir: &Path, extra: &[&std::ffi::OsStr], limit: Duration) -> Finished {
    let junit = dir.join("junit.xml");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("creating the run's temporary directory");
    let started = Instant::now();
    let mut args = vec![
        std::ffi::OsStr::new("run"),
        std::ffi::OsStr::new("--image"),
        image.as_os_str(),
        std::ffi::OsStr::new("--transcripts"),
        dir.as_os_str(),
        std::ffi::OsStr::new("--junit"),
        junit.as_os_str(),
    ];
    args.extend_from_slice(extra);
    let (child, command) = spawn_harness_env(&args, &[("TMPDIR", tmp.as_os_str())]);
    let run = finish(child, command, started, limit);
    assert_no_qemu_left(&tmp, &run);
    run
}

/// The default run, as a user's first try is: `harness run --image IMAGE` with no scenario (the
/// health check written from the image, then the shipped set), transcripts, `junit.xml` and a
/// snapshot cache of its own in `dir`, its temporary files under `dir/tmp`; at most `limit`, and
/// no QEMU of it left behind whatever the verdict.
pub fn run_default(image: &Path, dir: &Path, limit: Duration) -> Finished {
    let cache = dir.join("cache");
    run_with_own_tmp(
        image,
        dir,
        &[std::ffi::OsStr::new("--cache-dir"), cache.as_os_str()],
        limit,
    )
}

/// What [`run_default`] ends in on a healthy image whose two systems are not NixOS's (the
/// systemd fixtures): exit 0, the health check and the eight shipped scenarios that apply
/// passed, the two that read `/run/booted-system` skipped saying why.
pub fn assert_default_run_passes_a_non_nixos_system(run: &Finished) {
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  health  "), "{}", run.explain());
    assert!(
        run.stdout.contains("9 passed, 0 failed, 2 skipped"),
        "{}",
        run.explain()
    );
    for name in ["extlinux-menu", "menu-from-uboot"] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("SKIP  {name}  ")))
            .unwrap_or_else(|| panic!("{name} not skipped\n{}", run.explain()));
        assert!(
            line.contains("(requires nixos; entry 1 (nixos-default) boots /nix/store/")
                && line.contains("-nixos-system-ivy-")
                && line.ends_with(
                    ", which holds no nixos-version: not a NixOS system, so nothing records it at \
                     /run/booted-system)"
                ),
            "{line}"
        );
    }
}

/// Fails the test if a QEMU whose command line mentions `tmp` (the run's temporary files, its
/// overlay among them) is still running after `run` ended.
pub fn assert_no_qemu_left(tmp: &Path, run: &Finished) {
    assert_eq!(
        qemu_mentioning(tmp),
        Vec::<u32>::new(),
        "QEMU left behind\n{}",
        run.explain()
    );
}

/// Starts `harness console --serial DEVICE --transcripts DIR` with piped stdio; returns the
/// child and the command line, for reports.
pub fn spawn_console_on(device: &Path, transcripts: &Path) -> (Child, String) {
    let child = Command::new(harness_bin())
        .arg("console")
        .arg("--serial")
        .arg(device)
        .arg("--transcripts")
        .arg(transcripts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting harness console");
    (child, format!("harness console --serial {}", device.display()))
}

/// Waits until the harness has opened the console: it creates the transcript right after.
pub fn wait_for_file(path: &Path, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < limit,
            "{} not created within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the console bytes of a run, its `.raw` transcript, hold `needle`, at most
/// `limit`. Not the `.log`: the step's own note there ("step 1: expect \"U-Boot 20\"") holds the
/// text it waits for before the console has printed it.
pub fn wait_for_console(raw: &Path, needle: &str, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let bytes = std::fs::read(raw).unwrap_or_default();
        if memchr::memmem::find(&bytes, needle.as_bytes()).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{needle:?} did not reach {} within {limit:?}", raw.display());
}

/// Collects what a child prints on one stream while the test goes on, for a test that must
/// act on output before the child ends.
pub fn read_in_background(
    mut stream: impl Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}
