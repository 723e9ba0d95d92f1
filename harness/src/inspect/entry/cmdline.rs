//! The kernel command line of a boot entry (`APPEND`): the console on the board's UART, a
//! `root=` that names a partition of the image, an `init=` that exists on it.

use super::Context;
use crate::image::ImageError;
use crate::inspect::board::Profile;
use crate::inspect::filesystems::ROOT_LABEL;
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

/// What a `root=` value names.
enum RootSpec<'a> {
    Label(&'a str),
    PartUuid(&'a str),
    Other,
}

fn root_spec(value: &str) -> RootSpec<'_> {
    if let Some(label) = value
        .strip_prefix("LABEL=")
        .or(value.strip_prefix("/dev/disk/by-label/"))
    {
        RootSpec::Label(label)
    } else if let Some(uuid) = value
        .strip_prefix("PARTUUID=")
        .or(value.strip_prefix("/dev/disk/by-partuuid/"))
    {
        RootSpec::PartUuid(uuid)
    } else {
        RootSpec::Other
    }
}

/// `root=` (the last one, as the kernel takes it) names a filesystem label or PARTUUID of the
/// image. Returns the check and the partition it names.
pub(super) fn check_root(append: &str, ctx: &Context<'_>, location: &str) -> (Check, Option<u32>) {
    let Some(value) = params(append, "root").pop() else {
        return (
            Check::pass(
                CheckName::Root,
                location,
                "no root=: NixOS's stage 1 mounts the filesystem labelled NIXOS_SD",
            ),
            None,
        );
    };
    let found = match root_spec(value) {
        RootSpec::Label(label) => ctx.parts.iter().find(|p| p.fs.label() == Some(label)),
        RootSpec::PartUuid(uuid) => ctx
            .parts
            .iter()
            .find(|p| p.partition.partuuid.eq_ignore_ascii_case(uuid)),
        RootSpec::Other => return (
            Check::warn(
                CheckName::Root,
                location,
                format!("root={value} cannot be checked against the image"),
                "use root=LABEL=NIXOS_SD or root=PARTUUID=…: device names differ between SD card and eMMC",
            ),
            None,
        ),
    };
    match found {
        Some(p) => (
            Check::pass(
                CheckName::Root,
                location,
                format!("root={value} is {}", p.describe()),
            ),
            Some(p.partition.index),
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
                        "root={value} names no partition of the image (it has {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join("; ")
                        }
                    ),
                    "fix root= (e.g. root=LABEL=NIXOS_SD) or relabel the root filesystem; the kernel waits \
                     for it forever with rootwait",
                ),
                None,
            )
        }
    }
}

/// `init=` exists on the root filesystem: the partition `root=` names, else the one labelled
/// NIXOS_SD.
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
            .find(|p| p.fs.label() == Some(ROOT_LABEL))
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
