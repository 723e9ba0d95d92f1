//! What `harness inspect` found: one [`Check`] per named check (per extlinux label for the
//! checks of a boot entry), each passed, warned or failed, with where it looked and how to fix
//! it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Declares [`CheckName`] from one list of variants and their report names: the enum, its
/// serde names, [`CheckName::ALL`] and [`CheckName::as_str`] cannot disagree or miss one.
macro_rules! check_names {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Every check `inspect` runs, in report order. The names are part of the JSON output
        /// and the text report, so they are stable.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum CheckName {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl CheckName {
            /// Every check, in report order.
            pub const ALL: [CheckName; [$($name),*].len()] = [$(CheckName::$variant),*];

            /// The name as reports print it, e.g. `u-boot-itb`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckName::$variant => $name,)*
                }
            }
        }
    };
}

check_names! {
    /// A GPT or MBR partition table with at least one partition.
    PartitionTable = "partition-table",
    /// No partition overlaps the bootloader area (sectors 64–32767 on the R2S).
    BootloaderArea = "bootloader-area",
    /// The RK3328 idbloader (TPL/SPL) at sector 64.
    Idbloader = "idbloader",
    /// The U-Boot FIT image at sector 16384.
    UBootItb = "u-boot-itb",
    /// Exactly one filesystem labelled `NIXOS_SD`.
    RootLabel = "root-label",
    /// At most one filesystem labelled `NIXOS_BOOT`.
    BootLabel = "boot-label",
    /// The root filesystem is ext4.
    RootFilesystem = "root-filesystem",
    /// An extlinux.conf where U-Boot's distro boot looks, which U-Boot can parse.
    ExtlinuxConf = "extlinux-conf",
    /// No keywords U-Boot ignores.
    ExtlinuxKeywords = "extlinux-keywords",
    /// `DEFAULT` names a label of the file.
    ExtlinuxDefault = "extlinux-default",
    /// The extlinux menu chooses by itself: no menu that waits for a key without limit.
    ExtlinuxMenuWait = "extlinux-menu-wait",
    /// The entry's `LINUX`/`KERNEL` file exists.
    Kernel = "kernel",
    /// The kernel is a raw arm64 Image.
    KernelFormat = "kernel-format",
    /// The kernel fits below the initrd load address.
    KernelSize = "kernel-size",
    /// The entry's `INITRD` file exists.
    Initrd = "initrd",
    /// The entry's `FDT` (or `FDTDIR` file) exists and is a device tree.
    Fdt = "fdt",
    /// The device tree's `compatible` names the board.
    FdtCompatible = "fdt-compatible",
    /// `APPEND` puts the console on the board's UART at its baud rate.
    Console = "console",
    /// `root=` names an existing filesystem label or partition.
    Root = "root",
    /// `init=` exists on the root filesystem.
    Init = "init",
    /// Under QEMU's virt machine the kernel has a console: PL011 built in.
    QemuConsole = "qemu-console",
    /// Under QEMU's virt machine stage 1 can drive the root disk, and on which bus.
    QemuRootDisk = "qemu-root-disk",
}

impl fmt::Display for CheckName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check's verdict. Ordered from best to worst, so the worst of several is their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Pass,
    /// Boots, but something is likely to hurt (or could not be checked).
    Warn,
    /// Will not boot (or not as intended) on the board.
    Fail,
}

impl Status {
    /// `pass`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    #[serde(rename = "check")]
    pub name: CheckName,
    /// The extlinux `LABEL` for the checks of a boot entry; `None` for image-wide checks.
    pub label: Option<String>,
    /// Pass, warn or fail.
    pub status: Status,
    /// Where it looked: sectors, a partition, a file inside a partition, a config line.
    #[serde(rename = "where")]
    pub location: String,
    /// What it found, in a sentence.
    #[serde(rename = "found")]
    pub message: String,
    /// How to fix it; `None` when it passed.
    pub hint: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(name: CheckName, location: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            name,
            label: None,
            status: Status::Pass,
            location: location.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// A warning, with a hint.
    pub fn warn(
        name: CheckName,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            hint: Some(hint.into()),
            ..Check::pass(name, location, message)
        }
    }

    /// A failure, with a hint.
    pub fn fail(
        name: CheckName,
        location: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Fail,
            hint: Some(hint.into()),
            ..Check::pass(name, location, message)
        }
    }

    /// The same check, about one boot entry.
    pub fn for_label(self, label: &str) -> Check {
        Check {
            label: Some(label.to_owned()),
            ..self
        }
    }
}

/// Everything `inspect` found in one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The image file inspected.
    pub image: PathBuf,
    /// The board profile it was judged against, e.g. `nanopi-r2s`.
    pub board: &'static str,
    /// The checks in report order. A check that depends on a failed one (the kernel's format
    /// when the kernel file is missing) is left out rather than reported twice.
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst status of all checks (`Pass` for an empty report).
    pub fn status(&self) -> Status {
        self.checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass)
    }

    /// How many checks have this status.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The checks that did not pass, worst first, in report order within a status.
    pub fn problems(&self) -> Vec<&Check> {
        let mut problems: Vec<&Check> = self.checks.iter().filter(|c| c.status != Status::Pass).collect();
        problems.sort_by_key(|c| std::cmp::Reverse(c.status));
        problems
    }
}
