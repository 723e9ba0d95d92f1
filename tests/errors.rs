//! Bad inputs are refused before anything boots: exit code 2 and a message that says what and
//! where.

use std::ffi::OsStr;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_malformed_scenario_is_a_usage_error_naming_file_line_and_column() {
    let dir = temp_dir();
    let scenario = dir.path().join("bad.toml");
    std::fs::write(
        &scenario,
        "name = \"bad\"\n[[steps]]\nexpect_regex = \"(unclosed\"\n",
    )
    .unwrap();
    let image = dir.path().join("unused.img");
    std::fs::write(&image, vec![0u8; 4096]).unwrap();
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            scenario.as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!("{}:3:", scenario.display())),
        "{}",
        run.explain()
    );
}

#[test]
fn a_garbage_image_is_an_image_error() {
    let dir = temp_dir();
    let image = dir.path().join("garbage.img");
    write_garbage_image(&image);
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            scenario("boot-to-login").as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&image.display().to_string()),
        "{}",
        run.explain()
    );
}

#[test]
fn a_truncated_fixture_image_is_an_image_error() {
    let source = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let image = dir.path().join("truncated.img");
    // The partition table survives but the partitions it describes do not.
    write_truncated_copy(&source, 4 << 20, &image);
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            scenario("boot-to-login").as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(run.stderr.contains("truncated"), "{}", run.explain());
}

#[test]
fn a_missing_image_is_an_image_error() {
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            OsStr::new("/nonexistent/r2s.img"),
            scenario("boot-to-login").as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(run.stderr.contains("/nonexistent/r2s.img"), "{}", run.explain());
}

#[test]
fn an_unset_password_variable_is_a_config_error_before_anything_boots() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let started = std::time::Instant::now();
    let (child, command) = spawn_harness_env_without(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            scenario("login-and-run").as_os_str(),
        ],
        &[],
        &["R2S_PASSWORD"],
    );
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains("environment variable R2S_PASSWORD is not set")
            && run.stderr.contains("login-and-run.toml"),
        "{}",
        run.explain()
    );
    // Refused before booting: no transcript of a boot was started.
    assert!(
        !dir.path().join("login-and-run.raw").exists(),
        "{}",
        run.explain()
    );
}

#[test]
fn qemu_that_cannot_start_is_an_error_with_a_transcript_and_a_junit_report() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let junit = dir.path().join("junit.xml");
    let missing = dir.path().join("no-such-qemu");
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--qemu"),
            missing.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            OsStr::new("--junit"),
            junit.as_os_str(),
            scenario("uboot-shell").as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    let said = format!("cannot run {}", missing.display());
    assert!(run.stderr.contains(&said), "{}", run.explain());
    let log = std::fs::read_to_string(dir.path().join("uboot-shell.log")).unwrap();
    assert!(log.contains("-- ERROR: ") && log.contains(&said), "{log}");
    assert!(junit.exists(), "{}", run.explain());
}
