//! `run --filter PATTERN`: which scenarios a run keeps, by the name reports give them.
//!
//! A pattern holding `*`, `?` or `[` is a glob matched against the whole name (`*` any run of
//! characters, `?` one, `[a-c]` a class); any other pattern matches a name that contains it.
//! Matching is case-sensitive. With several patterns, a scenario matching any of them runs.

use globset::{Glob, GlobMatcher};

/// One `--filter` pattern, checked.
#[derive(Debug, Clone)]
pub enum NameFilter {
    /// Names containing this text.
    Substring(String),
    /// Names the glob matches whole.
    Glob(GlobMatcher),
}

/// A pattern that is not a glob.
#[derive(Debug, thiserror::Error)]
#[error("--filter {pattern:?} is not a glob: {reason}")]
pub struct FilterError {
    pub pattern: String,
    pub reason: String,
}

impl NameFilter {
    /// The filter `pattern` says: a glob if it holds `*`, `?` or `[`, else a substring.
    pub fn parse(pattern: &str) -> Result<NameFilter, FilterError> {
        if !pattern.contains(['*', '?', '[']) {
            return Ok(NameFilter::Substring(pattern.to_owned()));
        }
        // Scenario names hold no `/`; without literal_separator `*` crosses nothing special.
        Glob::new(pattern)
            .map(|glob| NameFilter::Glob(glob.compile_matcher()))
            .map_err(|e| FilterError {
                pattern: pattern.to_owned(),
                reason: e.kind().to_string(),
            })
    }

    /// Whether `name` is kept.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameFilter::Substring(text) => name.contains(text.as_str()),
            NameFilter::Glob(glob) => glob.is_match(name),
        }
    }
}

/// Whether `name` is kept by `filters`: by any of them, or by none given.
pub fn kept(filters: &[NameFilter], name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| f.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeps(pattern: &str, name: &str) -> bool {
        NameFilter::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn a_plain_pattern_keeps_names_containing_it() {
        assert!(keeps("login", "boot-to-login"));
        assert!(keeps("login", "login-and-run"));
        assert!(!keeps("login", "uboot-shell"));
        assert!(!keeps("Login", "boot-to-login"));
    }

    #[test]
    fn a_glob_must_match_the_whole_name() {
        assert!(keeps("boot-*", "boot-to-login"));
        assert!(!keeps("boot-*", "uboot-shell"));
        assert!(keeps("*-shell", "uboot-shell"));
        assert!(keeps("uboot-?nv", "uboot-env"));
        assert!(keeps("[su]*", "shell-checks"));
        assert!(!keeps("[su]*", "boot-to-login"));
    }

    #[test]
    fn any_of_several_filters_keeps_a_name_and_none_keeps_all() {
        let filters = [
            NameFilter::parse("uboot").unwrap(),
            NameFilter::parse("health").unwrap(),
        ];
        assert!(kept(&filters, "health"));
        assert!(kept(&filters, "uboot-env"));
        assert!(!kept(&filters, "boot-to-login"));
        assert!(kept(&[], "boot-to-login"));
    }

    #[test]
    fn a_broken_glob_is_an_error_naming_the_pattern() {
        let error = NameFilter::parse("boot-[").unwrap_err();
        assert_eq!(error.pattern, "boot-[");
        assert!(
            error
                .to_string()
                .starts_with("--filter \"boot-[\" is not a glob: "),
            "{error}"
        );
    }
}
