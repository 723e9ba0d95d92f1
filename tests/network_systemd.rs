//! End-to-end: the network on the systemd fixture (Debian bookworm: systemd, udev, OpenSSH) in
//! real QEMU: the board's interface names from `ifname=`, the WAN's address from QEMU's DHCP,
//! SSH from the host through a forward, and a link pulled.
//!
//! The fixture as built today configures no network and lets root log in over SSH by key only,
//! so each scenario prepares that at run time, in the restored machine, never in the image:
//! a `.network` file for systemd-networkd in /run, and `PermitRootLogin yes` in
//! /etc/ssh/sshd_config.d. Debian leaves systemd-network-generator disabled, so `ifname=` on
//! the kernel command line alone names nothing there; the scenario runs the generator with the
//! arguments the harness would put on the command line and lets udev apply its `.link` files.

use std::time::Duration;

use r2s_tests::*;

// Ignored as tests/systemd.rs ignores its tests: the builder's initrds are broken under PRoot
// (images/README.md, "Known defect"); with a fixture built by hand
// (`cargo nextest run -p r2s-tests --test network_systemd --run-ignored all`) they pass.

/// Building the fixture from nothing plus a boot and a few minutes of TCG networking.
const LIMIT: Duration = Duration::from_secs(45 * 60);

const HEADER: &str = r#"start = "login"
login = { user = "root", password_env = "R2S_PASSWORD" }
timeout = "15m"
on_failure = ["networkctl --no-pager", "journalctl -b -n 100 --no-pager"]
"#;

/// Names the NICs `end0`/`enu1` by MAC (what `ifname=` asks of systemd-network-generator), then
/// brings the WAN up by DHCP.
const WAN_UP: &str = r#"
[[steps]]
run = "SYSTEMD_PROC_CMDLINE='ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02' /lib/systemd/systemd-network-generator && udevadm control --reload && udevadm trigger -c add -s net && udevadm settle && ls /sys/class/net"
output = "^end0\\s+enu1\\s+lo$"
timeout = "2m"

[[steps]]
run = "printf '[Match]\\nName=end0\\n[Network]\\nDHCP=ipv4\\n' > /run/systemd/network/50-wan.network && systemctl start systemd-networkd && for i in $(seq 100); do grep -qs ADDRESS= /run/systemd/netif/leases/* && break; sleep 2; done; cat /run/systemd/netif/leases/*"
output = "^ADDRESS=10\\.0\\.2\\.15$"
timeout = "5m"
"#;

fn assert_passes(name: &str, body: &str) -> tempfile::TempDir {
    let image = fixture("debian-systemd");
    let dir = temp_dir();
    let scenario = dir.path().join(format!("{name}.toml"));
    std::fs::write(&scenario, format!("name = \"{name}\"\n{HEADER}{body}")).unwrap();
    let run = run_scenario_file(&image, &scenario, dir.path(), LIMIT);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        run.stdout.contains(&format!("PASS  {name}  ")),
        "{}",
        run.explain()
    );
    dir
}

#[test]
#[ignore = "the builder's initrds are broken under PRoot (images/README.md)"]
fn the_wan_gets_qemus_dhcp_address_under_the_boards_name() {
    assert_passes("systemd-wan-dhcp", &format!("[network]\n{WAN_UP}"));
}

#[test]
#[ignore = "the builder's initrds are broken under PRoot (images/README.md)"]
fn the_host_logs_in_over_ssh_through_a_forward() {
    let dir = assert_passes(
        "systemd-ssh-from-host",
        &format!(
            r#"[network]
forward = ["tcp:22"]
{WAN_UP}
[[steps]]
run = "echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/r2s-test.conf && systemctl reload ssh"
timeout = "1m"

[[steps]]
wait_for_port = 22
timeout = "2m"

[[steps]]
host_port_open = "tcp:22"
timeout = "2m"

[[steps]]
host = "SSHPASS=\"$R2S_PASSWORD\" sshpass -e ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=60 -p ${{PORT_TCP_22}} root@${{TARGET_ADDRESS}} cat /etc/hostname"
output = "^ivy$"
until = "2m"
timeout = "3m"

[[steps]]
link = {{ nic = "wan", up = false }}

[[steps]]
run = "for i in $(seq 30); do grep -q 0 /sys/class/net/end0/carrier && break; sleep 1; done; cat /sys/class/net/end0/carrier"
output = "^0$"
timeout = "1m"
"#
        ),
    );
    let log = std::fs::read_to_string(dir.path().join("systemd-ssh-from-host.log")).unwrap();
    assert!(log.contains(" PORT_TCP_22="), "{log}");
}
