//! Every scenario on every image it suits, one test each, named `qemu::<image>::<scenario>`: a
//! custom test harness (libtest-mimic) that follows nextest's protocol, so `cargo nextest run`
//! lists, filters, partitions and reports each pair on its own.
//!
//! The images are the fixtures in [`FIXTURE_SCENARIOS`] (the shipped `scenarios/`) and
//! [`FIXTURE_NETWORK_SCENARIOS`] (`scenarios/network/`) that this checkout can build, and the
//! user's image, if any:
//!
//! - `R2S_TEST_IMAGE`: a disk image, raw or compressed as `nix build` leaves it (e.g.
//!   `result/sd-image/nixos-r2s.img.zst`, unpacked once into the cache);
//! - `R2S_TEST_SCENARIOS`: scenario files or directories, `:`-separated (default: the health
//!   check written from the image, then the shipped `scenarios/`);
//! - `R2S_TEST_BOARD`: the board profile (default and, for now, only choice: `qemu-virt`);
//! - the scenarios' own password variables (`R2S_PASSWORD` for the shipped ones);
//! - `R2S_TEST_SNAPSHOT_CACHE`: where scenarios with a start state (`start = "login"`,
//!   `"uboot"` or a saved state's name) keep its snapshot (default
//!   `<target>/tmp/r2s-snapshots`); they start from it instead of a cold boot. Each trial loads
//!   its whole scenario directory, so a saved state's name resolves to the scenario saving it.
//!
//! Listing (`--list`) reads scenario files but builds and boots nothing, and writes nothing but
//! test lines to stdout. Transcripts land in `<target>/tmp/r2s-transcripts/<image>/`, with each
//! test's HTML report beside them as `<scenario>.html`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use r2s_harness::adapt;
use r2s_harness::board::{self, Board};
use r2s_harness::image::facts::ImageFacts;
use r2s_harness::report::html::{self, Run, RunInfo};
use r2s_harness::report::text;
use r2s_harness::runner::{Quiet, RunContext};
use r2s_harness::scenario::{self, Scenario};
use r2s_harness::snapshot::SnapshotCache;
use r2s_harness::suite::qemu_setup::{self, QemuSetupRequest};
use r2s_harness::suite::{self, StartSnapshots, Suite};
use r2s_harness::targets::qemu::{QemuConfig, QemuSpec};
use r2s_harness::targets::TargetSpec;
use r2s_harness::unpacked::{self, DiskImage};

/// Which shipped scenarios a fixture is tested with.
#[derive(Clone, Copy)]
enum Suits {
    /// Every shipped scenario.
    All,
    /// These, by scenario name.
    Only(&'static [&'static str]),
}

/// The good fixtures and the shipped scenarios that make sense on each. Add a row for a new
/// fixture; a row whose fixture this checkout cannot build (see `r2s_images::fixtures()`) is left
/// out. Pairs already booted by `boot.rs` and `adapt.rs` are kept few: each costs a cold boot.
const FIXTURE_SCENARIOS: &[(&str, Suits)] = &[
    ("r2s-busybox", Suits::All),
    // One generation only, with the board's console: the adapted cold boot is what it adds.
    ("r2s-first-boot", Suits::Only(&["boot-to-login"])),
    // The generic-extlinux menu with the board's console: choosing an older generation.
    ("r2s-generations", Suits::Only(&["extlinux-menu"])),
    // nixpkgs' sd-image: MBR, vfat FIRMWARE, extlinux.conf under /boot on the ext4 root.
    ("r2s-sd-image", Suits::Only(&["boot-to-login"])),
    // The board's initrd with Debian's modular virtio, booted on the modules the adaptation adds
    // (`initrd_modules.rs` boots it to login): that a shell then works.
    ("r2s-board-initrd", Suits::Only(&["login-and-run"])),
    // A kernel past QEMU's load addresses: booted only if the trial sets QEMU up as
    // `harness run` does (the firmware's initrd and FDT moved up).
    ("r2s-large-kernel", Suits::Only(&["boot-to-login"])),
];

/// The fixtures the network scenarios (`scenarios/network/`) run on: they need the image's own
/// network (NIC driver, DHCP client and server, sshd), which the router-like systemd fixture has.
/// They share one priming boot with NICs (`start = "login"`).
const FIXTURE_NETWORK_SCENARIOS: &[(&str, Suits)] = &[("debian-systemd", Suits::All)];

/// Where a test's image comes from.
#[derive(Clone)]
enum ImageSource {
    /// A fixture, built (or reused from the cache) when the test runs.
    Fixture(&'static str),
    /// The user's image.
    User(PathBuf),
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    // Host steps read the password from the variable the scenario names (ssh-from-host:
    // R2S_PASSWORD, for sshpass), as login does with the fixture's password as its fallback.
    // Set before any thread runs, and only when no user image is tested, whose password the
    // user gives.
    if std::env::var_os("R2S_PASSWORD").is_none() && std::env::var_os("R2S_TEST_IMAGE").is_none() {
        std::env::set_var("R2S_PASSWORD", r2s_images::ROOT_PASSWORD);
    }
    // The library's log (QMP traffic, the `timing` marks) as `harness run` shows it: warnings,
    // or what `RUST_LOG` asks for.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    libtest_mimic::run(&args, trials()).exit_code()
}

fn trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    let shipped = suite::shipped_scenarios();
    fixture_trials(
        &mut trials,
        "qemu::shipped-scenarios",
        &shipped,
        FIXTURE_SCENARIOS,
    );
    fixture_trials(
        &mut trials,
        "qemu::network-scenarios",
        &shipped.join("network"),
        FIXTURE_NETWORK_SCENARIOS,
    );
    trials.extend(user_trials());
    if r2s_images::fixtures()
        .iter()
        .any(|f| f.name == IMAGE_VARIABLE_FIXTURE)
    {
        trials.push(Trial::test(
            "qemu::image-variable::zst-large-kernel-boots-to-login",
            image_variable_takes_a_compressed_large_kernel,
        ));
    }
    trials
}

/// One trial per fixture of `table` this checkout can build and scenario in `dir` it suits; a
/// directory that does not load is one failing trial named `broken_name`.
fn fixture_trials(trials: &mut Vec<Trial>, broken_name: &str, dir: &Path, table: &[(&'static str, Suits)]) {
    let known: Vec<&str> = r2s_images::fixtures().iter().map(|f| f.name).collect();
    let scenarios = match scenario::load_all(&[dir.to_owned()]) {
        Ok(scenarios) => scenarios,
        Err(e) => return trials.push(broken(broken_name, e.to_string())),
    };
    for (fixture, suits) in table {
        if !known.contains(fixture) {
            continue;
        }
        for scenario in scenarios.iter().filter(|s| suited(*suits, s)) {
            trials.push(trial(
                fixture,
                ImageSource::Fixture(fixture),
                scenario.clone(),
                vec![dir.to_owned()],
            ));
        }
    }
}

fn suited(suits: Suits, scenario: &Scenario) -> bool {
    match suits {
        Suits::All => true,
        Suits::Only(names) => names.contains(&scenario.name.as_str()),
    }
}

/// The trials for `R2S_TEST_IMAGE`, if it is set.
fn user_trials() -> Vec<Trial> {
    let Some(image) = std::env::var_os("R2S_TEST_IMAGE").filter(|v| !v.is_empty()) else {
        return Vec::new();
    };
    let image = PathBuf::from(image);
    // `nixos-r2s.img.zst` and `nixos-r2s.img` are both `nixos-r2s`.
    let file = image
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = [".zst", ".xz", ".gz", ".bz2"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
        .unwrap_or(&file);
    let file = file
        .strip_suffix(".img")
        .or_else(|| file.strip_suffix(".raw"))
        .unwrap_or(file);
    let stem = name_part(if file.is_empty() { "image" } else { file });
    // Test names must be unique: an image named like a fixture is told apart by a prefix.
    let label = if r2s_images::fixtures().iter().any(|f| f.name == stem) {
        format!("user-{stem}")
    } else {
        stem
    };
    let board = std::env::var("R2S_TEST_BOARD").unwrap_or_else(|_| "qemu-virt".to_owned());
    if board != "qemu-virt" {
        return vec![broken(
            &format!("qemu::{label}::board"),
            format!("R2S_TEST_BOARD={board}: this test harness runs images on the qemu-virt board only"),
        )];
    }
    // Read for the image, so that a scenario that does not apply to it is listed as ignored
    // (nextest's skipped): a compressed image is unpacked into the cache at the first listing.
    let facts = unpacked::open(&image, r2s_harness::adapt::default_cache_dir().as_deref())
        .ok()
        .map(|opened| ImageFacts::read(opened.disk()));
    let paths: Vec<PathBuf> = match std::env::var_os("R2S_TEST_SCENARIOS").filter(|v| !v.is_empty()) {
        Some(list) => std::env::split_paths(&list).collect(),
        // As `harness run` without scenarios: the health check written from the image, then
        // the shipped set.
        None => {
            let health = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("r2s-transcripts")
                .join(&label)
                .join("health.toml");
            let written = health
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&health, scenario::health::health_scenario(facts.as_ref())));
            if let Err(e) = written {
                return vec![broken(
                    &format!("qemu::{label}::health"),
                    format!("cannot write the health check {}: {e}", health.display()),
                )];
            }
            vec![health, suite::shipped_scenarios()]
        }
    };
    match scenario::load_all_for(&paths, facts.as_ref()) {
        Ok(scenarios) if scenarios.is_empty() => vec![broken(
            &format!("qemu::{label}::scenarios"),
            format!("R2S_TEST_SCENARIOS names no scenario files: {}", show(&paths)),
        )],
        Ok(scenarios) => scenarios
            .into_iter()
            .map(|s| {
                let skipped = s.skip.is_some();
                trial(&label, ImageSource::User(image.clone()), s, paths.clone()).with_ignored_flag(skipped)
            })
            .collect(),
        Err(e) => vec![broken(&format!("qemu::{label}::scenarios"), e.to_string())],
    }
}

/// The test of `scenario` (loaded from `paths`) on the image `source` names.
fn trial(image_label: &str, source: ImageSource, scenario: Scenario, paths: Vec<PathBuf>) -> Trial {
    let name = format!("qemu::{image_label}::{}", name_part(&scenario.name));
    let transcripts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("r2s-transcripts")
        .join(image_label);
    Trial::test(name, move || run(&source, &scenario.name, &paths, transcripts))
}

/// A test that fails with `message`: a problem found while listing is reported as a failing
/// test rather than on stdout, which must hold only test lines.
fn broken(name: &str, message: String) -> Trial {
    Trial::test(name, move || Err(message.into()))
}

/// Keeps names to what shells and nextest filters take without quoting; `::` stays a separator.
fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn run(source: &ImageSource, name: &str, paths: &[PathBuf], transcripts: PathBuf) -> Result<(), Failed> {
    let (opened, fallback_password) = match source {
        ImageSource::Fixture(name) => (
            DiskImage::AsIs(
                r2s_images::build(name, &r2s_images::default_cache_dir())
                    .map_err(|e| format!("building fixture {name}: {e}"))?,
            ),
            Some(r2s_images::ROOT_PASSWORD.to_owned()),
        ),
        // A compressed image (`result/sd-image/*.img.zst`) is unpacked once into the cache;
        // every trial's process takes the same disk.
        ImageSource::User(path) => (
            unpacked::open(path, r2s_harness::adapt::default_cache_dir().as_deref())
                .map_err(|e| e.to_string())?,
            None,
        ),
    };
    let image = opened.disk().to_owned();
    // Read again for the image: its `${IMAGE_…}` values.
    let facts = ImageFacts::read(&image);
    let scenarios = scenario::load_all_for(paths, Some(&facts)).map_err(|e| e.to_string())?;
    let scenario = scenarios
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("scenario {name} is gone from {}", show(paths)))?;
    if let Some(reason) = &scenario.skip {
        // A fixture row names a scenario that does not apply to its fixture: the table is wrong.
        return Err(format!("{name} does not apply to this image ({reason}): it is not a test of it").into());
    }
    let page = transcripts.join(format!(
        "{}.html",
        r2s_harness::scenario::transcript_stem(&scenario.name)
    ));
    // One thread, as in the harness binary: QEMU's parent-death signal is tied to the thread
    // that spawned it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("async runtime: {e}"))?;
    // Set up as `harness run` sets a QEMU run up (adapted, root disk chosen, load addresses
    // moved), with the shim and firmware taken from the harness's cache: built once per image
    // version, not once per test process.
    let board = Board::load(board::QEMU_BOARD).map_err(|e| e.to_string())?;
    let request = QemuSetupRequest {
        image: image.clone(),
        board: board.clone(),
        config: QemuConfig::default(),
        cache: adapt::default_cache_dir(),
        no_adapt: false,
        disk_bus: None,
        // As `harness run` does without `--real-time-boot`: nobody is at QEMU's console.
        skip_countdowns: true,
    };
    let set_up = runtime
        .block_on(qemu_setup::set_up(request))
        .map_err(|e| e.to_string())?;
    let info = RunInfo {
        image: Some(opened.describe().unwrap_or_else(|| image.display().to_string())),
        board: board.name.clone(),
        target: format!("QEMU ({}, virt machine)", set_up.config.qemu.display()),
        setup: set_up.report_lines(),
    };
    let suite = Suite {
        target: TargetSpec::qemu(QemuSpec {
            config: set_up.config,
            image: image.clone(),
            shim: set_up.shim,
            unpacked_from: opened.unpacked_from(),
        }),
        transcripts,
        context: RunContext {
            fallback_password,
            ..set_up.context
        },
        snapshots: Some(StartSnapshots::new(SnapshotCache::new(snapshot_cache()))),
    };
    let result = runtime
        .block_on(suite::run_one(&suite, scenario, &mut Quiet))
        .map_err(|e| e.to_string())?;
    let run = Run {
        info: &info,
        against: &image,
        results: std::slice::from_ref(&result),
        baseline: None,
    };
    html::write_report(&page, &run).map_err(|e| e.to_string())?;
    println!("image: {}", image.display());
    println!("{}", text::summary_line(&result));
    println!("report: {}", page.display());
    if result.passed() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}  report: {}",
            text::summary_line(&result),
            text::failure_details(&result),
            page.display()
        )
        .into())
    }
}

/// Where `start = "login"` tests keep their snapshots: `R2S_TEST_SNAPSHOT_CACHE`, else
/// `<target>/tmp/r2s-snapshots`. Every test process shares it; the first to need an entry boots
/// to build it while the others wait.
fn snapshot_cache() -> PathBuf {
    std::env::var_os("R2S_TEST_SNAPSHOT_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("r2s-snapshots"))
}

/// The fixture the image variable is tested with: its kernel outgrows QEMU's load addresses, so
/// it boots only when the trial sets QEMU up as `harness run` does.
const IMAGE_VARIABLE_FIXTURE: &str = "r2s-large-kernel";

/// `R2S_TEST_IMAGE` naming a `.img.zst` (as `nix build` leaves it) whose kernel is past QEMU's
/// load addresses: this test binary, run again with the variable set and filtered to the image's
/// boot-to-login, passes, and its HTML report names the compressed file and the moved addresses;
/// with `RUST_LOG=timing=debug` its log shows the timing marks.
fn image_variable_takes_a_compressed_large_kernel() -> Result<(), Failed> {
    let dir = r2s_harness::scratch::dir("test").map_err(|e| format!("temp dir: {e}"))?;
    let fixture = r2s_images::build(IMAGE_VARIABLE_FIXTURE, &r2s_images::default_cache_dir())
        .map_err(|e| format!("building fixture {IMAGE_VARIABLE_FIXTURE}: {e}"))?;
    let packed = dir.path().join("nixos-large.img.zst");
    let zstd = std::process::Command::new("zstd")
        .args(["-q", "-1", "-o"])
        .arg(&packed)
        .arg(&fixture)
        .status()
        .map_err(|e| format!("zstd: {e}"))?;
    if !zstd.success() {
        return Err(format!("zstd {}: {zstd}", fixture.display()).into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("this test binary: {e}"))?;
    let name = "qemu::nixos-large::boot-to-login";
    let output = std::process::Command::new(exe)
        .args(["--exact", name])
        .env("R2S_TEST_IMAGE", &packed)
        .env(
            "R2S_TEST_SCENARIOS",
            suite::shipped_scenarios().join("boot-to-login.toml"),
        )
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        // The unpacked disk, shim and moved firmware stay in this test's directory.
        .env("R2S_CACHE_DIR", dir.path().join("cache"))
        .env("R2S_TEST_SNAPSHOT_CACHE", dir.path().join("snapshots"))
        // The trials' log follows `RUST_LOG`, as `harness run`'s does.
        .env("RUST_LOG", "timing=debug")
        .output()
        .map_err(|e| format!("running the test binary again: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let explain = || format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() || !stdout.contains("1 passed") {
        return Err(format!("{name} did not pass:\n{}", explain()).into());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.contains("DEBUG timing: adapted for QEMU since_start=") {
        return Err(format!("RUST_LOG=timing=debug showed no timing mark:\n{}", explain()).into());
    }
    let page = stdout
        .lines()
        .find_map(|line| line.strip_prefix("report: "))
        .ok_or_else(|| format!("no report line:\n{}", explain()))?;
    let html = std::fs::read_to_string(page).map_err(|e| format!("{page}: {e}"))?;
    let expected = [
        // Unpacked when the child listed its tests, taken from the cache by the trial.
        format!("{} is zstd-compressed: unpacked before, at", packed.display()),
        "load addresses moved for QEMU (the image is not modified; turn off with --no-adapt): \
         ramdisk_addr_r 0x44000000 → 0x44600000"
            .to_owned(),
        "root disk on virtio-blk".to_owned(),
    ];
    match expected.iter().find(|text| !html.contains(text.as_str())) {
        Some(missing) => Err(format!("{page} does not say {missing:?}").into()),
        None => Ok(()),
    }
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
