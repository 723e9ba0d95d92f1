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

/// A scenario whose login needs a password variable that is not set cannot run: it is an
/// error in every report, never booted for, and the other scenarios still run.
#[test]
fn an_unset_password_variable_is_an_error_result_and_the_other_scenarios_still_run() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let dir = temp_dir();
    let junit = dir.path().join("junit.xml");
    let started = std::time::Instant::now();
    let (child, command) = spawn_harness_env_without(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            dir.path().as_os_str(),
            OsStr::new("--junit"),
            junit.as_os_str(),
            scenario("login-and-run").as_os_str(),
            scenario("uboot-shell").as_os_str(),
        ],
        &[],
        &["R2S_PASSWORD"],
    );
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stdout
            .contains("ERROR  login-and-run  (could not run: login root (")
            && run.stdout.contains("login-and-run.toml")
            && run
                .stdout
                .contains("environment variable R2S_PASSWORD is not set"),
        "{}",
        run.explain()
    );
    assert!(run.stdout.contains("PASS  uboot-shell  "), "{}", run.explain());
    assert!(
        run.stdout.contains("1 passed, 0 failed, 1 error"),
        "{}",
        run.explain()
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"0\" errors=\"1\" skipped=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("<error message=\"login root ("), "{xml}");
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("1 passed, 0 failed, 1 error"), "the page's title");
    assert!(page.contains("\"verdict\":\"error\""), "the scenario's data");
    // Not booted for: no transcript of a boot was started.
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
    assert!(
        run.stdout.contains("ERROR  uboot-shell  (could not run: ") && run.stdout.contains(&said),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("0 passed, 0 failed, 1 error"),
        "{}",
        run.explain()
    );
    let log = std::fs::read_to_string(dir.path().join("uboot-shell.log")).unwrap();
    assert!(log.contains("-- ERROR: ") && log.contains(&said), "{log}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("errors=\"1\"") && xml.contains("<error message=\""),
        "{xml}"
    );
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("0 passed, 0 failed, 1 error"), "the page's title");
    assert!(page.contains(&said), "the page says why");
}

#[test]
fn a_broken_labgrid_environment_file_is_a_usage_error_naming_the_file_and_key() {
    let dir = temp_dir();
    let env_file = dir.path().join("env.yaml");
    std::fs::write(
        &env_file,
        "targets:\n  main:\n    drivers:\n      ShellDriver:\n        username: 'two words'\n        password: hunter2\n",
    )
    .unwrap();
    let image = dir.path().join("unused.img");
    std::fs::write(&image, vec![0u8; 4096]).unwrap();
    let boot = scenario("boot-to-login");
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--lg-env"),
            env_file.as_os_str(),
            boot.as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: labgrid environment {}: targets.main.drivers.ShellDriver.username: holds whitespace or a control character; a user name is one word",
            env_file.display()
        )),
        "{}",
        run.explain()
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.explain());
}

/// What a run that ended with exit 2 reported: its output, its JUnit file and its HTML page.
struct Reported {
    run: Finished,
    xml: String,
    page: String,
}

impl Reported {
    /// Asserts that the run's stdout (the text report) holds each of `needles`.
    fn says(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.run.stdout.contains(needle),
                "{needle:?}: {}",
                self.run.explain()
            );
        }
    }
}

/// Runs `harness run --image IMAGE` with `args`, its transcripts, JUnit file and HTML page in
/// `dir`, over a green JUnit file an earlier run left there; asserts exit 2.
fn run_reported(dir: &std::path::Path, image: &std::path::Path, args: &[&OsStr]) -> Reported {
    let junit = dir.join("junit.xml");
    // What the run must replace: a green report must never outlive a run that is not.
    std::fs::write(&junit, "<testsuites tests=\"1\" failures=\"0\" errors=\"0\"/>\n").unwrap();
    let mut all = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
        OsStr::new("--junit"),
        junit.as_os_str(),
    ];
    all.extend_from_slice(args);
    let run = run_harness(&all, Duration::from_secs(240));
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    Reported {
        xml: std::fs::read_to_string(&junit).unwrap(),
        page: std::fs::read_to_string(dir.join("report.html")).unwrap(),
        run,
    }
}

/// A bad file among good ones is an error case named after the file, saying what and where;
/// the good scenarios still run, and the run ends with exit 2.
#[test]
fn a_bad_scenario_file_is_an_error_case_named_after_it_and_the_good_ones_still_run() {
    let dir = temp_dir();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[[steps]]\nexpect_regex = \"(unclosed\"\n").unwrap();
    let good = scenario("uboot-shell");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let reported = run_reported(dir.path(), &image, &[bad.as_os_str(), good.as_os_str()]);
    let said = format!("{}:3:16: invalid regex: unclosed group", bad.display());
    reported.says(&[
        &format!("ERROR  bad.toml  (could not run: {said}"),
        "PASS  uboot-shell  ",
        "1 passed, 0 failed, 1 error",
    ]);
    assert!(
        reported.run.stderr.contains(&said),
        "said at once: {}",
        reported.run.explain()
    );
    let Reported { xml, page, .. } = reported;
    assert!(
        xml.contains("tests=\"2\" failures=\"0\" errors=\"1\" skipped=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"bad.toml\"") && xml.contains(&format!("<error message=\"{said}")),
        "{xml}"
    );
    assert!(page.contains("1 passed, 0 failed, 1 error"), "the page's title");
    assert!(page.contains("\"name\":\"bad.toml\""), "the file's case");
}

/// An image that cannot be unpacked into the cache given (`--cache-dir` that cannot be
/// written) leaves nothing to boot: every scenario is an error in the text, JUnit and HTML
/// reports, and an earlier green JUnit file is replaced.
#[test]
fn an_unusable_cache_dir_for_a_compressed_image_makes_every_scenario_an_error_in_every_report() {
    let dir = temp_dir();
    let image = compressed_fixture("zstd", "zst", dir.path());
    let (uboot, login) = (scenario("uboot-shell"), scenario("boot-to-login"));
    let reported = run_reported(
        dir.path(),
        &image,
        &[
            OsStr::new("--cache-dir"),
            OsStr::new("/proc/none"),
            uboot.as_os_str(),
            login.as_os_str(),
        ],
    );
    assert!(
        reported.run.stderr.contains("/proc/none"),
        "{}",
        reported.run.explain()
    );
    reported.says(&[
        "ERROR  uboot-shell  (could not run: ",
        "ERROR  boot-to-login  (could not run: ",
        "0 passed, 0 failed, 2 errors",
    ]);
    let Reported { xml, page, .. } = reported;
    assert!(
        xml.contains("tests=\"2\" failures=\"0\" errors=\"2\" skipped=\"0\"") && xml.contains("/proc/none"),
        "{xml}"
    );
    assert!(page.contains("0 passed, 0 failed, 2 errors"), "the page's title");
    assert!(page.contains("\"verdict\":\"error\""), "the scenarios' data");
}

/// A board profile that does not exist stops the run before anything boots; its scenarios are
/// errors naming the profile in every report.
#[test]
fn an_unknown_board_profile_makes_every_scenario_an_error_in_every_report() {
    let dir = temp_dir();
    let profile = dir.path().join("missing-board.toml");
    let uboot = scenario("uboot-shell");
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let reported = run_reported(
        dir.path(),
        &image,
        &[OsStr::new("--board"), profile.as_os_str(), uboot.as_os_str()],
    );
    let named = profile.display().to_string();
    reported.says(&[
        "ERROR  uboot-shell  (could not run: ",
        &named,
        "0 passed, 0 failed, 1 error",
    ]);
    let Reported { xml, page, .. } = reported;
    assert!(
        xml.contains("tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\"") && xml.contains(&named),
        "{xml}"
    );
    assert!(page.contains("0 passed, 0 failed, 1 error"), "the page's title");
    assert!(page.contains(&named), "the profile named on the page");
}

/// An image that is no disk image stops the run before anything boots: an image error, on
/// stderr naming the file and in every report as an error of every scenario.
#[test]
fn a_garbage_image_makes_every_scenario_an_error_in_every_report() {
    let dir = temp_dir();
    let image = dir.path().join("garbage.img");
    write_garbage_image(&image);
    let login = scenario("boot-to-login");
    let reported = run_reported(dir.path(), &image, &[login.as_os_str()]);
    assert!(
        reported.run.stderr.contains(&image.display().to_string()),
        "{}",
        reported.run.explain()
    );
    reported.says(&[
        "ERROR  boot-to-login  (could not run: ",
        "0 passed, 0 failed, 1 error",
    ]);
    let Reported { xml, page, .. } = reported;
    assert!(
        xml.contains("errors=\"1\"") && xml.contains("garbage.img"),
        "{xml}"
    );
    assert!(page.contains("0 passed, 0 failed, 1 error"), "the page's title");
}
