//! The project file (`r2s-harness.toml`, see [`r2s_harness::config::project`]) applied to the
//! command line: each value it gives fills what the command line left unsaid; the command line
//! always wins, and so does a password variable already set in the environment.

use r2s_harness::config::project::{self, Project};

use super::{Cli, Command, EXIT_ERROR};

/// Finds the project file upward from the current directory (unless `--no-project`) and fills
/// `cli` from it. Runs before any thread is started: it may set password variables in the
/// process environment. Errs with the exit code when the file is broken.
pub fn apply(cli: &mut Cli) -> Result<(), u8> {
    if cli.no_project || !matches!(cli.command, Command::Run(_) | Command::Console(_)) {
        return Ok(());
    }
    let Some(path) = std::env::current_dir().ok().and_then(|dir| project::find(&dir)) else {
        return Ok(());
    };
    let project = Project::load(&path).map_err(|e| {
        super::say(&e);
        EXIT_ERROR
    })?;
    // On stderr: stdout may be a list (`run --list`) or JSON lines.
    if !super::human::get().quiet {
        eprintln!("harness: project file {}", path.display());
    }
    fill(&mut cli.command, &project);
    Ok(())
}

/// Fills what `command` left unsaid from `project`, and sets its password variables.
fn fill(command: &mut Command, project: &Project) {
    match command {
        Command::Run(args) => {
            if args.image.is_none() && args.serial.is_none() && args.farm.place.is_none() {
                args.image = project.image.clone();
            }
            if args.board.is_none() {
                args.board = project.board.clone();
            }
            // --firmware, then R2S_FIRMWARE, then the project file.
            if args.qemu.firmware.is_none() && std::env::var_os("R2S_FIRMWARE").is_none() {
                args.qemu.firmware = project.firmware.clone();
            }
            if args.scenarios.is_empty() && !args.health_only {
                args.scenarios = project.scenarios.clone();
            }
            set_passwords(project);
        }
        Command::Console(args) => {
            if args.board.is_none() {
                args.board = project.board.clone();
            }
            // --firmware, then R2S_FIRMWARE, then the project file.
            if args.qemu.firmware.is_none() && std::env::var_os("R2S_FIRMWARE").is_none() {
                args.qemu.firmware = project.firmware.clone();
            }
            // `console --from login` logs in as a scenario does.
            set_passwords(project);
        }
        _ => {}
    }
}

/// Sets each password variable the project file names and the environment does not, from its
/// source. One that cannot be read is left unset, with a warning; the scenarios that need it
/// are then reported as not runnable, as without a project file.
fn set_passwords(project: &Project) {
    for (name, source) in &project.passwords {
        if std::env::var_os(name).is_some() {
            continue;
        }
        match source.read() {
            // Safe here: nothing else runs yet (no runtime, no thread reads the environment).
            Ok(password) => std::env::set_var(name, password),
            Err(why) => super::warn(format!(
                "{}: password variable {name} not set: {why}",
                project.path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use r2s_harness::config::project::PasswordSource;

    use super::*;

    fn project(text: &str) -> Project {
        Project::parse(text, std::path::Path::new("/p/r2s-harness.toml")).unwrap()
    }

    #[test]
    fn console_gets_the_board_and_the_password_variables_of_the_project_file() {
        // Names of this test alone: the process environment is shared.
        std::env::set_var("R2S_TEST_CONSOLE_SECRET", "from-the-secret");
        std::env::remove_var("R2S_TEST_CONSOLE_PASSWORD");
        let mut cli = Cli::parse_from(["harness", "console", "--image", "x.img"]);
        let mut given = project("board = \"nanopi-r2s\"\n");
        given.passwords = vec![(
            "R2S_TEST_CONSOLE_PASSWORD".to_owned(),
            PasswordSource::Env("R2S_TEST_CONSOLE_SECRET".to_owned()),
        )];
        fill(&mut cli.command, &given);
        let Command::Console(args) = &cli.command else {
            panic!("not console")
        };
        assert_eq!(args.board.as_deref(), Some("nanopi-r2s"));
        assert_eq!(
            std::env::var("R2S_TEST_CONSOLE_PASSWORD").as_deref(),
            Ok("from-the-secret")
        );
    }

    #[test]
    fn the_command_line_wins_over_the_project_file() {
        let mut cli = Cli::parse_from([
            "harness",
            "run",
            "--image",
            "mine.img",
            "--board",
            "qemu-virt",
            "--firmware",
            "/flag/u-boot.bin",
            "a.toml",
        ]);
        let given = project(
            "image = \"p.img\"\nboard = \"nanopi-r2s\"\nfirmware = \"/p/u-boot.bin\"\nscenarios = [\"checks\"]\n",
        );
        fill(&mut cli.command, &given);
        let Command::Run(args) = &cli.command else {
            panic!("not run")
        };
        assert_eq!(args.image.as_deref(), Some(std::path::Path::new("mine.img")));
        assert_eq!(args.board.as_deref(), Some("qemu-virt"));
        assert_eq!(
            args.qemu.firmware.as_deref(),
            Some(std::path::Path::new("/flag/u-boot.bin"))
        );
        assert_eq!(args.scenarios, [std::path::PathBuf::from("a.toml")]);
    }
}
