//! `harness run`: boot, judge, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2s_harness::adapt::{self, Shim, ShimCache, ShimError};
use r2s_harness::image::ImageError;

use r2s_harness::report::{junit, text};
use r2s_harness::runner::{Quiet, RunContext};
use r2s_harness::scenario::{self, Scenario, Start};
use r2s_harness::snapshot::SnapshotCache;
use r2s_harness::suite::{self, QemuRun, SuiteError};
use r2s_harness::target::qemu::QemuConfig;
use r2s_harness::{image, runner::ScenarioResult};

use super::progress::ProgressLine;
use super::timings::{write_baseline, BaselineCheck};
use super::{RunArgs, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

pub async fn run(args: RunArgs) -> u8 {
    let paths = if args.scenarios.is_empty() {
        vec![suite::shipped_scenarios()]
    } else {
        args.scenarios.clone()
    };
    let scenarios = match scenario::load_all(&paths) {
        Ok(s) if s.is_empty() => {
            eprintln!("harness: no scenario files found in {}", show(&paths));
            return EXIT_ERROR;
        }
        Ok(s) => s,
        Err(e) => {
            eprintln!("harness: {e}");
            return EXIT_ERROR;
        }
    };

    let baseline = match BaselineCheck::from_args(&args) {
        Ok(check) => check,
        Err(e) => {
            eprintln!("harness: {e}");
            return EXIT_ERROR;
        }
    };

    let (image, fallback_password) = match &args.image {
        Some(path) => (path.clone(), None),
        None => match build_default_fixture().await {
            Ok(path) => (path, Some(r2s_images::ROOT_PASSWORD.to_owned())),
            Err(e) => {
                eprintln!("harness: cannot build the default fixture image: {e}");
                return EXIT_ERROR;
            }
        },
    };
    let labels = match image::check_bootable_image(&image) {
        Ok(labels) => labels,
        Err(e) => {
            eprintln!("harness: {e}");
            return EXIT_ERROR;
        }
    };

    let shim = if args.no_adapt {
        println!("adaptation for QEMU: off (--no-adapt); the image's extlinux.conf is booted as written");
        None
    } else {
        let cache = args.cache_dir.clone().or_else(adapt::default_cache_dir);
        match adapt_for_qemu(&image, cache).await {
            Ok(shim) => shim,
            Err(e) => {
                eprintln!("harness: cannot adapt {} for QEMU: {e}", image.display());
                return EXIT_ERROR;
            }
        }
    };
    let run = QemuRun {
        image: image.clone(),
        qemu: QemuConfig {
            qemu: args.qemu.clone(),
            firmware: args.firmware.clone(),
            ..QemuConfig::default()
        },
        transcripts: args.transcripts.clone(),
        context: RunContext {
            menu_labels: labels,
            fallback_password,
            ..RunContext::default()
        },
        shim,
        snapshots: (!args.no_snapshots).then(|| {
            SnapshotCache::new(
                args.snapshot_cache
                    .clone()
                    .or_else(|| args.cache_dir.as_ref().map(|dir| dir.join("snapshots")))
                    .unwrap_or_else(SnapshotCache::default_dir),
            )
        }),
    };
    println!("image: {}", image.display());
    let (login_start, power_on): (Vec<Scenario>, Vec<Scenario>) = scenarios
        .into_iter()
        .partition(|s| matches!(s.start, Start::Login(_)));
    let mut results: Vec<ScenarioResult> = Vec::new();
    for scenario in &power_on {
        let mut progress = ProgressLine::new(&scenario.name);
        let result = suite::run_on_qemu(&run, scenario, &mut progress).await;
        progress.clear();
        match result {
            Ok(result) => {
                print_result(&result);
                results.push(result);
            }
            Err(e) => {
                eprintln!("harness: {e}");
                return EXIT_ERROR;
            }
        }
    }
    if !login_start.is_empty() {
        let jobs = args.jobs.map_or_else(cores, |j| j as usize);
        match run_in_parallel(&run, login_start, jobs).await {
            Ok(mut more) => results.append(&mut more),
            Err(e) => {
                eprintln!("harness: {e}");
                return EXIT_ERROR;
            }
        }
    }
    println!("{}", text::totals(&results));
    if let Some(path) = &args.junit {
        let suite_name = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = std::fs::write(path, junit::render(&suite_name, &results)) {
            eprintln!("harness: cannot write JUnit report {}: {e}", path.display());
            return EXIT_ERROR;
        }
    }
    if let Some(path) = &args.write_baseline {
        if let Err(e) = write_baseline(path, &image, &results) {
            eprintln!("harness: {e}");
            return EXIT_ERROR;
        }
    }
    let within_baseline = baseline.is_none_or(|check| check.report(&image, &results));
    if results.iter().all(|r| r.passed()) && within_baseline {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

fn print_result(result: &ScenarioResult) {
    println!("{}", text::summary_line(result));
    print!("{}", text::failure_details(result));
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `scenarios` (all `start = "login"`) `jobs` at a time, each printed as it finishes;
/// the results come back in the scenarios' order. The first to need the snapshot builds it and
/// the others wait for it (see [`SnapshotCache::checkout`]).
async fn run_in_parallel(
    run: &QemuRun,
    scenarios: Vec<Scenario>,
    jobs: usize,
) -> Result<Vec<ScenarioResult>, SuiteError> {
    let how = if run.snapshots.is_some() {
        "from one login snapshot"
    } else {
        "each from a cold boot (--no-snapshots)"
    };
    println!(
        "{} start = \"login\" scenario(s) {how}, {jobs} at a time",
        scenarios.len()
    );
    let count = scenarios.len();
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    // The futures borrow nothing from here and hold QEMU targets that are not Send; a LocalSet
    // runs them on this thread, where QEMU's parent-death signal belongs (see main.rs).
    // Dropping the set (Ctrl-C) drops every task, and with it every QEMU.
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, scenario) in scenarios.into_iter().enumerate() {
                let run = run.clone();
                let slots = slots.clone();
                tasks.spawn_local(async move {
                    let _slot = slots.acquire_owned().await.expect("semaphore is never closed");
                    (index, suite::run_on_qemu(&run, &scenario, &mut Quiet).await)
                });
            }
            let mut results: Vec<Option<ScenarioResult>> = vec![None; count];
            while let Some(joined) = tasks.join_next().await {
                let (index, result) = joined.expect("a scenario task panicked");
                let result = result?;
                print_result(&result);
                results[index] = Some(result);
            }
            Ok(results.into_iter().flatten().collect())
        })
        .await
}

async fn build_default_fixture() -> Result<PathBuf, String> {
    eprintln!(
        "harness: no --image given; using fixture {}",
        r2s_images::DEFAULT_FIXTURE
    );
    tokio::task::spawn_blocking(|| {
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Builds the shim disk that shows U-Boot a QEMU-ready copy of the image's extlinux.conf, and
/// says what it changed. `None` when the image boots on QEMU as it is.
async fn adapt_for_qemu(image: &Path, cache: Option<PathBuf>) -> Result<Option<Arc<Shim>>, String> {
    let owned = image.to_owned();
    let adapted = tokio::task::spawn_blocking(move || {
        let cache = cache.map(|dir| ShimCache::new(&dir));
        adapt::adapt_cached(&owned, cache.as_ref())
    })
    .await
    .map_err(|e| e.to_string())?;
    match adapted {
        Ok(Some(adapted)) => {
            println!("adapted for QEMU (the image is not modified; turn off with --no-adapt):");
            println!("  extlinux.conf from {}", adapted.source);
            for change in &adapted.changes {
                println!("  {change}");
            }
            Ok(Some(Arc::new(adapted.shim)))
        }
        Ok(None) => Ok(None),
        // Nothing to adapt from (e.g. a vfat boot partition this harness cannot read): boot as is.
        Err(ShimError::Image(ImageError::NoBootConfig { .. })) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
