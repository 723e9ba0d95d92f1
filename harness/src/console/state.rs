//! Where a console is, as far as the harness knows: what a run's start and end, and a saved
//! state, are told in.

/// Where the console is: booting (the bootloader or the kernel printing), at U-Boot's prompt,
/// or at a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleState {
    Booting,
    UbootPrompt,
    Shell,
}
