//! systemd's `[FAILED] Failed to start <unit>` and `[FAILED] Failed to mount <unit>` lines,
//! and those of a unit whose dependency failed (`[DEPEND] Dependency failed for <unit>`) or of
//! a device that never appeared (`[ TIME ] Timed out waiting for device <unit>`: systemd
//! stage 1's missing root), collected for the report: a unit that fails does not fail the
//! scenario, but whoever reads the result should see it.

/// What follows a marker on a failed unit's line: the unit and its description; and what the
/// report adds to say how it failed (nothing for a unit that failed itself).
const MARKERS: [(&str, &str); 4] = [
    ("Failed to start ", ""),
    ("Failed to mount ", ""),
    ("Dependency failed for ", " (a dependency failed)"),
    ("Timed out waiting for device ", " (timed out waiting for it)"),
];

/// At most this many failed units are listed; a boot whose every unit fails says enough with
/// these, and the count of the rest.
pub const MAX_LISTED: usize = 64;

/// The failed units seen so far. A watch sees a line as far as it has arrived, so a line is
/// kept as pending until the matcher has its end.
#[derive(Debug, Default)]
pub struct FailedUnits {
    complete: Vec<String>,
    /// The console lines `complete` was read from.
    lines: Vec<String>,
    pending: Vec<String>,
    /// Units beyond [`MAX_LISTED`].
    more: usize,
}

impl FailedUnits {
    /// A failed unit's line was seen, as much of it as had arrived.
    pub fn seen(&mut self, partial: String) {
        if self.complete.len() + self.pending.len() >= MAX_LISTED {
            self.more += 1;
        } else {
            self.pending.push(partial);
        }
    }

    /// Whether a line waits for its end.
    pub fn any_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Completes the pending lines from the console's last complete lines, `finished`. Lines
    /// of one kind start alike (`[DEPEND] Dependency failed for `), so each finished line
    /// completes one pending line only, and a line completed before is not taken again; the
    /// units are listed in the console's order.
    pub fn complete(&mut self, finished: &[String]) {
        let mut claimed: Vec<usize> = Vec::new();
        for partial in std::mem::take(&mut self.pending) {
            let found = finished.iter().enumerate().rev().find(|(i, line)| {
                !claimed.contains(i) && line.starts_with(partial.as_str()) && !self.lines.contains(*line)
            });
            match found {
                Some((i, _)) => claimed.push(i),
                None => self.pending.push(partial),
            }
        }
        claimed.sort_unstable();
        for i in claimed {
            self.complete.push(unit_of(&finished[i]));
            self.lines.push(finished[i].clone());
        }
    }

    /// Every unit seen, the pending ones as far as they arrived, and a last entry saying how
    /// many more there were when there were too many to list.
    pub fn all(&self, recent: &[String]) -> Vec<String> {
        let mut all = self.complete.clone();
        for partial in &self.pending {
            let line = recent
                .iter()
                .rev()
                .find(|line| line.starts_with(partial.as_str()))
                .unwrap_or(partial);
            all.push(unit_of(line));
        }
        if self.more > 0 {
            all.push(format!("… and {} more", self.more));
        }
        all
    }
}

/// The unit and description in a `[FAILED] Failed to start foo.service - Foo.` line, with how
/// it failed when it did not fail itself.
fn unit_of(line: &str) -> String {
    let (after, how) = MARKERS
        .iter()
        .find_map(|(marker, how)| Some((line.split_once(marker)?.1, *how)))
        .unwrap_or((line, ""));
    format!("{}{how}", after.trim().trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_listed_once_its_end_arrived() {
        let mut units = FailedUnits::default();
        units.seen("[FAILED] Failed to start sys".to_owned());
        units.complete(&["an earlier line".to_owned()]);
        assert!(units.any_pending());
        units.complete(&[
            "[FAILED] Failed to start systemd-networkd.service - Network Configuration.".to_owned(),
            "See 'systemctl status systemd-networkd.service' for details.".to_owned(),
        ]);
        assert_eq!(
            units.all(&[]),
            ["systemd-networkd.service - Network Configuration"]
        );
    }

    #[test]
    fn a_mount_that_failed_is_a_failed_unit() {
        let mut units = FailedUnits::default();
        units.seen("[FAILED] Failed to mount sysroot.mount - /sysroot.".to_owned());
        units.complete(&["[FAILED] Failed to mount sysroot.mount - /sysroot.".to_owned()]);
        assert_eq!(units.all(&[]), ["sysroot.mount - /sysroot"]);
    }

    /// What systemd stage 1 prints when its root never appears (systemd 252, dracut initrd,
    /// colours stripped as the console does).
    #[test]
    fn a_device_that_timed_out_and_the_units_that_needed_it_are_listed_saying_how() {
        let console = [
            "[ TIME ] Timed out waiting for device dev-disk-by\\x2dlabel-NIXOS_SD.device - /dev/disk/by-label/NIXOS_SD.",
            "[DEPEND] Dependency failed for sysroot.mount - /sysroot.",
            "[DEPEND] Dependency failed for initrd-root-fs.target - Initrd Root File System.",
        ];
        let mut units = FailedUnits::default();
        for line in console {
            units.seen(line[..20].to_owned());
        }
        let finished: Vec<String> = console.iter().map(|l| (*l).to_owned()).collect();
        units.complete(&finished);
        assert_eq!(
            units.all(&[]),
            [
                "dev-disk-by\\x2dlabel-NIXOS_SD.device - /dev/disk/by-label/NIXOS_SD (timed out waiting for it)",
                "sysroot.mount - /sysroot (a dependency failed)",
                "initrd-root-fs.target - Initrd Root File System (a dependency failed)",
            ]
        );
    }

    #[test]
    fn beyond_the_limit_only_a_count_is_kept() {
        let mut units = FailedUnits::default();
        for i in 0..MAX_LISTED + 3 {
            units.seen(format!("[FAILED] Failed to start u{i}.service."));
        }
        let all = units.all(&[]);
        assert_eq!(all.len(), MAX_LISTED + 1);
        assert_eq!(all[0], "u0.service");
        assert_eq!(all[MAX_LISTED], "… and 3 more");
    }
}
