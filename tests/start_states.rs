//! Start states end to end on the default fixture: `start = "uboot"` scenarios share one
//! snapshot taken at U-Boot's prompt; a `save_state` step's state is reached once, its saving
//! scenario goes on from it, other scenarios start from it, a changed step before it makes a
//! new snapshot, a failing one fails every scenario that needs the state; without snapshots the
//! state is replayed. No QEMU outlives a run (each run's `TMPDIR` is inside the test's
//! directory, see `run_scenario_file_with`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// A directory `<dir>/<name>` holding the shipped scenarios `names`, each passed through
/// `edit` (which gets the scenario's name and its text).
fn scenario_dir(dir: &Path, name: &str, names: &[&str], edit: impl Fn(&str, String) -> String) -> PathBuf {
    let scenarios = dir.join(name);
    std::fs::create_dir_all(&scenarios).unwrap();
    for scenario_name in names {
        let text = std::fs::read_to_string(scenario(scenario_name)).unwrap();
        std::fs::write(
            scenarios.join(format!("{scenario_name}.toml")),
            edit(scenario_name, text),
        )
        .unwrap();
    }
    scenarios
}

/// `harness run` of every scenario in `scenarios` on the default fixture, transcripts in
/// `<dir>/<run>`, snapshots in `<dir>/cache`.
fn run(dir: &Path, run: &str, scenarios: &Path, options: &[&str]) -> (Finished, PathBuf) {
    let transcripts = dir.join(run);
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let mut all = options.to_vec();
    if !options.contains(&"--no-snapshots") {
        all.extend(["--snapshot-cache", cache]);
    }
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let finished = run_scenario_file_with(&image, scenarios, &transcripts, LIMIT, &all);
    (finished, transcripts)
}

/// The run ended with exit code `code` and the summary line `summary`.
fn assert_summary(finished: &Finished, code: i32, summary: &str) {
    assert_eq!(finished.code(), Some(code), "{}", finished.explain());
    assert!(finished.stdout.contains(summary), "{}", finished.explain());
}

fn log(transcripts: &Path, scenario: &str) -> String {
    let path = transcripts.join(format!("{scenario}.log"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The priming transcripts `<state>-snapshot-<key>.log` of a run.
fn priming_logs(transcripts: &Path, state: &str) -> Vec<PathBuf> {
    let prefix = format!("{state}-snapshot-");
    std::fs::read_dir(transcripts)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".log")
        })
        .collect()
}

#[test]
fn start_uboot_scenarios_share_one_snapshot_taken_at_the_prompt() {
    let dir = temp_dir();
    let scenarios = scenario_dir(dir.path(), "in", &["uboot-env", "menu-from-uboot"], |_, t| t);
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &[]);
    assert_eq!(finished.code(), Some(0), "{}", finished.explain());
    assert_eq!(
        priming_logs(&transcripts, "uboot").len(),
        1,
        "{}",
        finished.explain()
    );
    for name in ["uboot-env", "menu-from-uboot"] {
        assert!(
            log(&transcripts, name).contains("restoring snapshot uboot of"),
            "{name}:\n{}",
            log(&transcripts, name)
        );
    }
    // The menu step boots on from the prompt with the board's own boot command; the test's
    // last step proved generation 2 booted.
    let menu = log(&transcripts, "menu-from-uboot");
    assert!(menu.contains(">> run bootcmd"), "{menu}");
}

#[test]
fn a_saved_state_is_reached_once_and_a_changed_step_before_it_makes_a_new_one() {
    let dir = temp_dir();
    let names = ["configure-state", "from-configured-state"];
    let scenarios = scenario_dir(dir.path(), "in", &names, |_, t| t);
    let (first, transcripts) = run(dir.path(), "first", &scenarios, &[]);
    assert_eq!(first.code(), Some(0), "{}", first.explain());
    let priming = priming_logs(&transcripts, "configured");
    assert_eq!(priming.len(), 1, "{}", first.explain());
    let priming = std::fs::read_to_string(&priming[0]).unwrap();
    assert!(
        priming.contains("echo r2s-configured > /tmp/r2s-state"),
        "{priming}"
    );
    // The saving scenario starts from its own state: its first step ran in the priming run.
    let saver = log(&transcripts, "configure-state");
    assert!(saver.contains("restoring snapshot saved of"), "{saver}");
    assert!(!saver.contains("step 1:") && saver.contains("step 3:"), "{saver}");
    let from = log(&transcripts, "from-configured-state");
    assert!(from.contains("restoring snapshot saved of"), "{from}");

    let (second, transcripts) = run(dir.path(), "second", &scenarios, &[]);
    assert_eq!(second.code(), Some(0), "{}", second.explain());
    assert!(priming_logs(&transcripts, "configured").is_empty());
    for name in names {
        let text = log(&transcripts, name);
        assert!(
            text.contains("reused from the cache"),
            "{name}:
{text}"
        );
    }

    let edited = scenario_dir(dir.path(), "edited", &names, |_, text| {
        text.replace(
            "run = \"echo r2s-configured > /tmp/r2s-state\"",
            "run = \"echo r2s-configured > /tmp/r2s-state && sync\"",
        )
    });
    let (third, transcripts) = run(dir.path(), "third", &edited, &[]);
    assert_eq!(third.code(), Some(0), "{}", third.explain());
    // One of the two built the new state (the other waited for it); the login state it starts
    // from was reused.
    assert_eq!(
        priming_logs(&transcripts, "configured").len(),
        1,
        "{}",
        third.explain()
    );
    assert!(
        priming_logs(&transcripts, "login").is_empty(),
        "{}",
        third.explain()
    );
}

#[test]
fn a_failing_step_before_save_state_fails_every_scenario_that_starts_from_the_state() {
    let dir = temp_dir();
    let names = ["configure-state", "from-configured-state"];
    let scenarios = scenario_dir(dir.path(), "in", &names, |_, text| {
        text.replace(
            "run = \"echo r2s-configured > /tmp/r2s-state\"",
            "run = \"test -e /no/such/file\"",
        )
    });
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &[]);
    assert_summary(&finished, 1, "0 passed, 2 failed");
    assert!(
        finished
            .stdout
            .contains("start = \"configured\" (run \"test -e /no/such/file\""),
        "{}",
        finished.explain()
    );
    assert_eq!(priming_logs(&transcripts, "configured").len(), 1);
}

#[test]
fn without_snapshots_a_saved_start_replays_the_saving_scenarios_steps() {
    let dir = temp_dir();
    let names = ["configure-state", "from-configured-state"];
    let scenarios = scenario_dir(dir.path(), "in", &names, |_, t| t);
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &["--no-snapshots"]);
    assert_eq!(finished.code(), Some(0), "{}", finished.explain());
    let from = log(&transcripts, "from-configured-state");
    assert!(
        from.contains("start = \"configured\": replaying the 1 step(s) of configure-state"),
        "{from}"
    );
    let saver = log(&transcripts, "configure-state");
    assert!(saver.contains("state \"configured\" reached"), "{saver}");
    assert!(priming_logs(&transcripts, "configured").is_empty());
}

/// `configure-state` and `from-configured-state` with `fatal = ["R2S-BROKEN"]` in the saving
/// scenario and a first step whose output is that line (the typed command is not: the quotes
/// split it).
fn fatal_before_save_state(dir: &Path) -> PathBuf {
    let names = ["configure-state", "from-configured-state"];
    scenario_dir(dir, "in", &names, |name, text| {
        if name != "configure-state" {
            return text;
        }
        text.replace("start = \"login\"", "start = \"login\"\nfatal = [\"R2S-BROKEN\"]")
            .replace(
                "run = \"echo r2s-configured > /tmp/r2s-state\"",
                "run = \"echo R2S-''BROKEN; echo r2s-configured > /tmp/r2s-state\"",
            )
    })
}

#[test]
fn the_saving_scenarios_fatal_patterns_are_watched_while_its_state_is_built() {
    let dir = temp_dir();
    let scenarios = fatal_before_save_state(dir.path());
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &[]);
    assert_summary(&finished, 1, "0 passed, 2 failed");
    assert!(
        finished.stdout.contains("fatal pattern \"R2S-BROKEN\""),
        "{}",
        finished.explain()
    );
    assert_eq!(priming_logs(&transcripts, "configured").len(), 1);
}

#[test]
fn a_replayed_saved_start_watches_the_saving_scenarios_fatal_patterns() {
    let dir = temp_dir();
    let scenarios = fatal_before_save_state(dir.path());
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &["--no-snapshots"]);
    assert_summary(&finished, 1, "0 passed, 2 failed");
    let from = log(&transcripts, "from-configured-state");
    assert!(from.contains("fatal pattern \"R2S-BROKEN\""), "{from}");
}

#[test]
fn a_state_saved_with_a_network_is_built_and_restored_with_it() {
    let dir = temp_dir();
    let scenarios = dir.path().join("in");
    std::fs::create_dir_all(&scenarios).unwrap();
    // Each host step reaches the guest's forwarded port: it needs the scenario's forwards to
    // exist while it runs, in the priming run as much as in the scenarios.
    let connect = "host = [\"python3\", \"-c\", \"import socket; socket.create_connection(('${TARGET_ADDRESS}', ${PORT_TCP_22}), 5)\"]";
    std::fs::write(
        scenarios.join("net-saver.toml"),
        format!(
            "name = \"net-saver\"\nstart = \"login\"\n[network]\nforward = [\"tcp:22\"]\n\
             [[steps]]\n{connect}\n[[steps]]\nsave_state = \"netted\"\n[[steps]]\n{connect}\n"
        ),
    )
    .unwrap();
    // No [network] of its own: it gets the saving scenario's NICs (its link can be switched)
    // and forwards.
    std::fs::write(
        scenarios.join("net-user.toml"),
        format!(
            "name = \"net-user\"\nstart = \"netted\"\n[[steps]]\n{connect}\n\
             [[steps]]\nlink = {{ nic = \"wan\", up = false }}\n"
        ),
    )
    .unwrap();
    let (finished, transcripts) = run(dir.path(), "run", &scenarios, &[]);
    assert_summary(&finished, 0, "2 passed, 0 failed");
    assert_eq!(priming_logs(&transcripts, "netted").len(), 1);
}

#[test]
fn units_that_failed_while_a_snapshot_was_made_are_listed_with_every_restored_result() {
    let dir = temp_dir();
    let names = ["configure-state", "from-configured-state"];
    // systemd's line for a unit that failed, as the console shows it; the typed command is not
    // that line (the quotes split it).
    let scenarios = scenario_dir(dir.path(), "in", &names, |_, text| {
        text.replace(
            "run = \"echo r2s-configured > /tmp/r2s-state\"",
            "run = \"echo '[FAILED] Failed to'' start r2s-fake.service - Fake.'; echo r2s-configured > /tmp/r2s-state\"",
        )
    });
    for run_name in ["first", "cached"] {
        let (finished, _) = run(dir.path(), run_name, &scenarios, &[]);
        assert_summary(&finished, 0, "2 passed, 0 failed");
        let listed = "r2s-fake.service - Fake (seen while the \"configured\" snapshot was made)";
        assert_eq!(
            finished.stdout.matches(listed).count(),
            2,
            "{run_name}: {}",
            finished.explain()
        );
    }
}
