//! `INCLUDE` and `MENU INCLUDE` followed as U-Boot's pxe code follows them: each included file
//! is read (paths resolve like `LINUX` paths) and parsed, its own includes in turn. U-Boot gives
//! up past 16 levels ("Maximum nesting (16) exceeded") and rejects the whole configuration
//! ("Error parsing config file"), so a loop boots nothing; so does an included file that is
//! missing or that it cannot parse.

use std::fmt;

use super::entry::Files;
use crate::image::boot_config::{resolve, Found};
use crate::image::{limits, Config, ImageError};

/// U-Boot's `MAX_NEST_LEVEL`.
pub const MAX_NEST: usize = 16;
/// Included files read at most, whatever their shape: a file including itself twice per
/// level would otherwise ask for 2^16 reads.
pub const MAX_FILES: usize = 256;

/// One step of an include chain: the including file and the line of its `INCLUDE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The including file, inside the partition.
    pub file: String,
    /// The `INCLUDE` line.
    pub line: usize,
}

/// Why U-Boot would reject the configuration because of an include.
#[derive(Debug, PartialEq, Eq)]
pub enum IncludeProblem {
    /// An included file includes one of the files including it.
    Loop {
        /// The chain from extlinux.conf to the `INCLUDE` that closes the loop.
        chain: Vec<Step>,
        /// The file included again.
        again: String,
    },
    /// Deeper than U-Boot follows.
    TooDeep {
        /// The chain that is too long.
        chain: Vec<Step>,
    },
    /// More included files than this check reads.
    TooMany,
    /// An included file that is not there, or cannot be read or parsed.
    Unreadable {
        /// The chain up to the `INCLUDE` of the file.
        chain: Vec<Step>,
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn show(chain: &[Step]) -> String {
    chain
        .iter()
        .map(|s| format!("{} line {}", s.file, s.line))
        .collect::<Vec<_>>()
        .join(" → ")
}

impl fmt::Display for IncludeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncludeProblem::Loop { chain, again } => write!(
                f,
                "INCLUDE loop: {} includes {again} again; U-Boot stops after {MAX_NEST} levels (\"Maximum \
                 nesting ({MAX_NEST}) exceeded\") and rejects the file (\"Error parsing config file\")",
                show(chain)
            ),
            IncludeProblem::TooDeep { chain } => write!(
                f,
                "INCLUDEs nest deeper than {MAX_NEST} levels ({}); U-Boot rejects the file (\"Maximum nesting \
                 ({MAX_NEST}) exceeded\", \"Error parsing config file\")",
                show(chain)
            ),
            IncludeProblem::TooMany => write!(f, "more than {MAX_FILES} included files"),
            IncludeProblem::Unreadable { chain, file, reason } => write!(
                f,
                "{} includes {file}, which {reason}; U-Boot rejects the file (\"Error parsing config file\")",
                show(chain)
            ),
        }
    }
}

/// Follows every include of `found`, reading from `files` (its partition's filesystem);
/// returns how many files were included.
pub fn follow(found: &Found, files: &dyn Files) -> Result<usize, IncludeProblem> {
    let mut walk = Walk { files, read: 0 };
    walk.config(
        &found.path,
        &found.config,
        &mut Vec::new(),
        &mut vec![found.path.clone()],
    )?;
    Ok(walk.read)
}

struct Walk<'a> {
    files: &'a dyn Files,
    read: usize,
}

impl Walk<'_> {
    fn config(
        &mut self,
        path: &str,
        config: &Config,
        chain: &mut Vec<Step>,
        open: &mut Vec<String>,
    ) -> Result<(), IncludeProblem> {
        for (line, written) in &config.includes {
            chain.push(Step {
                file: path.to_owned(),
                line: *line,
            });
            let included = resolve(path, written);
            if open.contains(&included) {
                return Err(IncludeProblem::Loop {
                    chain: chain.clone(),
                    again: included,
                });
            }
            if chain.len() > MAX_NEST {
                return Err(IncludeProblem::TooDeep { chain: chain.clone() });
            }
            if self.read == MAX_FILES {
                return Err(IncludeProblem::TooMany);
            }
            self.read += 1;
            let unreadable = |reason: String| IncludeProblem::Unreadable {
                chain: chain.clone(),
                file: included.clone(),
                reason,
            };
            let limit = limits::EXTLINUX_CONF as usize;
            let text = match self.files.head(&included, limit + 1) {
                Ok(Some((size, _))) if size > limits::EXTLINUX_CONF => {
                    return Err(unreadable(format!("is {size} bytes, more than {limit}")))
                }
                Ok(Some((_, bytes))) => String::from_utf8(bytes).map_err(|e| {
                    unreadable(format!("is not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
                })?,
                Ok(None) => return Err(unreadable("does not exist".to_owned())),
                Err(e) => return Err(unreadable(format!("cannot be read: {}", ImageError::detail(&e)))),
            };
            let child = Config::parse(&text).map_err(|e| unreadable(format!("U-Boot cannot parse: {e}")))?;
            open.push(included.clone());
            self.config(&included, &child, chain, open)?;
            open.pop();
            chain.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::inspect::test_parts::found;

    struct Texts(BTreeMap<&'static str, &'static str>);

    impl Files for Texts {
        fn head(&self, path: &str, len: usize) -> Result<Option<(u64, Vec<u8>)>, ImageError> {
            Ok(self
                .0
                .get(path)
                .map(|t| (t.len() as u64, t.as_bytes()[..len.min(t.len())].to_vec())))
        }

        fn exists(&self, path: &str) -> Result<bool, ImageError> {
            Ok(self.0.contains_key(path))
        }
    }

    #[test]
    fn a_file_including_itself_is_a_loop_naming_the_line() {
        let conf = "DEFAULT a\nINCLUDE extlinux.conf\nLABEL a\n  LINUX /Image\n";
        let files = Texts(BTreeMap::from([("/extlinux/extlinux.conf", conf)]));
        let problem = follow(&found(conf), &files).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "INCLUDE loop: /extlinux/extlinux.conf line 2 includes /extlinux/extlinux.conf again; U-Boot stops \
             after 16 levels (\"Maximum nesting (16) exceeded\") and rejects the file (\"Error parsing config \
             file\")"
        );
    }

    #[test]
    fn a_loop_through_two_files_names_both() {
        let conf = "INCLUDE a.conf\n";
        let files = Texts(BTreeMap::from([
            (
                "/extlinux/a.conf",
                "TIMEOUT 1\nMENU INCLUDE /extlinux/extlinux.conf\nLABEL a\n  LINUX /Image\n",
            ),
            ("/extlinux/extlinux.conf", conf),
        ]));
        let problem = follow(&found(conf), &files).unwrap_err();
        assert!(
            matches!(&problem, IncludeProblem::Loop { chain, again } if chain.len() == 2 && again == "/extlinux/extlinux.conf")
        );
        assert!(problem
            .to_string()
            .starts_with("INCLUDE loop: /extlinux/extlinux.conf line 1 → /extlinux/a.conf line 2 includes"));
    }

    #[test]
    fn a_missing_included_file_is_a_problem_and_good_includes_are_counted() {
        let conf = "INCLUDE gone.conf\n";
        let files = Texts(BTreeMap::new());
        let problem = follow(&found(conf), &files).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "/extlinux/extlinux.conf line 1 includes /extlinux/gone.conf, which does not exist; U-Boot rejects the \
             file (\"Error parsing config file\")"
        );
        let conf = "INCLUDE a.conf\nINCLUDE a.conf\n";
        let files = Texts(BTreeMap::from([(
            "/extlinux/a.conf",
            "LABEL a\n  LINUX /Image\n",
        )]));
        assert_eq!(follow(&found(conf), &files), Ok(2));
    }
}
