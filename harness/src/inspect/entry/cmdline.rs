//! The kernel command line of a boot entry (`APPEND`): the console on the board's UART, a
//! `root=` that names a partition of the image, an `init=` that exists on it.

use super::Context;
use crate::image::root_device::{
    command_line_root, CommandLineRoot, RootDevice, RootSource, DEFAULT_ROOT_LABEL,
};
use crate::image::ImageError;
use crate::inspect::board::Profile;
use crate::inspect::report::{Check, CheckName};

/// The values of a kernel parameter in command-line order.
fn params<'a>(append: &'a str, key: &str) -> Vec<&'a str> {
    append
        .split_whitespace()
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// `APPEND` has the board's console (`console=ttyS2,1500000`, optionally with `n8`).
pub fn check_console(append: &str, profile: &Profile, location: &str) -> Check {
    let wanted = profile.console_arg();
    let value = &wanted["console=".len()..];
    let consoles = params(append, "console");
    let is_board = |c: &&str| *c == value || c.strip_prefix(value).is_some_and(|rest| rest.starts_with('n'));
    let hint = format!(
        "add `{wanted}` to APPEND (NixOS: boot.kernelParams); the {} prints at {} baud only",
        profile.name, profile.console_baud
    );
    match consoles.iter().position(is_board) {
        Some(i) if i + 1 == consoles.len() => {
            Check::pass(CheckName::Console, location, format!("console={}", consoles[i]))
        }
        Some(_) => Check::warn(
            CheckName::Console,
            location,
            format!(
                "console={} is there, but the last console= ({}) becomes /dev/console, where NixOS's stage 1 \
                 prompts",
                value,
                consoles.last().expect("a later console")
            ),
            format!("put `{wanted}` last"),
        ),
        None if consoles.is_empty() => {
            Check::fail(CheckName::Console, location, "no console= argument", hint)
        }
        None => {
            let found: Vec<String> = consoles.iter().map(|c| format!("console={c}")).collect();
            Check::fail(
                CheckName::Console,
                location,
                format!("{}, not {wanted}", found.join(" ")),
                hint,
            )
        }
    }
}

/// The root device stage 1 mounts for this entry (`root`, read from its initrd, `root=` and the
/// root's fstab) names a filesystem label or PARTUUID of the image. `root=fstab` (NixOS's
/// systemd stage 1) is accepted when the initrd's fstab names the root. Returns the check and
/// the partition that is the root.
pub(super) fn check_root(
    append: &str,
    root: &RootDevice,
    ctx: &Context<'_>,
    location: &str,
) -> (Check, Option<u32>) {
    let said = match command_line_root(append) {
        CommandLineRoot::Absent => "no root=".to_owned(),
        CommandLineRoot::Fstab => "root=fstab".to_owned(),
        CommandLineRoot::GptAuto => {
            return (
                Check::pass(
                    CheckName::Root,
                    location,
                    "root=gpt-auto: systemd finds the root by its GPT partition type; not checked",
                ),
                None,
            )
        }
        CommandLineRoot::Device(device) => format!("root={device}"),
    };
    if said == "root=fstab" && matches!(root.source, RootSource::RootFstab | RootSource::Default) {
        return (
            Check::warn(
                CheckName::Root,
                location,
                format!(
                    "root=fstab, but the initrd names no root in an fstab (systemd in the initrd then mounts \
                     nothing at /sysroot); the root device would be {}",
                    root.describe()
                ),
                "root=fstab is for systemd stage 1 (NixOS: boot.initrd.systemd.enable, which writes the \
                 initrd's fstab); otherwise name the root: root=LABEL=NIXOS_SD",
            ),
            None,
        );
    }
    // `root=X` when the command line decides; else what stage 1 mounts, and from where.
    let what = if root.source == RootSource::CommandLine {
        said
    } else {
        format!("{said}: stage 1 mounts {}", root.describe())
    };
    let found = ctx
        .parts
        .iter()
        .find(|p| root.is(&p.partition, &p.fs) == Some(true));
    if found.is_none() && ctx.parts.iter().any(|p| root.is(&p.partition, &p.fs).is_none()) {
        return (
            Check::warn(
                CheckName::Root,
                location,
                format!("{what}, which cannot be checked against the image"),
                "name the root by LABEL= or PARTUUID=: device names differ between SD card and eMMC",
            ),
            None,
        );
    }
    match found {
        Some(p) => (
            Check::pass(CheckName::Root, location, format!("{what} is {}", p.describe())),
            Some(p.partition.index),
        ),
        // Nothing names the root, but an fstab that might could not be read: say so.
        None if root.source == RootSource::Default && root.unread_fstab.is_some() => (
            Check::warn(
                CheckName::Root,
                location,
                what,
                "check the root filesystem's /etc/fstab by hand, or name the root on the command line \
                 (root=LABEL=…)",
            ),
            None,
        ),
        // Nothing names the root: the image-wide root-label check judges NIXOS_SD.
        None if root.source == RootSource::Default => (
            Check::pass(CheckName::Root, location, format!("{what}; see root-label")),
            None,
        ),
        None => {
            let known: Vec<String> = ctx
                .parts
                .iter()
                .map(|p| match p.fs.label() {
                    Some(label) => format!("LABEL={label}, PARTUUID={}", p.partition.partuuid),
                    None => format!("PARTUUID={}", p.partition.partuuid),
                })
                .collect();
            (
                Check::fail(
                    CheckName::Root,
                    location,
                    format!(
                        "{what} names no partition of the image (it has {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join("; ")
                        }
                    ),
                    "name the root filesystem's label in the image's root device (root=LABEL=…, NixOS: \
                     fileSystems.\"/\".device) or relabel the root filesystem; stage 1 waits for it until it \
                     gives up (the kernel forever, with rootwait)",
                ),
                None,
            )
        }
    }
}

/// `init=` exists on the root filesystem: the partition that is the root device, else (a root
/// the image cannot judge, such as a device path) the one labelled [`DEFAULT_ROOT_LABEL`].
pub(super) fn check_init(append: &str, ctx: &Context<'_>, root: Option<u32>, location: &str) -> Check {
    let Some(init) = params(append, "init").pop() else {
        return Check::warn(
            CheckName::Init,
            location,
            "no init=: NixOS's stage 1 needs init=/nix/store/…-nixos-system-…/init",
            "regenerate extlinux.conf (nixos-rebuild boot) or add init=<system>/init",
        );
    };
    let root = root.or_else(|| {
        ctx.parts
            .iter()
            .find(|p| p.fs.label() == Some(DEFAULT_ROOT_LABEL))
            .map(|p| p.partition.index)
    });
    let Some(root) = root else {
        return Check::warn(
            CheckName::Init,
            location,
            format!("init={init} not checked: no root filesystem found"),
            "see root and root-label",
        );
    };
    let place = format!("{location} → {}: {init}", ctx.partition_name(root));
    let files = match ctx.files(root) {
        Ok(files) => files,
        Err(reason) => {
            return Check::warn(
                CheckName::Init,
                place,
                format!("not checked: {reason}"),
                "see root-filesystem",
            )
        }
    };
    match files.exists(init) {
        Ok(true) => Check::pass(CheckName::Init, place, format!("{init} exists")),
        Ok(false) => Check::fail(
            CheckName::Init,
            place,
            format!("{init} is not on the root filesystem"),
            "boot a system that is in the store: regenerate extlinux.conf (nixos-rebuild boot), or point init= \
             at an existing /nix/store/…-nixos-system-…/init (garbage collection removes old systems)",
        ),
        // The filesystem is sound but the harness's reader lacks what the path needs.
        Err(reason @ ImageError::Unsupported { .. }) => Check::warn(
            CheckName::Init,
            place,
            format!("not checked: {}", reason.detail()),
            "see root-filesystem",
        ),
        Err(reason) => Check::fail(
            CheckName::Init,
            place,
            format!("cannot look up {init}: {}", reason.detail()),
            "check the root filesystem with fsck",
        ),
    }
}
