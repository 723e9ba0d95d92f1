//! `harness scenarios export DIR`: the shipped scenarios, built into the binary, written out.

use r2s_harness::scenario::shipped;

use super::{ScenariosCommand, EXIT_ERROR, EXIT_PASS};

pub fn scenarios(command: ScenariosCommand) -> u8 {
    match command {
        ScenariosCommand::Export { dir } => match shipped::export(&dir) {
            Ok(files) => {
                for file in &files {
                    println!("{}", file.display());
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
