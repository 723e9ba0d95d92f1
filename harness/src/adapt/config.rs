//! An extlinux configuration equivalent to the image's, minus what QEMU's virt machine cannot
//! honour: the R2S serial console and the R2S device tree; with the board's NIC names for
//! QEMU's NICs added.

use std::fmt;

use super::append::{adapt_append, with_board_nic_names, ArgChange};
use crate::image::extlinux::Config;

/// One thing the adapted configuration does differently from the image's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A kernel argument of `label` was replaced or dropped.
    Argument { label: String, change: ArgChange },
    /// A device-tree line of `label` was dropped, so U-Boot passes QEMU's own device tree.
    DeviceTree {
        label: String,
        keyword: &'static str,
        value: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Argument {
                label,
                change:
                    ArgChange {
                        from: Some(from),
                        to: Some(to),
                    },
            } => {
                write!(f, "{label}: APPEND {from} -> {to}")
            }
            Change::Argument {
                label,
                change:
                    ArgChange {
                        from: Some(from),
                        to: None,
                    },
            } => {
                write!(f, "{label}: APPEND {from} dropped (a duplicate)")
            }
            Change::Argument {
                label,
                change: ArgChange { from: None, to },
            } => {
                let to = to.as_deref().unwrap_or("");
                write!(f, "{label}: APPEND + {to} (the board's name for QEMU's NIC)")
            }
            Change::DeviceTree {
                label,
                keyword,
                value,
            } => {
                write!(
                    f,
                    "{label}: {keyword} {value} dropped (QEMU passes its own device tree)"
                )
            }
        }
    }
}

/// The configuration U-Boot under QEMU is shown: every label, menu label, default and timeout
/// kept; console arguments and device-tree lines changed as [`Change`] lists. A configuration
/// that needs such a change also gets the board's NIC names on every command line
/// ([`with_board_nic_names`]); one that boots on QEMU as it is stays as it is.
pub fn adapt_config(config: &Config) -> (Config, Vec<Change>) {
    let mut adapted = config.clone();
    let mut changes = Vec::new();
    for label in &mut adapted.labels {
        if let Some(append) = &label.append {
            let (new, arg_changes) = adapt_append(append);
            if !arg_changes.is_empty() {
                label.append = Some(new);
                changes.extend(arg_changes.into_iter().map(|change| Change::Argument {
                    label: label.name.clone(),
                    change,
                }));
            }
        }
        for (keyword, slot) in [
            ("FDT", &mut label.fdt),
            ("FDTDIR", &mut label.fdtdir),
            ("FDTOVERLAYS", &mut label.fdtoverlays),
        ] {
            if let Some(value) = slot.take() {
                changes.push(Change::DeviceTree {
                    label: label.name.clone(),
                    keyword,
                    value,
                });
            }
        }
    }
    if changes.is_empty() {
        return (adapted, changes);
    }
    for label in &mut adapted.labels {
        if let Some(append) = &label.append {
            let (new, arg_changes) = with_board_nic_names(append);
            label.append = Some(new);
            changes.extend(arg_changes.into_iter().map(|change| Change::Argument {
                label: label.name.clone(),
                change,
            }));
        }
    }
    (adapted, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATIONS: &str = "\
# Generated file, all changes will be lost on nixos-rebuild!
DEFAULT nixos-default
MENU TITLE ------------------------------------------------------------
TIMEOUT 50

LABEL nixos-default
  MENU LABEL NixOS - Default
  LINUX ../nixos/aaa-linux-6.1-Image
  INITRD ../nixos/bbb-initrd-linux-6.1-initrd
  APPEND init=/nix/store/ccc-nixos-system-ivy/init console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 loglevel=4
  FDT ../nixos/ddd-dtbs/rockchip/rk3328-nanopi-r2s.dtb

LABEL nixos-2-default
  MENU LABEL NixOS - Configuration 2 (2025-07-01 - 25.05.20250701.1a2b3c4)
  LINUX ../nixos/aaa-linux-6.1-Image
  INITRD ../nixos/bbb-initrd-linux-6.1-initrd
  APPEND init=/nix/store/eee-nixos-system-ivy/init console=ttyS2,1500000 loglevel=4
  FDTDIR ../nixos/ddd-dtbs
";

    #[test]
    fn labels_menu_default_and_timeout_survive_adaptation() {
        let config = Config::parse(GENERATIONS).unwrap();
        let (adapted, _) = adapt_config(&config);
        let reparsed = Config::parse(&adapted.render()).unwrap();
        assert_eq!(reparsed.default, config.default);
        assert_eq!(reparsed.timeout, config.timeout);
        assert_eq!(reparsed.title, config.title);
        let names = |c: &Config| {
            c.labels
                .iter()
                .map(|l| (l.name.clone(), l.menu_label.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&reparsed), names(&config));
        for (a, b) in reparsed.labels.iter().zip(&config.labels) {
            assert_eq!((&a.kernel, &a.initrd), (&b.kernel, &b.initrd));
        }
    }

    #[test]
    fn consoles_are_replaced_and_device_trees_dropped_per_label() {
        let (adapted, changes) = adapt_config(&Config::parse(GENERATIONS).unwrap());
        assert_eq!(
            adapted.labels[0].append.as_deref(),
            Some(
                "init=/nix/store/ccc-nixos-system-ivy/init console=ttyAMA0,115200 earlycon=pl011,0x9000000 loglevel=4 \
                 ifname=end0:52:54:00:52:32:01 ifname=enu1:52:54:00:52:32:02"
            )
        );
        assert!(adapted
            .labels
            .iter()
            .all(|l| l.fdt.is_none() && l.fdtdir.is_none()));
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "nixos-default: APPEND console=ttyS2,1500000 -> console=ttyAMA0,115200",
                "nixos-default: APPEND earlycon=uart8250,mmio32,0xff130000 -> earlycon=pl011,0x9000000",
                "nixos-default: FDT ../nixos/ddd-dtbs/rockchip/rk3328-nanopi-r2s.dtb dropped (QEMU passes its own device tree)",
                "nixos-2-default: APPEND console=ttyS2,1500000 -> console=ttyAMA0,115200",
                "nixos-2-default: FDTDIR ../nixos/ddd-dtbs dropped (QEMU passes its own device tree)",
                "nixos-default: APPEND + ifname=end0:52:54:00:52:32:01 (the board's name for QEMU's NIC)",
                "nixos-default: APPEND + ifname=enu1:52:54:00:52:32:02 (the board's name for QEMU's NIC)",
                "nixos-2-default: APPEND + ifname=end0:52:54:00:52:32:01 (the board's name for QEMU's NIC)",
                "nixos-2-default: APPEND + ifname=enu1:52:54:00:52:32:02 (the board's name for QEMU's NIC)",
            ]
        );
    }

    #[test]
    fn a_configuration_that_boots_on_qemu_as_it_is_gets_no_nic_names() {
        let config = Config::parse(
            "DEFAULT a\nLABEL a\n  LINUX /k\n  APPEND init=/x/init console=ttyAMA0,115200 loglevel=4\n",
        )
        .unwrap();
        let (adapted, changes) = adapt_config(&config);
        assert_eq!(changes, vec![]);
        assert_eq!(
            adapted.labels[0].append.as_deref(),
            Some("init=/x/init console=ttyAMA0,115200 loglevel=4")
        );
    }
}
