//! The kernel command line, rewritten for QEMU's `virt` machine.
//!
//! An R2S image tells the kernel `console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000`:
//! the RK3328's UART2. QEMU's virt machine has one PL011 UART, so under QEMU the same kernel
//! must be told `console=ttyAMA0,115200 earlycon=pl011,0x9000000` or it prints nothing after
//! U-Boot's "Starting kernel ...".

/// QEMU virt's serial console, as the kernel names it.
pub const QEMU_CONSOLE: &str = "console=ttyAMA0,115200";
/// QEMU virt's PL011 for early console output.
pub const QEMU_EARLYCON: &str = "earlycon=pl011,0x9000000";

/// One command-line argument replaced, or removed as a duplicate of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgChange {
    pub from: String,
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
                from: arg.to_owned(),
                to: None,
            }),
            Some(new) => {
                changes.push(ArgChange {
                    from: arg.to_owned(),
                    to: Some(new.to_owned()),
                });
                out.push(new);
            }
            None => out.push(arg),
        }
    }
    (out.join(" "), changes)
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
                    from: "console=ttyS2,1500000".into(),
                    to: Some(QEMU_CONSOLE.into())
                },
                ArgChange {
                    from: "earlycon=uart8250,mmio32,0xff130000".into(),
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
                from: "console=ttyFIQ0".into(),
                to: None
            }
        );
    }
}
