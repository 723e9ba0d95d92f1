//! The last line of defence against panics inside third-party image readers (ext4-view,
//! fatfs): a call runs under [`guarded`], which turns a panic into an error and keeps the
//! panic message off the user's terminal. Bounds are checked before these readers are called;
//! this catches what the checks miss.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`guarded`] calls this thread is inside: their panics are expected and reported
    /// as errors, so the panic hook stays quiet.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// A panic caught inside an image reader, with its message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("failed on inconsistent data ({message})")]
pub struct ReaderPanic {
    /// The panic's message, e.g. "range end index 524 out of range for slice of length 512".
    pub message: String,
}

/// Runs `call`, turning a panic into [`ReaderPanic`]. Panics elsewhere in the process still
/// print as usual: the hook is silenced only on this thread and only during the call.
pub fn guarded<R>(call: impl FnOnce() -> R) -> Result<R, ReaderPanic> {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(call));
    GUARDED.with(|g| g.set(g.get() - 1));
    result.map_err(|payload| ReaderPanic {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let slice: &[u8] = &[1, 2, 3];
        let end = slice.len() + 2;
        let error = guarded(|| slice[..end].len()).unwrap_err();
        assert_eq!(
            error.message,
            "range end index 5 out of range for slice of length 3"
        );
    }

    #[test]
    fn a_call_that_returns_returns_its_value() {
        assert_eq!(guarded(|| 42), Ok(42));
    }
}
