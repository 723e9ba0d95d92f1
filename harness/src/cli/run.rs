//! `harness run`: boot, judge, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2s_harness::adapt::{self, Shim, ShimCache};

use r2s_harness::board::{self, Board};
use r2s_harness::report::{junit, text};
use r2s_harness::runner::{self, Quiet, RunContext};
use r2s_harness::scenario::{self, Scenario, Start};
use r2s_harness::snapshot::SnapshotCache;
use r2s_harness::suite::{self, QemuRun, SerialRun, SuiteError, TargetRun};
use r2s_harness::{image, runner::ScenarioResult};

use super::progress::ProgressLine;
use super::timings::{write_baseline, BaselineCheck};
use super::{RunArgs, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

pub async fn run(args: RunArgs) -> u8 {
    r2s_harness::console::transcript::set_default_limit(args.transcript_limit);
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

    let target = match &args.serial {
        Some(device) => serial_target(&args, device),
        None => qemu_target(&args).await,
    };
    let target = match target {
        Ok(target) => target,
        Err(message) => {
            eprintln!("harness: {message}");
            return EXIT_ERROR;
        }
    };
    // A password variable a login needs is configuration: refused before anything boots.
    if let Some(failure) = scenarios
        .iter()
        .find_map(|s| runner::unset_password(s, target.context()))
    {
        eprintln!("harness: {}: {}", failure.step_description, failure.reason);
        return EXIT_ERROR;
    }
    let against = target.against().to_owned();
    // On QEMU, `start = "login"` scenarios start from a snapshot, several at a time, after the
    // power-on ones; a board boots for each scenario in turn.
    let (login_start, power_on): (Vec<Scenario>, Vec<Scenario>) = match &target {
        TargetRun::Qemu(_) => scenarios
            .into_iter()
            .partition(|s| matches!(s.start, Start::Login(_))),
        TargetRun::Serial(_) => (Vec::new(), scenarios),
    };
    let mut results: Vec<ScenarioResult> = Vec::new();
    // An error that stops the run before a verdict (QEMU that cannot start, a port in use) ends
    // it with exit 2, but what ran before is still reported.
    let mut stopped = false;
    for scenario in &power_on {
        let mut progress = ProgressLine::new(&scenario.name);
        let result = target.run(scenario, &mut progress).await;
        progress.clear();
        match result {
            Ok(result) => {
                print_result(&result);
                results.push(result);
            }
            Err(e) => {
                eprintln!("harness: {e}");
                stopped = true;
                break;
            }
        }
    }
    if let (false, false, TargetRun::Qemu(run)) = (stopped, login_start.is_empty(), &target) {
        let jobs = args.jobs.map_or_else(cores, |j| j as usize);
        match run_in_parallel(run, login_start, jobs).await {
            Ok(mut more) => results.append(&mut more),
            Err(e) => {
                eprintln!("harness: {e}");
                stopped = true;
            }
        }
    }
    println!("{}", text::totals(&results));
    if let Some(path) = &args.junit {
        let suite_name = against
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = std::fs::write(path, junit::render(&suite_name, &results)) {
            eprintln!("harness: cannot write JUnit report {}: {e}", path.display());
            return EXIT_ERROR;
        }
    }
    if let Some(path) = &args.write_baseline {
        if let Err(e) = write_baseline(path, &against, &results) {
            eprintln!("harness: {e}");
            return EXIT_ERROR;
        }
    }
    if stopped {
        return EXIT_ERROR;
    }
    let within_baseline = baseline.is_none_or(|check| check.report(&against, &results));
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

/// A board on `device`: nothing to build or adapt; the board boots what is on its storage
/// (`--image`, if given, is only read for its menu's LABELs).
fn serial_target(args: &RunArgs, device: &Path) -> Result<TargetRun, String> {
    let board = Board::load(args.board.as_deref().unwrap_or(board::DEFAULT_SERIAL_BOARD))
        .map_err(|e| e.to_string())?;
    println!(
        "board: {} on {} at {} baud",
        board.name,
        device.display(),
        board.baud
    );
    // U-Boot's menu shows MENU LABELs; the card's own extlinux.conf says which number a LABEL is.
    let menu_labels = match &args.image {
        Some(image) => image::check_bootable_image(image).map_err(|e| e.to_string())?,
        None => None,
    };
    Ok(TargetRun::Serial(SerialRun {
        board,
        device: device.to_owned(),
        transcripts: args.transcripts.clone(),
        context: RunContext {
            menu_labels,
            ..RunContext::default()
        },
    }))
}

/// QEMU booting `--image`, or the default fixture built first, adapted unless --no-adapt.
async fn qemu_target(args: &RunArgs) -> Result<TargetRun, String> {
    let board = Board::load(args.board.as_deref().unwrap_or(board::QEMU_BOARD)).map_err(|e| e.to_string())?;
    let (image, fallback_password) = match &args.image {
        Some(path) => (path.clone(), None),
        None => match build_default_fixture().await {
            Ok(path) => (path, Some(r2s_images::ROOT_PASSWORD.to_owned())),
            Err(e) => return Err(format!("cannot build the default fixture image: {e}")),
        },
    };
    let labels = image::check_bootable_image(&image).map_err(|e| e.to_string())?;
    let shim = if args.no_adapt {
        println!("adaptation for QEMU: off (--no-adapt); the image's extlinux.conf is booted as written");
        None
    } else {
        let cache = args.cache_dir.clone().or_else(adapt::default_cache_dir);
        adapt_for_qemu(&image, cache)
            .await
            .map_err(|e| format!("cannot adapt {} for QEMU: {e}", image.display()))?
    };
    println!("image: {}", image.display());
    Ok(TargetRun::Qemu(QemuRun {
        image,
        qemu: args.qemu.config(),
        transcripts: args.transcripts.clone(),
        context: RunContext {
            menu_labels: labels,
            fallback_password,
            pacing: board.pacing,
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
    }))
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
pub(super) async fn adapt_for_qemu(
    image: &Path,
    cache: Option<PathBuf>,
) -> Result<Option<Arc<Shim>>, String> {
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
