//! systemd's `[FAILED] Failed to start <unit>` and `[FAILED] Failed to mount <unit>` lines,
//! collected for the report: a unit that fails does not fail the scenario, but whoever reads
//! the result should see it.

/// What follows a marker on a failed unit's line: the unit and its description.
const MARKERS: [&str; 2] = ["Failed to start ", "Failed to mount "];

/// At most this many failed units are listed; a boot whose every unit fails says enough with
/// these, and the count of the rest.
pub const MAX_LISTED: usize = 64;

/// The failed units seen so far. A watch sees a line as far as it has arrived, so a line is
/// kept as pending until the matcher has its end.
#[derive(Debug, Default)]
pub struct FailedUnits {
    complete: Vec<String>,
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

    /// Completes the pending lines from the console's last complete lines, `finished`.
    pub fn complete(&mut self, finished: &[String]) {
        self.pending.retain(|partial| {
            match finished
                .iter()
                .rev()
                .find(|line| line.starts_with(partial.as_str()))
            {
                Some(line) => {
                    self.complete.push(unit_of(line));
                    false
                }
                None => true,
            }
        });
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

/// The unit and description in a `[FAILED] Failed to start foo.service - Foo.` line.
fn unit_of(line: &str) -> String {
    let after = MARKERS
        .iter()
        .find_map(|marker| line.split_once(marker))
        .map_or(line, |(_, rest)| rest);
    after.trim().trim_end_matches('.').to_owned()
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
