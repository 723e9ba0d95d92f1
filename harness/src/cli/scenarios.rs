//! `harness scenarios export DIR`: the shipped scenarios and board profiles, built into the
//! binary, written out.

use std::io::Write;

use r2s_harness::scenario::shipped;

use super::{ScenariosCommand, EXIT_ERROR, EXIT_PASS};

pub fn scenarios(command: ScenariosCommand) -> u8 {
    match command {
        ScenariosCommand::Export { dir } => match shipped::export(&dir) {
            Ok(files) => {
                // The files' paths, one a line; a reader that stops early (`| head`) is no error.
                let mut out = std::io::stdout().lock();
                for file in &files {
                    if writeln!(out, "{}", file.display()).is_err() {
                        break;
                    }
                }
                EXIT_PASS
            }
            Err(e) => {
                super::say(&e);
                EXIT_ERROR
            }
        },
    }
}
