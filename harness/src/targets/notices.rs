//! Remarks a target makes about its console outside the byte stream, such as a serial device
//! that vanished and came back. The runner writes them into the transcript as notes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A queue of timestamped remarks, shared between a target (which pushes from any thread) and
/// the runner (which takes them). Cloning shares the queue. Empty for targets with nothing to
/// say, such as QEMU.
#[derive(Debug, Clone, Default)]
pub struct ConsoleNotices {
    queue: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl ConsoleNotices {
    /// Records `text` as happening now.
    pub fn push(&self, text: impl Into<String>) {
        self.lock().push((Instant::now(), text.into()));
    }

    /// Everything recorded since the last call, oldest first.
    pub fn take(&self) -> Vec<(Instant, String)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, String)>> {
        // A panic while pushing leaves a valid Vec behind; the remarks are still worth having.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_queue_and_take_empties_it() {
        let notices = ConsoleNotices::default();
        let target_side = notices.clone();
        target_side.push("device went away");
        target_side.push("device is back");
        let taken: Vec<String> = notices.take().into_iter().map(|(_, text)| text).collect();
        assert_eq!(taken, ["device went away", "device is back"]);
        assert!(notices.take().is_empty());
    }
}
