//! Where the lines written for people go: stdout normally; stderr when stdout carries
//! `--message-format json`; remarks nowhere under `-q`. Set once, before a command runs.

use std::io::Write;
use std::sync::OnceLock;

/// How much of the human output a run shows, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Human {
    /// Results and totals go to stderr: stdout is another program's (`--message-format json`).
    pub to_stderr: bool,
    /// `-q`: no remarks (what the image is, what was adapted, the suite's notes), no warnings and no
    /// progress line; results and errors stay.
    pub quiet: bool,
}

static HUMAN: OnceLock<Human> = OnceLock::new();

/// Sets how human output is shown for the rest of the process; the first call wins.
pub fn set(human: Human) {
    let _ = HUMAN.set(human);
}

/// How human output is shown (stdout, every remark, until [`set`]).
pub fn get() -> Human {
    HUMAN.get().copied().unwrap_or(Human {
        to_stderr: false,
        quiet: false,
    })
}

/// A remark about the run (the image, the adaptation, the root disk's bus): shown unless `-q`.
pub fn tell(line: impl std::fmt::Display) {
    if !get().quiet {
        show(line);
    }
}

/// A line people need whatever `-q` says (a result, a comparison with the baseline).
pub fn show(line: impl std::fmt::Display) {
    if get().to_stderr {
        let _ = writeln!(std::io::stderr(), "{line}");
    } else {
        let _ = writeln!(std::io::stdout(), "{line}");
    }
}
