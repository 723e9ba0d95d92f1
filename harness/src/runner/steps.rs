//! How each scenario step drives the console.

use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

use super::copy;
use super::countdown::{AUTOBOOT, BOOT_COMMAND, MENU_PROMPT};
use super::network::{self, Side};
use super::outcome::FailReason;
use super::session::{ConsoleState, Session};
use super::{interactive, login, retry, shell, unit, RunContext};
use crate::console::Pattern;
use crate::scenario::{Action, MenuChoice};

/// A step's failure: what it was waiting for or checking, and why it failed.
pub struct StepFailure {
    pub expected: String,
    pub reason: FailReason,
}

/// What a step ends in.
pub type StepResult = Result<(), StepFailure>;

pub(super) fn failed(expected: impl Into<String>) -> impl FnOnce(FailReason) -> StepFailure {
    let expected = expected.into();
    move |reason| StepFailure { expected, reason }
}

/// How long to wait for U-Boot's prompt after a key before pressing another: U-Boot looks
/// for a key every few milliseconds of its countdown and shows the prompt at once.
const KEY_AGAIN: Duration = Duration::from_millis(300);

/// Runs one step; `seq` numbers the markers that delimit command output.
pub async fn perform(
    s: &mut Session<'_>,
    action: &Action,
    ctx: &RunContext,
    deadline: Instant,
    seq: usize,
) -> StepResult {
    match action {
        Action::Expect(pattern) => {
            s.wait_for(std::slice::from_ref(pattern), deadline)
                .await
                .map_err(failed(pattern.to_string()))?;
            Ok(())
        }
        Action::Send(bytes) => {
            // Whatever is typed, the shell is no longer waiting at a fresh prompt.
            s.prompt_ready = false;
            s.send_until(bytes, bytes, deadline).await.map_err(failed("send"))
        }
        Action::SendLine(text) => {
            s.prompt_ready = false;
            let line = format!("{text}\r");
            s.send_until(line.as_bytes(), line.as_bytes(), deadline)
                .await
                .map_err(failed("send"))
        }
        Action::InterruptAutoboot => interrupt_autoboot(s, deadline).await,
        Action::Uboot { command, output } => uboot(s, command, output.as_ref(), deadline).await,
        Action::Menu(choice) => menu(s, choice, ctx, deadline).await,
        Action::Login {
            user,
            password,
            prompt,
        } => login::login(s, user, password, prompt.as_ref(), ctx, deadline).await,
        Action::Run {
            command,
            status,
            output,
            until,
        } => match until {
            None => run(s, command, *status, output.as_ref(), deadline, seq).await,
            Some(window) => {
                let what = format!("run {command:?} until it passes");
                retry::until_passes(s, &what, *window, deadline, async |s| {
                    run(s, command, *status, output.as_ref(), deadline, seq).await
                })
                .await
            }
        },
        Action::Host { command, check } => {
            network::command(s, Side::Host, command, check, ctx, deadline).await
        }
        Action::Lan { command, check } => network::command(s, Side::Lan, command, check, ctx, deadline).await,
        Action::WaitForPort(port) => network::wait_for_port(s, *port, deadline, seq).await,
        Action::HostPortOpen(forward) => network::host_port_open(s, forward, ctx, deadline).await,
        Action::Link(link) => network::link(s, link, ctx).await,
        Action::CopyFrom { path } => copy::copy_from(s, path, deadline, seq).await,
        Action::CopyTo(copy) => copy::copy_to(s, copy, deadline, seq).await,
        Action::WaitForUnit(name) => unit::wait_for_unit(s, name, deadline, seq).await,
        Action::SystemRunning => unit::system_running(s, deadline, seq).await,
        Action::Pause => interactive::pause(s, &ctx.interaction, seq).await,
        Action::UnitHealthy(name) => unit::unit_healthy(s, name, deadline, seq).await,
        // On QEMU the state is saved by the run that builds its snapshot, which stops before
        // this step; a run that gets here goes on (see `crate::snapshot`).
        Action::SaveState(name) => {
            s.note(&format!(
                "state {name:?} reached; scenarios with start = {name:?} start from here"
            ));
            Ok(())
        }
    }
}

async fn interrupt_autoboot(s: &mut Session<'_>, deadline: Instant) -> StepResult {
    if s.state == ConsoleState::UbootPrompt {
        return Ok(());
    }
    s.wait_for(&[Pattern::literal(AUTOBOOT)], deadline)
        .await
        .map_err(failed(format!("{AUTOBOOT:?}")))?;
    // Any key stops the countdown; a space is harmless if it lands on the prompt. A key can be
    // lost (a UART that drops the first byte, a board still busy with its console), so it is
    // sent again until the prompt shows, within the step's time.
    let prompt = [Pattern::literal(s.uboot_prompt.clone())];
    let mut presses = 0u32;
    loop {
        s.send(b" ", b" ").await.map_err(failed("interrupt autoboot"))?;
        presses += 1;
        let shown = s
            .wait_within(&prompt, deadline, KEY_AGAIN)
            .await
            .map_err(failed(format!("U-Boot prompt {:?}", s.uboot_prompt)))?;
        if shown.is_some() {
            break;
        }
        if presses == 1 {
            s.note("no U-Boot prompt after the key; pressing it again until one shows");
        }
    }
    s.state = ConsoleState::UbootPrompt;
    Ok(())
}

async fn uboot(s: &mut Session<'_>, command: &str, check: Option<&Regex>, deadline: Instant) -> StepResult {
    interrupt_autoboot(s, deadline).await?;
    s.discard_retained();
    let line = format!("{command}\r");
    s.send(line.as_bytes(), line.as_bytes())
        .await
        .map_err(failed("send"))?;
    // U-Boot echoes the command; its output lies between the echo and the next prompt.
    s.wait_for(&[Pattern::literal(format!("{command}\n"))], deadline)
        .await
        .map_err(failed(format!("echo of {command:?}")))?;
    let done = s
        .wait_for(&[Pattern::literal(s.uboot_prompt.clone())], deadline)
        .await
        .map_err(failed(format!("U-Boot prompt after {command:?}")))?;
    check_output(&done.before, check)
}

async fn menu(s: &mut Session<'_>, choice: &MenuChoice, ctx: &RunContext, deadline: Instant) -> StepResult {
    if s.state == ConsoleState::UbootPrompt {
        // Stopped at U-Boot's prompt (`start = "uboot"`): boot on as autoboot would have.
        s.note(&format!(
            "at U-Boot's prompt: {BOOT_COMMAND:?} to reach the extlinux menu"
        ));
        let line = format!("{BOOT_COMMAND}\r");
        s.send(line.as_bytes(), line.as_bytes())
            .await
            .map_err(failed("send"))?;
        s.state = ConsoleState::Booting;
    }
    let prompt = s
        .wait_for(&[Pattern::literal(MENU_PROMPT)], deadline)
        .await
        .map_err(failed(format!("extlinux menu prompt {MENU_PROMPT:?}")))?;
    let number = match choice {
        MenuChoice::Number(n) => *n as usize,
        MenuChoice::Label(label) => menu_number(label, ctx.menu_labels.as_deref(), &prompt.before)
            .ok_or_else(|| StepFailure {
                expected: format!("menu entry {label}"),
                reason: FailReason::Check {
                    detail: format!(
                        "the extlinux menu has no entry labelled {label:?}; it shows:\n{}",
                        prompt.before.trim_end()
                    ),
                },
            })?,
    };
    let line = format!("{number}\r");
    s.send(line.as_bytes(), line.as_bytes())
        .await
        .map_err(failed("send"))?;
    Ok(())
}

/// U-Boot numbers menu entries from 1 in LABEL order and prints each as `N:\t<menu label or
/// label>`. The image's own extlinux.conf maps a LABEL to its number; without it, the printed
/// menu can only be matched by the text it shows.
pub fn menu_number(label: &str, labels: Option<&[String]>, printed_menu: &str) -> Option<usize> {
    if let Some(labels) = labels {
        if let Some(i) = labels.iter().position(|l| l == label) {
            return Some(i + 1);
        }
    }
    printed_menu.lines().find_map(|line| {
        let (number, text) = line.trim_start().split_once(":\t")?;
        (text.trim() == label)
            .then(|| number.trim().parse().ok())
            .flatten()
    })
}

/// Makes a restored shell show itself: an empty command line must bring back the prompt.
pub async fn confirm_shell(s: &mut Session<'_>, deadline: Instant) -> StepResult {
    s.discard_retained();
    s.send(b"\r", b"\r").await.map_err(failed("send"))?;
    let prompt = [s.shell_prompt.clone()];
    s.wait_for(&prompt, deadline)
        .await
        .map_err(failed("a shell prompt after restoring the snapshot"))?;
    shell::at_prompt(s);
    Ok(())
}

async fn run(
    s: &mut Session<'_>,
    command: &str,
    status: i32,
    check: Option<&Regex>,
    deadline: Instant,
    seq: usize,
) -> StepResult {
    let (got, output) = capture(s, command, deadline, seq).await?;
    if got != status {
        return Err(StepFailure {
            expected: format!("exit status {status}"),
            reason: FailReason::Check {
                detail: format!(
                    "{command:?} exited with status {got}; output:\n{}",
                    quoted(&output)
                ),
            },
        });
    }
    check_output(&output, check)
}

/// Runs `command` at the shell and returns its exit status and what it printed; `seq` numbers
/// its markers.
pub(super) async fn capture(
    s: &mut Session<'_>,
    command: &str,
    deadline: Instant,
    seq: usize,
) -> Result<(i32, String), StepFailure> {
    shell::await_prompt(s, deadline)
        .await
        .map_err(failed("a shell prompt (add a login step before run steps)"))?;
    // Each step's markers carry a fresh random nonce, so nothing the command prints can
    // predict them. The nonce is typed in two halves the shell joins ('@@R2S-END-<a>' '<b>'),
    // so the shell's echo of the command line never holds it whole; only the printf does. The
    // end marker follows a newline of its own and is accepted only at the start of a line. The
    // command sits in a group that closes on a line of its own (it may end in a comment or span
    // lines), so the shell reads, and echoes, every typed line before it runs any: between the
    // markers there is only what the command printed, never a prompt or an echo.
    let nonce = marker_nonce().map_err(failed(format!("{command:?} to run")))?;
    let (first, second) = nonce.split_at(nonce.len() / 2);
    let begin = format!("@@R2S-BEGIN-{seq}-{nonce}");
    let end = format!("@@R2S-END-{seq}-{nonce}");
    let lines = format!(
        "printf '%s%s\\n' '@@R2S-BEGIN-{seq}-{first}' '{second}'; {{ {command}\n}}; printf '\\n%s%s:%d;\\n' '@@R2S-END-{seq}-{first}' '{second}' \"$?\""
    );
    shell::type_lines(s, &lines, deadline)
        .await
        .map_err(failed(format!("{command:?} to be typed")))?;
    s.wait_for(&[Pattern::literal(format!("{begin}\n"))], deadline)
        .await
        .map_err(failed(format!("output of {command:?} to begin")))?;
    let end_re = Pattern::regex(&format!(r"^{end}:(\d+);")).expect("valid");
    let done = s
        .wait_for(&[end_re], deadline)
        .await
        .map_err(failed(format!("{command:?} to finish")))?;
    // What the command printed runs up to the newline the end marker's printf put before it,
    // and a final newline of its own is not part of the output.
    let before = done.before.strip_suffix('\n').unwrap_or(&done.before);
    let output = before.strip_suffix('\n').unwrap_or(before);
    Ok((marker_status(&done.matched), output.to_owned()))
}

/// Hex digits of random marker nonce: 128 bits, far beyond guessing within a step.
const NONCE_BYTES: usize = 16;

/// A fresh random nonce for one step's markers, in hex (so it needs no quoting in the shell).
fn marker_nonce() -> Result<String, FailReason> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| FailReason::Setup {
        detail: format!("no random numbers for the command markers: {e}"),
    })?;
    Ok(crate::hex::lower_hex(&bytes))
}

/// The exit status in a matched end marker `…:<status>;`; -1 if it does not parse.
fn marker_status(matched: &str) -> i32 {
    matched
        .rsplit(':')
        .next()
        .and_then(|t| t.trim_end_matches(';').parse().ok())
        .unwrap_or(-1)
}

/// How many characters of a command's output a failure's reason quotes. The reason is shown
/// whole in the text report, JUnit and the HTML page, while an output may be a MiB; the
/// transcript keeps all of it.
const QUOTED_OUTPUT: usize = 4096;

/// A command's output as a failure's reason quotes it: trailing whitespace trimmed, and of a
/// long output only its last [`QUOTED_OUTPUT`] characters (where a command says what went
/// wrong), after a line saying how much was left out.
pub(super) fn quoted(output: &str) -> std::borrow::Cow<'_, str> {
    let output = output.trim_end();
    // Where the last QUOTED_OUTPUT characters start, walking back from the end only that far.
    let cut = match output.char_indices().nth_back(QUOTED_OUTPUT - 1) {
        Some((cut, _)) if cut > 0 => cut,
        _ => return output.into(),
    };
    format!(
        "… ({} earlier bytes left out: the transcript has them)\n{}",
        cut,
        &output[cut..]
    )
    .into()
}

pub(super) fn check_output(output: &str, check: Option<&Regex>) -> StepResult {
    match check {
        Some(re) if !re.is_match(output) => Err(StepFailure {
            expected: format!("output matching /{}/", re.as_str()),
            reason: FailReason::Check {
                detail: format!("output did not match /{}/:\n{}", re.as_str(), quoted(output)),
            },
        }),
        _ => Ok(()),
    }
}
