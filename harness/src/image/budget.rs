//! A bound on how much one filesystem operation may read from the image. Third-party readers
//! follow on-disk structures wherever they point; a directory claiming a terabyte or a FAT
//! cluster chain that loops would keep them reading for minutes or forever. Each operation is
//! given [`limits::METADATA_READ`](super::limits::METADATA_READ) bytes plus the file data it
//! asks for; a read beyond that fails, and the operation with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The bytes the current operation may still read; shared by a volume and its partition reader.
#[derive(Clone, Debug, Default)]
pub struct ReadBudget {
    left: Arc<AtomicU64>,
    allowed: Arc<AtomicU64>,
}

/// A read the budget did not allow.
#[derive(Debug, thiserror::Error)]
#[error(
    "reading it needed more than {allowed} bytes of the image; the filesystem's structures are \
     larger than any real one's, or loop"
)]
pub struct BudgetExceeded {
    /// What the operation was allowed.
    pub allowed: u64,
}

impl ReadBudget {
    /// A budget that allows `bytes` for the operation about to start.
    pub fn new(bytes: u64) -> ReadBudget {
        let budget = ReadBudget::default();
        budget.allow(bytes);
        budget
    }

    /// Starts an operation that may read `bytes`.
    pub fn allow(&self, bytes: u64) {
        self.allowed.store(bytes, Ordering::Relaxed);
        self.left.store(bytes, Ordering::Relaxed);
    }

    /// Takes `bytes` from the budget, or fails (leaving it empty) if it has fewer.
    pub fn spend(&self, bytes: u64) -> Result<(), BudgetExceeded> {
        let left = self.left.load(Ordering::Relaxed);
        if bytes > left {
            self.left.store(0, Ordering::Relaxed);
            return Err(BudgetExceeded {
                allowed: self.allowed.load(Ordering::Relaxed),
            });
        }
        self.left.store(left - bytes, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_beyond_the_allowance_fail_until_the_next_operation() {
        let budget = ReadBudget::new(100);
        assert!(budget.spend(60).is_ok());
        assert_eq!(budget.spend(60).unwrap_err().allowed, 100);
        assert!(budget.spend(1).is_err());
        budget.allow(10);
        assert!(budget.spend(10).is_ok());
    }
}
