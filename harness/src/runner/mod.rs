//! The scenario runner: walks a scenario's steps over a target's console, owns every timeout, and
//! turns what happened into a [`ScenarioResult`].

mod burst;
mod copy;
mod countdown;
mod interactive;
mod login;
mod network;
mod on_failure;
mod outcome;
mod retry;
mod root_disk;
mod session;
mod shell;
mod stage;
mod start;
mod steps;
mod unit;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

pub use countdown::{CountdownPolicy, Countdowns, SkippedWait};
pub use interactive::{interaction_warnings, Interaction, PauseAt};
pub use outcome::{secs, FailReason, Failure, Origin, ScenarioResult, StageTiming, Verdict};
pub use root_disk::AbsentRoot;
pub use session::{ConsoleState, Session};
pub use stage::Stage;
pub use steps::menu_number;
pub use watch::{builtin_fatal, stage_markers, Diagnosis, Watch, WatchKind};

use crate::board::{Board, CharPacing};
use crate::console::{ByteStats, Transcript};
use crate::scenario::{Action, LoginRecipe, Password, Scenario, Start};
use crate::targets::{Console, NetAccess, Ports, Target};

/// Hears about one scenario's run as it happens; the suite turns what it hears into
/// [`crate::suite::SuiteEvent`]s for the reporters.
pub trait Observer {
    /// A boot stage began `at` after power-on.
    fn stage(&mut self, _stage: &Stage, _at: Duration) {}
    /// Step `step` (1-based) begins.
    fn step_started(&mut self, _step: usize, _description: &str) {}
    /// Step `step` ended, passed or not.
    fn step_finished(&mut self, _step: usize, _passed: bool) {}
    /// Time passes; called at least every quarter second while the run waits.
    fn tick(&mut self, _elapsed: Duration) {}
    /// The operator must act (power-cycle a board by hand).
    fn ask_operator(&mut self, _request: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What the runner knows beyond the scenario itself.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// LABEL names of the image's extlinux.conf, in order, to turn `menu = "label"` into the
    /// number U-Boot's menu expects.
    pub menu_labels: Option<Vec<String>>,
    /// A password to use when a login step's variable is unset: only for the harness's own
    /// fixture images, whose password is public.
    pub fallback_password: Option<String>,
    /// The user the image's console getty logs in by itself (agetty's `--autologin`), whose
    /// login needs no password.
    pub autologin: Option<String>,
    /// How consoles are handed to a person: pauses, and attaching at a failure.
    pub interaction: Interaction,
    /// Where a failed scenario's machine is kept (`--keep-failed`), on targets that can save one.
    pub keep_failed: Option<crate::snapshot::kept::KeepFailed>,
    /// How input is typed (the board profile's `char_delay`).
    pub pacing: CharPacing,
    /// The UART line rate, on a serial target: a failure whose console output was mostly
    /// unreadable then says it looks like a baud-rate mismatch and names it.
    pub baud: Option<u32>,
    /// The kernel console name a real board shows (its profile's `console`), on a serial target.
    pub board_console: Option<String>,
    /// Where host and LAN steps reach the target (filled in once it runs).
    pub net: NetAccess,
    /// Diagnostics the board profile runs on failure, after the scenario's own.
    pub on_failure: Vec<String>,
    /// Under QEMU: the bus the image's disk is on and what its kernel and initrd can drive,
    /// the hint of a failure in which stage 1 did not find its root (see [`root_disk`]).
    pub root_disk: Option<String>,
    /// Under QEMU: the root device the image's stage 1 waits for, when no filesystem of the
    /// image is it. The run then ends as soon as systemd says it waits for it.
    pub absent_root: Option<AbsentRoot>,
    /// Whether the boot's countdowns are skipped (see [`Countdowns`]).
    pub countdowns: CountdownPolicy,
    /// U-Boot's prompt when the board's is not `=> ` (a labgrid environment's UBootDriver).
    pub uboot_prompt: Option<String>,
}

impl RunContext {
    /// This context on a real board: its profile's pacing, line rate, kernel console, address
    /// and diagnostics, and its say on skipping countdowns.
    pub fn on_board(&self, board: &Board) -> RunContext {
        RunContext {
            pacing: board.pacing,
            baud: Some(board.baud),
            board_console: Some(format!("{} at {} baud", board.console, board.baud)),
            net: match &board.address {
                Some(address) => NetAccess {
                    address: Some(address.clone()),
                    ports: Ports::Direct,
                    ..NetAccess::default()
                },
                None => NetAccess::default(),
            },
            on_failure: board.on_failure.clone(),
            // A board's U-Boot may differ from QEMU's: its countdowns are skipped only when its
            // profile says so.
            countdowns: CountdownPolicy {
                skip: self.countdowns.skip && board.skip_countdowns,
                ..self.countdowns
            },
            ..self.clone()
        }
    }
}

/// The first stage of a run on a restored snapshot: from starting the target to the shell
/// prompt answering.
pub const RESTORE_STAGE: Stage = Stage::Restore;

/// How long a restored shell gets to answer an empty command line. A snapshot restores in
/// under a second; a restore that has not answered by then did not work.
pub const RESTORE_CONFIRM: Duration = Duration::from_secs(20);

/// Where the console is when a scenario's run begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleAt {
    /// The target has just been powered on.
    PowerOn,
    /// The target was restored to a start state's snapshot (or a board was found at a shell),
    /// its console as `console` says: a shell (`start = "login"`), U-Boot's prompt
    /// (`start = "uboot"`), or wherever a saved state (`start = "<name>"`) left it. The
    /// scenario's first `steps_done` steps are what reached it (the saving scenario's own
    /// steps before its `save_state`); they are not run again.
    Restored {
        console: ConsoleState,
        steps_done: usize,
    },
}

impl ConsoleAt {
    /// Restored (or kept) at a root shell, no step done.
    pub const RESTORED_SHELL: ConsoleAt = ConsoleAt::Restored {
        console: ConsoleState::Shell,
        steps_done: 0,
    };
}

/// Whether the console reached the state the scenario's steps start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartReached {
    /// It did (or the scenario starts at power-on).
    Yes,
    /// Booting, logging in or confirming a restored shell failed: the target, not a step, is
    /// what went wrong (a restored snapshot that does not answer is rebuilt).
    No,
    /// The run was refused before it tried (a password variable is unset).
    NotTried,
}

/// What a scenario run produced on its console.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub verdict: Verdict,
    /// Whether the steps' start state was reached.
    pub start: StartReached,
    pub stages: Vec<StageTiming>,
    /// The console's last lines (ANSI stripped).
    pub last_lines: Vec<String>,
    /// The units systemd said it failed to start or mount (`[FAILED] Failed to start …`).
    pub failed_units: Vec<String>,
    /// From the start of the run to its end.
    pub duration: Duration,
    /// Files saved beside the transcript: copies out of the target, on-failure diagnostics.
    pub artifacts: Vec<PathBuf>,
    /// Where the console was at the end, as far as the runner knows (a saved state records it).
    pub console: ConsoleState,
}

/// Runs `scenario` on a console that is `at` the given place. A `start = "login"` scenario
/// begins at a shell: from power-on the runner first lets the board boot its default entry and
/// logs in with the scenario's recipe; on a restored shell it checks that the shell answers.
/// The transcript receives every byte whatever the verdict. When the console closes, `target`
/// (if given) is asked why, and the failure says so.
pub async fn run_scenario_at(
    at: ConsoleAt,
    scenario: &Scenario,
    console: &mut Console,
    target: Option<&mut dyn Target>,
    transcript: &mut Transcript,
    ctx: &RunContext,
    observer: &mut dyn Observer,
) -> RunOutput {
    let mut session = Session::new(console, transcript, observer, watches_for(scenario, &at, ctx));
    session.scenario = scenario.name.clone();
    session.know_secrets(login::known_secrets(scenario, ctx));
    session.pacing = ctx.pacing;
    session.board_console = ctx.board_console.clone();
    if let Some(prompt) = &ctx.uboot_prompt {
        session.uboot_prompt.clone_from(prompt);
    }
    let steps_done = match at {
        ConsoleAt::PowerOn => {
            session.skip_countdowns(Countdowns::for_actions(
                &ctx.countdowns,
                scenario.real_time_boot,
                start::actions_before_steps(&scenario.start)
                    .into_iter()
                    .chain(scenario.steps.iter().map(|s| &s.action)),
            ));
            0
        }
        ConsoleAt::Restored { console, steps_done } => {
            session.set_first_stage(RESTORE_STAGE);
            // The login that typed the password was another run's.
            session.redact_known_secrets();
            if console == ConsoleState::UbootPrompt {
                // Past the autoboot countdown already; the menu's may still come.
                let mut countdowns = Countdowns::for_steps(
                    &ctx.countdowns,
                    scenario.real_time_boot,
                    &scenario.steps[steps_done..],
                );
                countdowns.autoboot = false;
                session.skip_countdowns(countdowns);
            }
            steps_done
        }
    };
    if let Start::Login(LoginRecipe {
        prompt: Some(prompt), ..
    }) = &scenario.start
    {
        session.shell_prompt = prompt.pattern().clone();
    }
    let first = session.stage().clone();
    session.observer().stage(&first, Duration::ZERO);
    let scenario_deadline = Instant::now() + scenario.timeout;

    let mut verdict = missing_password(scenario, at, ctx).map_or(Verdict::Pass, Verdict::Fail);
    let mut start = StartReached::NotTried;
    if verdict_passed(&verdict) {
        start = StartReached::Yes;
        if let Err(failure) = start::reach_start(&mut session, scenario, at, ctx, scenario_deadline).await {
            verdict = Verdict::Fail(failure);
            start = StartReached::No;
        }
        crate::debug_timing::mark("start reached (login or restored prompt checked)");
    }
    let mut lines_at_failure = None;
    for (i, step) in scenario.steps.iter().enumerate().skip(steps_done) {
        if !verdict_passed(&verdict) {
            break;
        }
        if let Some(stage) = &step.stage {
            session.enter_stage(Stage::named(stage));
        }
        let paused = interactive::pause_at(&mut session, &ctx.interaction, &scenario.name, i + 1).await;
        // A person's time at the console (this pause, earlier ones, `pause` steps) counts
        // against neither the step's limit nor the scenario's: both start after it.
        let scenario_deadline = scenario_deadline + session.person_time();
        let deadline = match step.timeout {
            Some(t) => scenario_deadline.min(Instant::now() + t),
            None => scenario_deadline,
        };
        session.note(&format!("step {}: {}", i + 1, step.describe()));
        session.observer().step_started(i + 1, &step.describe());
        let performed = match paused {
            Ok(()) => steps::perform(&mut session, &step.action, ctx, deadline, i + 1).await,
            Err(failure) => Err(failure),
        };
        session.observer().step_finished(i + 1, performed.is_ok());
        if let Err(failure) = performed {
            let description = format!("{} ({})", step.describe(), step.location);
            let failure = fail(&mut session, scenario, failure, deadline == scenario_deadline);
            let diagnostics: Vec<String> = scenario
                .on_failure
                .iter()
                .chain(&ctx.on_failure)
                .cloned()
                .collect();
            if !diagnostics.is_empty() {
                // The result shows the console as the failure left it, not the diagnostics.
                lines_at_failure = Some(session.recent_lines());
                on_failure::diagnose(&mut session, &diagnostics, &failure.reason).await;
            }
            verdict = Verdict::Fail(Failure {
                step: i + 1,
                step_description: description,
                ..failure
            });
            break;
        }
    }
    session.record_notices();
    if let (
        Verdict::Fail(Failure {
            reason: FailReason::ConsoleClosed { detail },
            ..
        }),
        Some(target),
    ) = (&mut verdict, target)
    {
        // A console that closed under us usually means the target died; it may say why
        // (QEMU's stderr).
        if let Some(why) = target.closed_because().await {
            session.note(&why);
            detail.push_str(&format!("; {why}"));
        }
    }
    // The run ends where it failed: the time a person then spends at the console is theirs.
    let end = session.run_time();
    if let Verdict::Fail(failure) = &verdict {
        interactive::at_failure(&mut session, &ctx.interaction, &scenario.name, failure).await;
    }
    if let Verdict::Fail(failure) = &mut verdict {
        let root = root_disk::missing_root_hint(ctx, failure, &session.recent_lines());
        failure.hint = match (session.fatal_hint().map(str::to_owned), root) {
            // Stage 1 gave up on its root: what the initrd said, then which disk it had.
            (Some(fatal), Some(root)) => Some(format!("{fatal}; {root}")),
            (fatal, root) => fatal
                .or_else(|| {
                    ctx.baud
                        .and_then(|baud| baud_mismatch(session.byte_stats(), baud))
                })
                .or(root),
        };
        if let Some(hint) = &failure.hint {
            session.note(hint);
        }
    }
    if verdict_passed(&verdict) {
        session.note("PASS");
    }
    if let Verdict::Fail(Failure {
        reason: FailReason::CouldNotRun { detail },
        step_description,
        ..
    }) = &verdict
    {
        let why = format!("{step_description}: {detail}");
        session.note(&format!("ERROR (could not run): {why}"));
        verdict = Verdict::Error(why);
    }
    let mut out = output(&session, verdict, start, end);
    if let Some(lines) = lines_at_failure {
        out.last_lines = lines;
    }
    out
}

/// What a person handed the console of a failed [`reach_login_shell`] is told it is.
pub const LOGIN_BOOT: &str = "the boot to state login (for the snapshot of a start = \"login\")";

/// Boots the console from power-on with the board's default entry and logs in with `recipe`,
/// leaving it at a shell prompt: the state a `start = "login"` snapshot captures. Fails after
/// `timeout`, or at once on a fatal pattern; the verdict says which. A failure is handed to a
/// person first when `ctx` asks (`--attach-on-failure`), as [`LOGIN_BOOT`].
pub async fn reach_login_shell(
    console: &mut Console,
    transcript: &mut Transcript,
    ctx: &RunContext,
    recipe: &LoginRecipe,
    timeout: Duration,
    observer: &mut dyn Observer,
) -> RunOutput {
    let mut watches = builtin_fatal();
    watches.extend(ctx.absent_root.as_ref().map(AbsentRoot::watch));
    watches.extend(stage_markers());
    let mut session = Session::new(console, transcript, observer, watches);
    session.scenario = LOGIN_BOOT.to_owned();
    session.know_secrets(login::secrets_of([&recipe.password], ctx));
    session.pacing = ctx.pacing;
    session.board_console = ctx.board_console.clone();
    if let Some(prompt) = &ctx.uboot_prompt {
        session.uboot_prompt.clone_from(prompt);
    }
    session.skip_countdowns(Countdowns::for_boot(&ctx.countdowns));
    let deadline = Instant::now() + timeout;
    let result = login_with(&mut session, recipe, ctx, deadline).await;
    let end = session.run_time();
    let start = if result.is_ok() {
        StartReached::Yes
    } else {
        StartReached::No
    };
    let verdict = match result {
        Ok(()) => {
            session.note("at a shell");
            Verdict::Pass
        }
        Err(failure) => {
            session.note(&format!("FAIL: {}", failure.reason));
            let failure = Failure {
                step: 0,
                step_description: format!("login as {}", recipe.user),
                expected: failure.expected,
                reason: failure.reason,
                at: end,
                stage: session.stage().clone(),
                hint: session.fatal_hint().map(str::to_owned),
            };
            // The boot a snapshot start waits for failed: this is the machine it failed on.
            interactive::at_failure(&mut session, &ctx.interaction, LOGIN_BOOT, &failure).await;
            Verdict::Fail(failure)
        }
    };
    output(&session, verdict, start, end)
}

/// What the session produced, ended at `end`.
fn output(session: &Session<'_>, verdict: Verdict, start: StartReached, end: Duration) -> RunOutput {
    RunOutput {
        verdict,
        start,
        stages: session.stage_timings(end),
        last_lines: session.recent_lines(),
        failed_units: session.failed_units(),
        duration: end,
        artifacts: session.artifacts().to_vec(),
        console: session.state,
    }
}

pub(super) async fn login_with(
    session: &mut Session<'_>,
    recipe: &LoginRecipe,
    ctx: &RunContext,
    deadline: Instant,
) -> Result<(), steps::StepFailure> {
    let login = Action::Login {
        user: recipe.user.clone(),
        password: recipe.password.clone(),
        prompt: recipe.prompt.clone(),
    };
    steps::perform(session, &login, ctx, deadline, 0).await
}

/// The failure a step's failure becomes; the caller fills in which step.
pub(super) fn fail(
    session: &mut Session<'_>,
    scenario: &Scenario,
    failure: steps::StepFailure,
    scenario_limit: bool,
) -> Failure {
    let at = session.run_time();
    let reason = match failure.reason {
        // Say which limit ran out: the step's own or the whole scenario's.
        FailReason::Timeout { waited } if scenario_limit => {
            session.note(&format!("scenario timeout {} reached", secs(scenario.timeout)));
            FailReason::Timeout { waited }
        }
        other => other,
    };
    session.note(&format!("FAIL: {reason}"));
    Failure {
        step: 0,
        step_description: String::new(),
        expected: failure.expected,
        reason,
        at,
        stage: session.stage().clone(),
        hint: None,
    }
}

/// The built-in fatal patterns and stage markers, the wait for an absent root (`ctx`), the
/// scenario's own fatal patterns, and, when a saved start is replayed from power-on, the fatal
/// patterns of each saving scenario whose steps the replay does (a restored state was already
/// watched for them by its priming run).
fn watches_for(scenario: &Scenario, at: &ConsoleAt, ctx: &RunContext) -> Vec<Watch> {
    let mut watches = builtin_fatal();
    watches.extend(ctx.absent_root.as_ref().map(AbsentRoot::watch));
    let replayed = match at {
        ConsoleAt::PowerOn => scenario.start.saved_chain(),
        ConsoleAt::Restored { .. } => Vec::new(),
    };
    let fatal = scenario
        .fatal
        .iter()
        .chain(replayed.into_iter().flat_map(|recipe| recipe.fatal.iter()));
    watches.extend(fatal.cloned().map(|pattern| Watch {
        kind: WatchKind::Fatal,
        pattern,
    }));
    watches.extend(stage_markers());
    watches
}

/// The failure a run of `scenario` from power-on would end in at once, because a password
/// variable its logins need is unset: for callers that refuse such a run before starting a
/// target (the CLI's configuration check).
pub fn unset_password(scenario: &Scenario, ctx: &RunContext) -> Option<Failure> {
    missing_password(scenario, ConsoleAt::PowerOn, ctx)
}

/// A login whose password variable is unset fails before the boot it would waste. A restored
/// shell needs no password for the start recipe; the steps still might.
fn missing_password(scenario: &Scenario, at: ConsoleAt, ctx: &RunContext) -> Option<Failure> {
    let unset = |user: &str, password: &Password| match password {
        Password::Env(name)
            if std::env::var_os(name).is_none()
                && ctx.fallback_password.is_none()
                && ctx.autologin.as_deref() != Some(user) =>
        {
            Some(FailReason::Setup {
                detail: format!(
                    "environment variable {name} is not set; it must hold the password of {user}"
                ),
            })
        }
        _ => None,
    };
    let failure = |step: usize, step_description: String, user: &str, reason: FailReason| Failure {
        step,
        step_description,
        expected: format!("login as {user}"),
        reason,
        at: Duration::ZERO,
        stage: Stage::Uboot,
        hint: None,
    };
    if let (Start::Login(recipe), ConsoleAt::PowerOn) = (&scenario.start, at) {
        if let Some(reason) = unset(&recipe.user, &recipe.password) {
            let description = format!(
                "start = \"login\" (login as {}) ({})",
                recipe.user,
                scenario.source.display()
            );
            return Some(failure(0, description, &recipe.user, reason));
        }
    }
    scenario
        .steps
        .iter()
        .enumerate()
        .find_map(|(i, step)| match &step.action {
            Action::Login { user, password, .. } => unset(user, password).map(|reason| {
                let description = format!("{} ({})", step.describe(), step.location);
                failure(i + 1, description, user, reason)
            }),
            _ => None,
        })
}

/// Below this much output a ratio says little: a few bytes of line noise at power-on are normal.
const GARBLED_MIN_BYTES: u64 = 64;

/// Readable console text (colour codes, UTF-8 and all) has almost no unprintable bytes; at a
/// wrong line rate most bytes are.
const GARBLED_RATIO: f64 = 0.3;

/// What to say when the console printed mostly unreadable bytes at `baud`.
pub fn baud_mismatch(stats: ByteStats, baud: u32) -> Option<String> {
    (stats.total >= GARBLED_MIN_BYTES && stats.non_printable_ratio() >= GARBLED_RATIO).then(|| {
        format!(
            "console output looks like a baud-rate mismatch: {:.0}% of {} bytes were not printable at {baud} baud; check that the board's console runs at {baud} 8N1 (the board profile's `baud`)",
            stats.non_printable_ratio() * 100.0,
            stats.total
        )
    })
}

fn verdict_passed(v: &Verdict) -> bool {
    matches!(v, Verdict::Pass)
}

#[cfg(test)]
mod boot_tests;
#[cfg(test)]
mod fake_shell;
#[cfg(test)]
mod shell_tests;
#[cfg(test)]
mod tests;
