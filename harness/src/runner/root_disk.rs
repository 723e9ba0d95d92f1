//! The hint for a boot whose stage 1 did not find its root filesystem under QEMU: which bus the
//! image's disk was on and what the image's kernel and initrd can drive, as
//! [`RunContext::root_disk`] says (the command line fills it in from [`crate::adapt::disk_bus`]).

use super::{Failure, RunContext, Stage};

/// What initrds print when they give up on the root device (NixOS, initramfs-tools, dracut).
const GAVE_UP: [&str; 7] = [
    "An error occurred in stage 1",
    "Timed out waiting for device",
    "Gave up waiting for root",
    "does not exist.  Dropping to a shell",
    "Dropping to a shell",
    "dracut-initqueue timeout",
    "Entering emergency mode",
];

/// The hint for `failure`, if the run was on QEMU and the failure looks like stage 1 not
/// finding its root: it failed in stage 1 (or the initramfs stage), or the console's last
/// lines show an initrd giving up.
pub fn missing_root_hint(ctx: &RunContext, failure: &Failure, last_lines: &[String]) -> Option<String> {
    let hint = ctx.root_disk.as_ref()?;
    let in_stage_1 = failure.stage == Stage::Stage1 || failure.stage == Stage::Named("initramfs".to_owned());
    let gave_up = last_lines
        .iter()
        .chain(std::iter::once(&failure.reason.to_string()))
        .any(|line| GAVE_UP.iter().any(|phrase| line.contains(phrase)));
    (in_stage_1 || gave_up).then(|| hint.clone())
}
