//! What a scenario run produced: a verdict, stage timings and the console's last words.

use std::path::PathBuf;
use std::time::Duration;

use super::Stage;

/// The result of one scenario on one target.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub source: PathBuf,
    pub verdict: Verdict,
    pub duration: Duration,
    pub stages: Vec<StageTiming>,
    /// The last console lines (ANSI stripped), for the failure report.
    pub last_lines: Vec<String>,
    /// The units systemd said it failed to start during the run, e.g.
    /// `systemd-networkd.service - Network Configuration`: reported, not fatal.
    pub failed_units: Vec<String>,
    /// Files written for this run: raw bytes, timestamped log, asciicast.
    pub transcript: Vec<PathBuf>,
    /// How the target reached the point where the steps began.
    pub origin: Origin,
    /// The failed tries before this one, oldest first, when the scenario was run again
    /// (`run --retries`); empty when this was the only try.
    pub earlier_tries: Vec<ScenarioResult>,
}

/// How the target reached the point where a scenario's steps began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Powered on: the run saw the whole boot (and, for a `start = "login"` scenario, the
    /// recipe's login).
    #[default]
    PowerOn,
    /// Restored from a login-state snapshot; `primed` when this run booted to make it.
    Snapshot { primed: bool },
}

impl ScenarioResult {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Pass)
    }

    /// Whether it failed (a skipped scenario neither passed nor failed).
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail(_))
    }

    /// Whether it ran (it was neither skipped nor impossible to run).
    pub fn ran(&self) -> bool {
        matches!(self.verdict, Verdict::Pass | Verdict::Fail(_))
    }

    /// Why it did not run, when it was skipped.
    pub fn skipped(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Skip(reason) => Some(reason),
            _ => None,
        }
    }

    /// Why it could not run, when the harness could not run it.
    pub fn error(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Error(reason) => Some(reason),
            _ => None,
        }
    }

    /// The result of a scenario that did not run because the image does not meet what it
    /// requires (`reason`).
    pub fn skip(name: &str, source: &std::path::Path, reason: &str) -> ScenarioResult {
        ScenarioResult::not_run(name, source, Verdict::Skip(reason.to_owned()))
    }

    /// The result of a scenario the harness could not run (`reason`: its cache, a snapshot,
    /// QEMU's start, a password variable), reported rather than left out.
    pub fn could_not_run(name: &str, source: &std::path::Path, reason: &str) -> ScenarioResult {
        ScenarioResult::not_run(name, source, Verdict::Error(reason.to_owned()))
    }

    fn not_run(name: &str, source: &std::path::Path, verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            name: name.to_owned(),
            source: source.to_owned(),
            verdict,
            duration: Duration::ZERO,
            stages: Vec::new(),
            last_lines: Vec::new(),
            failed_units: Vec::new(),
            transcript: Vec::new(),
            origin: Origin::default(),
            earlier_tries: Vec::new(),
        }
    }

    /// Which try this result is: 1 unless the scenario was run again.
    pub fn tries(&self) -> usize {
        self.earlier_tries.len() + 1
    }

    /// Whether it passed only after failing (`--retries`): flaky, as nextest calls it.
    pub fn flaky(&self) -> bool {
        self.passed() && !self.earlier_tries.is_empty()
    }
}

/// Pass, the first thing that went wrong, or why the scenario was not run.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    Fail(Failure),
    /// Not run: the image does not meet what the scenario requires (the reason says what).
    Skip(String),
    /// Not run: the harness could not run it (the reason says why); counted as an error, not
    /// a verdict on the image.
    Error(String),
}

/// Where and why a scenario failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// 1-based step number; 0 when the failure came before any step (e.g. the target did not start).
    pub step: usize,
    /// The step as written, e.g. `expect "ivy login:"`, with its file location.
    pub step_description: String,
    /// What the step was waiting for or checking.
    pub expected: String,
    pub reason: FailReason,
    /// When it failed, from power-on.
    pub at: Duration,
    /// The stage the console was in.
    pub stage: Stage,
    /// A likely cause the reason alone does not show, such as a baud-rate mismatch.
    pub hint: Option<String>,
}

impl Failure {
    /// Where it failed, for a person: `step 3`, or `reaching the start state` for step 0.
    pub fn place(&self) -> String {
        match self.step {
            0 => "reaching the start state".to_owned(),
            n => format!("step {n}"),
        }
    }
}

/// Why a step failed.
#[derive(Debug, Clone)]
pub enum FailReason {
    /// The step's (or the scenario's) time ran out.
    Timeout { waited: Duration },
    /// A built-in or scenario fatal pattern appeared.
    Fatal {
        pattern: String,
        line: String,
        seen_at: Duration,
    },
    /// The kernel was started but printed nothing: almost always a console= argument the target
    /// cannot show.
    SilentAfterKernel {
        since: Duration,
        console_args: Option<String>,
        /// The console the target shows, from the board profile, on a serial target; `None`
        /// under QEMU.
        board_console: Option<String>,
    },
    /// The console reached end of file (the target exited or the device went away).
    ConsoleClosed { detail: String },
    /// A check after a match failed: exit status, output regex, menu entry, login.
    Check { detail: String },
    /// login(1) refused the user or the password (`Login incorrect`). Never retried: the same
    /// password would be refused again, and a board may lock the account.
    LoginRefused {
        user: String,
        /// The console line that said so.
        line: String,
        /// Where the password came from (`the password in R2S_PASSWORD`), never its value.
        password: String,
    },
    /// The scenario cannot run as written on this target (e.g. a password variable is unset).
    Setup { detail: String },
    /// Reading or writing the console or the transcript failed.
    Io { detail: String },
    /// The harness could not give the step what it needs (the LAN's network namespace, a start
    /// state no scenario of the run saves): no fault of the image. The scenario's result is
    /// an error (could not run), not a failure.
    CouldNotRun { detail: String },
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::Timeout { waited } => write!(f, "timeout after {}", secs(*waited)),
            FailReason::Fatal {
                pattern,
                line,
                seen_at,
            } => {
                write!(f, "fatal pattern {pattern} at {}: {line}", secs(*seen_at))
            }
            FailReason::SilentAfterKernel {
                since,
                console_args,
                board_console,
            } => {
                write!(
                    f,
                    "console silent for {} after \"Starting kernel ...\"",
                    secs(*since)
                )?;
                match (console_args, board_console) {
                    (Some(args), Some(board)) => write!(
                        f,
                        "; the kernel was told `{args}`, and this board's console is {board}"
                    ),
                    (Some(args), None) => write!(
                        f,
                        "; the kernel was told `{args}`, which this target cannot show (QEMU virt's console is ttyAMA0, earlycon=pl011,0x9000000)"
                    ),
                    (None, _) => write!(f, "; check the kernel's console= argument"),
                }
            }
            FailReason::ConsoleClosed { detail } => write!(f, "console closed: {detail}"),
            FailReason::Check { detail } => write!(f, "{detail}"),
            FailReason::LoginRefused { user, line, password } => write!(
                f,
                "login as {user} was refused ({line:?}): check the user name and {password}; a refused password is not tried again"
            ),
            FailReason::Setup { detail } => write!(f, "{detail}"),
            FailReason::Io { detail } => write!(f, "I/O error: {detail}"),
            FailReason::CouldNotRun { detail } => write!(f, "{detail}"),
        }
    }
}

/// How long one boot stage took.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTiming {
    pub name: Stage,
    pub start: Duration,
    pub duration: Duration,
    /// The countdown the harness cut short in this stage, if any: such a stage is not
    /// comparable with a run that waited it out.
    pub skipped_wait: Option<super::SkippedWait>,
}

/// Seconds with one decimal, as the report prints them.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
