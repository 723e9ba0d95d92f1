//! Every scenario file shipped in the repository's `scenarios/` directory is valid.

use std::path::{Path, PathBuf};

use r2s_harness::image::facts::{EntryFacts, ImageFacts};
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

/// What a NixOS image with `generations` menu entries, hostname `nixos-r2s`, declares.
fn image(generations: usize) -> ImageFacts {
    ImageFacts {
        entries: (1..=generations)
            .map(|n| EntryFacts {
                label: if n == 1 {
                    "nixos-default".to_owned()
                } else {
                    format!("nixos-{n}-default")
                },
                system: Some(format!("hash{n}-nixos-system-nixos-r2s-25.05")),
                nixos: Some(true),
            })
            .collect(),
        hostname: Some("nixos-r2s".to_owned()),
        systemd: Some(true),
        units: Vec::new(),
        autologin: None,
        root_device: Some("/dev/disk/by-label/NIXOS_SD_USB".to_owned()),
        unread: Vec::new(),
    }
}

#[test]
fn extlinux_menu_scenario_picks_the_images_second_entry_and_expects_its_system() {
    let path = shipped_dir().join("extlinux-menu.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = scenario::parse_for(&text, &path, Some(&image(3))).expect("valid scenario");
    assert_eq!(scenario.skip, None);
    assert!(
        matches!(&scenario.steps[0].action, Action::Menu(MenuChoice::Label(l)) if l == "nixos-2-default")
    );
    let Action::Run {
        output: Some(output), ..
    } = &scenario.steps[2].action
    else {
        panic!("{:?}", scenario.steps[2].action)
    };
    assert_eq!(output.as_str(), "^/nix/store/hash2-nixos-system-nixos-r2s-25.05$");
}

#[test]
fn on_an_image_with_one_generation_only_the_menu_scenarios_are_skipped_saying_why() {
    let scenarios = scenario::load_all_for(&[shipped_dir()], Some(&image(1))).expect("valid scenarios");
    let skipped: Vec<(&str, &str)> = scenarios
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.skip.as_deref()?)))
        .collect();
    let why = "requires generations >= 2; the image's extlinux.conf has 1 entry";
    assert_eq!(skipped, [("extlinux-menu", why), ("menu-from-uboot", why)]);
}

#[test]
fn the_hostname_checks_expect_the_images_own_hostname() {
    let scenarios = scenario::load_all_for(&[shipped_dir()], Some(&image(1))).expect("valid scenarios");
    for name in ["login-and-run", "shell-checks"] {
        let scenario = scenarios.iter().find(|s| s.name == name).expect("shipped");
        let outputs: Vec<&str> = scenario
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Run {
                    output: Some(output), ..
                } => Some(output.as_str()),
                _ => None,
            })
            .collect();
        assert!(outputs.contains(&"^nixos-r2s$"), "{name}: {outputs:?}");
    }
}

#[test]
fn no_shipped_scenario_names_the_fixtures_hostname_generations_or_root_label() {
    for file in shipped_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for fixture_value in ["ivy", "nixos-2-default", "20250701", "NIXOS_SD"] {
            assert!(
                !text.contains(fixture_value),
                "{} names {fixture_value}",
                file.display()
            );
        }
    }
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

#[test]
fn on_an_image_whose_systems_are_not_nixos_the_menu_scenarios_are_skipped_saying_why() {
    // The systemd fixtures' shape: store-like systems whose init is Debian's systemd, with no
    // nixos-version, so nothing records /run/booted-system.
    let mut debian = image(2);
    for entry in &mut debian.entries {
        entry.nixos = Some(false);
    }
    let scenarios = scenario::load_all_for(&[shipped_dir()], Some(&debian)).expect("valid scenarios");
    let skipped: Vec<(&str, &str)> = scenarios
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.skip.as_deref()?)))
        .collect();
    let why = "requires nixos; entry 1 (nixos-default) boots /nix/store/hash1-nixos-system-nixos-r2s-25.05, \
               which holds no nixos-version: not a NixOS system, so nothing records it at /run/booted-system";
    assert_eq!(skipped, [("extlinux-menu", why), ("menu-from-uboot", why)]);
}

#[test]
fn the_root_check_compares_against_the_root_device_the_image_names() {
    let scenarios = scenario::load_all_for(&[shipped_dir()], Some(&image(1))).expect("valid scenarios");
    let checks = scenarios
        .iter()
        .find(|s| s.name == "shell-checks")
        .expect("shipped");
    let Action::Run { command, .. } = &checks.steps[2].action else {
        panic!("{:?}", checks.steps[2].action)
    };
    assert!(
        command.ends_with(
            "test \"$(readlink -f \"$root\")\" = \"$(readlink -f /dev/disk/by-label/NIXOS_SD_USB)\""
        ),
        "{command}"
    );
}

#[test]
fn on_an_image_whose_getty_logs_a_user_in_every_shipped_login_is_that_users() {
    let mut autologin = image(2);
    autologin.autologin = Some("nixos".to_owned());
    let scenarios = scenario::load_all_for(&[shipped_dir()], Some(&autologin)).expect("valid scenarios");
    let mut logins = 0;
    for scenario in &scenarios {
        if let Start::Login(recipe) = &scenario.start {
            assert_eq!(recipe.user, "nixos", "{}", scenario.name);
            logins += 1;
        }
        for step in &scenario.steps {
            if let Action::Login { user, .. } = &step.action {
                assert_eq!(user, "nixos", "{}", scenario.name);
                logins += 1;
            }
        }
    }
    // shell-checks, shell-fresh-state and configure-state start at a login; login-and-run,
    // extlinux-menu and menu-from-uboot log in in a step.
    assert_eq!(logins, 6);
}
