//! `harness run`: load the scenarios, make the target, attach the reporters, run the suite.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use r2s_harness::adapt::{self, disk_bus, Shim, ShimCache};
use r2s_harness::board::{self, Board, BoardError};
use r2s_harness::debug_timing::mark;
use r2s_harness::escape::escape_control;
use r2s_harness::image::drivers;
use r2s_harness::image::facts::ImageFacts;
use r2s_harness::image::{self, ImageError};
use r2s_harness::qemu_devices::DiskBus;
use r2s_harness::report::html::{self, BaselineView, HtmlReporter, RunInfo};
use r2s_harness::report::json::JsonReporter;
use r2s_harness::report::junit::JunitReporter;
use r2s_harness::report::text::TextReporter;
use r2s_harness::report::timings::TimingsReporter;
use r2s_harness::runner::{interaction_warnings, AbsentRoot, CountdownPolicy, Interaction, RunContext};
use r2s_harness::scenario;
use r2s_harness::scenario::filter::{self, NameFilter};
use r2s_harness::scenario::lg_env::LgEnv;
use r2s_harness::snapshot::kept::{KeepFailed, KeptStates};
use r2s_harness::snapshot::SnapshotCache;
use r2s_harness::suite::{self, Reporters, StartSnapshots, Suite};
use r2s_harness::targets::{QemuSpec, TargetSpec};
use r2s_harness::terminal::Terminal;
use r2s_harness::unpacked::{self, DiskImage, OpenImageError};

use super::progress::ProgressLine;
use super::timings::BaselineCheck;
use super::{DebugArgs, MessageFormat, RunArgs, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

/// Why the target of a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("cannot build the default fixture image: {0}")]
    Fixture(String),
    #[error("{0}")]
    NoImage(String),
    #[error("cannot adapt {image} for QEMU: {detail}")]
    Adapt { image: PathBuf, detail: String },
    #[error(transparent)]
    Place(#[from] r2s_harness::targets::labgrid::PlaceError),
    #[error(transparent)]
    Open(#[from] OpenImageError),
}

/// What a run is set up with: the suite, what the report says of it, and the unpacked disk
/// of a compressed `--image`, held (against the cache's eviction, or as a scratch directory)
/// until the run ends.
pub(super) type Setup = (Suite, RunInfo, Option<DiskImage>);

pub async fn run(mut args: RunArgs) -> u8 {
    r2s_harness::console::transcript::set_default_limit(args.transcript_limit);
    // Checked here, not by clap: $LG_PLACE names the place after the arguments are parsed.
    if args.flash.is_some() && args.serial.is_none() && args.farm.place.is_none() {
        super::say("--flash needs the board whose card it writes: --serial DEV or --place NAME");
        return EXIT_ERROR;
    }
    let interaction = match interaction(&args.debug) {
        Ok(interaction) => interaction,
        Err(message) => {
            super::say(message);
            return EXIT_ERROR;
        }
    };
    // Without --cache-dir, the default cache, or a per-run one where it cannot be written (a
    // build sandbox); held until the run ends.
    let _cache = match &args.cache_dir {
        Some(_) => None,
        None => super::cache_dir::usable_default().inspect(|cache| args.cache_dir = Some(cache.dir.clone())),
    };
    let paths = if args.health_only {
        Vec::new()
    } else if args.scenarios.is_empty() {
        // The copy embedded in the binary, so that an installed harness has them too; written
        // beside the transcripts, where the report's file names point.
        match scenario::shipped::write_for_run(&args.transcripts.join("scenarios")) {
            Ok(files) => files,
            Err(e) => {
                super::say(&e);
                return EXIT_ERROR;
            }
        }
    } else {
        args.scenarios.clone()
    };
    let filters = match args
        .filter
        .iter()
        .map(|p| NameFilter::parse(p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(filters) => filters,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    // Read once before the target is made, so that a mistake in a file costs no boot; read
    // again below for the image.
    let loaded = scenario::load_all(&paths);
    mark("scenario files read");
    let listed = match loaded {
        Ok(s) if s.is_empty() && !args.health_only => {
            eprintln!("harness: no scenario files found in {}", show(&paths));
            return EXIT_ERROR;
        }
        Ok(s) => s,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    if args.list {
        // The health check is written from the image, but its name is always the same.
        let health = args.scenarios.is_empty().then_some(scenario::health::HEALTH_NAME);
        let names = health.into_iter().chain(listed.iter().map(|s| s.name.as_str()));
        for name in names.filter(|name| filter::kept(&filters, name)) {
            super::human::show(escape_control(name));
        }
        return EXIT_PASS;
    }

    // A mistake in it costs no boot either.
    let lg_env = match args.lg_env.as_deref().map(LgEnv::load).transpose() {
        Ok(env) => env,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    if let Some(env) = &lg_env {
        super::human::tell(escape_control(&env.describe()));
    }
    let baseline = match BaselineCheck::from_args(&args) {
        Ok(check) => check,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };

    let suite = match (&args.serial, args.farm.labgrid()) {
        (Some(port), _) => board_suite(&args, port),
        (None, Some(labgrid)) => place_suite(&args, labgrid).await,
        (None, None) => qemu_suite(&args).await,
    };
    let (mut suite, info, disk) = match suite {
        Ok(made) => made,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    // Read again for the image: its `${IMAGE_…}` values, and what does not apply to it. With
    // no scenario given, the health check written from the image comes first.
    let facts = disk.as_ref().map(|disk| ImageFacts::read(disk.disk()));
    mark("image facts read");
    suite.context.autologin = facts.as_ref().and_then(|f| f.autologin.clone());
    suite.context.interaction = interaction;
    suite.context.uboot_prompt = lg_env.as_ref().and_then(|env| env.uboot_prompt.clone());
    if args.debug.keep_failed {
        match &suite.snapshots {
            Some(snapshots) => {
                suite.context.keep_failed = Some(KeepFailed {
                    states: KeptStates::in_cache(snapshots.cache().dir()),
                    keep: usize::from(args.debug.keep_failed_max),
                })
            }
            None => super::say("warning: --keep-failed keeps QEMU machines only; this run has none"),
        }
    }
    let mut paths = paths;
    if args.scenarios.is_empty() {
        match write_health_check(&args.transcripts, facts.as_ref()) {
            Ok(path) => paths.insert(0, path),
            Err(e) => {
                super::say(&e);
                return EXIT_ERROR;
            }
        }
    }
    let loaded = scenario::load_all_for(&paths, facts.as_ref());
    mark("scenario files read for the image");
    let scenarios = match loaded {
        // A scenario starting from a saved state carries its saver's recipe: it runs without
        // the saver, which the filter may leave out.
        Ok(s) => s
            .into_iter()
            .filter(|s| filter::kept(&filters, &s.name))
            .map(|mut s| {
                if let Some(env) = &lg_env {
                    env.apply(&mut s);
                }
                s
            })
            .collect::<Vec<_>>(),
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    if scenarios.is_empty() {
        super::say(format!(
            "--filter {}: no scenario matches",
            args.filter.join(" --filter ")
        ));
        return EXIT_ERROR;
    }
    for warning in interaction_warnings(&suite.context.interaction, &scenarios) {
        super::say(format!("warning: {warning}"));
    }
    // The card is written, once everything else checked out, before the board is powered on.
    if let Some(image) = &args.flash {
        if let Err(code) = super::flash::flash_before_run(&args, image, args.farm.labgrid()).await {
            return code;
        }
    }

    let human = super::human::get();
    let mut reporters = Reporters::new();
    if args.message_format == MessageFormat::Json {
        reporters.attach(JsonReporter::stdout());
    }
    reporters.attach(ProgressLine::new(human.quiet));
    reporters.attach(TextReporter::new(human.to_stderr, human.quiet));
    reporters.attach(TimingsReporter::new(
        args.transcripts.clone(),
        args.write_baseline.clone(),
    ));
    if let Some(path) = &args.junit {
        reporters.attach(JunitReporter::new(path.clone()));
    }
    let html_path = args
        .html
        .clone()
        .unwrap_or_else(|| args.transcripts.join(html::REPORT_FILE));
    let html_baseline = baseline.as_ref().map(|check| {
        let (baseline, policy) = check.baseline();
        BaselineView {
            baseline: baseline.clone(),
            policy,
        }
    });
    reporters.attach(HtmlReporter::new(html_path, info, html_baseline));
    let within_baseline = baseline.map(|check| {
        let outcome = check.outcome();
        reporters.attach(check);
        outcome
    });
    let jobs = args.jobs.map_or_else(cores, |j| j as usize);
    mark("reporters attached");
    let outcome = suite::run_suite(&suite, scenarios, jobs, args.retries, reporters).await;
    mark("suite finished, reports written");

    for error in &outcome.report_errors {
        super::say(error);
    }
    // A scenario the harness could not run (QEMU that cannot start, a cache it cannot write,
    // a password variable not set) ends the run with exit 2, after reporting every result.
    if !outcome.report_errors.is_empty() || outcome.results.iter().any(|r| r.error().is_some()) {
        return EXIT_ERROR;
    }
    let within_baseline = within_baseline.is_none_or(|clean| clean.get().unwrap_or(true));
    if !outcome.results.iter().any(|r| r.failed()) && within_baseline {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The board profile `--board` names, or `default`.
pub(super) fn load_board(name: Option<&str>, default: &str) -> Result<Board, BoardError> {
    Board::load(name.unwrap_or(default))
}

/// A board in a labgrid place, acquired here (waited for with `--place-wait`) and released
/// when the suite is dropped.
async fn place_suite(
    args: &RunArgs,
    labgrid: r2s_harness::targets::labgrid::Labgrid,
) -> Result<Setup, SetupError> {
    let board = load_board(args.board.as_deref(), board::DEFAULT_SERIAL_BOARD)?;
    let name = board.name.clone();
    let spec = super::place_wait::place_spec(labgrid, board, args.farm.place_wait).await?;
    board_suite_on(args, &name, spec)
}

/// A board on `port`: nothing to build or adapt; the board boots what is on its storage
/// (`--image`, if given, is only read for its menu's LABELs).
fn board_suite(args: &RunArgs, port: &Path) -> Result<Setup, SetupError> {
    let board = load_board(args.board.as_deref(), board::DEFAULT_SERIAL_BOARD)?;
    board_suite_on(args, &board.name, TargetSpec::board(board.clone(), port))
}

/// The suite for the real board `name`'s target `spec`.
fn board_suite_on(args: &RunArgs, name: &str, spec: TargetSpec) -> Result<Setup, SetupError> {
    let baud = spec.board_profile().map_or(0, |board| board.baud);
    super::human::tell(format!(
        "board: {name} on {} at {baud} baud",
        spec.against().display()
    ));
    // U-Boot's menu shows MENU LABELs; the card's own extlinux.conf says which number a LABEL is.
    let disk = match args.image.as_ref().or(args.flash.as_ref()) {
        Some(image) => Some(open_image(image, args.cache_dir.as_deref())?),
        None => None,
    };
    let menu_labels = match &disk {
        Some(disk) => Some(image::check_bootable_image(disk.disk())?),
        None => None,
    };
    let info = RunInfo {
        image: args.image.as_ref().map(|p| p.display().to_string()),
        board: name.to_owned(),
        target: format!("{} at {baud} baud", spec.against().display()),
        setup: Vec::new(),
    };
    let suite = Suite {
        target: spec,
        transcripts: args.transcripts.clone(),
        context: RunContext {
            countdowns: countdown_policy(args, disk.as_ref().map(DiskImage::disk)),
            menu_labels,
            ..RunContext::default()
        },
        snapshots: None,
    };
    Ok((suite, info, disk))
}

/// QEMU booting `--image`, or the default fixture built first, adapted unless --no-adapt.
pub(super) async fn qemu_suite(args: &RunArgs) -> Result<Setup, SetupError> {
    let board = load_board(args.board.as_deref(), board::QEMU_BOARD)?;
    mark("board profile read");
    let (disk, fallback_password) = match &args.image {
        Some(path) => {
            let (path, cache) = (path.clone(), args.cache_dir.clone());
            let opened = tokio::task::spawn_blocking(move || open_image(&path, cache.as_deref()))
                .await
                .expect("opening the image does not panic")?;
            (opened, None)
        }
        None => (
            DiskImage::AsIs(build_default_fixture().await?),
            Some(r2s_images::ROOT_PASSWORD.to_owned()),
        ),
    };
    let image = disk.disk().to_owned();
    mark("image opened");
    let labels = image::check_bootable_image(&image)?;
    mark("image checked: bootable, menu labels");
    let countdowns = countdown_policy(args, Some(&image));
    mark("countdown policy from extlinux.conf");
    let adapting = async {
        if args.no_adapt {
            let off =
                "adaptation for QEMU: off (--no-adapt); the image's extlinux.conf is booted as written \
                       and its initrd as built";
            super::human::tell(off);
            return Ok((None, Vec::new(), vec![off.to_owned()]));
        }
        let cache = args.cache_dir.clone().or_else(adapt::default_cache_dir);
        let options = adapt::Options {
            initrd_modules: board.adapt_initrd_modules,
        };
        let (shim, added, mut told) = adapt_for_qemu_told(&image, cache, options).await?;
        if !options.initrd_modules {
            let off = format!(
                "adding disk drivers to the initrd: off (board profile {}: adapt_initrd_modules = false)",
                board.name
            );
            super::human::tell(&off);
            told.push(off);
        }
        mark("adapted for QEMU");
        Ok::<_, SetupError>((shim, added, told))
    };
    // Independent reads side by side: the adaptation (the kernel and initrd), the root device
    // the image waits for, and QEMU's version for the snapshot key (asked once per process).
    let looking_for_root = async {
        let found = absent_root(&image).await;
        mark("root device looked for");
        found
    };
    let asking_qemu = async {
        if !args.no_snapshots {
            let _ = r2s_harness::snapshot::qemu_version(&args.qemu.binary).await;
        }
    };
    let (adapted, mut absent_root, ()) = tokio::join!(adapting, looking_for_root, asking_qemu);
    let (shim, added, setup) = adapted?;
    super::human::tell(format!("image: {}", disk.named().display()));
    let choice = choose_root_disk(&image, args.disk_bus, &added).await;
    mark("root disk bus chosen (kernel and initrd drivers read)");
    let mut setup = setup;
    setup.extend(tell_root_disk(&choice));
    if let Some(absent) = &absent_root {
        let warning = format!("warning: {}", absent.hint());
        super::say(warning.clone());
        setup.push(warning);
    } else if let disk_bus::Drivable::Missing(missing) = &choice.drivable {
        // Warned about above; the root device on that disk never appears either, and the run
        // ends as soon as stage 1 says it waits for it.
        let (owned, bus, missing) = (image.clone(), choice.disk.bus.to_string(), missing.clone());
        absent_root = tokio::task::spawn_blocking(move || AbsentRoot::undrivable(&owned, &bus, &missing))
            .await
            .ok()
            .flatten();
    }
    let mut config = args.qemu.config();
    config.root_disk = choice.disk.clone();
    let cache = args.cache_dir.clone().or_else(adapt::default_cache_dir);
    setup.extend(
        super::load_addresses::adapt_load_addresses(&image, &mut config, Some(&board), cache, args.no_adapt)
            .await,
    );
    mark("load addresses checked");
    let snapshots = (!args.no_snapshots).then(|| {
        StartSnapshots::new(SnapshotCache::new(
            args.snapshot_cache
                .clone()
                .or_else(|| args.cache_dir.as_ref().map(|dir| dir.join("snapshots")))
                .unwrap_or_else(SnapshotCache::default_dir),
        ))
    });
    let info = RunInfo {
        image: Some(disk.describe().unwrap_or_else(|| image.display().to_string())),
        board: board.name.clone(),
        target: format!("QEMU ({}, virt machine)", args.qemu.binary.display()),
        setup,
    };
    let suite = Suite {
        target: TargetSpec::qemu(QemuSpec {
            config,
            image,
            shim,
            unpacked_from: disk.unpacked_from(),
        }),
        transcripts: args.transcripts.clone(),
        context: RunContext {
            countdowns,
            menu_labels: Some(labels),
            fallback_password,
            pacing: board.pacing,
            root_disk: Some(choice.root_hint()),
            absent_root,
            ..RunContext::default()
        },
        snapshots,
    };
    Ok((suite, info, Some(disk)))
}

/// `image` as the harness reads and boots it: unpacked into the cache (`cache_dir`, else the
/// default one) when it is compressed.
pub(super) fn open_image(image: &Path, cache_dir: Option<&Path>) -> Result<DiskImage, OpenImageError> {
    let cache = cache_dir.map(Path::to_owned).or_else(adapt::default_cache_dir);
    let opened = unpacked::open(image, cache.as_deref())?;
    if let Some(line) = opened.describe() {
        eprintln!("harness: {line}");
    }
    Ok(opened)
}

/// The bus to attach `image` on: `forced` (`--disk-bus`), else the first its kernel and initrd
/// (with the modules `added` to it by the adaptation) can drive.
pub(super) async fn choose_root_disk(
    image: &Path,
    forced: Option<DiskBus>,
    added: &[String],
) -> disk_bus::Choice {
    let owned = image.to_owned();
    let drivers = tokio::task::spawn_blocking(move || drivers::read(&owned))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()))
        .map(|mut drivers| {
            drivers.initrd.extend(added.iter().cloned());
            drivers
        });
    match (forced, drivers) {
        (Some(bus), drivers) => disk_bus::forced(bus, drivers.as_ref().ok()),
        (None, Ok(drivers)) => disk_bus::choose(&drivers),
        (None, Err(e)) => disk_bus::unread(&e),
    }
}

/// The root device `image`'s default entry waits for, when no filesystem of the image is it:
/// under QEMU it never appears ([`AbsentRoot`]).
async fn absent_root(image: &Path) -> Option<AbsentRoot> {
    let owned = image.to_owned();
    tokio::task::spawn_blocking(move || AbsentRoot::of_image(&owned))
        .await
        .ok()
        .flatten()
}

/// Prints the bus `choice` chose and why (and a warning if stage 1 cannot drive it); the
/// lines for the HTML report.
pub(super) fn tell_root_disk(choice: &disk_bus::Choice) -> Vec<String> {
    let line = format!("root disk on {}: {}", choice.disk.bus, choice.disk.reason);
    // The reason names what the image's initrd holds.
    super::human::tell(escape_control(&line));
    let mut told = vec![line];
    if let Some(warning) = choice.warning() {
        super::say(format!("warning: {warning}"));
        told.push(format!("warning: {warning}"));
    }
    told
}

/// How the run hands consoles to a person: refused when attaching at failures is asked for
/// without a terminal to attach (CI would block); pauses without one are ignored, saying so.
fn interaction(args: &DebugArgs) -> Result<Interaction, String> {
    let terminal = r2s_harness::terminal::is_interactive().then(Terminal::shared);
    if args.attach_on_failure && terminal.is_none() {
        return Err(
            "--attach-on-failure needs a terminal (stdin and stdout), and this run has none; \
             without one, keep the transcripts and HTML page, or reproduce with `harness console`"
                .to_owned(),
        );
    }
    if !args.pause_at.is_empty() && terminal.is_none() {
        super::say("warning: no terminal (stdin and stdout): --pause-at is ignored");
    }
    Ok(Interaction {
        terminal,
        attach_on_failure: args.attach_on_failure,
        pause_at: args.pause_at.clone(),
        priming: false,
        keep_typed_ahead: false,
    })
}

/// Writes the health check for the image `facts` describe into `transcripts` (so it can be
/// read, copied and run again), says so, and returns its path.
fn write_health_check(transcripts: &Path, facts: Option<&ImageFacts>) -> Result<PathBuf, String> {
    let path = transcripts.join(format!("{}.toml", scenario::health::HEALTH_NAME));
    std::fs::create_dir_all(transcripts)
        .and_then(|()| std::fs::write(&path, scenario::health::health_scenario(facts)))
        .map_err(|e| format!("cannot write the health check {}: {e}", path.display()))?;
    super::human::tell(format!("health check written from the image: {}", path.display()));
    Ok(path)
}

/// Whether this run skips the boot's countdowns: unless `--real-time-boot`. A board's profile
/// must also opt in (the target adds that). From the image's extlinux.conf: the menu number of
/// its `DEFAULT`, which the menu's timeout chooses (`None` when the image does not say: the
/// menu then runs its timeout), and whether its menu waits for a key without limit.
fn countdown_policy(args: &RunArgs, image: Option<&Path>) -> CountdownPolicy {
    CountdownPolicy::for_image(image, !args.real_time_boot)
}

async fn build_default_fixture() -> Result<PathBuf, SetupError> {
    if let Err(why) = fixture_builds_here() {
        return Err(SetupError::NoImage(why));
    }
    eprintln!(
        "harness: no --image given; using fixture {}",
        r2s_images::DEFAULT_FIXTURE
    );
    tokio::task::spawn_blocking(|| {
        r2s_images::build(r2s_images::DEFAULT_FIXTURE, &r2s_images::default_cache_dir())
    })
    .await
    .map_err(|e| SetupError::Fixture(e.to_string()))?
    .map_err(|e| SetupError::Fixture(e.to_string()))
}

/// Whether a run without `--image` may build the default fixture: only in the source checkout
/// the harness was built from (the fixture's recipes and builder live there, and it is built
/// with apt), or where `R2S_FIXTURE_DIR` says where fixtures are. Elsewhere (an installed
/// harness) the reason, saying what to pass instead.
fn fixture_builds_here() -> Result<(), String> {
    if std::env::var_os("R2S_FIXTURE_DIR").is_some_and(|dir| !dir.is_empty()) {
        return Ok(());
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let here = std::env::current_dir().and_then(std::fs::canonicalize);
    let inside = match (std::fs::canonicalize(&checkout), here) {
        (Ok(checkout), Ok(here)) => {
            checkout.join("images").join("recipes").is_dir() && here.starts_with(&checkout)
        }
        _ => false,
    };
    if inside {
        return Ok(());
    }
    Err(
        "no --image given: name the image to test with --image IMG (a raw .img, or the .img.zst \
         `nix build` leaves in result/sd-image/); without one, the harness builds a fixture image \
         of its own, which it does only inside its source checkout"
            .to_owned(),
    )
}

/// Builds the shim disk that shows U-Boot a QEMU-ready copy of the image's extlinux.conf, and
/// says what it changed. `None` when the image boots on QEMU as it is; with it, the modules
/// added to the initrd.
pub(super) async fn adapt_for_qemu(
    image: &Path,
    cache: Option<PathBuf>,
    options: adapt::Options,
) -> Result<(Option<Arc<Shim>>, Vec<String>), SetupError> {
    let (shim, added, _) = adapt_for_qemu_told(image, cache, options).await?;
    Ok((shim, added))
}

/// [`adapt_for_qemu`], and the lines it printed, for the HTML report.
async fn adapt_for_qemu_told(
    image: &Path,
    cache: Option<PathBuf>,
    options: adapt::Options,
) -> Result<(Option<Arc<Shim>>, Vec<String>, Vec<String>), SetupError> {
    let owned = image.to_owned();
    let adapt_error = |detail: String| SetupError::Adapt {
        image: image.to_owned(),
        detail,
    };
    let adapted = tokio::task::spawn_blocking(move || {
        let cache = cache.map(|dir| ShimCache::new(&dir));
        adapt::adapt_cached(&owned, cache.as_ref(), options)
    })
    .await
    .map_err(|e| adapt_error(e.to_string()))?;
    match adapted {
        Ok(Some(adapted)) => {
            let mut told = vec![
                "adapted for QEMU (the image is not modified; turn off with --no-adapt):".to_owned(),
                format!("  extlinux.conf from {}", adapted.source),
            ];
            told.extend(adapted.changes.iter().map(|change| format!("  {change}")));
            told.extend(adapted.modules.notes().iter().map(|line| format!("  {line}")));
            // The changes quote the image's extlinux.conf (its LABELs, APPEND lines).
            for line in &told {
                super::human::tell(escape_control(line));
            }
            let added = match &adapted.modules {
                adapt::InitrdModules::Added(addition) => addition.names(),
                adapt::InitrdModules::NotNeeded | adapt::InitrdModules::Refused(_) => Vec::new(),
            };
            Ok((adapted.shim.map(Arc::new), added, told))
        }
        Ok(None) => Ok((None, Vec::new(), Vec::new())),
        Err(e) => Err(adapt_error(e.to_string())),
    }
}

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
