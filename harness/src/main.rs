//! `harness`: boots NanoPi R2S images and judges them by scenario files (`run`), or checks them
//! before flashing without booting anything (`inspect`).
//!
//! Exit codes: 0 all scenarios (checks) passed, 1 any failed, 2 a usage, configuration or image
//! error, 129 hung up (SIGHUP), 130 interrupted (SIGINT), 143 terminated (SIGTERM).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut args = cli::Cli::parse();
    cli::set_up_output(&args);
    cli::FarmArgs::place_from_lg_place(&mut args);
    // Before the runtime's threads start: the project file may set password variables.
    if let Err(code) = cli::project::apply(&mut args) {
        return ExitCode::from(code);
    }
    r2s_harness::debug_timing::mark("main: arguments parsed");
    // Scratch directories of runs that were killed outright (their QEMU overlays, shims) would
    // otherwise stay in the temporary directory for good.
    r2s_harness::scratch::sweep_stale();
    r2s_harness::debug_timing::mark("stale scratch directories swept");
    // One thread: QEMU is spawned from it, so the child's parent-death signal fires only when
    // the harness process itself dies.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    runtime.block_on(async {
        tokio::select! {
            code = cli::dispatch(args) => ExitCode::from(code),
            code = cli::signals::terminated() => {
                // Dropping the command future above has already killed and reaped QEMU.
                ExitCode::from(code)
            }
        }
    })
}
