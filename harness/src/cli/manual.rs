//! `harness completions SHELL` and `harness man`: generated from the command-line definition,
//! so they never disagree with it.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, EXIT_ERROR, EXIT_PASS};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "harness", &mut script);
    write_stdout(&script)
}

/// Writes the manual page to stdout, or every page (`harness.1`, `harness-run.1`, …) into
/// `dir`.
pub fn man(dir: Option<&Path>) -> u8 {
    let command = Cli::command();
    match dir {
        None => match page(&command) {
            Ok(roff) => write_stdout(&roff),
            Err(e) => {
                super::say(format!("cannot render the manual page: {e}"));
                EXIT_ERROR
            }
        },
        Some(dir) => match clap_mangen::generate_to(command, dir) {
            Ok(()) => EXIT_PASS,
            Err(e) => {
                super::say(format!(
                    "cannot write the manual pages into {}: {e}",
                    dir.display()
                ));
                EXIT_ERROR
            }
        },
    }
}

/// The roff page of `command`.
fn page(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut roff)?;
    Ok(roff)
}

fn write_stdout(bytes: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => EXIT_PASS,
        Err(e) => {
            super::say(format!("cannot write to stdout: {e}"));
            EXIT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bash_completion_offers_the_subcommands_and_runs_flags() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "harness",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for word in [
            "run",
            "inspect",
            "flash",
            "console",
            "--retries",
            "--message-format",
            "--filter",
        ] {
            assert!(script.contains(word), "{word} missing from the bash completion");
        }
    }

    #[test]
    fn the_manual_page_is_roff_naming_the_command_and_its_subcommands() {
        let roff = String::from_utf8(page(&Cli::command()).unwrap()).unwrap();
        assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{}", &roff[..80]);
        assert!(roff.contains(".TH harness 1"), "no title header");
        assert!(roff.contains("harness\\-run(1)"), "no reference to the run page");
        assert!(roff.contains("\\-\\-verbose"), "no -v");
    }
}
