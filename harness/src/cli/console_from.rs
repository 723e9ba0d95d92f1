//! `harness console --image IMG --from STATE`: a console on the image's QEMU machine restored
//! from a saved state (`login`, `uboot`, or a state a scenario saves), so that a person is at a
//! root shell in seconds instead of a boot. It is a run of one scenario the harness writes —
//! start at STATE, then a `pause` step — on the suite `harness run` would make, so the state
//! comes from the same snapshot cache entry runs use (built first if missing) and the machine is
//! thrown away on leaving, like every run's.

use std::path::{Path, PathBuf};

use clap::{Args, FromArgMatches};
use r2s_harness::image::facts::ImageFacts;
use r2s_harness::runner::{Interaction, Verdict};
use r2s_harness::scenario::{self, Forward, NetworkSpec};
use r2s_harness::snapshot::kept::{KeptStates, KEPT_PREFIX, KEPT_TAG};
use r2s_harness::suite::{self, Reporters};
use r2s_harness::targets::NoLog;
use r2s_harness::terminal::Terminal;

use super::run::qemu_suite;
use super::{ConsoleArgs, RunArgs, EXIT_ERROR, EXIT_PASS};

/// The scenario's name, and so its transcript's stem: the same as a plain console's.
const SCENARIO_NAME: &str = "console";

/// Restores the image's machine at `state` and hands its console to the terminal until the
/// person leaves.
pub async fn console_from(args: &ConsoleArgs, image: &Path, state: &str) -> u8 {
    let mut run = run_args(args, image);
    // As `harness run`: the default cache, or a per-run one where it cannot be written.
    let _cache = match &run.cache_dir {
        Some(_) => None,
        None => super::cache_dir::usable_default().inspect(|cache| run.cache_dir = Some(cache.dir.clone())),
    };
    if state.starts_with(KEPT_PREFIX) {
        return console_from_kept(args, &run, state).await;
    }
    let scratch = match tempfile::Builder::new().prefix("r2s-console-").tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            super::say(format!("cannot make a directory for the console's scenario: {e}"));
            return EXIT_ERROR;
        }
    };
    let written = scratch.path().join("console.toml");
    if let Err(e) = std::fs::write(&written, scenario_text(state)) {
        super::say(format!("cannot write {}: {e}", written.display()));
        return EXIT_ERROR;
    }
    let (mut suite, _info, disk) = match qemu_suite(&run).await {
        Ok(setup) => setup,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    let facts = disk.as_ref().map(|disk| ImageFacts::read(disk.disk()));
    let mut paths = if args.scenarios.is_empty() {
        // The copy embedded in the binary, written into the scratch directory.
        match scenario::shipped::write_for_run(&scratch.path().join("shipped")) {
            Ok(files) => files,
            Err(e) => {
                super::say(&e);
                return EXIT_ERROR;
            }
        }
    } else {
        args.scenarios.clone()
    };
    paths.push(written.clone());
    let scenarios = match scenario::load_all_for(&paths, facts.as_ref()) {
        Ok(all) => all,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    let Some(console) = scenarios.into_iter().find(|s| s.source == written) else {
        super::say("the console's scenario was not loaded");
        return EXIT_ERROR;
    };
    suite.context.autologin = facts.as_ref().and_then(|f| f.autologin.clone());
    suite.context.interaction = Interaction {
        terminal: Some(Terminal::shared()),
        // What the person types while the machine is restored is for its shell.
        keep_typed_ahead: true,
        ..Interaction::default()
    };
    eprintln!(
        "harness console: restoring the machine at state {state:?} (built first if the snapshot cache has none)"
    );
    let outcome = suite::run_suite(&suite, vec![console], 1, 0, Reporters::new()).await;
    let transcript = args.transcripts.join(format!("{SCENARIO_NAME}.log"));
    match outcome.results.first().map(|r| &r.verdict) {
        Some(Verdict::Pass) => {
            eprintln!(
                "harness console: the machine is gone; the image is as it was. Transcript: {}",
                transcript.display()
            );
            EXIT_PASS
        }
        Some(Verdict::Fail(failure)) => {
            super::say(format!(
                "the machine did not reach state {state:?}: {}; transcript {}",
                failure.reason,
                transcript.display()
            ));
            EXIT_ERROR
        }
        Some(Verdict::Error(reason)) => {
            super::say(format!("the console could not be opened: {reason}"));
            EXIT_ERROR
        }
        Some(Verdict::Skip(reason)) => {
            super::say(format!("the console was not opened: {reason}"));
            EXIT_ERROR
        }
        None => {
            for error in &outcome.report_errors {
                super::say(error);
            }
            EXIT_ERROR
        }
    }
}

/// The console of a failed machine `harness run --keep-failed` kept as `name`, restored on a
/// copy of its disks (the kept state stays as it is, to open again).
async fn console_from_kept(args: &ConsoleArgs, run: &RunArgs, name: &str) -> u8 {
    let cache = super::states::snapshot_cache_dir(run.snapshot_cache.as_ref(), run.cache_dir.as_ref());
    let kept = match KeptStates::in_cache(&cache).open(name) {
        Ok(kept) => kept,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    let (suite, _info, _disk) = match qemu_suite(run).await {
        Ok(setup) => setup,
        Err(e) => {
            super::say(&e);
            return EXIT_ERROR;
        }
    };
    let mut target = suite.target.open();
    let Some(snapshots) = target.snapshots() else {
        super::say("kept states are QEMU machines; this target cannot restore one");
        return EXIT_ERROR;
    };
    let image = std::fs::canonicalize(snapshots.spec().image).unwrap_or_default();
    if image != kept.meta.image.path {
        super::say(format!(
            "kept state {name} is a machine of {}, not of {}: give that image with --image",
            kept.meta.image.path.display(),
            image.display()
        ));
        return EXIT_ERROR;
    }
    // The machine was saved with the NICs its scenario ran with; it restores only with them.
    if let Some(forwards) = &kept.meta.network {
        let spec = match kept_network(forwards) {
            Ok(spec) => spec,
            Err(e) => {
                super::say(format!("kept state {name}: state.json: {e}"));
                return EXIT_ERROR;
            }
        };
        match target.network() {
            Some(network) => network.attach(&spec),
            None => {
                super::say(format!(
                    "kept state {name} ran with the board's NICs, and this target has none to restore it with"
                ));
                return EXIT_ERROR;
            }
        }
    }
    let Some(snapshots) = target.snapshots() else {
        super::say("kept states are QEMU machines; this target cannot restore one");
        return EXIT_ERROR;
    };
    let restored = snapshots.start_at(&kept.disks, KEPT_TAG).await;
    let (console, loaded) = match restored {
        Ok(restored) => restored,
        Err(e) => {
            super::say(format!("kept state {name} cannot be restored: {e}"));
            let _ = target.stop(&mut NoLog).await;
            return EXIT_ERROR;
        }
    };
    if let Some(network) = target.network() {
        let shown: Vec<String> = network
            .access()
            .variables()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if !shown.is_empty() {
            eprintln!(
                "harness console: network of the kept machine: {}",
                shown.join(" ")
            );
        }
    }
    let description = format!(
        "kept state {name} (scenario {}, {})",
        kept.meta.scenario, kept.meta.failure
    );
    let ended = super::console::attach_logged(console, &args.transcripts, &description, loaded).await;
    // QEMU is killed and reaped; the kept disks were copied, not written.
    let _ = target.stop(&mut NoLog).await;
    ended
}

/// The network a kept state records (its forwards, `tcp:22`), read back: untrusted, each
/// forward checked as a scenario's are.
fn kept_network(forwards: &[String]) -> Result<NetworkSpec, String> {
    let forwards = forwards
        .iter()
        .map(|text| Forward::parse(text).map_err(|e| format!("network forward {e}")))
        .collect::<Result<Vec<Forward>, String>>()?;
    Ok(NetworkSpec { forwards })
}

/// The scenario of the console: start at `state`, then hand the console over.
fn scenario_text(state: &str) -> String {
    let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let description =
        format!("harness console --from {state}: the console of the machine restored at that state");
    format!(
        "name = \"{SCENARIO_NAME}\"\ndescription = {}\nstart = {}\ntimeout = \"30m\"\n[[steps]]\npause = true\n",
        quoted(&description),
        quoted(state)
    )
}

/// The `harness run` options the console's run takes: its image, board, QEMU, disk bus, caches
/// and transcripts; everything else as `harness run` has it by default.
fn run_args(args: &ConsoleArgs, image: &Path) -> RunArgs {
    let matches = RunArgs::augment_args(clap::Command::new("run"))
        .try_get_matches_from(["run"])
        .expect("`harness run` takes no required argument");
    let mut run = RunArgs::from_arg_matches(&matches).expect("the defaults of `harness run` are valid");
    run.image = Some(PathBuf::from(image));
    run.board = args.board.clone();
    run.transcripts = args.transcripts.clone();
    run.qemu = args.qemu.clone();
    run.disk_bus = args.disk_bus;
    run.no_adapt = args.no_adapt;
    run.cache_dir = args.cache_dir.clone();
    run.snapshot_cache = args.snapshot_cache.clone();
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_scenario_starts_at_the_state_and_pauses() {
        let parsed = scenario::parse(&scenario_text("login"), Path::new("console.toml")).unwrap();
        assert_eq!(parsed.name, SCENARIO_NAME);
        assert!(
            matches!(parsed.start, scenario::Start::Login(_)),
            "{:?}",
            parsed.start
        );
        assert_eq!(parsed.steps.len(), 1);
        assert!(matches!(parsed.steps[0].action, scenario::Action::Pause));
    }

    #[test]
    fn a_state_name_is_quoted_not_pasted_into_the_scenario() {
        let state = "x\"\nname = \"evil";
        let table: toml::Table = scenario_text(state).parse().unwrap();
        assert_eq!(table["start"].as_str(), Some(state));
        assert_eq!(table["name"].as_str(), Some(SCENARIO_NAME));
    }

    #[test]
    fn the_console_run_takes_the_consoles_image_caches_and_transcripts() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "harness",
            "console",
            "--image",
            "a.img",
            "--from",
            "login",
            "--cache-dir",
            "/c",
            "--snapshot-cache",
            "/s",
            "--transcripts",
            "/t",
        ])
        .unwrap();
        let crate::cli::Command::Console(args) = cli.command else {
            panic!("not the console command");
        };
        let run = run_args(&args, Path::new("a.img"));
        assert_eq!(run.image.as_deref(), Some(Path::new("a.img")));
        assert_eq!(run.cache_dir.as_deref(), Some(Path::new("/c")));
        assert_eq!(run.snapshot_cache.as_deref(), Some(Path::new("/s")));
        assert_eq!(run.transcripts, Path::new("/t"));
        assert!(!run.no_snapshots);
    }
}
