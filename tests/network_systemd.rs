//! End-to-end: the network on the systemd fixture (Debian bookworm: systemd, udev, OpenSSH, set
//! up as a router: systemd-networkd with the WAN `end0` on DHCP and the LAN `enu1`,
//! systemd-network-generator, sshd letting root in) in real QEMU: the board's interface names
//! from the `ifname=` the adapted command line carries, the WAN's address from QEMU's DHCP, SSH
//! from the host through a forward, and a link pulled. Nothing is set up at run time: each
//! scenario checks what the image does on its own, as a user's scenario would.
//!
//! The scenarios start from the login snapshot in the snapshot cache the `scenarios` test
//! binary uses too, so one priming boot with NICs serves them and the shipped network scenarios.

use std::path::Path;
use std::time::Duration;

use r2s_tests::*;

/// Building the fixture from nothing plus a boot and a few minutes of TCG networking.
const LIMIT: Duration = Duration::from_secs(45 * 60);

const HEADER: &str = r#"start = "login"
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "15m"
on_failure = ["ls /sys/class/net", "cat /proc/cmdline", "journalctl -b -n 100 --no-pager"]

[network]
"#;

/// Runs scenario `name` (the [`HEADER`] and `body`) on the systemd fixture, asserts that it
/// passed, and returns the directory holding its transcript.
fn assert_passes(name: &str, body: &str) -> tempfile::TempDir {
    let image = fixture("debian-systemd");
    let dir = temp_dir();
    let scenario = dir.path().join(format!("{name}.toml"));
    std::fs::write(&scenario, format!("name = \"{name}\"\n{HEADER}{body}")).unwrap();
    let snapshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("r2s-snapshots");
    let snapshots = snapshots.to_str().expect("a UTF-8 target directory");
    let run = run_scenario_file_with(
        &image,
        &scenario,
        dir.path(),
        LIMIT,
        &["--snapshot-cache", snapshots],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!("PASS  {name}  ")),
        "{}",
        run.explain()
    );
    dir
}

#[test]
fn the_nics_have_the_boards_names_from_boot_on() {
    // No udev reload, no generator run by hand: the names are there when the shell is.
    assert_passes(
        "systemd-nic-names",
        r#"
[[steps]]
run = "ls /sys/class/net"
output = "\\Aend0\\s+enu1\\s+lo\\z"
timeout = "1m"

[[steps]]
run = "cat /sys/class/net/end0/address /sys/class/net/enu1/address"
output = "\\A52:54:00:52:32:01\\s+52:54:00:52:32:02\\z"
timeout = "1m"

[[steps]]
run = "tr ' ' '\\n' < /proc/cmdline | grep ^ifname="
output = "\\Aifname=end0:52:54:00:52:32:01\\s+ifname=enu1:52:54:00:52:32:02\\z"
timeout = "1m"
"#,
    );
}

#[test]
fn the_wan_gets_qemus_dhcp_address_under_the_boards_name() {
    assert_passes(
        "systemd-wan-dhcp",
        r#"
[[steps]]
run = "for i in $(seq 100); do grep -qs ^ADDRESS= /run/systemd/netif/leases/* && break; sleep 2; done; grep -h ^ADDRESS= /run/systemd/netif/leases/*"
output = "\\AADDRESS=10\\.0\\.2\\.15\\z"
timeout = "5m"

[[steps]]
run = "cat /sys/class/net/end0/operstate"
output = "\\Aup\\z"
timeout = "1m"
"#,
    );
}

#[test]
fn the_host_logs_in_over_ssh_through_a_forward_then_the_wan_link_is_pulled() {
    let dir = assert_passes(
        "systemd-ssh-from-host",
        r#"forward = ["tcp:22"]

[[steps]]
wait_for_port = 22
timeout = "2m"

[[steps]]
host_port_open = "tcp:22"
timeout = "3m"

[[steps]]
host = "SSHPASS=\"$R2S_PASSWORD\" sshpass -e ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=60 -p ${PORT_TCP_22} root@${TARGET_ADDRESS} cat /etc/hostname"
# The host command's whole output: the hostname and the newline after it.
output = "\\Aivy\\n\\z"
until = "2m"
timeout = "3m"

[[steps]]
link = { nic = "wan", up = false }

[[steps]]
run = "for i in $(seq 30); do grep -q 0 /sys/class/net/end0/carrier && break; sleep 1; done; cat /sys/class/net/end0/carrier"
output = "\\A0\\z"
timeout = "1m"
"#,
    );
    let log = std::fs::read_to_string(dir.path().join("systemd-ssh-from-host.log")).unwrap();
    assert!(log.contains(" PORT_TCP_22="), "{log}");
}
