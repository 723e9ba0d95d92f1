//! `harness run`: load the scenarios, make the target, attach the reporters, run the suite.

use std::path::{Path, PathBuf};

use r2s_harness::adapt;
use r2s_harness::board::{self, Board, BoardError};
use r2s_harness::debug_timing::mark;
use r2s_harness::escape::escape_control;
use r2s_harness::image::facts::ImageFacts;
use r2s_harness::image::{self, ImageError};
use r2s_harness::report::html::{self, BaselineView, HtmlReporter, RunInfo};
use r2s_harness::report::json::JsonReporter;
use r2s_harness::report::junit::JunitReporter;
use r2s_harness::report::text::TextReporter;
use r2s_harness::report::timings::TimingsReporter;
use r2s_harness::runner::{interaction_warnings, CountdownPolicy, Interaction, RunContext, ScenarioResult};
use r2s_harness::scenario;
use r2s_harness::scenario::filter::{self, NameFilter};
use r2s_harness::scenario::lg_env::LgEnv;
use r2s_harness::snapshot::kept::{KeepFailed, KeptStates};
use r2s_harness::snapshot::SnapshotCache;
use r2s_harness::suite::qemu_setup::{self, QemuSetupError, QemuSetupRequest, SetupLine};
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
    #[error(transparent)]
    Qemu(#[from] QemuSetupError),
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
            Err(e) => return Unrun::new(&args, &[], Vec::new(), Vec::new()).report(&args, &e),
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
        Err(e) => return Unrun::new(&args, &[], Vec::new(), Vec::new()).report(&args, &e),
    };
    // Read once before the target is made, so that a mistake in a file costs no boot; read
    // again below for the image. A bad file is an error of its own; the others still run.
    let loaded = scenario::load_each_for(&paths, None);
    mark("scenario files read");
    if loaded.scenarios.is_empty() && loaded.broken.is_empty() && !args.health_only {
        let message = format!("no scenario files found in {}", show(&paths));
        return Unrun::new(&args, &[], Vec::new(), Vec::new()).report(&args, &message);
    }
    // Said at once, where a mistake in a file is looked for; the reports have them too.
    for broken in &loaded.broken {
        super::say(broken);
    }
    if args.list {
        // The health check is written from the image, but its name is always the same.
        let health = args.scenarios.is_empty().then_some(scenario::health::HEALTH_NAME);
        let names = health
            .into_iter()
            .chain(loaded.scenarios.iter().map(|s| s.name.as_str()));
        for name in names.filter(|name| filter::kept(&filters, name)) {
            super::human::show(escape_control(name));
        }
        return if loaded.broken.is_empty() {
            EXIT_PASS
        } else {
            EXIT_ERROR
        };
    }
    // What is reported as not run if the target cannot be made: every scenario kept.
    let unrun = Unrun::new(&args, &filters, kept(&loaded.scenarios, &filters), loaded.broken);

    // Checked here, not by clap: $LG_PLACE names the place after the arguments are parsed.
    if args.flash.is_some() && args.serial.is_none() && args.farm.place.is_none() {
        return unrun.report(
            &args,
            "--flash needs the board whose card it writes: --serial DEV or --place NAME",
        );
    }
    let interaction = match interaction(&args.debug) {
        Ok(interaction) => interaction,
        Err(message) => return unrun.report(&args, &message),
    };
    // A mistake in it costs no boot either.
    let lg_env = match args.lg_env.as_deref().map(LgEnv::load).transpose() {
        Ok(env) => env,
        Err(e) => return unrun.report(&args, &e),
    };
    if let Some(env) = &lg_env {
        super::human::tell(escape_control(&env.describe()));
    }
    let baseline = match BaselineCheck::from_args(&args) {
        Ok(check) => check,
        Err(e) => return unrun.report(&args, &e),
    };

    let suite = match (&args.serial, args.farm.labgrid()) {
        (Some(port), _) => board_suite(&args, port),
        (None, Some(labgrid)) => place_suite(&args, labgrid).await,
        (None, None) => qemu_suite(&args).await,
    };
    let (mut suite, info, disk) = match suite {
        Ok(made) => made,
        Err(e) => return unrun.report(&args, &e),
    };
    // Read again for the image: its `${IMAGE_…}` values, and what does not apply to it. With
    // no scenario given, the health check written from the image comes first.
    let facts = disk.as_ref().map(|disk| ImageFacts::read(disk.disk()));
    mark("image facts read");
    // What the image could not tell limits what is checked: said, not passed over.
    for reason in facts.iter().flat_map(|f| &f.unread) {
        super::say(format!("warning: image: {reason}"));
    }
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
            None => super::warn("--keep-failed keeps QEMU machines only; this run has none"),
        }
    }
    let mut paths = paths;
    if args.scenarios.is_empty() {
        match write_health_check(&args.transcripts, facts.as_ref()) {
            Ok(path) => paths.insert(0, path),
            Err(e) => return unrun.report(&args, &e),
        }
    }
    let loaded = scenario::load_each_for(&paths, facts.as_ref());
    mark("scenario files read for the image");
    // A scenario starting from a saved state carries its saver's recipe: it runs without the
    // saver, which the filter may leave out.
    let mut scenarios = kept(&loaded.scenarios, &filters);
    if let Some(env) = &lg_env {
        scenarios.iter_mut().for_each(|s| env.apply(s));
    }
    if scenarios.is_empty() && loaded.broken.is_empty() {
        let message = format!("--filter {}: no scenario matches", args.filter.join(" --filter "));
        return Unrun::new(&args, &filters, Vec::new(), Vec::new()).report(&args, &message);
    }
    let broken = broken_files(&loaded.broken);
    for warning in interaction_warnings(&suite.context.interaction, &scenarios) {
        super::warn(warning);
    }
    // The card is written, once everything else checked out, before the board is powered on.
    if let Some(image) = &args.flash {
        if let Err(code) = super::flash::flash_before_run(&args, image, args.farm.labgrid()).await {
            let unrun = Unrun::new(&args, &filters, scenarios, loaded.broken);
            unrun.write(
                &args,
                "the card was not written (see the harness's message on stderr)",
            );
            return code;
        }
    }

    let html_baseline = baseline.as_ref().map(|check| {
        let (baseline, policy) = check.baseline();
        BaselineView {
            baseline: baseline.clone(),
            policy,
        }
    });
    let mut reporters = reporters(&args, info, html_baseline);
    let within_baseline = baseline.map(|check| {
        let outcome = check.outcome();
        reporters.attach(check);
        outcome
    });
    let jobs = args.jobs.map_or_else(cores, |j| j as usize);
    mark("reporters attached");
    let outcome = suite::run_suite_with(&suite, broken, scenarios, jobs, args.retries, reporters).await;
    mark("suite finished, reports written");

    for error in &outcome.report_errors {
        super::say(error);
    }
    // A scenario the harness could not run (QEMU that cannot start, a cache it cannot write,
    // a password variable not set, a file that is no scenario) ends the run with exit 2,
    // after reporting every result.
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

/// The scenarios of `loaded` the filters keep, in their order.
fn kept(loaded: &[scenario::Scenario], filters: &[NameFilter]) -> Vec<scenario::Scenario> {
    loaded
        .iter()
        .filter(|s| filter::kept(filters, &s.name))
        .cloned()
        .collect()
}

/// Each file that is no valid scenario as an error result named after the file, saying what
/// is wrong and where.
fn broken_files(broken: &[scenario::ScenarioError]) -> Vec<ScenarioResult> {
    broken
        .iter()
        .map(|e| {
            let name = e.path.file_name().map_or_else(
                || e.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            ScenarioResult::could_not_run(&name, &e.path, &e.to_string())
        })
        .collect()
}

/// The reporters of a run: JSON events when asked, the progress line, the text report, the
/// timings files, JUnit when asked, and the HTML page.
fn reporters(args: &RunArgs, info: RunInfo, baseline: Option<BaselineView>) -> Reporters {
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
    reporters.attach(HtmlReporter::new(html_path, info, baseline));
    reporters
}

/// What a run reports when it stops before its target is made or its scenarios run: each
/// scenario it would have run is an error saying why not, each bad file an error of its own,
/// so that no scenario vanishes from the reports and no earlier report is left behind.
struct Unrun {
    /// The scenarios the run would have run (the health check among them when no scenario
    /// was given), and the bad files.
    scenarios: Vec<scenario::Scenario>,
    broken: Vec<scenario::ScenarioError>,
    health_check: bool,
}

impl Unrun {
    fn new(
        args: &RunArgs,
        filters: &[NameFilter],
        scenarios: Vec<scenario::Scenario>,
        broken: Vec<scenario::ScenarioError>,
    ) -> Unrun {
        let health_check = args.scenarios.is_empty()
            && filter::kept(filters, scenario::health::HEALTH_NAME)
            && !scenarios.iter().any(|s| s.name == scenario::health::HEALTH_NAME);
        Unrun {
            scenarios,
            broken,
            health_check,
        }
    }

    /// Says `why` on stderr and writes every report with the scenarios as errors saying it (or,
    /// with none known, one error named after the run); exit 2.
    fn report(self, args: &RunArgs, why: impl std::fmt::Display) -> u8 {
        let why = why.to_string();
        super::say(&why);
        self.write(args, &why)
    }

    /// [`Unrun::report`] of something said on stderr already: the reports only.
    fn write(self, args: &RunArgs, why: &str) -> u8 {
        let mut results = broken_files(&self.broken);
        let health = self.health_check.then(|| {
            let path = args
                .transcripts
                .join(format!("{}.toml", scenario::health::HEALTH_NAME));
            ScenarioResult::could_not_run(scenario::health::HEALTH_NAME, &path, why)
        });
        results.extend(health);
        results.extend(
            self.scenarios
                .iter()
                .map(|s| ScenarioResult::could_not_run(&s.name, &s.source, why)),
        );
        if results.is_empty() {
            results.push(ScenarioResult::could_not_run("harness run", Path::new(""), why));
        }
        let against = args
            .image
            .clone()
            .or_else(|| args.serial.clone())
            .unwrap_or_else(|| PathBuf::from("(no target)"));
        let info = RunInfo {
            image: args.image.as_ref().map(|p| p.display().to_string()),
            board: args.board.clone().unwrap_or_default(),
            target: "not made".to_owned(),
            setup: vec![format!("error: {why}")],
        };
        let outcome = suite::report_unrun(&against, results, reporters(args, info, None));
        for error in &outcome.report_errors {
            super::say(error);
        }
        EXIT_ERROR
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

/// QEMU booting `--image`, or the default fixture built first, set up as every QEMU run is
/// ([`qemu_setup::set_up`]): adapted unless --no-adapt.
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
    super::human::tell(format!("image: {}", disk.named().display()));
    let request = QemuSetupRequest {
        image: image.clone(),
        board: board.clone(),
        config: args.qemu.config(),
        cache: args.cache_dir.clone().or_else(adapt::default_cache_dir),
        no_adapt: args.no_adapt,
        disk_bus: args.disk_bus,
        skip_countdowns: !args.real_time_boot,
    };
    // QEMU's version, for the snapshot key, is asked (once per process) beside the set-up.
    let asking_qemu = async {
        if !args.no_snapshots {
            let _ = r2s_harness::snapshot::qemu_version(&args.qemu.binary).await;
        }
    };
    let (set_up, ()) = tokio::join!(qemu_setup::set_up(request), asking_qemu);
    let set_up = set_up?;
    tell_setup(&set_up.lines);
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
        setup: set_up.report_lines(),
    };
    let suite = Suite {
        target: TargetSpec::qemu(QemuSpec {
            config: set_up.config,
            image,
            shim: set_up.shim,
            unpacked_from: disk.unpacked_from(),
        }),
        transcripts: args.transcripts.clone(),
        context: RunContext {
            fallback_password,
            ..set_up.context
        },
        snapshots,
    };
    Ok((suite, info, Some(disk)))
}

/// Prints what a QEMU set-up did: remarks unless `-q`, warnings always. The lines quote the
/// image's extlinux.conf (its LABELs, APPEND lines) and the initrd's file names.
pub(super) fn tell_setup(lines: &[SetupLine]) {
    for line in lines {
        match line {
            SetupLine::Remark(text) => super::human::tell(escape_control(text)),
            // Already worded as a warning; -q shows errors only.
            SetupLine::Warning(text) if !super::human::get().quiet => super::say(text),
            SetupLine::Warning(_) => {}
        }
    }
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
        super::warn("no terminal (stdin and stdout): --pause-at is ignored");
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

fn show(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
