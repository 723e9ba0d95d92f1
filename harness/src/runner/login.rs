//! Logging in at a getty as a person at the console would: on the busybox fixtures, and on real
//! systems (agetty, login(1) and PAM) whose prompts come late, come twice, or were already
//! matched by an earlier step, whose refusal comes after a pause, and whose shells greet with a
//! MOTD, a `Last login:` line and a coloured prompt that also sets the terminal title.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::FailReason;
use super::session::Session;
use super::shell;
use super::steps::{failed, StepFailure, StepResult};
use super::{RunContext, Stage};
use crate::console::Pattern;
use crate::scenario::{Action, Password, PromptRegex, Scenario, Start};

/// The getty's prompt, matched anywhere in a line: kernel messages may share it.
const LOGIN_PROMPT: &str = "login: ";

/// login(1)'s and PAM's password prompt, at the end of the line.
const PASSWORD_PROMPT: &str = r"(?i)password: ?$";

/// What login(1) prints when it refuses the user or the password.
const LOGIN_INCORRECT: &str = "Login incorrect";

/// What agetty prints after its prompt and the user's name when it logs the user in by itself.
const AUTOMATIC_LOGIN: &str = "(automatic login)";

/// How long after the login prompt agetty's automatic login is looked for. agetty writes it
/// with the prompt in one `printf`; this is time for the bytes to cross the console.
const AUTOLOGIN_GRACE: Duration = Duration::from_millis(300);

/// How long to wait for a login prompt before looking whether one is already on screen (an
/// earlier step matched it) and pressing Enter for a fresh one.
const LOGIN_NUDGE: Duration = Duration::from_secs(5);

/// How often Enter is pressed for a fresh login prompt, and how often the user name or the
/// password is typed again for a prompt repeated without a verdict, before giving up on it.
const MAX_REPEATS: u32 = 3;

/// A kernel log line (`[   12.345678] …`), which may land after the getty's prompt.
fn is_kernel_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with('[')
        && line[1..].trim_start().split_once(']').is_some_and(|(stamp, _)| {
            stamp.contains('.') && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

/// Logs in as `user` at the getty and waits for the shell's prompt (`prompt`, or the default
/// one), which later `run` steps then expect too.
pub async fn login(
    s: &mut Session<'_>,
    user: &str,
    password: &Password,
    prompt: Option<&PromptRegex>,
    ctx: &RunContext,
    deadline: Instant,
) -> StepResult {
    if let Some(prompt) = prompt {
        s.shell_prompt = prompt.pattern().clone();
    }
    await_login_prompt(s, deadline)
        .await
        .map_err(failed(format!("login prompt {LOGIN_PROMPT:?}")))?;
    s.enter_stage(Stage::Login);
    if let Some(logged_in) = automatic_login(s, deadline).await? {
        return follow_automatic_login(s, user, &logged_in, deadline).await;
    }
    type_user(s, user).await?;
    let answers = [
        Pattern::regex(PASSWORD_PROMPT).expect("the password prompt regex is valid"),
        s.shell_prompt.clone(),
        Pattern::literal(LOGIN_INCORRECT),
        Pattern::literal(LOGIN_PROMPT),
    ];
    let (mut passwords, mut users) = (0, 1);
    loop {
        let hit = s
            .wait_for(&answers, deadline)
            .await
            .map_err(failed(format!("a password prompt or a shell prompt for {user}")))?;
        match hit.index {
            0 => {
                passwords += 1;
                if passwords > MAX_REPEATS {
                    return Err(repeated(user, "password", passwords));
                }
                if passwords > 1 {
                    s.note("the password prompt came again without a verdict; typing the password again");
                }
                // Read only when asked for: a getty that logs the user in asks for none.
                let secret = password_value(s, user, password, ctx)?;
                s.send_secret(secret.as_deref().unwrap_or(""))
                    .await
                    .map_err(failed("send"))?;
            }
            1 => {
                shell::at_prompt(s);
                return Ok(());
            }
            2 => {
                return Err(StepFailure {
                    expected: format!("a shell for {user}"),
                    reason: FailReason::LoginRefused {
                        user: user.to_owned(),
                        line: hit.line.trim().to_owned(),
                        password: describe_source(password),
                    },
                })
            }
            _ => {
                users += 1;
                if users > MAX_REPEATS {
                    return Err(repeated(user, "user name", users));
                }
                s.note("the login prompt came again without a verdict; typing the user name again");
                type_user(s, user).await?;
            }
        }
    }
}

/// Whether the getty logged a user in by itself: agetty's `--autologin` prints
/// `<host> login: USER (automatic login)` in the same write as the prompt, so it is looked for
/// only briefly after the prompt. The user it names, if so.
async fn automatic_login(s: &mut Session<'_>, deadline: Instant) -> Result<Option<String>, StepFailure> {
    let marker = [Pattern::literal(AUTOMATIC_LOGIN)];
    let hit = s
        .wait_within(&marker, deadline, AUTOLOGIN_GRACE)
        .await
        .map_err(failed(format!("login prompt {LOGIN_PROMPT:?}")))?;
    Ok(hit.map(|hit| automatic_login_user(&hit.line).unwrap_or_default()))
}

/// The user in agetty's `login: USER (automatic login)` line.
fn automatic_login_user(line: &str) -> Option<String> {
    let before = &line[..line.find(AUTOMATIC_LOGIN)?];
    let user = before.trim_end().rsplit(char::is_whitespace).next()?;
    (!user.is_empty() && !user.ends_with(':')).then(|| user.to_owned())
}

/// Follows a getty's automatic login of `logged_in` to its shell's prompt, when that is the
/// user the step logs in; another user's shell is not the step's and fails it.
async fn follow_automatic_login(
    s: &mut Session<'_>,
    user: &str,
    logged_in: &str,
    deadline: Instant,
) -> StepResult {
    if logged_in != user {
        let who = if logged_in.is_empty() { "a user" } else { logged_in };
        return Err(StepFailure {
            expected: format!("a login prompt for {user}"),
            reason: FailReason::Check {
                detail: format!(
                    "the console's getty logged {who} in by itself (agetty --autologin, NixOS's \
                     services.getty.autologinUser), not {user}: log in as {who} in this step, or drop the automatic login"
                ),
            },
        });
    }
    s.note(&format!(
        "the console's getty logged {user} in by itself (agetty --autologin); following it to the shell's prompt, no password typed"
    ));
    let prompt = [s.shell_prompt.clone()];
    s.wait_for(&prompt, deadline).await.map_err(failed(format!(
        "a shell prompt for {user} after the automatic login"
    )))?;
    shell::at_prompt(s);
    Ok(())
}

/// The password to type, from where the step says it comes.
fn password_value(
    s: &mut Session<'_>,
    user: &str,
    password: &Password,
    ctx: &RunContext,
) -> Result<Option<String>, StepFailure> {
    match password {
        Password::None => Ok(None),
        Password::Literal(secret) => Ok(Some(secret.expose().to_owned())),
        Password::Env(name) => match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(_) => match &ctx.fallback_password {
                Some(value) => {
                    s.note(&format!("{name} is not set; using the fixture image's password"));
                    Ok(Some(value.clone()))
                }
                None => Err(StepFailure {
                    expected: format!("login as {user}"),
                    reason: FailReason::Setup {
                        detail: format!(
                            "environment variable {name} is not set; it must hold the password of {user}"
                        ),
                    },
                }),
            },
        },
    }
}

/// The passwords `scenario`'s logins would type, as far as they are known before it runs: its
/// start's recipe's, those of the saved states it starts through (their starts and steps),
/// its own login steps', and the fixture image's. A restored shell was logged in by another
/// run, yet a person (or a step) may still make it show one: its records cut them all out.
pub(super) fn known_secrets(scenario: &Scenario, ctx: &RunContext) -> Vec<String> {
    let chain = scenario.start.saved_chain();
    let starts = std::iter::once(&scenario.start).chain(chain.iter().map(|recipe| &recipe.base));
    let from_starts = starts.filter_map(|start| match start {
        Start::Login(recipe) => Some(&recipe.password),
        _ => None,
    });
    let steps = scenario
        .steps
        .iter()
        .chain(chain.iter().flat_map(|recipe| recipe.steps.iter()));
    let from_steps = steps.filter_map(|step| match &step.action {
        Action::Login { password, .. } => Some(password),
        _ => None,
    });
    secrets_of(from_starts.chain(from_steps), ctx)
}

/// The values of `passwords` that are known now, and the fixture image's, each once.
pub(super) fn secrets_of<'p>(
    passwords: impl IntoIterator<Item = &'p Password>,
    ctx: &RunContext,
) -> Vec<String> {
    let mut known: Vec<String> = passwords
        .into_iter()
        .filter_map(|password| match password {
            Password::None => None,
            Password::Literal(secret) => Some(secret.expose().to_owned()),
            Password::Env(name) => std::env::var(name).ok(),
        })
        .chain(ctx.fallback_password.clone())
        .filter(|secret| !secret.is_empty())
        .collect();
    known.sort();
    known.dedup();
    known
}

/// Where a refused password came from, for the report (never the password itself).
fn describe_source(password: &Password) -> String {
    match password {
        Password::None => "no password".to_owned(),
        Password::Env(name) => format!("the password in {name}"),
        Password::Literal(_) => "the scenario's password".to_owned(),
    }
}

fn repeated(user: &str, what: &str, times: u32) -> StepFailure {
    StepFailure {
        expected: format!("a shell for {user}"),
        reason: FailReason::Check {
            detail: format!(
                "the login asked for the {what} {times} times without letting {user} in or refusing"
            ),
        },
    }
}

async fn type_user(s: &mut Session<'_>, user: &str) -> StepResult {
    s.discard_retained();
    let line = format!("{user}\r");
    s.send(line.as_bytes(), line.as_bytes())
        .await
        .map_err(failed("send"))
}

/// Waits for a login prompt. An earlier step may have matched the one on screen (an `expect`
/// of `ivy login:`), and a getty prints no other until something is typed: when none comes
/// within [`LOGIN_NUDGE`] and the last line on screen (kernel messages aside) is a login
/// prompt, Enter is pressed for a fresh one.
async fn await_login_prompt(s: &mut Session<'_>, deadline: Instant) -> Result<(), FailReason> {
    let prompt = [Pattern::literal(LOGIN_PROMPT)];
    let mut nudges = 0;
    loop {
        if s.wait_within(&prompt, deadline, LOGIN_NUDGE).await?.is_some() {
            return Ok(());
        }
        if nudges < MAX_REPEATS && login_prompt_on_screen(s) {
            nudges += 1;
            s.note("a login prompt is on screen but was matched by an earlier step; pressing Enter for a fresh one");
            s.discard_retained();
            s.send(b"\r", b"\r").await?;
        }
    }
}

/// Whether the last line on screen, kernel messages aside, is a login prompt.
fn login_prompt_on_screen(s: &Session<'_>) -> bool {
    s.recent_lines()
        .iter()
        .rev()
        .find(|line| !line.trim().is_empty() && !is_kernel_line(line))
        .is_some_and(|line| line.trim_end().ends_with(LOGIN_PROMPT.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_log_lines_are_told_from_others() {
        assert!(is_kernel_line("[   12.345678] random: crng init done"));
        assert!(is_kernel_line("[12.3] x"));
        assert!(!is_kernel_line("[root@ivy:~]# "));
        assert!(!is_kernel_line("[  OK  ] Started Serial Getty on ttyS2."));
        assert!(!is_kernel_line("ivy login: "));
    }
}
