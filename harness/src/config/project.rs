//! The project file, `r2s-harness.toml`: what a project's runs share (the image, the board,
//! the firmware, where passwords come from, the scenario directories), found upward from the
//! current directory, so that `harness run` in a checkout needs no flags. The command line
//! overrides each value. Relative paths are relative to the file's directory.
//!
//! ```toml
//! image = "result/sd-image/nixos-sd-image.img.zst"
//! board = "nanopi-r2s"                  # a built-in name, or a profile file
//! firmware = "/usr/share/qemu-efi/u-boot.bin"
//! scenarios = ["tests/r2s"]
//!
//! [passwords]                          # never the password itself: where it is
//! R2S_PASSWORD = { env = "CI_ROOT_PASSWORD" }
//! ADMIN_PASSWORD = { file = "secrets/admin-password" }
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{read_text, Diagnostic, ReadError, SourceText};

/// The file's name, looked for in the current directory and each one above it.
pub const PROJECT_FILE: &str = "r2s-harness.toml";

/// The most of a password file read: its first line is the password.
const MAX_PASSWORD_FILE: u64 = 4096;

/// A project file that could not be read or understood, as `path:line:column: message` with
/// the line and a caret under the key or value at fault.
pub type ProjectError = Diagnostic<ProjectErrorKind>;

/// What is wrong with a project file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectErrorKind {
    /// The file could not be read, is too large or is not UTF-8.
    #[error("cannot read project file: {0}")]
    Read(ReadError),
    /// Not TOML, or TOML that does not fit the schema: an unknown key (named), a wrong type.
    #[error("{message}")]
    Schema { message: String },
    /// A value of the right type that cannot be used; `key` names it (`passwords.X`).
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

/// Where a password variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Another environment variable (a CI secret's name).
    Env(String),
    /// The first line of a file (outside the repository, or ignored by it).
    File(PathBuf),
}

impl PasswordSource {
    /// The password; an error says where it was looked for, never what was found.
    pub fn read(&self) -> Result<String, String> {
        match self {
            PasswordSource::Env(name) => {
                std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))
            }
            PasswordSource::File(path) => {
                let mut text = String::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(MAX_PASSWORD_FILE).read_to_string(&mut text))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok(text.lines().next().unwrap_or_default().to_owned())
            }
        }
    }
}

/// A project file, read and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Project {
    /// The file it was read from.
    pub path: PathBuf,
    pub image: Option<PathBuf>,
    /// A built-in board name, or a profile file's path.
    pub board: Option<String>,
    pub firmware: Option<PathBuf>,
    pub scenarios: Vec<PathBuf>,
    /// Password variables (as scenarios' `password_env` name them) and where their values are.
    pub passwords: Vec<(String, PasswordSource)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    image: Option<String>,
    board: Option<String>,
    firmware: Option<String>,
    scenarios: Option<Vec<String>>,
    passwords: Option<BTreeMap<String, Spanned<toml::Value>>>,
}

/// The project file in `start` or the nearest directory above it, if any.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(PROJECT_FILE))
        .find(|candidate| candidate.is_file())
}

impl Project {
    /// Reads and checks the project file at `path`.
    pub fn load(path: &Path) -> Result<Project, ProjectError> {
        let text = read_text(path, ProjectErrorKind::Read)?;
        Project::parse(&text, path)
    }

    /// Checks project file text; `path` names it in errors and anchors its relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Project, ProjectError> {
        let source = SourceText::new(text, path);
        let file = Quoting { source, text };
        let raw: RawProject = toml::from_str(text).map_err(|e| {
            file.error(
                e.span(),
                ProjectErrorKind::Schema {
                    message: e.message().trim_end().to_owned(),
                },
            )
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let relative = |value: String| dir.join(value);
        let mut passwords = Vec::new();
        for (name, value) in raw.passwords.unwrap_or_default() {
            let span = value.span();
            let source = password_source(value.into_inner(), dir).map_err(|message| {
                file.error(
                    Some(span),
                    ProjectErrorKind::Invalid {
                        key: format!("passwords.{name}"),
                        message,
                    },
                )
            })?;
            passwords.push((name, source));
        }
        Ok(Project {
            path: path.to_owned(),
            image: raw.image.map(relative),
            // A built-in name stays a name; a profile file is found beside the project file.
            board: raw.board.map(|board| {
                if board.ends_with(".toml") || board.contains('/') {
                    relative(board).display().to_string()
                } else {
                    board
                }
            }),
            firmware: raw.firmware.map(relative),
            scenarios: raw
                .scenarios
                .unwrap_or_default()
                .into_iter()
                .map(relative)
                .collect(),
            passwords,
        })
    }
}

/// Errors about the file, quoting its line with a caret, except a line in or after the
/// `[passwords]` table: a mistake there may be a password written out, which no error repeats.
struct Quoting<'a> {
    source: SourceText<'a>,
    text: &'a str,
}

impl Quoting<'_> {
    fn error(&self, span: Option<std::ops::Range<usize>>, kind: ProjectErrorKind) -> ProjectError {
        let passwords_from = self
            .text
            .match_indices("passwords")
            .map(|(at, _)| self.text[..at].rfind('\n').map_or(0, |nl| nl + 1))
            .min();
        let mut error = self.source.error(span.clone(), kind);
        if span
            .zip(passwords_from)
            .is_some_and(|(span, from)| span.end > from)
        {
            error.excerpt = None;
        }
        error
    }
}

/// `{ env = "VAR" }` or `{ file = "PATH" }`; a password written out is refused, without
/// repeating it.
fn password_source(value: toml::Value, dir: &Path) -> Result<PasswordSource, String> {
    let toml::Value::Table(table) = value else {
        return Err(
            "give where the password is, { env = \"VARIABLE\" } or { file = \"PATH\" }, not the password: \
             a project file is shared"
                .to_owned(),
        );
    };
    let mut keys = table.into_iter();
    match (keys.next(), keys.next()) {
        (Some((key, toml::Value::String(var))), None) if key == "env" => Ok(PasswordSource::Env(var)),
        (Some((key, toml::Value::String(path))), None) if key == "file" => {
            Ok(PasswordSource::File(dir.join(path)))
        }
        _ => Err("expected exactly one of env = \"VARIABLE\" or file = \"PATH\"".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Project, ProjectError> {
        Project::parse(text, Path::new("/src/app/r2s-harness.toml"))
    }

    #[test]
    fn paths_are_relative_to_the_files_directory_and_a_board_name_stays_a_name() {
        let project = parse(
            "image = \"result/sd.img.zst\"\nboard = \"nanopi-r2s\"\nfirmware = \"/fw/u-boot.bin\"\n\
             scenarios = [\"tests/r2s\", \"more.toml\"]\n",
        )
        .unwrap();
        assert_eq!(project.image, Some(PathBuf::from("/src/app/result/sd.img.zst")));
        assert_eq!(project.board.as_deref(), Some("nanopi-r2s"));
        assert_eq!(project.firmware, Some(PathBuf::from("/fw/u-boot.bin")));
        assert_eq!(
            project.scenarios,
            [
                PathBuf::from("/src/app/tests/r2s"),
                PathBuf::from("/src/app/more.toml")
            ]
        );
    }

    #[test]
    fn a_board_profile_file_is_found_beside_the_project_file() {
        let project = parse("board = \"boards/bench.toml\"\n").unwrap();
        assert_eq!(project.board.as_deref(), Some("/src/app/boards/bench.toml"));
    }

    #[test]
    fn passwords_name_a_variable_or_a_file() {
        let project = parse(
            "[passwords]\nR2S_PASSWORD = { env = \"CI_SECRET\" }\nADMIN = { file = \"secrets/admin\" }\n",
        )
        .unwrap();
        assert_eq!(
            project.passwords,
            [
                (
                    "ADMIN".to_owned(),
                    PasswordSource::File("/src/app/secrets/admin".into())
                ),
                ("R2S_PASSWORD".to_owned(), PasswordSource::Env("CI_SECRET".into())),
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_file_the_key_and_its_place() {
        let error = parse("image = \"a.img\"\nimgae = \"b.img\"\n").unwrap_err();
        assert_eq!(error.path, Path::new("/src/app/r2s-harness.toml"));
        assert_eq!(error.position(), Some((2, 1)));
        let ProjectErrorKind::Schema { message } = &error.kind else {
            panic!("{error}");
        };
        assert!(message.starts_with("unknown field `imgae`"), "{message}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_at_its_place() {
        let error = parse("scenarios = \"tests\"\n").unwrap_err();
        assert_eq!(error.position(), Some((1, 13)));
        assert!(error.to_string().contains("invalid type: string"), "{error}");
    }

    #[test]
    fn a_password_written_out_is_refused_without_repeating_it() {
        let error = parse("[passwords]\nR2S_PASSWORD = \"hunter2\"\n").unwrap_err();
        let ProjectErrorKind::Invalid { key, .. } = &error.kind else {
            panic!("{error}");
        };
        assert_eq!(key, "passwords.R2S_PASSWORD");
        assert_eq!(error.path, Path::new("/src/app/r2s-harness.toml"));
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn a_syntax_error_among_the_passwords_does_not_quote_the_line() {
        let error = parse("image = \"a.img\"\n[passwords]\nR2S_PASSWORD = hunter2\n").unwrap_err();
        assert!(matches!(error.kind, ProjectErrorKind::Schema { .. }), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        // Above the table, the line is quoted as in every other file.
        let error = parse("image = 3\n[passwords]\n").unwrap_err();
        assert!(error.to_string().contains("image = 3"), "{error}");
    }

    #[test]
    fn a_password_source_with_both_or_neither_key_is_refused() {
        for text in [
            "X = { env = \"A\", file = \"b\" }",
            "X = {}",
            "X = { path = \"b\" }",
        ] {
            let error = parse(&format!("[passwords]\n{text}\n")).unwrap_err();
            assert!(
                error
                    .headline()
                    .ends_with("passwords.X: expected exactly one of env = \"VARIABLE\" or file = \"PATH\""),
                "{error}"
            );
        }
    }

    #[test]
    fn the_file_is_found_in_the_nearest_directory_upward() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(&deep), None);
        std::fs::write(root.path().join(PROJECT_FILE), "").unwrap();
        assert_eq!(find(&deep), Some(root.path().join(PROJECT_FILE)));
        std::fs::write(root.path().join("a").join(PROJECT_FILE), "").unwrap();
        assert_eq!(find(&deep), Some(root.path().join("a").join(PROJECT_FILE)));
    }

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        assert_eq!(PasswordSource::File(path).read(), Ok("s3cret".to_owned()));
        let missing = PasswordSource::Env("R2S_TEST_SURELY_UNSET_VARIABLE".into()).read();
        assert_eq!(
            missing,
            Err("environment variable R2S_TEST_SURELY_UNSET_VARIABLE is not set".into())
        );
    }
}
