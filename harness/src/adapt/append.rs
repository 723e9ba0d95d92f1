//! The kernel command line, rewritten for QEMU's `virt` machine.
//!
//! An R2S image tells the kernel `console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000`:
//! the RK3328's UART2. QEMU's virt machine has one PL011 UART, so under QEMU the same kernel
//! must be told `console=ttyAMA0,115200 earlycon=pl011,0x9000000` or it prints nothing after
//! U-Boot's "Starting kernel ...".
//!
//! The board names its NICs `end0` (WAN) and `enu1` (LAN); QEMU's are named by their PCI slot.
//! An adapted command line also says `ifname=end0:<WAN MAC> ifname=enu1:<LAN MAC>` with the
//! MACs QEMU gives its NICs ([`crate::qemu_devices`]): systemd-network-generator turns them
//! into `.link` files that udev applies when the NICs appear, so an image whose system runs the
//! generator sees its own names. Without NICs attached nothing matches, and nothing changes.

use crate::qemu_devices::{LAN_MAC, WAN_MAC};

/// QEMU virt's serial console, as the kernel names it.
pub const QEMU_CONSOLE: &str = "console=ttyAMA0,115200";
/// QEMU virt's PL011 for early console output.
pub const QEMU_EARLYCON: &str = "earlycon=pl011,0x9000000";

/// The board's NIC names, each with the MAC of the QEMU NIC that stands for it.
const BOARD_NICS: [(&str, &str); 2] = [("end0", WAN_MAC), ("enu1", LAN_MAC)];

/// One command-line argument replaced, added, or removed as a duplicate of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgChange {
    /// `None` when the argument was added.
    pub from: Option<String>,
    /// `None` when the argument was dropped because an earlier one already became the same.
    pub to: Option<String>,
}

/// Rewrites serial `console=` and `earlycon=` arguments for QEMU virt and leaves every other
/// argument, and their order, as it was.
pub fn adapt_append(append: &str) -> (String, Vec<ArgChange>) {
    let mut out: Vec<&str> = Vec::new();
    let mut changes = Vec::new();
    for arg in append.split_whitespace() {
        let replacement = if is_foreign_serial_console(arg) {
            Some(QEMU_CONSOLE)
        } else if is_foreign_earlycon(arg) {
            Some(QEMU_EARLYCON)
        } else {
            None
        };
        match replacement {
            Some(new) if out.contains(&new) => changes.push(ArgChange {
                from: Some(arg.to_owned()),
                to: None,
            }),
            Some(new) => {
                changes.push(ArgChange {
                    from: Some(arg.to_owned()),
                    to: Some(new.to_owned()),
                });
                out.push(new);
            }
            None => out.push(arg),
        }
    }
    (out.join(" "), changes)
}

/// `append` naming QEMU's NICs as the board names its own: an `ifname=end0:…` or
/// `ifname=enu1:…` of the image's (the board's MACs) gets QEMU's MAC, and a missing one is added
/// at the end (before a `--`, after which the arguments are init's). Other arguments stay.
pub fn with_board_nic_names(append: &str) -> (String, Vec<ArgChange>) {
    let words: Vec<&str> = append.split_whitespace().collect();
    let (kernel, init) = words.split_at(words.iter().position(|w| *w == "--").unwrap_or(words.len()));
    let mut out: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    let mut named = [false; BOARD_NICS.len()];
    for arg in kernel {
        let Some(i) = board_nic_named(arg) else {
            out.push((*arg).to_owned());
            continue;
        };
        let wanted = ifname(i);
        let change = |to| ArgChange {
            from: Some((*arg).to_owned()),
            to,
        };
        if named[i] {
            changes.push(change(None));
            continue;
        }
        if *arg != wanted {
            changes.push(change(Some(wanted.clone())));
        }
        out.push(wanted);
        named[i] = true;
    }
    for i in (0..BOARD_NICS.len()).filter(|i| !named[*i]) {
        changes.push(ArgChange {
            from: None,
            to: Some(ifname(i)),
        });
        out.push(ifname(i));
    }
    out.extend(init.iter().map(|w| (*w).to_owned()));
    (out.join(" "), changes)
}

/// Which of [`BOARD_NICS`] `arg` names (`ifname=end0:…`), if it is an `ifname=` of one.
fn board_nic_named(arg: &str) -> Option<usize> {
    let value = arg.strip_prefix("ifname=")?;
    BOARD_NICS
        .iter()
        .position(|(name, _)| value.strip_prefix(name).is_some_and(|mac| mac.starts_with(':')))
}

/// `ifname=<board name>:<QEMU MAC>` of [`BOARD_NICS`] entry `i`.
fn ifname(i: usize) -> String {
    let (name, mac) = BOARD_NICS[i];
    format!("ifname={name}:{mac}")
}

/// A serial console other than QEMU's: `ttyS2`, `ttyFIQ0`, `ttyAMA1`, …; virtual terminals
/// (`tty0`), hypervisor consoles and QEMU's own `ttyAMA0` stay.
fn is_foreign_serial_console(arg: &str) -> bool {
    let Some(value) = arg.strip_prefix("console=") else {
        return false;
    };
    let device = value.split(',').next().unwrap_or("");
    let Some(name) = device.strip_prefix("tty") else {
        return false;
    };
    let is_vt = name.chars().all(|c| c.is_ascii_digit());
    !is_vt && device != "ttyAMA0"
}

/// An `earlycon=` naming a UART other than QEMU's PL011. A bare `earlycon` finds the UART
/// from the device tree QEMU passes, so it stays.
fn is_foreign_earlycon(arg: &str) -> bool {
    match arg.strip_prefix("earlycon=") {
        Some(value) => !value.starts_with("pl011,0x9000000") && !value.starts_with("pl011,mmio32,0x9000000"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r2s_console_and_earlycon_become_qemu_virt_ones() {
        let (out, changes) = adapt_append(
            "console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 root=LABEL=NIXOS_SD rootfstype=ext4 rootwait init=/nix/store/x-nixos-system-ivy/init",
        );
        assert_eq!(
            out,
            "console=ttyAMA0,115200 earlycon=pl011,0x9000000 root=LABEL=NIXOS_SD rootfstype=ext4 rootwait init=/nix/store/x-nixos-system-ivy/init"
        );
        assert_eq!(
            changes,
            vec![
                ArgChange {
                    from: Some("console=ttyS2,1500000".into()),
                    to: Some(QEMU_CONSOLE.into())
                },
                ArgChange {
                    from: Some("earlycon=uart8250,mmio32,0xff130000".into()),
                    to: Some(QEMU_EARLYCON.into())
                },
            ]
        );
    }

    #[test]
    fn a_qemu_ready_command_line_is_left_alone() {
        let line = "init=/x/init console=ttyAMA0,115200 earlycon=pl011,0x9000000 loglevel=4";
        assert_eq!(adapt_append(line), (line.to_owned(), vec![]));
    }

    #[test]
    fn virtual_terminals_and_bare_earlycon_stay() {
        let line = "console=tty0 earlycon quiet";
        assert_eq!(adapt_append(line), (line.to_owned(), vec![]));
    }

    #[test]
    fn a_second_serial_console_is_dropped_not_duplicated() {
        let (out, changes) = adapt_append("console=ttyS2,1500000 console=ttyFIQ0 console=tty1");
        assert_eq!(out, "console=ttyAMA0,115200 console=tty1");
        assert_eq!(
            changes[1],
            ArgChange {
                from: Some("console=ttyFIQ0".into()),
                to: None
            }
        );
    }

    #[test]
    fn board_nic_names_are_added_at_the_end_with_qemus_macs() {
        let (out, changes) = with_board_nic_names("init=/x/init console=ttyAMA0,115200 loglevel=4");
        assert_eq!(
            out,
            "init=/x/init console=ttyAMA0,115200 loglevel=4 \
             ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02"
        );
        assert_eq!(
            changes,
            vec![
                ArgChange {
                    from: None,
                    to: Some("ifname=end0:52:54:00:52:32:01".into())
                },
                ArgChange {
                    from: None,
                    to: Some("ifname=enu1:52:54:00:52:32:02".into())
                },
            ]
        );
    }

    #[test]
    fn the_images_own_board_nic_names_get_qemus_macs_and_other_names_stay() {
        let (out, changes) =
            with_board_nic_names("ifname=enu1:aa:bb:cc:dd:ee:ff ifname=wan9:aa:bb:cc:dd:ee:01 quiet");
        assert_eq!(
            out,
            "ifname=enu1:52:54:00:52:32:02 ifname=wan9:aa:bb:cc:dd:ee:01 quiet ifname=end0:52:54:00:52:32:01"
        );
        assert_eq!(
            changes[0],
            ArgChange {
                from: Some("ifname=enu1:aa:bb:cc:dd:ee:ff".into()),
                to: Some("ifname=enu1:52:54:00:52:32:02".into())
            }
        );
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn board_nic_names_already_qemus_are_left_alone() {
        let line = "quiet ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02";
        assert_eq!(with_board_nic_names(line), (line.to_owned(), vec![]));
    }

    #[test]
    fn board_nic_names_go_before_the_arguments_for_init() {
        let (out, _) = with_board_nic_names("quiet -- single");
        assert_eq!(
            out,
            "quiet ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02 -- single"
        );
    }
}
