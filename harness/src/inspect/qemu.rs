//! Whether the image also boots under QEMU's `virt` machine, as `harness run` boots it: a
//! console (the machine's only UART is a PL011) and a root disk on a bus the kernel and initrd
//! can drive. Warnings at most: the image is for the board, and the board needs neither.

use crate::adapt::disk_bus::{self, Drivable};
use crate::image::drivers::{Driver, Drivers, Support};
use crate::qemu_devices::DiskBus;

use super::report::{Check, CheckName};

const PL011: Driver = Driver {
    module: "amba_pl011",
    option: "CONFIG_SERIAL_AMBA_PL011",
};
const PL011_CONSOLE: &str = "CONFIG_SERIAL_AMBA_PL011_CONSOLE";

/// Both QEMU checks of the entry `drivers` were read from.
pub fn checks(drivers: &Drivers) -> Vec<Check> {
    vec![check_console(drivers), check_root_disk(drivers)]
}

fn location(drivers: &Drivers) -> String {
    format!("{}: kernel and initrd ({})", drivers.entry, drivers.sources())
}

/// The PL011 driver and its console support are built into the kernel.
pub fn check_console(drivers: &Drivers) -> Check {
    let name = CheckName::QemuConsole;
    let location = location(drivers);
    let hint = "for `harness run`, build the kernel with CONFIG_SERIAL_AMBA_PL011=y and \
                CONFIG_SERIAL_AMBA_PL011_CONSOLE=y (the arm64 defconfig has both; on NixOS, \
                boot.kernelPatches with extraStructuredConfig)";
    if let Some(config) = &drivers.config {
        let console = config.get(PL011_CONSOLE) == Some("y");
        return match (config.get(PL011.option), console) {
            (Some("y"), true) => Check::pass(
                name,
                location,
                "PL011 and its console built in (CONFIG_SERIAL_AMBA_PL011_CONSOLE=y)",
            ),
            (Some("y"), false) => Check::warn(
                name,
                location,
                "PL011 built in without its console (CONFIG_SERIAL_AMBA_PL011_CONSOLE is not set): \
                 QEMU's virt machine shows no kernel output",
                hint,
            ),
            (value, _) => Check::warn(
                name,
                location,
                format!(
                    "the PL011 driver is not built in (CONFIG_SERIAL_AMBA_PL011={}): QEMU's virt machine, \
                     whose only UART is a PL011, shows no kernel output",
                    value.unwrap_or("n")
                ),
                hint,
            ),
        };
    }
    match drivers.support(&PL011) {
        Support::BuiltIn(_) => Check::pass(
            name,
            location,
            "PL011 built in (modules.builtin lists amba-pl011; its console is assumed with it)",
        ),
        Support::InInitrd => Check::warn(
            name,
            location,
            "PL011 is a module (in the initrd): QEMU's virt machine shows nothing before it loads",
            hint,
        ),
        Support::Missing => Check::warn(
            name,
            location,
            "the PL011 driver is not built in (modules.builtin does not list amba-pl011): QEMU's virt \
             machine, whose only UART is a PL011, shows no kernel output",
            hint,
        ),
        Support::Unknown if drivers.pl011_in_kernel => Check::pass(
            name,
            location,
            "PL011 built in (the kernel image holds the driver's uart-pl011 and ttyAMA names; its console is \
             assumed with it)",
        ),
        Support::Unknown => Check::warn(
            name,
            location,
            "cannot tell whether PL011 is built in: the kernel has no embedded configuration and no \
             modules.builtin was found",
            "build the kernel with CONFIG_IKCONFIG=y so that its built-ins can be read",
        ),
    }
}

/// A root disk bus stage 1 can drive: the one `harness run` will attach the image on.
pub fn check_root_disk(drivers: &Drivers) -> Check {
    let name = CheckName::QemuRootDisk;
    let location = location(drivers);
    let choice = disk_bus::choose(drivers);
    let bus = choice.disk.bus;
    match &choice.drivable {
        Drivable::Yes => Check::pass(name, location, format!("{bus}: {}", choice.disk.reason)),
        Drivable::Unknown(unknown) => Check::warn(
            name,
            location,
            format!(
                "{bus} if the kernel has {} built in, which nothing says (no embedded configuration, no \
                 modules.builtin): {}",
                unknown.join(", "),
                choice.summary
            ),
            modules_hint(bus),
        ),
        Drivable::Missing(_) => Check::warn(
            name,
            location,
            format!(
                "no bus QEMU's virt machine offers can be driven by stage 1 as built; `harness run` adds \
                 the image's own drivers to its initrd from the kernel's module tree on the root \
                 filesystem when it can (else stage 1 will not find its root): {}",
                choice.summary
            ),
            modules_hint(DiskBus::Virtio),
        ),
    }
}

/// How to put `bus`'s modules into a NixOS initrd.
fn modules_hint(bus: DiskBus) -> String {
    let modules: Vec<String> = disk_bus::needs(bus)
        .iter()
        .map(|d| format!("\"{}\"", d.module))
        .collect();
    format!(
        "for `harness run`, add the drivers to the initrd: boot.initrd.availableKernelModules = [ {} ]; \
         (boot.initrd.kernelModules loads them even where nothing asks for them), or pass --disk-bus",
        modules.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::image::ikconfig::KernelConfig;
    use crate::inspect::report::Status;

    fn with_config(text: &str) -> Drivers {
        Drivers {
            entry: "LABEL a".to_owned(),
            config: Some(KernelConfig::parse(text)),
            ..Drivers::default()
        }
    }

    #[test]
    fn a_defconfig_kernel_has_a_console_and_a_virtio_root_disk() {
        let drivers = with_config(
            "CONFIG_SERIAL_AMBA_PL011=y\nCONFIG_SERIAL_AMBA_PL011_CONSOLE=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_MMIO=y\n",
        );
        let checks = checks(&drivers);
        assert_eq!(
            checks.iter().map(|c| c.status).collect::<Vec<_>>(),
            [Status::Pass, Status::Pass]
        );
        assert!(
            checks[1]
                .message
                .starts_with("virtio-blk (virtio-mmio): the first bus"),
            "{}",
            checks[1].message
        );
    }

    #[test]
    fn a_kernel_without_pl011_warns_that_qemu_shows_nothing() {
        let check = check_console(&with_config("# CONFIG_SERIAL_AMBA_PL011 is not set\n"));
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.message.contains("CONFIG_SERIAL_AMBA_PL011=n"),
            "{}",
            check.message
        );
        let check = check_console(&with_config("CONFIG_SERIAL_AMBA_PL011=y\n"));
        assert_eq!(check.status, Status::Warn);
        assert!(check.message.starts_with("PL011 built in without its console"));
    }

    #[test]
    fn an_initrd_without_any_disk_driver_warns_naming_the_nixos_options() {
        let drivers = Drivers {
            entry: "LABEL a".to_owned(),
            initrd: BTreeSet::from(["ext4".to_owned(), "dw_mmc_rockchip".to_owned()]),
            builtin: Some(BTreeSet::from(["amba_pl011".to_owned()])),
            builtin_from: Some("the initrd".to_owned()),
            ..Drivers::default()
        };
        let check = check_root_disk(&drivers);
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.hint.as_deref(),
            Some(
                "for `harness run`, add the drivers to the initrd: boot.initrd.availableKernelModules = \
                 [ \"virtio_blk\" \"virtio_mmio\" ]; (boot.initrd.kernelModules loads them even where nothing \
                 asks for them), or pass --disk-bus"
            )
        );
        assert_eq!(check_console(&drivers).status, Status::Pass);
    }
}
