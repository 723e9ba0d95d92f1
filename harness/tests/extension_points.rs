//! What the README says a new step or image check takes, and what it says of the step kinds,
//! agrees with the code: the files it names exist and hold what it says they hold, and its
//! lists of steps are the step table's.

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

#[test]
fn the_files_the_readme_names_for_a_new_step_or_check_hold_what_it_says() {
    let readme = readme();
    let text = passage(&readme, "**A new step**", "**A new report**");
    for named in quoted(&text).into_iter().filter(|word| word.ends_with(".rs")) {
        source(named);
    }
    let claims = [
        ("scenario/step_kind.rs", "step_table! {"),
        ("scenario/raw.rs", "pub(crate) struct RawStep {"),
        ("scenario/model.rs", "pub enum Action {"),
        ("scenario/model.rs", "pub fn describe(&self)"),
        ("scenario/parse.rs", "match step_kind {"),
        ("runner/steps.rs", "match action {"),
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
    let table = source("scenario/step_kind.rs");
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
