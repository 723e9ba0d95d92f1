//! End-to-end: scenarios' network reach on the busybox fixture in real QEMU: NICs and host
//! forwards, host steps, port checks, files across the console, diagnostics on failure, link
//! control and the LAN namespace. The fixture's userland brings no network up (no NIC driver,
//! no DHCP client), which is what the checks that must fail without a listener need.

use std::path::Path;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// The header of a `start = "login"` scenario named `name`.
fn header(name: &str) -> String {
    format!(
        "name = \"{name}\"\nstart = \"login\"\nlogin = {{ user = \"root\", password_env = \"R2S_PASSWORD\" }}\ntimeout = \"4m\"\n"
    )
}

/// Writes scenario `name` (its `body` after the header) into `dir` and returns its path.
fn write_scenario(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{}{body}", header(name))).unwrap();
    path
}

/// Runs the scenarios in `scenarios` (a file or a directory) on the busybox fixture, with
/// transcripts in `dir`.
fn run(scenarios: &Path, dir: &Path) -> Finished {
    run_scenario_file(&fixture(r2s_images::DEFAULT_FIXTURE), scenarios, dir, LIMIT)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The host port a run's transcript says the forward got (`network: PORT_TCP_22=NNNN`).
fn noted_port(log: &str) -> u16 {
    log.lines()
        .find_map(|l| l.split("PORT_TCP_22=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no forward noted in\n{log}"))
}

#[test]
fn parallel_scenarios_from_one_snapshot_get_forwards_of_their_own() {
    let dir = temp_dir();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    for name in ["fwd-a", "fwd-b"] {
        let out = dir.path().join(format!("{name}.port"));
        // The host side of the forward listens: a connection to it is accepted.
        let body = format!(
            "[network]\nforward = [\"tcp:22\"]\n[[steps]]\nhost = \"echo ${{PORT_TCP_22}} > {}\"\n\
             [[steps]]\nhost = [\"python3\", \"-c\", \"import socket; socket.create_connection(('${{TARGET_ADDRESS}}', ${{PORT_TCP_22}}), 5)\"]\n",
            out.display()
        );
        write_scenario(&scenarios, name, &body);
    }
    let run = run(&scenarios, dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("2 passed, 0 failed"), "{}", run.explain());
    let ports: Vec<u16> = ["fwd-a", "fwd-b"]
        .iter()
        .map(|name| {
            let seen: u16 = read(&dir.path().join(format!("{name}.port")))
                .trim()
                .parse()
                .unwrap();
            assert_eq!(seen, noted_port(&read(&dir.path().join(format!("{name}.log")))));
            seen
        })
        .collect();
    assert_ne!(ports[0], ports[1], "two runs share a host port");
}

#[test]
fn host_port_open_fails_while_nothing_in_the_guest_answers() {
    // User-mode networking accepts the host's connection itself; the fixture's guest has no
    // NIC driver, so the guest never answers it.
    let dir = temp_dir();
    let scenario = write_scenario(
        dir.path(),
        "port-closed",
        "[network]\nforward = [\"tcp:22\"]\n[[steps]]\nhost_port_open = \"tcp:22\"\ntimeout = \"8s\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("expected: a listener behind tcp:22")
            && run
                .stdout
                .contains("the target did not take the connection within 3s"),
        "{}",
        run.explain()
    );
}

#[test]
fn wait_for_port_fails_naming_the_ports_that_do_listen() {
    let dir = temp_dir();
    let scenario = write_scenario(
        dir.path(),
        "no-listener",
        "[[steps]]\nwait_for_port = 22\ntimeout = \"6s\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout
            .contains("nothing listened on TCP port 22 before the step's time ran out; listening: []"),
        "{}",
        run.explain()
    );
}

#[test]
fn a_file_copied_in_and_out_again_arrives_unchanged_beside_the_transcript() {
    let dir = temp_dir();
    // Every byte value, and more than one base64 line.
    let bytes: Vec<u8> = (0..12_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(dir.path().join("payload.bin"), &bytes).unwrap();
    let scenario = write_scenario(
        dir.path(),
        "copies",
        "[[steps]]\ncopy_to = { from = \"payload.bin\", path = \"/tmp/payload\" }\ntimeout = \"2m\"\n\
         [[steps]]\ncopy_from = { path = \"/tmp/payload\" }\ntimeout = \"2m\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let copied = dir.path().join("copies.copy-2-tmp_payload");
    assert_eq!(std::fs::read(&copied).unwrap(), bytes);
}

#[test]
fn a_copy_larger_than_the_limit_is_refused() {
    let dir = temp_dir();
    // The busybox binary behind every applet is a few MiB.
    let scenario = write_scenario(
        dir.path(),
        "too-large",
        "[[steps]]\ncopy_from = { path = \"/run/current-system/sw/bin/sh\" }\ntimeout = \"2m\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains(
            "/run/current-system/sw/bin/sh is larger than the 524288 bytes a copy over the console may carry"
        ),
        "{}",
        run.explain()
    );
}

#[test]
fn diagnostics_run_after_a_failed_step_and_are_named_in_junit() {
    let dir = temp_dir();
    let scenario = write_scenario(
        dir.path(),
        "diagnosed",
        "on_failure = [\"echo diag-$((6 * 7))\"]\n[[steps]]\nrun = \"false\"\ntimeout = \"30s\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let saved = dir.path().join("diagnosed.on-failure-1.txt");
    assert_eq!(read(&saved), "$ echo diag-$((6 * 7))\ndiag-42\n(exit status 0)\n");
    assert!(read(&dir.path().join("junit.xml")).contains("diagnosed.on-failure-1.txt"));
    // The failure's own console lines, not the diagnostics', end the report.
    assert!(!run.stdout.contains("| diag-42"), "{}", run.explain());
}

#[test]
fn host_steps_check_status_and_output_and_retry_until_they_pass() {
    let dir = temp_dir();
    let marker = dir.path().join("tries");
    // Fails twice, then passes: `until` retries once a second.
    let body = format!(
        "[[steps]]\nhost = [\"sh\", \"-c\", \"echo hi; exit 3\"]\nstatus = 3\noutput = \"^hi$\"\n\
         [[steps]]\nhost = \"echo x >> {m}; test $(wc -l < {m}) -ge 3\"\nuntil = \"20s\"\ntimeout = \"30s\"\n",
        m = marker.display()
    );
    let scenario = write_scenario(dir.path(), "host-steps", &body);
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert_eq!(read(&marker).lines().count(), 3);
}

#[test]
fn a_host_step_past_its_timeout_fails_and_leaves_nothing_running() {
    let dir = temp_dir();
    let scenario = write_scenario(
        dir.path(),
        "host-slow",
        "[[steps]]\nhost = \"sleep 600 & sleep 600\"\ntimeout = \"2s\"\n",
    );
    let run = run(&scenario, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(
        run.stdout.contains("reason: timeout after 2"),
        "{}",
        run.explain()
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 600"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert_eq!(left, "", "host command processes left running");
}

#[test]
fn a_link_switches_with_nics_and_says_why_it_cannot_without() {
    let dir = temp_dir();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    write_scenario(
        &scenarios,
        "link-nics",
        "[network]\n[[steps]]\nlink = { nic = \"wan\", up = false }\n[[steps]]\nlink = { nic = \"lan\", up = true }\n",
    );
    write_scenario(
        &scenarios,
        "link-none",
        "[[steps]]\nlink = { nic = \"wan\", up = false }\n",
    );
    let run = run(&scenarios, dir.path());
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    assert!(run.stdout.contains("PASS  link-nics"), "{}", run.explain());
    assert!(
        run.stdout.contains("FAIL  link-none")
            && run
                .stdout
                .contains("this target's links cannot be switched (QEMU with a `[network]` table can)"),
        "{}",
        run.explain()
    );
    assert!(read(&dir.path().join("link-nics.log")).contains("-- wan link set down"));
}

#[test]
fn lan_steps_run_in_a_namespace_of_their_own_or_say_why_not() {
    let dir = temp_dir();
    let scenario = write_scenario(
        dir.path(),
        "lan-client",
        "[network]\n[[steps]]\nlan = \"ip -o link show\"\noutput = \"r2s[0-9a-f]+t[0-9a-f]+\"\n",
    );
    let run = run(&scenario, dir.path());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(run.code(), Some(0), "{}", run.explain());
        let log = read(&dir.path().join("lan-client.log"));
        let namespace = log
            .lines()
            .find_map(|l| l.split("LAN namespace ").nth(1))
            .unwrap_or_else(|| panic!("no LAN namespace noted in\n{log}"))
            .trim()
            .to_owned();
        let namespaces = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&namespaces.stdout).contains(&namespace),
            "the LAN namespace {namespace} was left behind"
        );
    } else {
        assert_eq!(run.code(), Some(1), "{}", run.explain());
        assert!(run.stdout.contains("only root can create"), "{}", run.explain());
    }
}

/// As root, a LAN namespace that cannot be made (here `/run/netns` read-only, in a mount
/// namespace of the run's own) is the harness's failure, not the image's: the `lan` step's
/// scenario is an error (could not run) naming the namespace's error, exit 2, never a FAIL.
#[test]
fn a_lan_namespace_that_cannot_be_made_as_root_is_an_error_not_a_failure() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (not root, `lan` steps are skipped before they run)");
        return;
    }
    let dir = temp_dir();
    let scenario = dir.path().join("lan-true.toml");
    std::fs::write(
        &scenario,
        "name = \"lan-true\"\n[network]\n[[steps]]\nlan = \"true\"\n",
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    std::fs::create_dir_all("/run/netns").unwrap();
    let script = format!(
        "mount -t tmpfs -o ro r2s-no-netns /run/netns && exec {} run --image {} --transcripts {} --junit {} {}",
        harness_bin().display(),
        fixture(r2s_images::DEFAULT_FIXTURE).display(),
        dir.path().display(),
        junit.display(),
        scenario.display()
    );
    let started = std::time::Instant::now();
    let child = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = finish(child, script.clone(), started, LIMIT);

    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stdout
            .contains("ERROR  lan-true  (could not run: lan \"true\" (")
            && run
                .stdout
                .contains("no LAN to run on: LAN namespace: `ip netns add r2s-lan-")
            && run.stdout.contains("Read-only file system"),
        "{}",
        run.explain()
    );
    assert!(
        run.stdout.contains("0 passed, 0 failed, 1 error"),
        "{}",
        run.explain()
    );
    let xml = read(&junit);
    assert!(
        xml.contains("failures=\"0\" errors=\"1\"") && xml.contains("<error message=\"lan"),
        "{xml}"
    );
}

#[test]
fn the_shipped_network_scenarios_are_valid() {
    let dir = repo_root().join("scenarios").join("network");
    let scenarios = r2s_harness::scenario::load_all(&[dir]).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lan-dhcp", "ssh-from-host", "wan-dhcp"]);
    assert!(scenarios.iter().all(|s| s.network.is_some()));
}
