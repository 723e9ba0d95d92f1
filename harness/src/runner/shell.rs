//! Talking to a shell the way a person at the terminal does: a line is typed only once the shell
//! shows it is ready for it, at its prompt or at its continuation prompt (`PS2`). Typing ahead
//! works on a bare line discipline, but bash, dash and busybox sh then echo the early input
//! twice (the terminal when it arrives, the line editor when it reads it), so transcripts show
//! every command twice, and a line editor may take the input differently.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::FailReason;
use super::session::{ConsoleState, Session};
use super::Stage;
use crate::console::Pattern;

/// The default shell prompt at the end of the line: root's `#` or a user's `$`, after colour
/// codes and title sequences are stripped (NixOS's `[root@ivy:~]# `, Debian's `root@ivy:~# `,
/// busybox's `~ # `).
pub const SHELL_PROMPT: &str = r"[#$] ?$";

/// The continuation prompt bash, dash and busybox sh print (`PS2`) while a command is
/// unfinished, alone on its line.
const CONTINUATION_PROMPT: &str = r"^> ?$";

/// How long to wait for the continuation prompt before typing the next line anyway: a shell
/// configured with another `PS2` still gets the line, a little later.
const CONTINUATION_WAIT: Duration = Duration::from_secs(5);

/// How long to wait for a prompt that should already be there before pressing Enter for a
/// fresh one: an earlier step (an `expect` of the prompt) may have consumed it.
const PROMPT_NUDGE: Duration = Duration::from_secs(3);

/// The default shell prompt as a pattern.
pub fn default_prompt() -> Pattern {
    Pattern::regex(SHELL_PROMPT).expect("the default prompt regex is valid")
}

/// Makes sure the shell is at its prompt, ready for a line: the prompt just seen and nothing
/// typed since, or a prompt that arrives (from retained text or the console). When none comes
/// within [`PROMPT_NUDGE`], Enter is pressed once for a fresh one.
pub async fn await_prompt(s: &mut Session<'_>, deadline: Instant) -> Result<(), FailReason> {
    if s.state == ConsoleState::Shell && s.prompt_ready {
        return Ok(());
    }
    let prompt = [s.shell_prompt.clone()];
    if s.wait_within(&prompt, deadline, PROMPT_NUDGE).await?.is_none() {
        s.note("no shell prompt came; pressing Enter for a fresh one");
        s.discard_retained();
        s.send(b"\r", b"\r").await?;
        s.wait_for(&prompt, deadline).await?;
    }
    at_prompt(s);
    Ok(())
}

/// Records that the shell's prompt was just seen: the console is at a shell, ready for a line.
pub fn at_prompt(s: &mut Session<'_>) {
    s.state = ConsoleState::Shell;
    s.prompt_ready = true;
    s.enter_stage(Stage::Body);
}

/// Types `text` (lines separated by `\n`) and Enter at a shell that is at its prompt: each line
/// after the first only once the shell shows its continuation prompt (or
/// [`CONTINUATION_WAIT`] passed without one). The caller then reads what the command printed.
pub async fn type_lines(s: &mut Session<'_>, text: &str, deadline: Instant) -> Result<(), FailReason> {
    s.prompt_ready = false;
    let continuation = [
        Pattern::regex(CONTINUATION_PROMPT).expect("the continuation prompt regex is valid"),
        s.shell_prompt.clone(),
    ];
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        s.discard_retained();
        // Within the step's time rather than the short limit of a typed line: `copy_to` types a
        // file's worth of base64.
        if lines.peek().is_none() {
            let typed = format!("{line}\r");
            return s.send_until(typed.as_bytes(), typed.as_bytes(), deadline).await;
        }
        let typed = format!("{line}\n");
        s.send_until(typed.as_bytes(), typed.as_bytes(), deadline).await?;
        if s.wait_within(&continuation, deadline, CONTINUATION_WAIT)
            .await?
            .is_none()
        {
            s.note("no continuation prompt came; typing the next line anyway");
        }
    }
    Ok(())
}
