//! End-to-end: the runner's systemd steps and real logins on the systemd fixture (Debian
//! bookworm: systemd, agetty, login/PAM, bash), in real QEMU through real U-Boot.
//!
//! The first run on a machine builds the fixture (tests/systemd.rs says how long).

use std::time::Duration;

use r2s_tests::*;

/// Building the fixture from nothing (26 minutes on a loaded two-core machine) plus a boot.
const LIMIT: Duration = Duration::from_secs(45 * 60);

/// Runs the scenario `body` named `name` on the systemd fixture; returns the run and the
/// directory holding its transcripts.
fn run_on_systemd(name: &str, body: &str) -> (Finished, tempfile::TempDir) {
    let image = fixture("debian-systemd");
    let dir = temp_dir();
    let scenario = dir.path().join(format!("{name}.toml"));
    std::fs::write(&scenario, format!("name = \"{name}\"\ntimeout = \"12m\"\n{body}")).unwrap();
    let run = run_scenario_file(&image, &scenario, dir.path(), LIMIT);
    (run, dir)
}

/// Boots to the getty, matches its prompt (so the login must ask for a fresh one) and logs in.
const LOGIN: &str = r#"
[[steps]]
expect = "ivy login:"
timeout = "9m"
[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "2m"
"#;

#[test]
fn wait_for_unit_sees_ssh_come_up_after_a_real_login() {
    let body = format!(
        r#"{LOGIN}
[[steps]]
wait_for_unit = "ssh.service"
timeout = "3m"
[[steps]]
run = "systemctl is-system-running"
output = "^(running|degraded)$"
until = "2m"
timeout = "3m"
[[steps]]
run = """for unit in one two; do
  echo "unit $unit"
done"""
output = "\\Aunit one\nunit two\\z"
"#
    );
    let (run, dir) = run_on_systemd("systemd-steps", &body);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("PASS  systemd-steps"))
        .unwrap_or_else(|| panic!("{}", run.explain()));
    for stage in ["kernel", "initramfs", "systemd", "login", "body"] {
        assert!(
            line.contains(&format!("{stage} ")),
            "stage {stage} missing from {line:?}"
        );
    }
    let log = std::fs::read_to_string(dir.path().join("systemd-steps.log")).unwrap();
    assert!(
        !log.contains(r2s_images::ROOT_PASSWORD),
        "the password reached the transcript"
    );
}

#[test]
fn wait_for_unit_fails_at_once_on_a_unit_made_to_fail_showing_its_status() {
    let body = format!(
        r#"{LOGIN}
[[steps]]
run = "systemd-run --unit=r2s-made-to-fail /bin/false; sleep 2"
[[steps]]
wait_for_unit = "r2s-made-to-fail.service"
timeout = "2m"
"#
    );
    let (run, _dir) = run_on_systemd("unit-made-to-fail", &body);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "reason: unit r2s-made-to-fail.service failed; systemctl status r2s-made-to-fail.service:"
        ),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("r2s-made-to-fail.service"),
        "{}",
        run.explain()
    );
}
