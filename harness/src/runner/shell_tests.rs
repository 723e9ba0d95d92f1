//! The runner at a shell, as specifications: `run` and its retries, the login and the prompts
//! of real systems, on a scripted shell ([`super::fake_shell`]).

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;

use super::fake_shell::{fake_shell, Heard, ShellConfig};
use super::*;
use crate::scenario;
use crate::target::test_console::scripted;

/// What a run on a scripted shell produced: its output, the transcript's log and what the
/// shell heard.
struct ShellRun {
    out: RunOutput,
    log: String,
    heard: Vec<Heard>,
}

impl ShellRun {
    fn failure(&self) -> &Failure {
        match &self.out.verdict {
            Verdict::Fail(failure) => failure,
            Verdict::Pass => panic!("passed:\n{}", self.log),
        }
    }

    fn assert_passed(&self) {
        if let Verdict::Fail(failure) = &self.out.verdict {
            panic!("failed: {failure:?}\n{}", self.log);
        }
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
}

/// Runs the steps `steps` (TOML) of a `start = "login"` scenario on a restored shell that
/// behaves as `config` says and answers commands with `respond`.
async fn on_shell(
    steps: &str,
    config: ShellConfig,
    respond: impl FnMut(&str) -> (String, i32) + Send + 'static,
) -> ShellRun {
    let text = format!("name = \"s\"\nstart = \"login\"\ntimeout = \"30s\"\n{steps}");
    let scenario = scenario::parse(&text, Path::new("s.toml")).expect("valid scenario");
    let (tell, mut heard) = unbounded_channel();
    let mut console = scripted(64 * 1024, move |io| fake_shell(io, config, respond, tell));
    let dir = tempfile::tempdir().unwrap();
    let mut transcript = Transcript::create(dir.path(), "t", "t").unwrap();
    let ctx = RunContext::default();
    let out = run_scenario_at(
        ConsoleAt::RestoredShell,
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
    while let Ok(h) = heard.try_recv() {
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
