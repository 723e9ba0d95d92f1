//! The runner at a shell, as specifications: `run` and its retries, the login and the prompts
//! of real systems, on a scripted shell ([`super::fake_shell`]).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::fake_shell::{fake_shell, Heard, ShellConfig};
use super::tests::read_line;
use super::*;
use crate::scenario;
use crate::targets::test_console::scripted;

/// What a run on a scripted shell produced: its output, the transcript's log and what the
/// shell heard.
pub(super) struct ShellRun {
    pub(super) out: RunOutput,
    pub(super) log: String,
    pub(super) heard: Vec<Heard>,
}

impl ShellRun {
    pub(super) fn failure(&self) -> &Failure {
        match &self.out.verdict {
            Verdict::Fail(failure) => failure,
            other => panic!("did not fail: {other:?}\n{}", self.log),
        }
    }

    pub(super) fn assert_passed(&self) {
        if let Verdict::Fail(failure) = &self.out.verdict {
            panic!("failed: {failure:?}\n{}", self.log);
        }
    }

    /// Asserts that the transcript holds the harness's note `text`.
    pub(super) fn assert_noted(&self, text: &str) {
        assert!(
            self.log.contains(&format!("-- {text}")),
            "no note {text:?} in:\n{}",
            self.log
        );
    }

    fn commands(&self) -> Vec<&str> {
        self.heard
            .iter()
            .filter_map(|h| match h {
                Heard::Command(c) => Some(c.as_str()),
                _ => None,
            })
            .collect()
    }

    fn typed_ahead(&self) -> Vec<&str> {
        self.heard
            .iter()
            .filter_map(|h| match h {
                Heard::TypedAhead(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Runs the steps `steps` (TOML) of a `start = "login"` scenario on a restored shell that
/// behaves as `config` says and answers commands with `respond`.
pub(super) async fn on_shell(
    steps: &str,
    config: ShellConfig,
    respond: impl FnMut(&str) -> (String, i32) + Send + 'static,
) -> ShellRun {
    let text = format!("name = \"s\"\nstart = \"login\"\ntimeout = \"30s\"\n{steps}");
    run_scripted(ConsoleAt::RESTORED_SHELL, &text, move |io, tell| {
        fake_shell(io, config, respond, tell)
    })
    .await
}

/// Runs a power-on scenario whose steps are `steps` (TOML) on a board played by `board`; the
/// board may hand its console to [`fake_shell`] with the sender it is given.
async fn on_board<F, Fut>(steps: &str, board: F) -> ShellRun
where
    F: FnOnce(DuplexStream, UnboundedSender<Heard>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let text = format!("name = \"b\"\ntimeout = \"30s\"\n{steps}");
    run_scripted(ConsoleAt::PowerOn, &text, board).await
}

/// Runs the scenario `text` from `at` on a console played by `board`, with the fixture
/// password `pw-42` as the fallback for logins.
pub(super) async fn run_scripted<F, Fut>(at: ConsoleAt, text: &str, board: F) -> ShellRun
where
    F: FnOnce(DuplexStream, UnboundedSender<Heard>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    run_scripted_in(RunContext::default(), at, text, board).await
}

/// [`run_scripted`] with the run's context `ctx` (its fallback password set to `pw-42`).
pub(super) async fn run_scripted_in<F, Fut>(ctx: RunContext, at: ConsoleAt, text: &str, board: F) -> ShellRun
where
    F: FnOnce(DuplexStream, UnboundedSender<Heard>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let scenario = scenario::parse(text, Path::new("s.toml")).expect("valid scenario");
    let (tell, mut heard) = unbounded_channel();
    let mut console = scripted(64 * 1024, move |io| board(io, tell));
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "t", "t").unwrap();
    let ctx = RunContext {
        fallback_password: Some("pw-42".to_owned()),
        ..ctx
    };
    let out = run_scenario_at(
        at,
        &scenario,
        &mut console,
        None,
        &mut transcript,
        &ctx,
        &mut Quiet,
    )
    .await;
    drop(console);
    let log = std::fs::read_to_string(transcript.finish().unwrap().log).unwrap();
    let mut all = Vec::new();
    while let Some(h) = heard.recv().await {
        all.push(h);
    }
    ShellRun { out, log, heard: all }
}

/// A service that answers `systemctl is-active` with `inactive` for the first `tries - 1`
/// tries and `active` from then on.
fn comes_up_on_try(tries: usize) -> impl FnMut(&str) -> (String, i32) + Send + 'static {
    let mut asked = 0;
    move |_command| {
        asked += 1;
        if asked >= tries {
            ("active".to_owned(), 0)
        } else {
            ("inactive".to_owned(), 3)
        }
    }
}

#[tokio::test]
async fn until_retries_a_failing_command_until_it_passes_and_shows_every_try() {
    let steps = "[[steps]]\nrun = \"systemctl is-active sshd\"\noutput = \"^active$\"\nuntil = \"20s\"\n";
    let run = on_shell(steps, ShellConfig::default(), comes_up_on_try(3)).await;
    run.assert_passed();
    assert_eq!(run.commands(), ["systemctl is-active sshd"; 3]);
    for n in 1..=3 {
        assert!(run.log.contains(&format!("try {n}")), "{}", run.log);
    }
    assert!(
        run.log.contains(
            "try 1 failed (\"systemctl is-active sshd\" exited with status 3); trying again in 1.0s"
        ),
        "{}",
        run.log
    );
    assert!(run.log.contains("passed on try 3"), "{}", run.log);
}

#[tokio::test]
async fn until_gives_up_when_its_window_closes_and_says_how_often_it_tried() {
    let steps = "[[steps]]\nrun = \"systemctl is-active sshd\"\nuntil = \"2500ms\"\n";
    let started = std::time::Instant::now();
    let run = on_shell(steps, ShellConfig::default(), comes_up_on_try(usize::MAX)).await;
    let failure = run.failure();
    assert_eq!(failure.step, 1);
    let reason = failure.reason.to_string();
    assert!(
        reason.starts_with("still failing after 3 tries in 2."),
        "{reason}"
    );
    assert!(
        reason.ends_with(
            "s (until = \"2s 500ms\"); the last try: \"systemctl is-active sshd\" exited with status 3; output:\ninactive"
        ),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn without_until_a_failing_command_is_tried_once() {
    let steps = "[[steps]]\nrun = \"systemctl is-active sshd\"\n";
    let run = on_shell(steps, ShellConfig::default(), comes_up_on_try(2)).await;
    assert_eq!(
        run.failure().reason.to_string(),
        "\"systemctl is-active sshd\" exited with status 3; output:\ninactive"
    );
    assert_eq!(run.commands().len(), 1);
}

const LOGIN_THEN_RUN: &str =
    "[[steps]]\nlogin = { user = \"root\", password_env = \"R2S_SHELL_TESTS_UNSET\" }\n\
                              [[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\n";

/// Answers every command with `aarch64`.
fn aarch64(_command: &str) -> (String, i32) {
    ("aarch64".to_owned(), 0)
}

/// What a board does once the password was accepted: shows the default prompt and is a shell.
async fn let_in(mut io: DuplexStream, tell: UnboundedSender<Heard>) {
    write(&mut io, ShellConfig::default().prompt).await;
    fake_shell(io, ShellConfig::default(), aarch64, tell).await;
}

async fn write(io: &mut DuplexStream, text: &[u8]) {
    let _ = io.write_all(text).await;
}

#[tokio::test]
async fn run_types_each_line_only_once_the_shell_shows_its_prompt_or_continuation_prompt() {
    let steps = "[[steps]]\nrun = \"echo one\"\n\
                 [[steps]]\nrun = \"\"\"if true; then\n  echo two\nfi\"\"\"\n\
                 [[steps]]\nrun = \"echo three\"\n";
    let config = ShellConfig {
        think: Duration::from_millis(150),
        ..ShellConfig::default()
    };
    let run = on_shell(steps, config, |command| (command.replace("echo ", ""), 0)).await;
    run.assert_passed();
    assert_eq!(
        run.commands(),
        ["echo one", "if true; then\n  echo two\nfi", "echo three"]
    );
    assert_eq!(run.typed_ahead(), Vec::<&str>::new(), "{}", run.log);
}

#[tokio::test]
async fn run_works_at_bash_dash_and_busybox_prompts() {
    let prompts: [&'static [u8]; 3] = [b"\r\nroot@ivy:~# ", b"\r\n$ ", b"\r\n~ # "];
    for prompt in prompts {
        let config = ShellConfig {
            prompt,
            ..ShellConfig::default()
        };
        let steps = "[[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\n\
                     [[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\n";
        let run = on_shell(steps, config, aarch64).await;
        run.assert_passed();
        assert_eq!(run.typed_ahead(), Vec::<&str>::new(), "{prompt:?}");
    }
}

#[tokio::test]
async fn a_prompt_in_colour_that_sets_the_terminal_title_is_a_prompt() {
    // NixOS's root prompt: the title `root@ivy: ~`, then `[root@ivy:~]#` in bold red.
    let config = ShellConfig {
        prompt: b"\r\n\x1b]0;root@ivy: ~\x07\x1b[1;31m[root@ivy:~]#\x1b[0m ",
        ..ShellConfig::default()
    };
    let steps = "[[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\n";
    let run = on_shell(steps, config, aarch64).await;
    run.assert_passed();
}

#[tokio::test]
async fn a_prompt_the_login_recipe_describes_is_awaited_instead_of_the_default() {
    let config = || ShellConfig {
        prompt: b"\r\nivy> ",
        ..ShellConfig::default()
    };
    let steps = "login = { user = \"root\", prompt = \"^ivy> $\" }\n\
                 [[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\ntimeout = \"8s\"\n";
    on_shell(steps, config(), aarch64).await.assert_passed();
    // Without the recipe's prompt the restored shell is never seen to answer.
    let plain = "[[steps]]\nrun = \"uname -m\"\ntimeout = \"8s\"\n";
    let run = on_shell(plain, config(), aarch64).await;
    assert_eq!(run.failure().step, 0);
}

#[tokio::test]
async fn login_after_a_step_that_matched_the_prompt_presses_enter_for_a_fresh_one() {
    let steps = format!("[[steps]]\nexpect = \"ivy login:\"\n{LOGIN_THEN_RUN}");
    let run = on_board(&steps, |mut io, tell| async move {
        write(&mut io, b"Debian GNU/Linux 12 ivy ttyAMA0\r\n\r\nivy login: ").await;
        // agetty answers an empty line with a fresh prompt.
        assert_eq!(read_line(&mut io).await, b"");
        write(&mut io, b"\r\n\r\nivy login: ").await;
        assert_eq!(read_line(&mut io).await, b"root");
        write(&mut io, b"root\r\nPassword: ").await;
        assert_eq!(read_line(&mut io).await, b"pw-42");
        let_in(io, tell).await;
    })
    .await;
    run.assert_passed();
    run.assert_noted(
        "a login prompt is on screen but was matched by an earlier step; pressing Enter for a fresh one",
    );
}

#[tokio::test]
async fn login_incorrect_is_its_own_reason_and_the_password_is_typed_once() {
    let (typed, mut passwords) = unbounded_channel();
    let run = on_board(LOGIN_THEN_RUN, |mut io, _tell| async move {
        write(&mut io, b"ivy login: ").await;
        let _ = read_line(&mut io).await;
        write(&mut io, b"root\r\nPassword: ").await;
        let _ = typed.send(read_line(&mut io).await);
        // login(1) pauses before it says no.
        tokio::time::sleep(Duration::from_millis(700)).await;
        write(&mut io, b"\r\n\r\nLogin incorrect\r\nivy login: ").await;
        while !read_line(&mut io).await.is_empty() {}
    })
    .await;
    let failure = run.failure();
    assert_eq!(
        failure.reason.to_string(),
        "login as root was refused (\"Login incorrect\"): check the user name and the password in \
         R2S_SHELL_TESTS_UNSET; a refused password is not tried again"
    );
    passwords.close();
    let mut count = 0;
    while passwords.recv().await.is_some() {
        count += 1;
    }
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_password_prompt_that_comes_late_and_twice_is_answered_each_time() {
    let run = on_board(LOGIN_THEN_RUN, |mut io, tell| async move {
        write(&mut io, b"ivy login: ").await;
        let _ = read_line(&mut io).await;
        write(&mut io, b"root\r\n").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        write(&mut io, b"Password: ").await;
        assert_eq!(read_line(&mut io).await, b"pw-42");
        write(&mut io, b"\r\nPassword: ").await;
        assert_eq!(read_line(&mut io).await, b"pw-42");
        let_in(io, tell).await;
    })
    .await;
    run.assert_passed();
    run.assert_noted("the password prompt came again without a verdict; typing the password again");
}

#[tokio::test]
async fn a_motd_and_last_login_line_before_the_prompt_are_passed_over() {
    let run = on_board(LOGIN_THEN_RUN, |mut io, tell| async move {
        write(&mut io, b"ivy login: ").await;
        let _ = read_line(&mut io).await;
        write(&mut io, b"root\r\nPassword: ").await;
        let _ = read_line(&mut io).await;
        write(
            &mut io,
            b"\r\nLinux ivy 6.1.0-28-arm64 #1 SMP Debian 6.1.119-1 (2024-11-22) aarch64\r\n\r\n\
              The programs included with the Debian GNU/Linux system are free software;\r\n\
              permitted by applicable law.\r\n\
              Last login: Tue Dec  1 11:02:13 UTC 2026 on ttyAMA0\r\n",
        )
        .await;
        let config = ShellConfig {
            prompt: b"\r\n\x1b]0;root@ivy: ~\x07root@ivy:~# ",
            ..ShellConfig::default()
        };
        write(&mut io, config.prompt).await;
        fake_shell(io, config, aarch64, tell).await;
    })
    .await;
    run.assert_passed();
    assert_eq!(run.commands(), ["uname -m"]);
}

/// A systemd that reports `states` for `systemctl is-active`, one per question (the last one
/// from then on), and a status page for `systemctl status`.
fn systemd_with(states: &'static [&'static str]) -> impl FnMut(&str) -> (String, i32) + Send + 'static {
    let mut asked = 0;
    move |command| {
        if command.starts_with("systemctl status") {
            return (
                "× sshd.service - OpenBSD Secure Shell server\n     Active: failed (Result: exit-code)"
                    .to_owned(),
                3,
            );
        }
        let state = states[asked.min(states.len() - 1)];
        asked += 1;
        (state.to_owned(), if state == "active" { 0 } else { 3 })
    }
}

#[tokio::test]
async fn wait_for_unit_asks_until_the_unit_is_active() {
    let steps = "[[steps]]\nwait_for_unit = \"sshd.service\"\n";
    let run = on_shell(
        steps,
        ShellConfig::default(),
        systemd_with(&["inactive", "activating", "active"]),
    )
    .await;
    run.assert_passed();
    assert_eq!(run.commands(), ["systemctl is-active sshd.service"; 3]);
    run.assert_noted("unit sshd.service is activating; asking again in 1.0s");
}

#[tokio::test]
async fn wait_for_unit_fails_at_once_on_a_failed_unit_showing_its_status() {
    let steps = "[[steps]]\nwait_for_unit = \"sshd.service\"\n";
    let run = on_shell(
        steps,
        ShellConfig::default(),
        systemd_with(&["activating", "failed"]),
    )
    .await;
    assert_eq!(
        run.failure().reason.to_string(),
        "unit sshd.service failed; systemctl status sshd.service:\n\
         × sshd.service - OpenBSD Secure Shell server\n     Active: failed (Result: exit-code)"
    );
    assert_eq!(
        run.commands(),
        [
            "systemctl is-active sshd.service",
            "systemctl is-active sshd.service",
            "systemctl status --no-pager --full sshd.service"
        ]
    );
}

#[tokio::test]
async fn wait_for_unit_on_a_system_without_systemd_says_so() {
    let steps = "[[steps]]\nwait_for_unit = \"sshd.service\"\n";
    let run = on_shell(steps, ShellConfig::default(), |_| {
        ("sh: systemctl: not found".to_owned(), 127)
    })
    .await;
    assert_eq!(
        run.failure().reason.to_string(),
        "`systemctl is-active sshd.service` printed \"sh: systemctl: not found\", not a unit state: is this a systemd system?"
    );
}

#[tokio::test]
async fn wait_for_unit_that_never_comes_up_says_its_last_state_at_the_timeout() {
    let steps = "[[steps]]\nwait_for_unit = \"sshd.service\"\ntimeout = \"3s\"\n";
    let run = on_shell(steps, ShellConfig::default(), systemd_with(&["inactive"])).await;
    let reason = run.failure().reason.to_string();
    assert!(
        reason.starts_with("unit sshd.service still inactive after "),
        "{reason}"
    );
}

#[tokio::test]
async fn a_run_after_a_send_line_waits_for_the_prompt_the_line_brings() {
    let steps = "[[steps]]\nsend_line = \"sleep 1\"\n[[steps]]\nrun = \"uname -m\"\noutput = \"^aarch64$\"\n";
    let config = ShellConfig {
        think: Duration::from_millis(300),
        ..ShellConfig::default()
    };
    let run = on_shell(steps, config, aarch64).await;
    run.assert_passed();
    assert_eq!(run.typed_ahead(), Vec::<&str>::new(), "{}", run.log);
}

#[tokio::test]
async fn a_failure_quotes_only_the_end_of_a_long_output_and_says_how_much_it_left_out() {
    // 200 lines of 99 digits and a newline: 19,999 bytes once the last newline is trimmed.
    let long: String = (0..200).map(|i| format!("{i:0>99}\n")).collect();
    let steps = "[[steps]]\nrun = \"dmesg\"\noutput = \"^never$\"\n";
    let run = on_shell(steps, ShellConfig::default(), move |_| (long.clone(), 0)).await;
    let reason = run.failure().reason.to_string();
    let (head, quoted) = reason.split_once("\n… (").expect("a note on what was left out");
    assert_eq!(head, "output did not match /^never$/:");
    let (note, tail) = quoted.split_once('\n').unwrap();
    assert_eq!(note, "15903 earlier bytes left out: the transcript has them)");
    assert_eq!(tail.chars().count(), 4096);
    assert!(tail.ends_with(&format!("{:0>99}", 199)), "{tail}");
    // The transcript has every line.
    assert!(run.log.contains(&format!("{:0>99}", 0)), "{}", run.log);
}

#[tokio::test]
async fn a_short_output_is_quoted_whole() {
    let steps = "[[steps]]\nrun = \"uname -m\"\noutput = \"^x86_64$\"\n";
    let run = on_shell(steps, ShellConfig::default(), |_| ("aarch64".to_owned(), 0)).await;
    assert_eq!(
        run.failure().reason.to_string(),
        "output did not match /^x86_64$/:\naarch64"
    );
}
