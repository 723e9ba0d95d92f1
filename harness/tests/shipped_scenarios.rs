//! Every scenario file shipped in the repository's `scenarios/` directory is valid.

use std::path::{Path, PathBuf};

use r2s_harness::scenario::{self, Action, LoginRecipe, MenuChoice, Start};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn shipped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shipped_dir())
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_parses() {
    for file in shipped_files() {
        let scenario = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name");
        assert_eq!(
            scenario.name,
            stem,
            "{}: name should match the file name",
            file.display()
        );
        assert!(
            scenario.description.is_some(),
            "{}: no description",
            file.display()
        );
    }
}

#[test]
fn shipped_scenarios_load_together() {
    let names: Vec<String> = scenario::load_all(&[shipped_dir()])
        .expect("valid scenarios")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "boot-to-login",
            "configure-state",
            "extlinux-menu",
            "from-configured-state",
            "login-and-run",
            "menu-from-uboot",
            "shell-checks",
            "shell-fresh-state",
            "uboot-env",
            "uboot-shell"
        ]
    );
}

#[test]
fn from_configured_state_starts_where_configure_state_saves() {
    let scenarios = scenario::load_all(&[shipped_dir()]).expect("valid scenarios");
    let from = scenarios
        .iter()
        .find(|s| s.name == "from-configured-state")
        .expect("shipped");
    let Start::Saved(saved) = &from.start else {
        panic!("{:?}", from.start)
    };
    let recipe = saved
        .recipe
        .as_ref()
        .expect("resolved among the shipped scenarios");
    assert_eq!(recipe.scenario, "configure-state");
    assert_eq!(recipe.base, Start::Login(LoginRecipe::default_root()));
}

#[test]
fn shell_scenarios_start_at_a_root_login() {
    for name in ["shell-checks", "shell-fresh-state"] {
        let scenario = scenario::load(&shipped_dir().join(format!("{name}.toml"))).expect("valid scenario");
        assert_eq!(
            scenario.start,
            Start::Login(LoginRecipe::default_root()),
            "{name}"
        );
    }
}

#[test]
fn extlinux_menu_scenario_picks_generation_two() {
    let scenario = scenario::load(&shipped_dir().join("extlinux-menu.toml")).expect("valid scenario");
    assert!(
        matches!(&scenario.steps[0].action, Action::Menu(MenuChoice::Label(l)) if l == "nixos-2-default")
    );
    let described: Vec<String> = scenario.steps.iter().map(|s| s.describe()).collect();
    assert_eq!(
        described,
        [
            "menu nixos-2-default",
            "login root",
            r#"run "readlink /run/booted-system""#,
        ]
    );
}

#[test]
fn boot_to_login_keys_only_on_what_every_system_prints() {
    // NixOS, the busybox fixtures and systemd images all print these; the stages between them
    // are timed by the runner's own markers.
    let scenario = scenario::load(&shipped_dir().join("boot-to-login.toml")).expect("valid scenario");
    let expected: Vec<String> = scenario
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Expect(pattern) => pattern.to_string(),
            other => panic!("not an expect step: {other:?}"),
        })
        .collect();
    assert_eq!(
        expected,
        ["\"U-Boot 20\"", "\"Starting kernel ...\"", "\"login:\""]
    );
}
