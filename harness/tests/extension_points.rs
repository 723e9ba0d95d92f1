//! What the README says a new step or image check takes, and what it says of the step kinds,
//! agrees with the code: the files it names exist and hold what it says they hold, its lists of
//! steps are the step table's, and no file but the step table and the runner's dispatch lists
//! the kinds of step.

use std::path::Path;

use r2s_harness::inspect::CheckName;
use r2s_harness::scenario::{CountdownNeed, StepKind};

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).expect("README.md is readable")
}

/// The README's text between `start` and the next `end`, its line breaks and indents made
/// single spaces (as `start` and `end` are written).
fn passage(readme: &str, start: &str, end: &str) -> String {
    let text = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("the README says {start:?}"))
        + start.len();
    let to = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("the README says {end:?} after {start:?}"));
    text[from..from + to].to_owned()
}

/// The words in backticks, in order.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A source file named as the README names it: under `harness/src/`, or from the repository's
/// root (`images/src/…`).
fn source(named: &str) -> String {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = [harness.join("src").join(named), harness.join("..").join(named)]
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the README names {named}, which is no file"));
    std::fs::read_to_string(path).expect("readable source")
}

/// Where a new kind of step is written: its row, and its arm in the runner's dispatch.
const STEP_TABLE: &str = "scenario/step_kind.rs";
const STEP_DISPATCH: &str = "runner/steps.rs";

#[test]
fn the_files_the_readme_names_for_a_new_step_or_check_hold_what_it_says() {
    let readme = readme();
    let text = passage(&readme, "**A new step**", "**A new report**");
    for named in quoted(&text).into_iter().filter(|word| word.ends_with(".rs")) {
        source(named);
    }
    let claims = [
        (STEP_TABLE, "step_table! {"),
        ("scenario/step_table.rs", "macro_rules! step_table {"),
        ("scenario/raw.rs", "impl<'de> Deserialize<'de> for NonEmpty {"),
        (STEP_DISPATCH, "match action {"),
        ("inspect/report.rs", "check_names! {"),
        ("inspect/mod.rs", "pub fn inspect_for("),
        ("inspect/entry/mod.rs", "pub fn check_entry("),
        ("inspect/qemu.rs", "pub fn checks("),
        ("images/src/fixture.rs", "broken-inspect-"),
    ];
    for (file, holds) in claims {
        assert!(
            text.contains(&format!("`{file}`")),
            "the README no longer names {file}"
        );
        assert!(source(file).contains(holds), "{file} holds no {holds:?}");
    }
    assert!(
        text.contains(&format!(
            "is one row of the step table in `{STEP_TABLE}` and one arm in `{STEP_DISPATCH}`"
        )),
        "the README no longer says a new step is one row and one arm"
    );
    let table = source(STEP_TABLE);
    for kind in StepKind::ALL {
        assert!(
            table.contains(&format!("\n    {} => ", kind.key())),
            "no row for {kind:?}"
        );
    }
    let checks = source("inspect/report.rs");
    for check in CheckName::ALL {
        assert!(
            checks.contains(&format!(" = \"{check}\",")),
            "no row for {check:?}"
        );
    }
}

#[test]
fn the_readme_names_the_steps_a_login_start_cannot_have() {
    let text = passage(
        &readme(),
        "Its steps cannot be ",
        ": those need the boot it skips",
    );
    let needing_boot: Vec<&str> = StepKind::ALL
        .iter()
        .filter(|kind| kind.needs_boot())
        .map(|kind| kind.key())
        .collect();
    assert_eq!(quoted(&text), needing_boot);
}

#[test]
fn the_readme_says_which_countdowns_each_step_keeps() {
    let text = passage(&readme(), "A scenario keeps what its steps need: ", " - ");
    // One clause per need: "`a` and `b` steps keep the autoboot countdown (…), a `menu` step
    // chooses its own entry (…), and `send`/`send_line` steps keep both (…)".
    let mut said: Vec<(&str, CountdownNeed)> = Vec::new();
    for clause in text.split("), ") {
        let need = if clause.contains("keep the autoboot countdown") {
            CountdownNeed::Autoboot
        } else if clause.contains("chooses its own entry") {
            CountdownNeed::Menu
        } else if clause.contains("keep both") {
            CountdownNeed::Both
        } else {
            panic!("a clause that names no countdown: {clause:?}")
        };
        let steps = &clause[..clause.find(" step").expect("the clause names steps")];
        said.extend(quoted(steps).into_iter().map(|key| (key, need)));
    }
    let mut table: Vec<(&str, CountdownNeed)> = StepKind::ALL
        .iter()
        .filter(|kind| kind.countdowns() != CountdownNeed::Neither)
        .map(|kind| (kind.key(), kind.countdowns()))
        .collect();
    said.sort_by_key(|(key, _)| *key);
    table.sort_by_key(|(key, _)| *key);
    assert_eq!(said, table);
}

#[test]
fn the_readmes_examples_show_every_step_key() {
    let readme = readme();
    let example_lines: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("\n```").next())
        .flat_map(str::lines)
        .collect();
    for kind in StepKind::ALL {
        let given = format!("{} = ", kind.key());
        assert!(
            example_lines
                .iter()
                .any(|line| line.starts_with(&given) || line.contains(&format!("or: {given}"))),
            "no example in the README gives `{}`",
            kind.key()
        );
    }
}

/// The crate's source files under `harness/src/`, relative to it, with their text; test code
/// left out (files of tests, and a file's `mod tests` at its end).
fn crate_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source folder") {
            let path = entry.expect("readable folder entry").path();
            if path.is_dir() {
                walk(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter(|path| {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            stem != "tests" && !stem.ends_with("_tests")
        })
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable source");
            let code = match text.find("#[cfg(test)]\nmod tests {") {
                Some(tests) => text[..tests].to_owned(),
                None => text,
            };
            let relative = path
                .strip_prefix(&root)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            (relative, code)
        })
        .collect()
}

/// The kinds of step a text names as `Action::Variant` or `StepKind::Variant`, each once.
fn kinds_named(code: &str) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for prefix in ["Action::", "StepKind::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            // A variant is CamelCase: this leaves out `StepKind::ALL` and the methods.
            let variant = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.contains(|c: char| c.is_lowercase());
            if variant && !named.contains(&name) {
                named.push(name);
            }
        }
    }
    named
}

/// A new kind of step is one row and one arm: no other code lists the kinds. A file naming one
/// kind uses it for a purpose of its own (the saved state's `save_state`, the login start's
/// `login`); a file naming two or more is where a list of kinds begins, which a new kind would
/// have to join.
#[test]
fn only_the_step_table_and_the_runners_dispatch_name_more_than_one_kind_of_step() {
    let sources = crate_sources();
    let mut lists = Vec::new();
    for (file, code) in &sources {
        let named = kinds_named(code);
        if named.len() > 1 && file != STEP_TABLE && file != STEP_DISPATCH {
            lists.push(format!("{file} names {}", named.join(", ")));
        }
    }
    assert!(
        lists.is_empty(),
        "kinds of step listed outside the table and the dispatch: {lists:?}"
    );
    for allowed in [STEP_TABLE, STEP_DISPATCH] {
        let (_, code) = sources
            .iter()
            .find(|(file, _)| file == allowed)
            .unwrap_or_else(|| panic!("no {allowed}"));
        assert!(
            kinds_named(code).len() >= StepKind::ALL.len() - 1,
            "{allowed} names too few kinds for the scan to be reading it"
        );
    }
}
