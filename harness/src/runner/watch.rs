//! Patterns watched on every console byte for the whole run: fatal errors and stage markers.

use super::Stage;
use crate::console::Pattern;

/// U-Boot's last line before the kernel runs.
pub const KERNEL_MARKER: &str = "Starting kernel ...";

/// What seeing a watched pattern means.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchKind {
    /// The boot cannot succeed any more; the scenario ends at once.
    Fatal,
    /// The boot cannot succeed any more for a known cause, which the report names; the
    /// scenario ends at once while the target boots (a [`Diagnosis::Reset`] only once the
    /// kernel started), not once a shell is reached, where a command may print such lines.
    Diagnosed(Diagnosis),
    /// A boot stage begins.
    Stage(Stage),
    /// systemd could not start or mount a unit (`[FAILED] Failed to start …`, `[FAILED] Failed
    /// to mount …`), a unit's dependency failed (`[DEPEND] Dependency failed for …`), or a
    /// device never appeared (`[ TIME ] Timed out waiting for device …`): reported, not fatal.
    FailedUnit,
}

/// A fatal console line whose cause is known well enough to say what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diagnosis {
    /// systemd gave up booting and started its emergency or rescue shell.
    EmergencyMode,
    /// The initrd (initramfs-tools, dracut) did not find the root filesystem and started a
    /// shell.
    RootNotFound,
    /// The initrd waits for a root device that no disk of the run holds
    /// ([`super::root_disk::AbsentRoot`]): it would wait until its timeout, then fail.
    RootAbsent,
    /// U-Boot's sign-on banner after the kernel started: the board reset (a reboot loop).
    Reset,
}

impl Diagnosis {
    /// What the report says about the cause.
    pub fn hint(self) -> &'static str {
        match self {
            Diagnosis::EmergencyMode => {
                "systemd stopped booting and started its emergency shell: a unit the boot needs failed, most often a \
                 filesystem from /etc/fstab or the root device; the [FAILED] lines before it say which"
            }
            Diagnosis::RootNotFound => {
                "the initrd did not find the root filesystem: its root= device does not exist, or the initrd has no \
                 driver for the disk it is on (on NixOS: boot.initrd.availableKernelModules)"
            }
            Diagnosis::RootAbsent => {
                "waiting is pointless: stage 1 would give up on its root device only after its timeout (systemd \
                 in an initrd: 90 s, then emergency mode)"
            }
            Diagnosis::Reset => {
                "the board reset after the kernel started, and U-Boot came up again: a reboot loop (a kernel panic \
                 with panic=N, a watchdog, a crash); the lines before the banner say why"
            }
        }
    }
}

/// A watched pattern and its meaning.
#[derive(Debug, Clone)]
pub struct Watch {
    pub kind: WatchKind,
    pub pattern: Pattern,
}

fn literal(kind: WatchKind, text: &str) -> Watch {
    Watch {
        kind,
        pattern: Pattern::literal(text),
    }
}

fn regex(kind: WatchKind, source: &str) -> Watch {
    Watch {
        kind,
        pattern: Pattern::regex(source).expect("built-in pattern is valid"),
    }
}

/// Failures of U-Boot, the kernel, NixOS stage 1, other initrds and systemd after which
/// waiting is pointless (NixOS's stage 1 in particular waits for a key forever), and systemd's
/// failed units, which are reported but not fatal.
pub fn builtin_fatal() -> Vec<Watch> {
    use WatchKind::{Diagnosed, Fatal};
    vec![
        regex(Fatal, r"Skipping \S+ for failure retrieving"),
        literal(Fatal, "SCRIPT FAILED"),
        // sysboot could not parse extlinux.conf (a syntax it rejects, an INCLUDE loop past
        // "Maximum nesting"); distro boot then tries the network, which a board never answers.
        literal(Fatal, "Error parsing config file"),
        literal(Fatal, "Bad Linux ARM64 Image magic!"),
        literal(Fatal, "Wrong Ramdisk Image Format"),
        literal(Fatal, "### ERROR ### Please RESET the board ###"),
        literal(Fatal, "Synchronous Abort"),
        literal(Fatal, "Retry count exceeded"),
        // booti refuses a kernel whose header's image_size reaches the ramdisk's or the
        // device tree's load address (`ERROR: RD image overlaps OS image (OS=…)`): a kernel
        // that outgrew the firmware's load addresses. sysboot then tries every other entry
        // and gives up (`EXTLINUX FAILED: continuing...`), and distro boot ends at the prompt.
        literal(Fatal, "image overlaps OS image"),
        literal(Fatal, "EXTLINUX FAILED"),
        // bootm/bootflow found nothing it could load from any entry or device.
        literal(Fatal, "Cannot load any image"),
        literal(Fatal, "Resetting CPU"),
        literal(Fatal, "Kernel panic - not syncing"),
        literal(Fatal, "Unable to handle kernel"),
        literal(Fatal, "Internal error: Oops"),
        literal(Fatal, "An error occurred in stage 1 of the boot process"),
        literal(Diagnosed(Diagnosis::EmergencyMode), "You are in emergency mode"),
        literal(Diagnosed(Diagnosis::EmergencyMode), "You are in rescue mode"),
        // systemd's emergency shell when root has no password (NixOS's systemd stage 1 locks it
        // unless boot.initrd.systemd.emergencyAccess is set): nobody can log in.
        literal(
            Diagnosed(Diagnosis::EmergencyMode),
            "Cannot open access to console, the root account is locked",
        ),
        regex(
            Diagnosed(Diagnosis::EmergencyMode),
            r"Reached target .*(Emergency|Rescue) Mode",
        ),
        // initramfs-tools: `Gave up waiting for root file system device.` and
        // `ALERT!  LABEL=NIXOS_SD does not exist.  Dropping to a shell!`
        literal(
            Diagnosed(Diagnosis::RootNotFound),
            "Gave up waiting for root file system device",
        ),
        literal(Diagnosed(Diagnosis::RootNotFound), "Dropping to a shell!"),
        // dracut's emergency shell, after its initqueue timed out waiting for the root.
        literal(
            Diagnosed(Diagnosis::RootNotFound),
            "Entering emergency mode. Exit the shell to continue.",
        ),
        regex(Diagnosed(Diagnosis::Reset), r"^U-Boot (SPL )?20\d\d\.\d\d"),
        regex(
            WatchKind::FailedUnit,
            r"\[FAILED\] Failed to (start|mount) |\[DEPEND\] Dependency failed for |\[ TIME \] Timed out waiting for device ",
        ),
    ]
}

/// systemd's greeting in an initrd: its os-release name ends in ` (Initrd)`.
pub const SYSTEMD_INITRD_WELCOME: &str = r"^Welcome to .+ \(Initrd\)!$";

/// systemd reaching one of its initrd targets, whose descriptions start with `Initrd`.
pub const SYSTEMD_INITRD_TARGET: &str = r"^\[ *OK *\] Reached target (.* - )?Initrd ";

/// systemd's greeting when it starts as the system's init (also matches the initrd's
/// greeting, which the session tells apart).
pub const SYSTEMD_WELCOME: &str = r"^Welcome to .+!$";

/// Markers that open each boot stage after the first: NixOS's own, initramfs-tools' and
/// systemd's, so a NixOS, Debian or systemd-initrd boot is timed stage by stage.
pub fn stage_markers() -> Vec<Watch> {
    let at = WatchKind::Stage;
    vec![
        regex(at(Stage::Menu), r"Retrieving file: \S*extlinux\.conf"),
        literal(at(Stage::Kernel), KERNEL_MARKER),
        literal(at(Stage::Stage1), "<<< NixOS Stage 1 >>>"),
        // initramfs-tools' first words, and systemd's greeting in an initrd (NixOS's
        // systemd stage 1, dracut).
        literal(at(Stage::Initramfs), "Loading, please wait..."),
        regex(at(Stage::Initramfs), SYSTEMD_INITRD_WELCOME),
        // systemd in an initrd may lose its greeting on a serial console it is the first to
        // open; its initrd targets are its own (`Reached target initrd-root-device.target -
        // Initrd Root Device.`, or by description only before systemd 252).
        regex(at(Stage::Initramfs), SYSTEMD_INITRD_TARGET),
        literal(at(Stage::Stage2), "<<< NixOS Stage 2 >>>"),
        // `Welcome to NixOS 25.05 (Warbler)!`, `Welcome to Debian GNU/Linux 12 (bookworm)!`
        regex(at(Stage::Systemd), SYSTEMD_WELCOME),
        regex(at(Stage::Getty), r"^\[ *OK *\] Started .*[Gg]etty"),
        literal(at(Stage::Login), "<<< Welcome to NixOS"),
        regex(at(Stage::Login), r"^\S+ login: ?$"),
    ]
}
