//! The harness in the conditions of a Nix build sandbox: no network (`unshare -n`, loopback
//! up), an unprivileged user (`setpriv`), `HOME=/homeless-shelter` (which cannot be created),
//! the image read-only in a read-only directory. It runs every scenario, its cache per run under
//! `TMPDIR` (said once), skips what needs root (the LAN) saying why, and leaves nothing behind
//! but its transcripts. It is the harness as `cargo install` installs it, run by the build script
//! of flake.nix's `bootCheck` (evaluated from the flake), as a Nix check runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use r2s_tests::flake::boot_check_script;
use r2s_tests::install::installed_harness;
use r2s_tests::*;

/// The unprivileged user and group (nobody, nogroup).
const NOBODY: &str = "65534";

const LIMIT: Duration = Duration::from_secs(600);

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn runs_unprivileged_offline_with_a_homeless_home_and_a_read_only_image() {
    let dir = temp_dir();
    chmod(dir.path(), 0o755);
    // The image, read-only in a read-only directory.
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let image = hostile::copy_of(r2s_images::DEFAULT_FIXTURE, &images);
    chmod(&image, 0o444);
    chmod(&images, 0o555);
    // The build's own temporary directory, the only place it may write.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let chowned = Command::new("chown")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(chowned.success());
    // The derivation's $out, and its build script from flake.nix's bootCheck.
    let out = tmp.join("out");
    let scenarios = [
        scenario("boot-to-login"),
        scenario("shell-checks"),
        repo_root().join("scenarios/network/lan-dhcp.toml"),
    ];
    let script = boot_check_script(&image, &scenarios);
    // The harness as `cargo install` installs it, on PATH as the derivation's
    // nativeBuildInputs put it.
    let installed = installed_harness();
    let path = format!(
        "{}:{}",
        installed.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut command = Command::new("unshare");
    command
        .args(["-n", "sh", "-c", r#"ip link set lo up && exec "$@""#, "sandbox"])
        .args([
            "setpriv",
            "--reuid",
            NOBODY,
            "--regid",
            NOBODY,
            "--clear-groups",
            "--",
        ])
        .args(["env", "-i"])
        .arg(format!("PATH={path}"))
        .arg("HOME=/homeless-shelter")
        .arg(format!("TMPDIR={}", tmp.display()))
        .arg(format!("R2S_PASSWORD={}", r2s_images::ROOT_PASSWORD))
        .arg(format!("out={}", out.display()))
        // As stdenv runs a build script.
        .args(["bash", "-euo", "pipefail", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let shown = format!("{command:?}");
    let started = Instant::now();
    let run = finish(command.spawn().unwrap(), shown, started, LIMIT);

    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    assert!(run.stdout.contains("PASS  shell-checks  "), "{}", run.explain());
    // The LAN's network namespace needs root: its scenario is skipped, saying so, not failed.
    assert!(
        run.stdout
            .contains("SKIP  lan-dhcp  (has `lan` steps, which cannot run here: the LAN needs a tap device"),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("2 passed, 0 failed, 1 skipped"),
        "{}",
        run.explain()
    );
    let said = "cannot use the cache /homeless-shelter/.cache/r2s-harness: ";
    assert_eq!(
        run.stderr.matches(said).count(),
        1,
        "said once: {}",
        run.explain()
    );
    assert!(
        run.stderr.contains("using a per-run cache in "),
        "{}",
        run.explain()
    );
    // What a Nix check keeps: the transcripts, JUnit and the HTML page.
    for kept in ["transcripts/boot-to-login.log", "junit.xml", "report.html"] {
        assert!(out.join(kept).is_file(), "{kept}: {}", run.explain());
    }
    // Nothing left but $out: the per-run cache, QEMU's and the shim's scratch directories are
    // gone.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["out"], "{}", run.explain());
}

/// `harness ARGS` with a `HOME` that cannot be created (under a regular file: as
/// `/homeless-shelter` is to a build user), no other cache variable, `TMPDIR` in `dir`, and
/// nothing on stdin; checks that it said so once, unpacked compressed `image` into a per-run
/// cache under `TMPDIR` and left nothing there.
fn homeless(dir: &Path, image: &Path, args: &[&std::ffi::OsStr]) -> Finished {
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let file = dir.join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let home = file.join("home");
    let started = Instant::now();
    let (child, command) = spawn_harness_env_without(
        args,
        &[("HOME", home.as_os_str()), ("TMPDIR", tmp.as_os_str())],
        &["R2S_CACHE_DIR", "XDG_CACHE_HOME"],
    );
    let run = finish(child, command, started, Duration::from_secs(240));
    let said = format!(
        "cannot use the cache {}: ",
        home.join(".cache/r2s-harness").display()
    );
    assert_eq!(
        run.stderr.matches(&said).count(),
        1,
        "said once: {}",
        run.explain()
    );
    assert_eq!(
        run.stderr
            .matches(&format!("; using a per-run cache in {}", tmp.display()))
            .count(),
        1,
        "{}",
        run.explain()
    );
    // The per-run cache, with the disk unpacked into it, is gone with the run.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "{} is zstd-compressed: unpacked to {}",
            image.display(),
            tmp.display()
        )),
        "{}",
        run.explain()
    );
    run
}

#[test]
fn inspect_of_a_compressed_image_without_a_usable_cache_unpacks_into_a_per_run_one() {
    let dir = temp_dir();
    let image = compressed_fixture("zstd", "zst", dir.path());
    let args = [std::ffi::OsStr::new("inspect"), image.as_os_str()];
    let run = homeless(dir.path(), &image, &args);
    // The image was read: the fixture fails an R2S check or two (exit 1), not exit 2.
    assert_eq!(run.code(), Some(1), "{}", run.explain());
}

#[test]
fn console_of_a_compressed_image_without_a_usable_cache_unpacks_and_adapts_into_a_per_run_one() {
    let dir = temp_dir();
    let image = compressed_fixture("zstd", "zst", dir.path());
    let transcripts = dir.path().join("transcripts");
    // Nothing on stdin: the console starts QEMU, then leaves at the end of input.
    let args = [
        std::ffi::OsStr::new("console"),
        std::ffi::OsStr::new("--image"),
        image.as_os_str(),
        std::ffi::OsStr::new("--transcripts"),
        transcripts.as_os_str(),
    ];
    let run = homeless(dir.path(), &image, &args);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stderr.contains("harness console: end of input"),
        "{}",
        run.explain()
    );
}

#[test]
fn flash_of_a_compressed_image_without_a_usable_cache_unpacks_into_a_per_run_one() {
    let dir = temp_dir();
    let image = compressed_fixture("zstd", "zst", dir.path());
    let card = dir.path().join("card.img");
    let args = [
        std::ffi::OsStr::new("flash"),
        image.as_os_str(),
        card.as_os_str(),
        std::ffi::OsStr::new("--no-boot"),
        std::ffi::OsStr::new("--yes"),
    ];
    let run = homeless(dir.path(), &image, &args);
    // Read and inspected (the fixture fails an R2S check: exit 1, nothing written), not exit 2.
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(!card.exists(), "{}", run.explain());
}
