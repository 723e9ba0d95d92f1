//! Start states as specifications: `start = "uboot"`, `save_state` steps, and how
//! `start = "<name>"` is resolved among the scenarios loaded together.

use std::path::{Path, PathBuf};

use super::tests::{error_of, parse_ok};
use super::*;

/// What replaying `recipe` does, base state's steps first, each as `describe` says it.
fn replayed(recipe: &SavedRecipe) -> Vec<String> {
    let mut steps: Vec<String> = recipe
        .base
        .saved_chain()
        .into_iter()
        .rev()
        .flat_map(|r| r.steps.iter().map(Step::describe))
        .collect();
    steps.extend(recipe.steps.iter().map(Step::describe));
    steps
}

/// Writes `files` (name, text) into a fresh directory and loads it.
fn load_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Vec<Scenario>, ScenarioError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let loaded = load_all(&[dir.path().to_owned()]);
    (dir, loaded)
}

const SAVER: &str = r#"name = "configure"
start = "login"

[[steps]]
run = "echo configured > /tmp/state"

[[steps]]
save_state = "configured"

[[steps]]
run = "cat /tmp/state"
"#;

const USER: &str = r#"name = "use-it"
start = "configured"

[[steps]]
run = "cat /tmp/state"
output = "^configured$"
"#;

#[test]
fn start_uboot_parses_and_takes_uboot_and_menu_steps() {
    let scenario =
        parse_ok("name = \"u\"\nstart = \"uboot\"\n[[steps]]\nuboot = \"version\"\n[[steps]]\nmenu = 2\n");
    assert_eq!(scenario.start, Start::Uboot);
    assert_eq!(scenario.start.word(), "uboot");
    assert!(scenario.start.from_snapshot());
}

#[test]
fn a_login_table_with_start_uboot_is_refused() {
    let message = error_of(
        "name = \"u\"\nstart = \"uboot\"\nlogin = { user = \"root\" }\n[[steps]]\nuboot = \"version\"\n",
    );
    assert!(
        message.starts_with("t.toml:3:1: a top-level `login`"),
        "{message}"
    );
}

#[test]
fn a_save_state_step_names_the_state_and_what_reaches_it() {
    let scenario = parse(SAVER, Path::new("configure.toml")).unwrap();
    assert_eq!(scenario.save_state_step(), Some((1, "configured")));
    let recipe = scenario.saved_recipe().unwrap();
    assert_eq!(recipe.name, "configured");
    assert_eq!(recipe.scenario, "configure");
    assert_eq!(recipe.base, Start::Login(LoginRecipe::default_root()));
    assert_eq!(recipe.steps.len(), 1);
    assert_eq!(recipe.steps[0].describe(), "run \"echo configured > /tmp/state\"");
    assert_eq!(scenario.steps[1].describe(), "save_state configured");
}

#[test]
fn a_built_in_start_state_cannot_be_a_saved_state_name() {
    let message = error_of("name = \"s\"\n[[steps]]\nsave_state = \"login\"\n");
    assert_eq!(
        message,
        "t.toml:3:14: \"login\" is a built-in start state; name the saved state something else"
    );
}

#[test]
fn a_state_name_with_a_slash_is_refused_at_the_value() {
    let message = error_of("name = \"s\"\n[[steps]]\nsave_state = \"../x\"\n");
    assert_eq!(
        message,
        "t.toml:3:14: '/' is not allowed in a state name (letters, digits and `-_.` are)"
    );
}

#[test]
fn a_second_save_state_step_points_at_its_key() {
    let message = error_of("name = \"s\"\n[[steps]]\nsave_state = \"a\"\n[[steps]]\nsave_state = \"b\"\n");
    assert_eq!(
        message,
        "t.toml:5:1: a scenario saves one state: this is its second `save_state` step"
    );
}

#[test]
fn a_scenario_cannot_start_from_the_state_it_saves() {
    let message = error_of("name = \"s\"\nstart = \"mine\"\n[[steps]]\nsave_state = \"mine\"\n");
    assert_eq!(
        message,
        "t.toml:2:9: the scenario starts from \"mine\", the state it saves itself"
    );
}

#[test]
fn an_unknown_start_word_lists_every_kind_of_start() {
    let message = error_of("name = \"s\"\nstart = \"boot me\"\n[[steps]]\nexpect = \"x\"\n");
    assert!(
        message.starts_with(
            "t.toml:2:9: unknown start state \"boot me\": write \"power-on\" (a cold boot), \"login\" (a root shell on the booted system), \"uboot\" (U-Boot's prompt) or the name of a state a `save_state` step saves"
        ),
        "{message}"
    );
}

#[test]
fn start_from_a_saved_state_is_resolved_from_the_scenario_that_saves_it() {
    let (_dir, loaded) = load_dir(&[("a-configure.toml", SAVER), ("b-use.toml", USER)]);
    let scenarios = loaded.unwrap();
    let Start::Saved(saved) = &scenarios[1].start else {
        panic!("{:?}", scenarios[1].start)
    };
    assert_eq!(saved.name, "configured");
    let recipe = saved.recipe.as_ref().expect("resolved");
    assert_eq!(recipe.scenario, "configure");
    assert_eq!(recipe.steps.len(), 1);
    assert_eq!(replayed(recipe).len(), 1);
}

#[test]
fn a_chain_of_saved_states_resolves_whatever_the_file_order() {
    let second = r#"name = "deeper"
start = "configured"

[[steps]]
run = "echo more >> /tmp/state"

[[steps]]
save_state = "more"
"#;
    let third = "name = \"last\"\nstart = \"more\"\n[[steps]]\nrun = \"cat /tmp/state\"\n";
    // `last` sorts first: it is read before the states it depends on.
    let (_dir, loaded) = load_dir(&[
        ("a-last.toml", third),
        ("b-deeper.toml", second),
        ("c.toml", SAVER),
    ]);
    let scenarios = loaded.unwrap();
    let Start::Saved(saved) = &scenarios[0].start else {
        panic!()
    };
    assert_eq!(
        replayed(saved.recipe.as_ref().unwrap()),
        [
            "run \"echo configured > /tmp/state\"",
            "run \"echo more >> /tmp/state\""
        ]
    );
}

#[test]
fn a_start_no_loaded_scenario_saves_is_an_error_of_its_file() {
    let (dir, loaded) = load_dir(&[("use.toml", USER)]);
    let message = loaded.unwrap_err().to_string();
    let file: PathBuf = dir.path().join("use.toml");
    assert!(
        message.starts_with(&format!(
            "{}: start = \"configured\": no scenario loaded with this one saves a state of that name",
            file.display()
        )),
        "{message}"
    );
}

#[test]
fn a_state_saved_by_two_scenarios_is_an_error() {
    let twin = SAVER.replace("name = \"configure\"", "name = \"configure-again\"");
    let (_dir, loaded) = load_dir(&[("a.toml", SAVER), ("b.toml", &twin)]);
    let message = loaded.unwrap_err().to_string();
    assert!(
        message.contains("state \"configured\" is saved already by scenario \"configure\""),
        "{message}"
    );
}

#[test]
fn states_that_start_from_each_other_are_an_error() {
    let a = "name = \"a\"\nstart = \"from-b\"\n[[steps]]\nsave_state = \"from-a\"\n";
    let b = "name = \"b\"\nstart = \"from-a\"\n[[steps]]\nsave_state = \"from-b\"\n";
    let (_dir, loaded) = load_dir(&[("a.toml", a), ("b.toml", b)]);
    let message = loaded.unwrap_err().to_string();
    assert!(message.contains("lead back to it"), "{message}");
}

#[test]
fn a_start_without_a_network_of_its_own_inherits_the_nearest_saving_scenarios() {
    let networked =
        "name = \"net\"\nstart = \"login\"\nfatal = [\"BROKEN\"]\n[network]\nforward = [\"tcp:22\"]\n\
                     [[steps]]\nrun = \"true\"\n[[steps]]\nsave_state = \"netted\"\n";
    let middle = "name = \"middle\"\nstart = \"netted\"\n[[steps]]\nrun = \"true\"\n[[steps]]\nsave_state = \"deeper\"\n";
    let user = "name = \"user\"\nstart = \"deeper\"\n[[steps]]\nrun = \"true\"\n";
    let (_dir, loaded) = load_dir(&[("a.toml", networked), ("b.toml", middle), ("c.toml", user)]);
    let loaded = loaded.unwrap();
    let user = loaded.iter().find(|s| s.name == "user").unwrap();
    let chain: Vec<&str> = user.start.saved_chain().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(chain, ["deeper", "netted"]);
    let network = user.start.inherited_network().expect("the network of `net`");
    assert_eq!(network.forwards.len(), 1);
    let fatal: Vec<String> = user
        .start
        .saved_chain()
        .iter()
        .flat_map(|r| r.fatal.iter().map(|p| p.to_string()))
        .collect();
    assert_eq!(fatal, ["\"BROKEN\""]);
    assert!(Start::Login(LoginRecipe {
        user: "root".into(),
        password: Password::None,
        prompt: None
    })
    .inherited_network()
    .is_none());
}
