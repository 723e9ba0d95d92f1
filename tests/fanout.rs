//! Snapshot fan-out end to end: `start = "login"` scenarios boot once to a root shell, save it,
//! and start from the saved state; concurrent harness processes share that one boot; a corrupt
//! or stale cache entry, or one QEMU cannot restore, is rebuilt; the image is never written; no
//! QEMU outlives a run.
//!
//! Every run gets `TMPDIR` inside the test's own directory, so every QEMU it starts names that
//! directory on its command line: that is how "no QEMU left" is checked on a machine where
//! other QEMUs run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// A harness run of `scenarios` on the default fixture with its own transcripts directory
/// `<dir>/<name>` and the snapshot cache `<dir>/cache`, started but not waited for.
struct Run {
    child: std::process::Child,
    command: String,
    started: Instant,
    transcripts: PathBuf,
}

fn start_run(dir: &Path, name: &str, scenarios: &[&str]) -> Run {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let transcripts = dir.join(name);
    let cache = dir.join("cache");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let files: Vec<PathBuf> = scenarios.iter().map(|s| scenario(s)).collect();
    let mut args = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
        OsStr::new("--snapshot-cache"),
        cache.as_os_str(),
    ];
    args.extend(files.iter().map(|f| f.as_os_str()));
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&args, &[("TMPDIR", tmp.as_os_str())]);
    Run {
        child,
        command,
        started,
        transcripts,
    }
}

fn finish_run(run: Run) -> (Finished, PathBuf) {
    let finished = finish(run.child, run.command, run.started, LIMIT);
    assert_eq!(finished.code(), Some(0), "{}", finished.explain());
    (finished, run.transcripts)
}

/// The note a scenario's transcript starts with says where its snapshot came from.
fn snapshot_note(transcripts: &Path, scenario: &str) -> String {
    let log = transcripts.join(format!("{scenario}.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    text.lines()
        .find(|l| l.contains("restoring snapshot login"))
        .unwrap_or_else(|| panic!("no snapshot note in {}:\n{text}", log.display()))
        .to_owned()
}

/// Runs `shell-fresh-state` once on an empty cache in `dir`, which builds its entry; returns
/// the entry's directory.
fn build_one_entry(dir: &Path) -> PathBuf {
    let (first, transcripts) = finish_run(start_run(dir, "first", &["shell-fresh-state"]));
    assert!(
        snapshot_note(&transcripts, "shell-fresh-state").contains("built by this run"),
        "{}",
        first.explain()
    );
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // Entries are named by their key; `digests/` keeps the image's digest beside them.
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "digests"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

/// No QEMU started by the test's runs (they name `dir` on their command lines) still runs.
fn assert_no_qemu_under(dir: &Path) {
    assert_eq!(qemu_mentioning(dir), Vec::<u32>::new(), "QEMU left running");
}

/// Priming transcripts (`login-snapshot-<key>.log`) in `dir`.
fn priming_logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.starts_with("login-snapshot-") && name.ends_with(".log")
    });
    logs
}

/// Seconds the `restore` stage took: from QEMU's start to the restored shell answering.
fn restore_seconds(transcripts: &Path, scenario: &str) -> f64 {
    let path = transcripts.join(format!("{scenario}.timings.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stages = json["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["name"], "restore", "{text}");
    stages[0]["duration"].as_f64().expect("duration")
}

/// "built by this run: 11.4s to reach the state, …" → 11.4
fn priming_seconds(note: &str) -> f64 {
    let after = note
        .split_once("built by this run: ")
        .unwrap_or_else(|| panic!("not a priming note: {note}"))
        .1;
    after
        .split_once("s to reach the state")
        .unwrap()
        .0
        .parse()
        .unwrap()
}

#[test]
fn login_start_scenarios_in_two_processes_share_one_priming_boot() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let before = sha256(&image);
    let dir = temp_dir();
    // Two processes at once on an empty cache: one boots, the other waits on the entry's lock.
    let a = start_run(dir.path(), "a", &["shell-checks", "shell-fresh-state"]);
    let b = start_run(dir.path(), "b", &["shell-fresh-state"]);
    let (run_a, transcripts_a) = finish_run(a);
    let (run_b, transcripts_b) = finish_run(b);
    for run in [&run_a, &run_b] {
        assert!(
            run.stdout.contains("PASS  shell-fresh-state  "),
            "{}",
            run.explain()
        );
    }
    assert!(
        run_a.stdout.contains("PASS  shell-checks  "),
        "{}",
        run_a.explain()
    );

    let primings: Vec<PathBuf> = [&transcripts_a, &transcripts_b]
        .iter()
        .flat_map(|d| priming_logs(d))
        .collect();
    assert_eq!(primings.len(), 1, "expected one priming boot, found {primings:?}");

    let notes = [
        (
            snapshot_note(&transcripts_a, "shell-checks"),
            &transcripts_a,
            "shell-checks",
        ),
        (
            snapshot_note(&transcripts_a, "shell-fresh-state"),
            &transcripts_a,
            "shell-fresh-state",
        ),
        (
            snapshot_note(&transcripts_b, "shell-fresh-state"),
            &transcripts_b,
            "shell-fresh-state",
        ),
    ];
    let built: Vec<&String> = notes
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.contains("built by this run"))
        .collect();
    assert_eq!(built.len(), 1, "exactly one scenario primes: {notes:#?}");
    let cold = priming_seconds(built[0]);
    for (note, transcripts, scenario) in &notes {
        if note.contains("reused from the cache") {
            let restore = restore_seconds(transcripts, scenario);
            assert!(
                restore * 4.0 < cold,
                "{scenario}: {restore:.2}s to a restored shell against {cold:.1}s cold"
            );
        }
    }
    // shell-fresh-state passing in every run shows each restore starts from the saved disk,
    // not from what an earlier scenario wrote.
    assert_eq!(sha256(&image), before, "the image changed");
    assert_no_qemu_under(dir.path());
}

#[test]
fn a_corrupt_or_stale_cache_entry_is_rebuilt_not_trusted() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let before = sha256(&image);
    let dir = temp_dir();
    let entry = build_one_entry(dir.path());
    let disk0 = entry.join("disk0.qcow2");

    // Corrupt: the qcow2 header's magic is gone, so `qemu-img check` fails.
    let mut bytes = std::fs::read(&disk0).unwrap();
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&disk0, bytes).unwrap();
    let (second, transcripts) = finish_run(start_run(dir.path(), "second", &["shell-fresh-state"]));
    assert!(
        snapshot_note(&transcripts, "shell-fresh-state").contains("built by this run"),
        "corrupt entry was used:\n{}",
        second.explain()
    );

    // Stale: sound disks without the saved state.
    std::fs::remove_file(entry.join("login.state")).unwrap();
    let (third, transcripts) = finish_run(start_run(dir.path(), "third", &["shell-fresh-state"]));
    assert!(
        snapshot_note(&transcripts, "shell-fresh-state").contains("built by this run"),
        "entry without its saved state was used:\n{}",
        third.explain()
    );

    // And the rebuilt entry is then reused.
    let (fourth, transcripts) = finish_run(start_run(dir.path(), "fourth", &["shell-fresh-state"]));
    assert!(
        snapshot_note(&transcripts, "shell-fresh-state").contains("reused from the cache"),
        "{}",
        fourth.explain()
    );
    assert_eq!(sha256(&image), before, "the image changed");
    assert_no_qemu_under(dir.path());
}

#[test]
fn one_changed_byte_of_saved_ram_is_caught_by_the_seal_and_the_entry_rebuilt_not_restored() {
    let dir = temp_dir();
    let state = build_one_entry(dir.path()).join("login.state");
    // The state file has each RAM page the guest used at the page's own offset, holes between.
    // One bit of the first page after the file's middle flips: QEMU would load it.
    // Read and written in place: the file is as large as the guest's RAM.
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&state)
        .unwrap();
    let mut at = file.metadata().unwrap().len() / 2;
    let mut chunk = vec![0u8; 1 << 20];
    let page = loop {
        let n = file.read_at(&mut chunk, at).unwrap();
        assert!(n > 0, "no RAM page after the middle of {}", state.display());
        if let Some(i) = chunk[..n].iter().position(|&b| b != 0) {
            break at + i as u64;
        }
        at += n as u64;
    };
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, page).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], page).unwrap();

    let (second, transcripts) = finish_run(start_run(dir.path(), "second", &["shell-fresh-state"]));
    let note = snapshot_note(&transcripts, "shell-fresh-state");
    assert!(
        note.contains("built by this run")
            && note.contains(&format!(
                "the entry in the cache was refused: {} does not match the digest recorded when the entry was built",
                state.display()
            )),
        "{note}\n{}",
        second.explain()
    );
    assert_no_qemu_under(dir.path());
}

#[test]
fn an_entry_qemu_cannot_restore_is_discarded_and_rebuilt() {
    use r2s_harness::runner::RunContext;
    use r2s_harness::scenario::LoginRecipe;
    use r2s_harness::snapshot::{CacheKey, SnapshotCache, SnapshotSource, StateRecipe};
    use r2s_harness::suite::StartSnapshots;
    use r2s_harness::targets::qemu::QemuConfig;

    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let cache = SnapshotCache::new(dir.path().join("cache"));
    let adapted = r2s_harness::adapt::adapt(&image)
        .unwrap()
        .expect("the fixture is adapted");
    let recipe = LoginRecipe::default_root();
    let context = RunContext {
        fallback_password: Some(r2s_images::ROOT_PASSWORD.to_owned()),
        ..RunContext::default()
    };
    // An entry saved from a machine of 4 CPUs, filed under the key of the default one of 2:
    // every check passes, but QEMU refuses to load the state of CPUs it does not have.
    let small = QemuConfig {
        smp: 4,
        ..QemuConfig::default()
    };
    let default = QemuConfig::default();
    let source = |qemu| SnapshotSource {
        qemu,
        image: &image,
        unpacked_from: None,
        shim: adapted.shim.as_ref(),
        state: StateRecipe::Login(&recipe),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (small_key, key) = runtime.block_on(async {
        let checkout = StartSnapshots::new(cache.clone())
            .checkout(&source(&small), &context, &dir.path().join("prime"), LIMIT)
            .await
            .expect("a 4-CPU entry")
            .ready()
            .expect("the priming boot reaches a shell");
        (
            checkout.key.clone(),
            CacheKey::of(&source(&default), &cache.digests()).await.unwrap(),
        )
    });
    assert_ne!(small_key, key);
    std::fs::rename(cache.entry_dir(&small_key), cache.entry_dir(&key)).unwrap();
    let info_path = cache.entry_dir(&key).join("entry.json");
    let mut info: serde_json::Value = serde_json::from_slice(&std::fs::read(&info_path).unwrap()).unwrap();
    info["key"] = key.0.clone().into();
    std::fs::write(&info_path, info.to_string()).unwrap();

    let (run, transcripts) = finish_run(start_run(dir.path(), "run", &["shell-fresh-state"]));
    let log = std::fs::read_to_string(transcripts.join("shell-fresh-state.log")).unwrap();
    assert!(
        log.contains("an earlier restore from build") && log.contains("built by this run"),
        "{}\n{log}",
        run.explain()
    );
    assert_no_qemu_under(dir.path());
}
