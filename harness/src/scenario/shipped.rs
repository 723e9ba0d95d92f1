//! The shipped scenarios (the repository's `scenarios/` directory), embedded in the binary at
//! build time so that an installed harness runs them without its source tree, and written out
//! for a run or for the user to copy and change (`harness scenarios export DIR`, with the
//! built-in board profiles beside them).

use std::path::{Path, PathBuf};

/// Every shipped scenario file: its path relative to `scenarios/` (`/`-separated, e.g.
/// `network/lan-dhcp.toml`) and its text, in path order.
pub const SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_scenarios.rs"));

/// Why the shipped scenarios could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the shipped file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} exists and differs from the shipped file; not overwritten (export into a new directory)"
    )]
    Differs { path: PathBuf },
}

/// The subdirectory of an export that holds the built-in board profiles.
pub const BOARDS_DIR: &str = "boards";

/// Writes the shipped scenarios under `dir` (created if missing), keeping their
/// subdirectories, and the built-in board profiles under `dir/boards/` (`NAME.toml`, for
/// `--board PATH` once changed), and returns the files' paths. A file already there with the
/// same text is left as it is; one with other text (the user's edit) is never overwritten:
/// that is an error, before anything else is written.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut files = under(dir);
    files.extend(
        crate::board::BUILTIN
            .iter()
            .map(|(name, text)| (dir.join(BOARDS_DIR).join(format!("{name}.toml")), *text)),
    );
    for (path, text) in &files {
        match std::fs::read(path) {
            Ok(existing) if existing == text.as_bytes() => {}
            Ok(_) => return Err(ExportError::Differs { path: path.clone() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ExportError::Write {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    write(files)
}

/// Writes the shipped scenarios under `dir`, replacing what is there, and returns the paths
/// of the top-level ones, which a run without scenario arguments runs (as a directory given
/// to it would be: its `*.toml` files, not its subdirectories'). For the harness's own
/// output directory only: [`export`] is for the user's.
pub fn write_for_run(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let top_level: Vec<PathBuf> = SHIPPED
        .iter()
        .filter(|(relative, _)| !relative.contains('/'))
        .map(|(relative, _)| dir.join(relative))
        .collect();
    write(under(dir))?;
    Ok(top_level)
}

fn under(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    SHIPPED
        .iter()
        .map(|(relative, text)| (dir.join(relative), *text))
        .collect()
}

fn write(files: Vec<(PathBuf, &str)>) -> Result<Vec<PathBuf>, ExportError> {
    for (path, text) in &files {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, text));
        written.map_err(|source| ExportError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenarios_are_the_files_of_the_source_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        for (relative, text) in SHIPPED {
            assert_eq!(
                std::fs::read_to_string(root.join(relative)).unwrap(),
                *text,
                "{relative}"
            );
        }
        let names: Vec<&str> = SHIPPED.iter().map(|(relative, _)| *relative).collect();
        assert!(names.contains(&"boot-to-login.toml"), "{names:?}");
        assert!(names.contains(&"network/lan-dhcp.toml"), "{names:?}");
    }

    #[test]
    fn export_writes_every_file_with_its_subdirectory_and_the_board_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let written = export(dir.path()).unwrap();
        assert_eq!(written.len(), SHIPPED.len() + crate::board::BUILTIN.len());
        for (relative, text) in SHIPPED {
            assert_eq!(std::fs::read_to_string(dir.path().join(relative)).unwrap(), *text);
        }
        for (name, text) in crate::board::BUILTIN {
            let path = dir.path().join("boards").join(format!("{name}.toml"));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
            // Loaded from the file as from the name.
            let loaded = crate::board::Board::load(path.to_str().unwrap()).unwrap();
            assert_eq!(loaded.name, name);
        }
    }

    #[test]
    fn export_again_into_the_same_directory_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let first = export(dir.path()).unwrap();
        assert_eq!(export(dir.path()).unwrap(), first);
    }

    #[test]
    fn a_run_gets_the_top_level_scenarios_and_replaces_an_older_copy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shell-checks.toml"), "old").unwrap();
        let paths = write_for_run(dir.path()).unwrap();
        let expected: Vec<PathBuf> = SHIPPED
            .iter()
            .filter(|(relative, _)| !relative.contains('/'))
            .map(|(relative, _)| dir.path().join(relative))
            .collect();
        assert_eq!(paths, expected);
        assert!(paths.contains(&dir.path().join("boot-to-login.toml")));
        let (_, shell_checks) = SHIPPED.iter().find(|(r, _)| *r == "shell-checks.toml").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("shell-checks.toml")).unwrap(),
            *shell_checks
        );
    }

    #[test]
    fn export_never_overwrites_an_edited_file() {
        let dir = tempfile::tempdir().unwrap();
        let edited = dir.path().join("shell-checks.toml");
        std::fs::write(&edited, "name = \"mine\"\n").unwrap();
        let error = export(dir.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{} exists and differs from the shipped file; not overwritten (export into a new directory)",
                edited.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&edited).unwrap(), "name = \"mine\"\n");
        assert!(
            !dir.path().join("boot-to-login.toml").exists(),
            "nothing is written on refusal"
        );
    }
}
