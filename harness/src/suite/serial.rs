//! A suite on a real board: its serial console opened, its power switched as the profile says.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Recording, SuiteError};
use crate::board::{Board, Power};
use crate::console::ansi;
use crate::runner::{
    self, ConsoleAt, FailReason, Failure, Observer, Origin, RunContext, RunOutput, ScenarioResult, Verdict,
};
use crate::scenario::{Scenario, Start};
use crate::target::power::{self, OffOnDrop, PowerError};
use crate::target::serial::{SerialConfig, SerialError, SerialTarget};
use crate::target::Console;

/// Everything a serial run of a suite needs besides the scenarios.
#[derive(Debug, Clone)]
pub struct SerialRun {
    /// The board's profile: line rate, pacing, power, reconnect timeout.
    pub board: Board,
    /// The console device, e.g. `/dev/serial/by-id/usb-Silicon_Labs_CP2102…-if00-port0`.
    pub device: PathBuf,
    /// Where each scenario's transcript and timings are written.
    pub transcripts: PathBuf,
    /// The board's pacing and baud are taken from `board`, not from here.
    pub context: RunContext,
}

/// With `manual = true` power: how long the operator has to power-cycle the board.
pub const MANUAL_POWER_WAIT: Duration = Duration::from_secs(5 * 60);

/// How long a board that may already be at a shell gets to answer an empty line, before a
/// `start = "login"` scenario boots it instead.
pub const SHELL_PROBE: Duration = Duration::from_secs(3);

/// How long the console must stay quiet before the harness presses Enter to look for a shell.
/// A booting board is never quiet that long (U-Boot's autoboot countdown prints every second),
/// and an Enter there would stop its autoboot.
pub const QUIET_BEFORE_PROBE: Duration = Duration::from_millis(1500);

/// How long the harness listens for that quiet. Output that was waiting for the port (a prompt
/// printed after the last run closed it) arrives first and is fine; a board still printing
/// after this long is busy or booting, and is left alone.
pub const LISTEN_FOR_QUIET: Duration = Duration::from_secs(5);

/// The first words an R2S prints: Rockchip's DDR init blob (`DDR version …`) or U-Boot's TPL,
/// SPL or proper (`U-Boot TPL 2024.01 …`).
const BOOTLOADER_BANNERS: [&[u8]; 2] = [b"U-Boot", b"DDR"];

/// Powers the board on (or cycles it), runs `scenario` on its serial console and powers it
/// off if the profile can. The console is opened before the power is switched, so no boot
/// output is missed and a port another program holds is refused before its board is touched.
pub async fn run_on_serial(
    run: &SerialRun,
    scenario: &Scenario,
    observer: &mut dyn Observer,
) -> Result<ScenarioResult, SuiteError> {
    let config = SerialConfig {
        path: run.device.clone(),
        baud: run.board.baud,
        reconnect_timeout: run.board.reconnect_timeout,
    };
    let mut recording = Recording::start(&run.transcripts, scenario)?;
    // A USB-UART powered from the board's own hub port appears only once the power is on.
    let mut opened = match SerialTarget::open(&config) {
        Ok(opened) => Some(opened),
        Err(SerialError::NotFound { .. }) if run.board.power != Power::None => None,
        Err(e) => return Err(recording.abandon(e.into())),
    };
    let note = |recording: &mut Recording, text: &str| {
        let _ = recording.transcript.note(Duration::ZERO, text);
    };
    note(
        &mut recording,
        &format!(
            "board {} on {} at {} baud 8N1",
            run.board.name,
            run.device.display(),
            run.board.baud
        ),
    );
    let context = RunContext {
        pacing: run.board.pacing,
        baud: Some(run.board.baud),
        board_console: Some(format!("{} at {} baud", run.board.console, run.board.baud)),
        ..run.context.clone()
    };
    // A `start = "login"` scenario needs a shell on the booted board: one the board already
    // shows (an earlier scenario's, or the operator's) is kept rather than booted again.
    if let (Start::Login(_), Some((_, console))) = (&scenario.start, opened.as_mut()) {
        if at_shell(console, SHELL_PROBE).await {
            note(
                &mut recording,
                "start = \"login\": the board answered at a shell; kept as it is, no power switched",
            );
            let (target, console) = opened.expect("checked above");
            let at = ConsoleAt::RestoredShell;
            let out = judge(at, scenario, target, console, &mut recording, &context, observer).await;
            return finish(recording, scenario, out, run);
        }
    }
    if let Err(e) = power_up(&run.board.power, &mut recording).await {
        note(&mut recording, &format!("FAIL: {e}"));
        let out = setup_failure("power the board on", e.to_string());
        return finish(recording, scenario, out, run);
    }
    // From here on the board is on: however the run ends, it ends with the board off.
    let off_guard = match &run.board.power {
        Power::Commands(commands) => OffOnDrop::new(commands.off.as_deref(), commands.timeout),
        _ => OffOnDrop::new(None, Duration::ZERO),
    };
    let manual = run.board.power == Power::Manual;
    if manual {
        // Asked before waiting for an absent device: the operator's power cycle may be what
        // brings the adapter up.
        observer.ask_operator(&format!(
            "power-cycle board {} now; waiting up to {} for its bootloader on {}",
            run.board.name,
            humantime::format_duration(MANUAL_POWER_WAIT),
            run.device.display()
        ));
    }
    let (target, mut console) = match opened {
        Some(opened) => opened,
        None => {
            let limit = if manual {
                MANUAL_POWER_WAIT
            } else {
                config.reconnect_timeout
            };
            match open_when_present(&config, limit).await {
                Ok(opened) => opened,
                Err(e) => return Err(recording.abandon(e)),
            }
        }
    };
    if manual {
        if let Err(detail) = await_banner(&mut console, MANUAL_POWER_WAIT).await {
            note(&mut recording, &format!("FAIL: {detail}"));
            let out = setup_failure("the board to be power-cycled", detail);
            return finish(recording, scenario, out, run);
        }
    }
    let at = ConsoleAt::PowerOn;
    let mut out = judge(at, scenario, target, console, &mut recording, &context, observer).await;
    if let (Some(off), Power::Commands(commands)) = (off_guard.disarm(), &run.board.power) {
        let _ = recording
            .transcript
            .note(out.duration, &format!("power off: {}", off.join(" ")));
        if let Err(e) = power::switch("off", &off, commands.timeout).await {
            let _ = recording.transcript.note(out.duration, &format!("FAIL: {e}"));
            if matches!(out.verdict, Verdict::Pass) {
                out.verdict = setup_failure("power the board off", e.to_string()).verdict;
            }
        }
    }
    finish(recording, scenario, out, run)
}

/// Runs the scenario on the opened console, then closes the port: before any power goes off,
/// so the outage is not mistaken for a vanished device.
async fn judge(
    at: ConsoleAt,
    scenario: &Scenario,
    target: SerialTarget,
    mut console: Console,
    recording: &mut Recording,
    context: &RunContext,
    observer: &mut dyn Observer,
) -> RunOutput {
    let out = runner::run_scenario_at(
        at,
        scenario,
        &mut console,
        &mut recording.transcript,
        context,
        observer,
    )
    .await;
    drop(console);
    drop(target);
    out
}

/// The scenario's result on the board, with its transcript closed and timings written.
fn finish(
    recording: Recording,
    scenario: &Scenario,
    out: RunOutput,
    run: &SerialRun,
) -> Result<ScenarioResult, SuiteError> {
    recording.finish(scenario, out, Origin::PowerOn, Vec::new(), &run.device)
}

/// Runs the profile's start sequence, noting each command in the transcript.
async fn power_up(power: &Power, recording: &mut Recording) -> Result<(), PowerError> {
    let Power::Commands(commands) = power else {
        return Ok(());
    };
    for (what, argv) in commands.start_sequence() {
        let _ = recording
            .transcript
            .note(Duration::ZERO, &format!("power {what}: {}", argv.join(" ")));
        power::switch(what, argv, commands.timeout).await?;
    }
    Ok(())
}

/// Reports whether the board sits at a shell: when the console has been quiet for
/// [`QUIET_BEFORE_PROBE`], presses Enter and waits up to `limit` for a shell prompt. A console
/// that prints meanwhile belongs to a board that is booting (or busy), and is left alone. What
/// the board printed is put back in front of the console, so the transcript and the scenario
/// still see it.
async fn at_shell(console: &mut Console, limit: Duration) -> bool {
    let mut seen: Vec<u8> = Vec::new();
    let answered = quiet_then_prompt(console, &mut seen, limit).await;
    let reader = std::mem::replace(&mut console.reader, Box::pin(tokio::io::empty()));
    console.reader = Box::pin(std::io::Cursor::new(seen).chain(reader));
    answered
}

async fn quiet_then_prompt(console: &mut Console, seen: &mut Vec<u8>, limit: Duration) -> bool {
    let mut buf = vec![0u8; 4096];
    let give_up = tokio::time::Instant::now() + LISTEN_FOR_QUIET;
    loop {
        match tokio::time::timeout(QUIET_BEFORE_PROBE, console.reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            Ok(_) => return false,
        }
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
    }
    if console.writer.write_all(b"\r").await.is_err() || console.writer.flush().await.is_err() {
        return false;
    }
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, console.reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
        if ends_with_shell_prompt(seen) {
            return true;
        }
    }
}

/// Whether console output ends at a shell prompt: root's `#` or a user's `$`, colours and all.
fn ends_with_shell_prompt(output: &[u8]) -> bool {
    let text = ansi::strip(output);
    let last_line = text.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    matches!(last_line.trim_ascii_end().last(), Some(b'#' | b'$'))
}

/// Opens a device that is expected to appear within `limit`.
async fn open_when_present(
    config: &SerialConfig,
    limit: Duration,
) -> Result<(SerialTarget, Console), SuiteError> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match SerialTarget::open(config) {
            Err(SerialError::NotFound { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return Ok(other?),
        }
    }
}

/// Reads until a bootloader banner appears, then puts what was read back in front of the
/// console, so the scenario's clock starts at the banner and its first step still sees it.
async fn await_banner(console: &mut Console, limit: Duration) -> Result<(), String> {
    // Only the tail is kept: a board left running prints without end, and the banner is what
    // follows the power cycle.
    const KEEP: usize = 64 * 1024;
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, console.reader.read(&mut buf)).await {
            Err(_) => {
                return Err(format!(
                    "no bootloader banner (U-Boot or DDR) within {} of asking for a power cycle",
                    humantime::format_duration(limit)
                ))
            }
            Ok(Ok(0)) => return Err("console closed while waiting for the bootloader".to_owned()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(n)) => n,
        };
        let search_from = seen.len().saturating_sub(8);
        seen.extend_from_slice(&buf[..n]);
        let found = BOOTLOADER_BANNERS
            .iter()
            .any(|banner| memchr::memmem::find(&seen[search_from..], banner).is_some());
        if found {
            let reader = std::mem::replace(&mut console.reader, Box::pin(tokio::io::empty()));
            console.reader = Box::pin(std::io::Cursor::new(seen).chain(reader));
            return Ok(());
        }
        if seen.len() > KEEP {
            seen.drain(..seen.len() - KEEP);
        }
    }
}

/// An outcome for a run that failed before its first step.
fn setup_failure(expected: &str, detail: String) -> RunOutput {
    let failure = Failure {
        step: 0,
        step_description: String::new(),
        expected: expected.to_owned(),
        reason: FailReason::Setup { detail },
        at: Duration::ZERO,
        stage: "uboot".to_owned(),
        hint: None,
    };
    RunOutput {
        verdict: Verdict::Fail(failure),
        stages: Vec::new(),
        last_lines: Vec::new(),
        duration: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::DuplexStream;

    /// A console whose board is played by `board`; what the harness typed is recorded.
    fn console_with<F, Fut>(board: F) -> (Console, Arc<Mutex<Vec<u8>>>)
    where
        F: FnOnce(DuplexStream, Arc<Mutex<Vec<u8>>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (ours, theirs) = tokio::io::duplex(4096);
        let typed = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(board(theirs, typed.clone()));
        let (reader, writer) = tokio::io::split(ours);
        let console = Console {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            notices: Default::default(),
        };
        (console, typed)
    }

    #[tokio::test]
    async fn a_quiet_board_at_a_shell_answers_enter_and_is_kept() {
        let (mut console, typed) = console_with(|mut io, typed| async move {
            // The prompt the last run left, printed after it closed the port, comes first.
            let _ = io.write_all(b"@@R2S-END-3:0;\r\n[root@ivy:~]# ").await;
            let mut buf = [0u8; 64];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                typed.lock().unwrap().extend_from_slice(&buf[..n]);
                let _ = io.write_all(b"\r\n\x1b[1;31m[root@ivy:~]#\x1b[0m ").await;
            }
        });
        assert!(at_shell(&mut console, SHELL_PROBE).await);
        assert_eq!(typed.lock().unwrap().as_slice(), b"\r");
        // What the board printed is still there for the scenario.
        let mut replay = vec![0u8; 128];
        let n = console.reader.read(&mut replay).await.unwrap();
        assert!(replay[..n].starts_with(b"@@R2S-END-3"));
        assert!(replay[..n].ends_with(b"\x1b[0m "));
    }

    #[tokio::test]
    async fn a_board_counting_down_to_autoboot_is_not_sent_enter() {
        let (mut console, typed) = console_with(|io, typed| async move {
            let (mut rx, mut tx) = tokio::io::split(io);
            let countdown = async move {
                // A countdown, then the boot it leads to: output never pauses for long.
                for left in (0..20).rev() {
                    let line = format!("\rHit any key to stop autoboot: {left:2} ");
                    if tx.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            };
            let listen = async move {
                let mut buf = [0u8; 64];
                while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), rx.read(&mut buf)).await {
                    if n == 0 {
                        break;
                    }
                    typed.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            };
            tokio::join!(countdown, listen);
        });
        let started = tokio::time::Instant::now();
        assert!(!at_shell(&mut console, SHELL_PROBE).await);
        assert!(started.elapsed() < LISTEN_FOR_QUIET + Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(typed.lock().unwrap().as_slice(), b"", "Enter would stop autoboot");
    }

    #[test]
    fn a_coloured_root_prompt_is_a_shell_and_a_login_prompt_is_not() {
        assert!(ends_with_shell_prompt(b"\r\n\x1b[1;31m[root@ivy:~]#\x1b[0m "));
        assert!(ends_with_shell_prompt(b"\r\nuser@ivy:~$ "));
        assert!(!ends_with_shell_prompt(b"\r\nivy login: "));
        assert!(!ends_with_shell_prompt(b"# comment\nmore output\n"));
        assert!(!ends_with_shell_prompt(b""));
    }
}
