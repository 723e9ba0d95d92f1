//! The console session a scenario runs in: reads the target, feeds the matcher, writes the
//! transcript, tracks stages and turns fatal patterns and timeouts into failures.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::burst::{read_burst, Pending};
use super::countdown::{Countdowns, SkippedWait, Skipper};
use super::outcome::{FailReason, StageTiming};
use super::watch::{Diagnosis, Watch, WatchKind, KERNEL_MARKER};
use super::{Observer, Stage};
use crate::board::CharPacing;
use crate::console::redact::PromptedSecrets;
pub use crate::console::ConsoleState;
use crate::console::{ByteStats, Event, Expected, FailedUnits, Matcher, Pattern, Redactor, Transcript};
use crate::targets::Console;
use crate::terminal::{split_at_escape, Hold};

/// After a fatal pattern, keep reading this long so the report shows the whole fatal line and
/// what followed it; well inside the 2 s in which a fatal line must end the run.
const FATAL_DRAIN: Duration = Duration::from_millis(300);

/// With `char_delay = "echo"`: how long to wait for a typed character to come back before
/// typing the next anyway. Some input is never echoed (a password), and a U-Boot or getty
/// echoes within milliseconds even at 115200 baud.
const ECHO_WAIT: Duration = Duration::from_millis(250);

/// How often the observer hears the elapsed time while nothing arrives.
const TICK: Duration = Duration::from_millis(250);

/// The most one read of the console takes: a burst of a pseudo-terminal's 4 KiB reads reaches
/// the matcher as one feed (see [`super::burst`]).
const READ_BUFFER: usize = 64 * 1024;

/// A kernel that can reach the console prints within a second or two of U-Boot's
/// "Starting kernel ..." (earlycon sooner). This much silence means it was told a console this
/// target does not have; waiting out a step's minutes would only delay saying so.
const KERNEL_SILENCE: Duration = Duration::from_secs(45);

/// One scenario's live console.
pub struct Session<'a> {
    console: &'a mut Console,
    transcript: &'a mut Transcript,
    observer: &'a mut dyn Observer,
    matcher: Matcher,
    watches: Vec<Watch>,
    start: Instant,
    stages: Vec<(Stage, Duration)>,
    kernel_started: Option<Duration>,
    /// The scenario's name, for what the session says to a person at the terminal.
    pub scenario: String,
    /// Pacing of typed characters, for UARTs whose receivers drop fast input.
    pub pacing: CharPacing,
    /// The kernel console name of a real board, for the report on a kernel that printed
    /// nothing; `None` under QEMU.
    pub board_console: Option<String>,
    pub state: ConsoleState,
    /// What the shell's prompt looks like: the login recipe's `prompt`, or
    /// [`super::shell::SHELL_PROMPT`].
    pub shell_prompt: Pattern,
    /// U-Boot's prompt: the board's own (`RunContext::uboot_prompt`), or
    /// [`super::countdown::UBOOT_PROMPT`].
    pub uboot_prompt: String,
    /// The shell's prompt was the last thing seen and nothing was typed since: a line may be
    /// typed at once.
    pub prompt_ready: bool,
    buf: Vec<u8>,
    /// The end of the console or a read error seen behind a burst's bytes, for the next read.
    burst_end: Pending,
    /// Cuts typed secrets out of the console bytes before anything records or matches them.
    redactor: Redactor,
    /// Files saved beside the transcript (copies, diagnostics), for the result to name.
    artifacts: Vec<PathBuf>,
    /// The hint of the diagnosed fatal line that ended the run, if one did.
    fatal_hint: Option<String>,
    failed_units: FailedUnits,
    /// The patterns the current wait looks for, while it waits.
    expecting: Vec<Pattern>,
    /// A fatal line that came right after a step's match, in the same read: fatal unless the
    /// next step expects it.
    deferred_fatal: Option<(usize, String, Duration)>,
    /// Skips the boot's countdowns while waiting, until the kernel starts.
    skipper: Option<Skipper>,
    /// How long a person held the console (a pause, `--pause-at`), waiting for the terminal
    /// included: time that counts against no deadline and no reported duration.
    person_time: Duration,
    /// The stages whose countdown was skipped.
    skipped: Vec<(Stage, SkippedWait)>,
    /// Passwords the scenario's logins type (see [`super::login::known_secrets`]), for the
    /// parts of a session in which the harness did not type them itself.
    known_secrets: Vec<String>,
}

impl<'a> Session<'a> {
    /// A session whose clock starts now (power-on).
    pub fn new(
        console: &'a mut Console,
        transcript: &'a mut Transcript,
        observer: &'a mut dyn Observer,
        watches: Vec<Watch>,
    ) -> Self {
        let matcher = Matcher::new(watches.iter().map(|w| w.pattern.clone()).collect());
        Session {
            console,
            transcript,
            observer,
            matcher,
            watches,
            start: Instant::now(),
            stages: vec![(Stage::Uboot, Duration::ZERO)],
            kernel_started: None,
            scenario: String::new(),
            pacing: CharPacing::default(),
            board_console: None,
            state: ConsoleState::Booting,
            shell_prompt: super::shell::default_prompt(),
            uboot_prompt: super::countdown::UBOOT_PROMPT.to_owned(),
            prompt_ready: false,
            buf: vec![0; READ_BUFFER],
            burst_end: Pending::default(),
            redactor: Redactor::new(),
            artifacts: Vec::new(),
            fatal_hint: None,
            failed_units: FailedUnits::default(),
            expecting: Vec::new(),
            deferred_fatal: None,
            skipper: None,
            skipped: Vec::new(),
            person_time: Duration::ZERO,
            known_secrets: Vec::new(),
        }
    }

    /// Skips `countdowns` as the boot reaches them (see [`super::countdown`]).
    pub fn skip_countdowns(&mut self, countdowns: Countdowns) {
        self.skipper = Skipper::new(countdowns);
    }

    /// Records that the current stage's countdown was skipped.
    pub(super) fn mark_skipped_wait(&mut self, wait: SkippedWait) {
        let stage = self.stage().clone();
        self.skipped.push((stage, wait));
    }

    /// Names the first stage `name` instead of `uboot`: for a console that did not start at
    /// power-on (a restored snapshot). Only before anything was seen.
    pub fn set_first_stage(&mut self, stage: Stage) {
        self.stages = vec![(stage, Duration::ZERO)];
    }

    /// Who hears about the run.
    pub fn observer(&mut self) -> &mut dyn Observer {
        &mut *self.observer
    }

    /// Time since power-on.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time since power-on less the time a person held the console: what durations, stage
    /// timings and a failure's time report. The transcript keeps the wall clock
    /// ([`Session::elapsed`]), so the interactive part shows when it happened.
    pub fn run_time(&self) -> Duration {
        self.elapsed().saturating_sub(self.person_time)
    }

    /// How long a person has held the console so far.
    pub fn person_time(&self) -> Duration {
        self.person_time
    }

    /// Adds `held`, a hand-over's time, to the time the person held the console.
    pub(super) fn add_person_time(&mut self, held: Duration) {
        self.person_time += held;
    }

    /// The stage the console is in now.
    pub fn stage(&self) -> &Stage {
        // Never empty: the first stage is there from the start.
        &self.stages.last().expect("a session always has a stage").0
    }

    /// Opens a stage unless it has been seen already; stages only move forward.
    pub fn enter_stage(&mut self, stage: Stage) {
        if self.stages.iter().any(|(seen, _)| *seen == stage) {
            return;
        }
        let _ = self.transcript.note(self.elapsed(), &format!("stage {stage}"));
        let at = self.run_time();
        self.observer.stage(&stage, at);
        self.stages.push((stage, at));
    }

    /// Stage durations in run time ([`Session::run_time`]), the last one closed at `end`.
    pub fn stage_timings(&self, end: Duration) -> Vec<StageTiming> {
        let mut out = Vec::new();
        for (i, (name, start)) in self.stages.iter().enumerate() {
            let stop = self.stages.get(i + 1).map(|(_, s)| *s).unwrap_or(end);
            out.push(StageTiming {
                name: name.clone(),
                start: *start,
                duration: stop.saturating_sub(*start),
                skipped_wait: self.skipped.iter().find(|(s, _)| s == name).map(|(_, w)| *w),
            });
        }
        out
    }

    /// The console's last lines.
    pub fn recent_lines(&self) -> Vec<String> {
        self.matcher.recent_lines()
    }

    /// Where a file saved beside the transcript goes: `<transcript stem>.<suffix>`.
    pub fn artifact_path(&self, suffix: &str) -> PathBuf {
        super::copy::beside(&self.transcript.paths().log, suffix)
    }

    /// Names a file saved beside the transcript, for the result.
    pub fn add_artifact(&mut self, path: PathBuf) {
        self.artifacts.push(path);
    }

    /// The files saved beside the transcript so far.
    pub fn artifacts(&self) -> &[PathBuf] {
        &self.artifacts
    }

    /// Writes a harness remark into the transcript.
    pub fn note(&mut self, text: &str) {
        let at = self.elapsed();
        let _ = self.transcript.note(at, text);
    }

    /// Forgets console text seen so far, so it cannot satisfy the next expectation.
    pub fn discard_retained(&mut self) {
        self.matcher.discard_retained();
    }

    /// Types `bytes` at the console; the transcript shows `shown` instead (secrets redacted).
    /// Short input: it must be taken within [`WRITE_LIMIT`].
    pub async fn send(&mut self, bytes: &[u8], shown: &[u8]) -> Result<(), FailReason> {
        self.send_until(bytes, shown, Instant::now() + WRITE_LIMIT).await
    }

    /// [`Session::send`] for input of any size: the console may take until `deadline` (the
    /// step's) to take it all.
    pub async fn send_until(
        &mut self,
        bytes: &[u8],
        shown: &[u8],
        deadline: Instant,
    ) -> Result<(), FailReason> {
        let at = self.elapsed();
        self.transcript.input(at, shown).map_err(|e| FailReason::Io {
            detail: format!("transcript: {e}"),
        })?;
        if self.pacing == CharPacing::Delay(Duration::ZERO) {
            return self.write_reading(bytes, deadline).await;
        }
        for byte in bytes {
            write_within(self.console, std::slice::from_ref(byte), WRITE_LIMIT).await?;
            match self.pacing {
                CharPacing::Delay(delay) => tokio::time::sleep(delay).await,
                CharPacing::Echo => self.await_echo(*byte).await?,
            }
        }
        Ok(())
    }

    /// Types the secret `secret` and Enter. The transcript shows `[redacted]`, and the console's
    /// echo of the secret, now or later, is cut from every record of the session.
    pub async fn send_secret(&mut self, secret: &str) -> Result<(), FailReason> {
        self.redactor.arm(secret.as_bytes());
        let typed = format!("{secret}\r");
        self.send(typed.as_bytes(), b"[redacted]\r").await
    }

    /// The passwords the scenario's logins type, for [`Session::redact_known_secrets`] and the
    /// interactive part.
    pub fn know_secrets(&mut self, secrets: Vec<String>) {
        self.known_secrets = secrets;
    }

    /// Cuts the known passwords out of everything the console shows from now on: on a restored
    /// shell, where no login of this session typed them, and when a person takes the console.
    pub fn redact_known_secrets(&mut self) {
        for secret in &self.known_secrets {
            self.redactor.know(secret.as_bytes());
        }
    }

    /// Writes the `n` bytes just read into the transcript, less any typed secret (with a note
    /// where one was cut), and returns what was written: all that may be matched or shown.
    fn record(&mut self, n: usize, at: Duration) -> std::io::Result<Vec<u8>> {
        let chunk = self.redactor.filter(&self.buf[..n]);
        self.transcript.output(at, &chunk)?;
        if self.redactor.take_redactions() > 0 {
            self.transcript.note(
                at,
                "a typed secret in the console output was replaced by [redacted]",
            )?;
        }
        Ok(chunk)
    }

    /// Writes `bytes` while reading (and matching) console output, until `deadline`. A console
    /// that echoes cannot take more input while its echo is not read: QEMU stops the guest
    /// while the harness does not drain its output, and the guest stops taking input.
    async fn write_reading(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), FailReason> {
        enum Step {
            Read(std::io::Result<usize>),
            Wrote(std::io::Result<usize>),
            Late,
        }
        let mut written = 0;
        while written < bytes.len() {
            let chunk = &bytes[written..bytes.len().min(written + WRITE_CHUNK)];
            let console = &mut *self.console;
            let step = tokio::select! {
                read = read_burst(&mut console.reader, &mut self.buf, &mut self.burst_end) => Step::Read(read),
                wrote = console.writer.write(chunk) => Step::Wrote(wrote),
                () = tokio::time::sleep_until(deadline) => Step::Late,
            };
            match step {
                Step::Read(Ok(0)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: "end of file".into(),
                    })
                }
                Step::Read(Ok(n)) => {
                    self.ingest(n).await?;
                }
                Step::Read(Err(e)) => return Err(FailReason::ConsoleClosed { detail: e.to_string() }),
                Step::Wrote(Ok(0)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: "the console takes no more input".into(),
                    })
                }
                Step::Wrote(Ok(n)) => written += n,
                Step::Wrote(Err(e)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: format!("write failed: {e}"),
                    })
                }
                Step::Late => {
                    return Err(FailReason::Io {
                        detail: format!(
                            "the console took only {written} of the {} bytes sent before the step's time ran out; \
                             send less, or give the step a longer timeout",
                            bytes.len()
                        ),
                    })
                }
            }
        }
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        match tokio::time::timeout(remaining, self.console.writer.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(FailReason::ConsoleClosed {
                detail: format!("write failed: {e}"),
            }),
            Err(_) => Err(FailReason::Io {
                detail: "the console did not take the input before the step's time ran out".into(),
            }),
        }
    }

    /// Reads until `byte` comes back (a carriage return may come back as a line feed), or
    /// [`ECHO_WAIT`] passes. What arrives meanwhile is matched as usual: an expectation set
    /// later still sees it, and a fatal line fails the step.
    async fn await_echo(&mut self, byte: u8) -> Result<(), FailReason> {
        let until = Instant::now() + ECHO_WAIT;
        loop {
            let n = match self.read_within(until).await {
                Err(_) => return Ok(()),
                Ok(Ok(0)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: "end of file".into(),
                    })
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: e.to_string(),
                    })
                }
            };
            let echoed = self.buf[..n].contains(&byte) || (byte == b'\r' && self.buf[..n].contains(&b'\n'));
            self.ingest(n).await?;
            if echoed {
                return Ok(());
            }
        }
    }

    /// Bytes counted so far, to tell a garbled console (wrong baud rate) from a quiet one.
    pub fn byte_stats(&self) -> ByteStats {
        self.matcher.byte_stats()
    }

    /// Writes what the target remarked about its console (a device that vanished and came
    /// back) into the transcript, at the time it happened.
    pub fn record_notices(&mut self) {
        let start = self.start.into_std();
        for (when, text) in self.console.notices.take() {
            let _ = self.transcript.note(when.saturating_duration_since(start), &text);
        }
    }

    /// Waits until one of `patterns` appears, a fatal pattern appears, the console closes, or
    /// `deadline` passes; skips the boot's countdowns meanwhile, if asked to.
    pub async fn wait_for(
        &mut self,
        patterns: &[Pattern],
        deadline: Instant,
    ) -> Result<Expected, FailReason> {
        // A timeout says how long the step waited, countdowns skipped on the way included.
        let waited_from = Instant::now();
        match self.wait_skipping(patterns, deadline).await? {
            Some(hit) => Ok(hit),
            None => Err(self.timeout_reason(waited_from.elapsed())),
        }
    }

    /// [`Session::wait_for`] for at most `period` of the time to `deadline`: `None` when the
    /// period passed without a match and the deadline has not, for a caller that then acts
    /// (presses Enter, types a key again) and waits on.
    pub async fn wait_within(
        &mut self,
        patterns: &[Pattern],
        deadline: Instant,
        period: Duration,
    ) -> Result<Option<Expected>, FailReason> {
        let until = deadline.min(Instant::now() + period);
        if until >= deadline {
            return self.wait_for(patterns, deadline).await.map(Some);
        }
        self.wait_skipping(patterns, until).await
    }

    /// Waits as [`Session::wait_until`] does, acting on the countdowns the skipper watches
    /// (until the kernel starts) as they show: a login's short waits for its prompt pass the
    /// boot's countdowns too.
    async fn wait_skipping(
        &mut self,
        patterns: &[Pattern],
        until: Instant,
    ) -> Result<Option<Expected>, FailReason> {
        loop {
            let skipper = self.skipper.take().filter(|_| self.kernel_started.is_none());
            let mut all = patterns.to_vec();
            let mut gave_up = None;
            if let Some(skipper) = &skipper {
                all.push(skipper.pattern(&self.uboot_prompt));
                if let Some(prompt) = skipper.gave_up_pattern(&self.uboot_prompt) {
                    gave_up = Some(all.len());
                    all.push(prompt);
                }
            }
            let Some(hit) = self.wait_until(&all, until).await? else {
                self.skipper = skipper;
                return Ok(None);
            };
            match skipper {
                Some(skipper) if Some(hit.index) == gave_up => self.skipper = skipper.gave_up(self).await?,
                Some(skipper) if hit.index >= patterns.len() => self.skipper = skipper.act(self).await?,
                skipper => {
                    self.skipper = skipper;
                    return Ok(Some(hit));
                }
            }
        }
    }

    /// Waits as [`Session::wait_for`] does; `None` when `until` passed.
    async fn wait_until(
        &mut self,
        patterns: &[Pattern],
        until: Instant,
    ) -> Result<Option<Expected>, FailReason> {
        self.expecting = patterns.to_vec();
        if let Some((index, line, at)) = self.deferred_fatal.take() {
            if !self.expected_explicitly(index) {
                self.expecting.clear();
                return Err(self.fatal(index, &line, at).await);
            }
        }
        if let Some(hit) = self.matcher.expect(patterns) {
            self.expecting.clear();
            return Ok(Some(hit));
        }
        let result = self.wait_reading(until).await;
        self.expecting.clear();
        result
    }

    /// The loop of [`Session::wait_until`], with the expectation installed.
    async fn wait_reading(&mut self, until: Instant) -> Result<Option<Expected>, FailReason> {
        loop {
            let now = Instant::now();
            if now >= until {
                self.matcher.clear_expect();
                return Ok(None);
            }
            let wake = until.min(now + TICK);
            let read = self.read_within(wake).await;
            self.record_notices();
            let n = match read {
                Err(_) => {
                    if let Some(hit) = self.release_held().await? {
                        return Ok(Some(hit));
                    }
                    self.observer.tick(self.elapsed());
                    if let Some(silent) = self.silent_kernel(KERNEL_SILENCE) {
                        self.matcher.clear_expect();
                        return Err(silent);
                    }
                    continue;
                }
                Ok(Ok(0)) => {
                    self.matcher.clear_expect();
                    return Err(FailReason::ConsoleClosed {
                        detail: "end of file".into(),
                    });
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    self.matcher.clear_expect();
                    return Err(FailReason::ConsoleClosed {
                        detail: e.to_string(),
                    });
                }
            };
            match self.ingest(n).await? {
                Some(hit) => return Ok(Some(hit)),
                None => self.observer.tick(self.elapsed()),
            }
        }
    }

    /// Lets `period` pass while reading the console as usual: what arrives is recorded and a
    /// fatal line still ends the run.
    pub async fn pause(&mut self, period: Duration) -> Result<(), FailReason> {
        let until = Instant::now() + period;
        loop {
            let read = self.read_within(until).await;
            self.record_notices();
            match read {
                Err(_) => {
                    self.release_held().await?;
                    return Ok(());
                }
                Ok(Ok(0)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: "end of file".into(),
                    })
                }
                Ok(Ok(n)) => {
                    self.ingest(n).await?;
                    self.observer.tick(self.elapsed());
                }
                Ok(Err(e)) => {
                    return Err(FailReason::ConsoleClosed {
                        detail: e.to_string(),
                    })
                }
            }
        }
    }

    /// Feeds the `n` bytes just read to the transcript and matcher and acts on what they match.
    async fn ingest(&mut self, n: usize) -> Result<Option<Expected>, FailReason> {
        let at = self.elapsed();
        let chunk = self.record(n, at).map_err(|e| FailReason::Io {
            detail: format!("transcript: {e}"),
        })?;
        self.act_on(chunk, at).await
    }

    /// After a quiet [`TICK`], releases the bytes the redactor held back as a possible start
    /// of a secret (a prompt that happens to end like the password must still be seen), and
    /// acts on them.
    async fn release_held(&mut self) -> Result<Option<Expected>, FailReason> {
        let held = self.redactor.flush();
        if held.is_empty() {
            return Ok(None);
        }
        let at = self.elapsed();
        self.transcript.output(at, &held).map_err(|e| FailReason::Io {
            detail: format!("transcript: {e}"),
        })?;
        self.act_on(held, at).await
    }

    /// Feeds recorded console bytes to the matcher and acts on what they match.
    async fn act_on(&mut self, chunk: Vec<u8>, at: Duration) -> Result<Option<Expected>, FailReason> {
        let mut hit = None;
        for event in self.matcher.feed(&chunk) {
            match event {
                Event::Expected(found) => hit = Some(found),
                Event::Watch { index, line } => match self.watches[index].kind.clone() {
                    WatchKind::Stage(stage) => {
                        if stage == Stage::Kernel {
                            self.kernel_started.get_or_insert(at);
                        }
                        // systemd greets in an initrd too; that greeting opens `initramfs`.
                        let initrd_greeting = stage == Stage::Systemd && line.contains("(Initrd)!");
                        if !initrd_greeting {
                            self.enter_stage(stage);
                        }
                    }
                    // A banner before the kernel is the boot itself.
                    WatchKind::Diagnosed(Diagnosis::Reset) if self.kernel_started.is_none() => {}
                    // At a shell these lines are what a command printed (`journalctl -b`,
                    // `strings u-boot.itb`), not the boot's state.
                    WatchKind::Diagnosed(_) if self.state == ConsoleState::Shell => {}
                    WatchKind::Fatal | WatchKind::Diagnosed(_) if self.expected_explicitly(index) => {}
                    // After this chunk's match the step is done; whether the line is fatal
                    // depends on what the next step expects.
                    WatchKind::Fatal | WatchKind::Diagnosed(_) if hit.is_some() => {
                        self.deferred_fatal.get_or_insert((index, line.into(), at));
                    }
                    WatchKind::Fatal | WatchKind::Diagnosed(_) => {
                        return Err(self.fatal(index, &line, at).await);
                    }
                    WatchKind::FailedUnit => self.failed_units.seen(line.into()),
                },
            }
        }
        if self.failed_units.any_pending() {
            let mut lines = self.matcher.recent_lines();
            if self.matcher.buffer_sizes().incomplete_line > 0 {
                lines.pop();
            }
            self.failed_units.complete(&lines);
        }
        Ok(hit)
    }

    /// Ends the wait on the fatal pattern `index`, seen at `at` in `line`: reads on a little so
    /// the report shows the whole line and what followed it.
    async fn fatal(&mut self, index: usize, line: &str, at: Duration) -> FailReason {
        if let WatchKind::Diagnosed(diagnosis) = self.watches[index].kind {
            self.fatal_hint = Some(diagnosis.hint().to_owned());
        }
        let pattern = self.watches[index].pattern.to_string();
        self.note(&format!("fatal pattern {pattern} seen"));
        self.drain(FATAL_DRAIN).await;
        let line = self.complete_line(line);
        self.matcher.clear_expect();
        FailReason::Fatal {
            pattern,
            line,
            seen_at: at,
        }
    }

    /// Whether the step waiting now expects the text of fatal pattern `index`: a scenario that
    /// waits for `Gave up waiting for root file system device` (to show that a board-specific
    /// initrd cannot find a disk under QEMU) means to see it, so it is not fatal then.
    fn expected_explicitly(&self, index: usize) -> bool {
        let fatal = &self.watches[index].pattern;
        self.expecting.iter().any(|expected| match (expected, fatal) {
            (Pattern::Literal(text), Pattern::Literal(fatal)) => text.contains(fatal.as_str()),
            (Pattern::Literal(text), Pattern::Regex(fatal)) => fatal.is_match(text.as_bytes()),
            (Pattern::Regex(_), _) => false,
        })
    }

    /// What the last fatal line's known cause suggests checking, if it has one.
    pub fn fatal_hint(&self) -> Option<&str> {
        self.fatal_hint.as_deref()
    }

    /// The units systemd said it failed to start, in the order it said so.
    pub fn failed_units(&self) -> Vec<String> {
        self.failed_units.all(&self.matcher.recent_lines())
    }

    /// A burst of console bytes into `buf` (see [`read_burst`]), or `Err` once `until` passes
    /// with nothing read.
    async fn read_within(
        &mut self,
        until: Instant,
    ) -> Result<std::io::Result<usize>, tokio::time::error::Elapsed> {
        tokio::time::timeout_at(
            until,
            read_burst(&mut self.console.reader, &mut self.buf, &mut self.burst_end),
        )
        .await
    }

    /// Hands the console to the person holding the terminal, until they leave (Ctrl-]), their
    /// keys end or the console closes; returns which. Everything is recorded as usual, the
    /// harness's own secrets cut out of what they see too, and what they type at a password
    /// prompt redacted. The matcher sees none of it: what they did cannot satisfy or fail a
    /// later step, and a failure's report shows the console as the failure left it.
    pub async fn interact(&mut self, hold: &mut Hold<'_>) -> Result<&'static str, FailReason> {
        self.redact_known_secrets();
        let mut secrets = PromptedSecrets::new();
        // What the person types is recorded less the known passwords too (typed at a shell,
        // not at a prompt: `echo $password`). Held-back keys are released by the next key or
        // the end, never by time: a slow typist's password would leak a key at a time.
        let mut typed_filter = Redactor::new();
        for secret in &self.known_secrets {
            typed_filter.know(secret.as_bytes());
        }
        let why = loop {
            let console = &mut *self.console;
            tokio::select! {
                read = read_burst(&mut console.reader, &mut self.buf, &mut self.burst_end) => match read {
                    Ok(0) => break "the console closed",
                    Ok(n) => {
                        let chunk = self.redactor.filter(&self.buf[..n]);
                        self.show_interactive(hold, &mut secrets, &chunk)?;
                    }
                    Err(_) => break "the console closed",
                },
                keys = hold.keys() => match keys {
                    None => break "the terminal's input ended",
                    Some(keys) => {
                        let (typed, leave) = split_at_escape(&keys);
                        if !typed.is_empty() {
                            let at = self.elapsed();
                            let (shown, released) = secrets.input(typed);
                            let _ = self.transcript.input(at, &typed_filter.filter(&shown));
                            let _ = self.transcript.output(at, &released);
                            write_within(self.console, typed, WRITE_LIMIT).await?;
                        }
                        if leave {
                            break "left with Ctrl-]";
                        }
                    }
                },
                // A quiet console: show what the redactor held back as a possible secret.
                () = tokio::time::sleep(TICK) => {
                    let held = self.redactor.flush();
                    if !held.is_empty() {
                        self.show_interactive(hold, &mut secrets, &held)?;
                    }
                }
            }
            self.record_notices();
        };
        let at = self.elapsed();
        let _ = self.transcript.input(at, &typed_filter.flush());
        let _ = self.transcript.output(at, &secrets.flush());
        self.matcher.discard_retained();
        self.prompt_ready = false;
        Ok(why)
    }

    /// Records console bytes of an interactive session and shows them on the terminal.
    fn show_interactive(
        &mut self,
        hold: &mut Hold<'_>,
        secrets: &mut PromptedSecrets,
        chunk: &[u8],
    ) -> Result<(), FailReason> {
        let recorded = secrets.output(chunk);
        self.transcript
            .output(self.elapsed(), &recorded)
            .map_err(|e| FailReason::Io {
                detail: format!("transcript: {e}"),
            })?;
        hold.show(chunk);
        Ok(())
    }

    /// Reads for `period` more, recording but not acting.
    async fn drain(&mut self, period: Duration) {
        let until = Instant::now() + period;
        while let Ok(Ok(n)) = self.read_within(until).await {
            if n == 0 {
                break;
            }
            let at = self.elapsed();
            let chunk = self.record(n, at).unwrap_or_default();
            self.matcher.clear_expect();
            let _ = self.matcher.feed(&chunk);
        }
    }

    /// The full console line that starts with `partial`, if more of it has arrived since.
    fn complete_line(&self, partial: &str) -> String {
        let partial = partial.trim_end();
        self.matcher
            .recent_lines()
            .into_iter()
            .rev()
            .find(|line| !partial.is_empty() && line.contains(partial))
            .unwrap_or_else(|| partial.to_owned())
            .trim_end()
            .to_owned()
    }

    fn timeout_reason(&self, waited: Duration) -> FailReason {
        self.silent_kernel(Duration::from_secs(5))
            .unwrap_or(FailReason::Timeout { waited })
    }

    /// The kernel has been started for longer than `limit` and nothing from Linux ever reached
    /// this console: no text follows U-Boot's "Starting kernel ..." line. What Linux printed is
    /// what counts, not when: a console may deliver a whole boot in one burst and then sit at a
    /// shell for minutes.
    fn silent_kernel(&self, limit: Duration) -> Option<FailReason> {
        let kernel = self.kernel_started?;
        let since = self.elapsed().saturating_sub(kernel);
        (since > limit && !self.linux_printed()).then(|| FailReason::SilentAfterKernel {
            since,
            console_args: self.console_args(),
            board_console: self.board_console.clone(),
        })
    }

    /// Whether any text came after the last "Starting kernel ..." line. The matcher keeps the
    /// last lines only; when the marker is no longer among them, lines have followed it.
    fn linux_printed(&self) -> bool {
        let lines = self.matcher.recent_lines();
        let Some(at) = lines.iter().rposition(|line| line.contains(KERNEL_MARKER)) else {
            return true;
        };
        let rest_of_line = lines[at].split_once(KERNEL_MARKER).map_or("", |(_, rest)| rest);
        std::iter::once(rest_of_line)
            .chain(lines[at + 1..].iter().map(String::as_str))
            .any(|text| !text.trim().is_empty())
    }

    /// The console= and earlycon= arguments U-Boot printed in its `append:` line, if any.
    fn console_args(&self) -> Option<String> {
        let lines = self.matcher.recent_lines();
        let append = lines
            .iter()
            .rev()
            .find_map(|l| l.trim_start().strip_prefix("append: "))?;
        let args: Vec<&str> = append
            .split_whitespace()
            .filter(|a| a.starts_with("console=") || a.starts_with("earlycon"))
            .collect();
        (!args.is_empty()).then(|| args.join(" "))
    }
}

impl Drop for Session<'_> {
    /// Records the bytes the redactor still held back: they turned out not to be a secret.
    fn drop(&mut self) {
        let held = self.redactor.flush();
        if !held.is_empty() {
            let _ = self.transcript.output(self.elapsed(), &held);
        }
    }
}

/// How long one write to the console may take. A UART without flow control never holds a
/// write back, and a pipe to QEMU drains at once; a write stuck this long (a wedged USB-UART
/// driver, a QEMU that stopped reading) would otherwise hang the run past every timeout.
const WRITE_LIMIT: Duration = Duration::from_secs(10);

/// The most written to the console at once, so that its output is read between writes.
const WRITE_CHUNK: usize = 4096;

async fn write_within(console: &mut Console, bytes: &[u8], limit: Duration) -> Result<(), FailReason> {
    let write = async {
        console.writer.write_all(bytes).await?;
        console.writer.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(FailReason::ConsoleClosed {
            detail: format!("write failed: {e}"),
        }),
        Err(_) => Err(FailReason::ConsoleClosed {
            detail: format!(
                "a write to the console did not complete within {}",
                super::secs(limit)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn a_write_the_console_never_takes_fails_at_its_limit() {
        // A one-byte pipe nobody reads: the second byte can never be written.
        let mut console = scripted(1, |board| async move {
            let _held = board;
            std::future::pending::<()>().await
        });
        let result = write_within(&mut console, b"ab", Duration::from_millis(200)).await;
        assert_eq!(
            result.map_err(|e| e.to_string()),
            Err("console closed: a write to the console did not complete within 0.2s".to_owned())
        );
    }
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    use super::*;
    use crate::runner::Quiet;
    use crate::targets::test_console::scripted;

    /// A board on the far end of a pipe that echoes each byte `echo_after` after it arrives
    /// (or never, with `None`), and returns when each byte arrived, from the start.
    fn board(echo_after: Option<Duration>) -> (Console, tokio::sync::oneshot::Receiver<Vec<Duration>>) {
        let (done, arrivals) = tokio::sync::oneshot::channel();
        let start = Instant::now();
        let console = scripted(1024, move |theirs| async move {
            let (mut board_reader, mut board_writer) = tokio::io::split(theirs);
            let mut arrivals = Vec::new();
            let mut byte = [0u8; 1];
            while board_reader.read_exact(&mut byte).await.is_ok() {
                arrivals.push(start.elapsed());
                if let Some(delay) = echo_after {
                    tokio::time::sleep(delay).await;
                    let _ = board_writer.write_all(&byte).await;
                }
            }
            let _ = done.send(arrivals);
        });
        (console, arrivals)
    }

    async fn type_with_echo_pacing(console: &mut Console, text: &[u8]) -> Duration {
        let dir = tempfile::tempdir().unwrap();
        let mut transcript = Transcript::create(dir.path(), "pacing", "pacing").unwrap();
        let mut quiet = Quiet;
        let mut session = Session::new(console, &mut transcript, &mut quiet, Vec::new());
        session.pacing = CharPacing::Echo;
        let started = Instant::now();
        session.send(text, text).await.unwrap();
        started.elapsed()
    }

    #[tokio::test]
    async fn echo_pacing_types_the_next_character_only_after_the_echo() {
        let (mut console, arrivals) = board(Some(Duration::from_millis(40)));
        type_with_echo_pacing(&mut console, b"abc").await;
        drop(console);
        let arrivals = arrivals.await.unwrap();
        assert_eq!(arrivals.len(), 3);
        for pair in arrivals.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(40), "{arrivals:?}");
        }
    }

    #[tokio::test]
    async fn echo_pacing_moves_on_when_a_character_is_not_echoed() {
        let (mut console, _arrivals) = board(None);
        let took = type_with_echo_pacing(&mut console, b"pw").await;
        assert!(took >= 2 * ECHO_WAIT && took < 4 * ECHO_WAIT, "{took:?}");
    }
}
