//! The harness installed with `cargo install --path harness` (and with `cargo install --git`
//! from a clone of `HEAD`, as README and the CI recipes install it), run from a directory
//! outside the checkout, as a user runs it: the shipped scenarios and board profiles come from
//! the binary, and without `--image` it says what to give instead of building a fixture.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use r2s_tests::install::{head_commit, installed_from_git, installed_harness};
use r2s_tests::*;

/// The health check and eleven shipped scenarios on the busybox fixture, under load.
const LIMIT: Duration = Duration::from_secs(900);

/// The installed harness with `args`, in `cwd`, as a user's shell starts it: no fixture
/// directory, the fixture's password in the variable the scenarios name.
fn run_installed(cwd: &Path, args: &[&OsStr], env: &[(&str, &OsStr)], limit: Duration) -> Finished {
    run_bin(&installed_harness(), cwd, args, env, limit)
}

/// [`run_installed`] with the harness `bin`.
fn run_bin(bin: &Path, cwd: &Path, args: &[&OsStr], env: &[(&str, &OsStr)], limit: Duration) -> Finished {
    let mut command = Command::new(bin);
    command
        .current_dir(cwd)
        .args(args)
        .env_remove("R2S_FIXTURE_DIR")
        .env("R2S_PASSWORD", r2s_images::ROOT_PASSWORD)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{command:?}");
    let started = Instant::now();
    finish(command.spawn().unwrap(), shown, started, limit)
}

/// The scenario files of the repository's `scenarios/`, relative to it, sorted.
fn repository_scenarios(dir: &Path, under: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            repository_scenarios(&path, under, found);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            found.push(path.strip_prefix(under).unwrap().to_owned());
        }
    }
    found.sort();
}

#[test]
fn the_installed_harness_runs_the_shipped_scenarios_outside_the_checkout() {
    let dir = temp_dir();
    assert!(!dir.path().starts_with(repo_root()), "{}", dir.path().display());
    let image = hostile::copy_of(r2s_images::DEFAULT_FIXTURE, dir.path());
    let image_name = image.file_name().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let args = [
        OsStr::new("run"),
        OsStr::new("--image"),
        image_name,
        OsStr::new("--transcripts"),
        OsStr::new("out"),
    ];
    let run = run_installed(dir.path(), &args, &[("TMPDIR", tmp.as_os_str())], LIMIT);

    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let mut top_level = Vec::new();
    let shipped = repo_root().join("scenarios");
    repository_scenarios(&shipped, &shipped, &mut top_level);
    top_level.retain(|path| path.components().count() == 1);
    for file in &top_level {
        let name = file.file_stem().unwrap().to_string_lossy();
        assert!(
            run.stdout.contains(&format!("PASS  {name}  ")),
            "{name}: {}",
            run.explain()
        );
        // The copy the run read, beside the transcripts.
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/scenarios").join(file)).unwrap(),
            std::fs::read_to_string(shipped.join(file)).unwrap()
        );
    }
    assert!(
        run.stdout
            .contains(&format!("{} passed, 0 failed", top_level.len() + 1)),
        "the health check and {} shipped scenarios: {}",
        top_level.len(),
        run.explain()
    );
    assert_no_qemu_left(&tmp, &run);
}

#[test]
fn the_installed_harness_exports_the_shipped_scenarios_and_board_profiles() {
    exports_the_shipped_scenarios_and_board_profiles(&installed_harness());
}

#[test]
fn the_harness_installed_from_git_exports_the_shipped_scenarios_and_board_profiles() {
    exports_the_shipped_scenarios_and_board_profiles(&installed_from_git().0);
}

/// `cargo install --git file://<clone>` installs the commit `HEAD` names (`--offline`: from
/// cargo's own fetch of the clone, and the registry's cache).
#[test]
fn cargo_install_from_git_installs_the_head_commit_offline() {
    let (bin, said) = installed_from_git();
    let head = head_commit();
    assert!(
        said.lines().any(|line| {
            line.trim_start().starts_with("Installing r2s-harness v")
                && line.ends_with(&format!("#{})", &head[..8]))
        }),
        "HEAD is {head}; cargo said:\n{said}"
    );
    let version = run_bin(
        &bin,
        &repo_root(),
        &[OsStr::new("--version")],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(version.code(), Some(0), "{}", version.explain());
    assert!(version.stdout.starts_with("harness "), "{}", version.explain());
}

fn exports_the_shipped_scenarios_and_board_profiles(bin: &Path) {
    let dir = temp_dir();
    let args = ["scenarios", "export", "exported"].map(OsStr::new);
    let run = run_bin(bin, dir.path(), &args, &[], Duration::from_secs(60));

    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let shipped = repo_root().join("scenarios");
    let exported = dir.path().join("exported");
    let boards = repo_root().join("harness/boards");
    let (mut expected, mut written, mut profiles) = (Vec::new(), Vec::new(), Vec::new());
    repository_scenarios(&shipped, &shipped, &mut expected);
    repository_scenarios(&boards, &boards, &mut profiles);
    repository_scenarios(&exported, &exported, &mut written);
    let sources: Vec<(PathBuf, PathBuf)> = expected
        .iter()
        .map(|file| (file.clone(), shipped.join(file)))
        .chain(
            profiles
                .iter()
                .map(|file| (Path::new("boards").join(file), boards.join(file))),
        )
        .collect();
    let mut names: Vec<PathBuf> = sources.iter().map(|(name, _)| name.clone()).collect();
    names.sort();
    assert_eq!(written, names);
    for needed in [
        "network/lan-dhcp.toml",
        "boards/nanopi-r2s.toml",
        "boards/qemu-virt.toml",
    ] {
        assert!(written.contains(&PathBuf::from(needed)), "{needed}: {written:?}");
    }
    for (name, source) in &sources {
        assert_eq!(
            std::fs::read(exported.join(name)).unwrap(),
            std::fs::read(source).unwrap(),
            "{}",
            name.display()
        );
    }
    let listed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(listed.len(), sources.len(), "{}", run.explain());
}

#[test]
fn the_installed_harness_without_an_image_says_to_give_one() {
    says_to_give_an_image(&installed_harness());
}

#[test]
fn the_harness_installed_from_git_without_an_image_says_to_give_one() {
    says_to_give_an_image(&installed_from_git().0);
}

fn says_to_give_an_image(bin: &Path) {
    let dir = temp_dir();
    let args = ["run", "--transcripts", "out"].map(OsStr::new);
    let run = run_bin(bin, dir.path(), &args, &[], Duration::from_secs(60));

    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert_eq!(
        run.stderr,
        "harness: no --image given: name the image to test with --image IMG (a raw .img, or the .img.zst \
         `nix build` leaves in result/sd-image/); without one, the harness builds a fixture image of its own, \
         which it does only inside its source checkout\n",
        "{}",
        run.explain()
    );
}

#[test]
fn the_installed_harness_takes_its_firmware_from_r2s_firmware() {
    let dir = temp_dir();
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let missing = dir.path().join("nowhere/u-boot.bin");
    let boot_to_login = scenario("boot-to-login");
    let args = [
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        OsStr::new("out"),
        boot_to_login.as_os_str(),
    ];
    let run = run_installed(
        dir.path(),
        &args,
        &[
            ("R2S_FIRMWARE", missing.as_os_str()),
            ("TMPDIR", dir.path().as_os_str()),
        ],
        Duration::from_secs(300),
    );

    assert_ne!(run.code(), Some(0), "{}", run.explain());
    let said = format!(
        "firmware {} not found (install U-Boot's qemu_arm64 build: Debian's u-boot-qemu or nixpkgs' ubootQemuAarch64; or name it with --firmware or R2S_FIRMWARE)",
        missing.display()
    );
    assert!(
        run.stdout.contains(&said) || run.stderr.contains(&said),
        "{}",
        run.explain()
    );
}
