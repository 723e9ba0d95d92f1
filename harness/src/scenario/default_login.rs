//! The harness's default login (root, the password in `R2S_PASSWORD`) on an image whose
//! console getty logs another user in by itself (agetty's `--autologin`, NixOS's
//! `services.getty.autologinUser`): no one can type root's name at that console, so the
//! default login is that user's, who needs no password. A login a scenario names otherwise is
//! left as written.

use super::model::{LoginRecipe, Password, Scenario, Start};
use super::step_kind::Action;

/// Makes `scenario`'s default logins, at its start and in its steps, `user`'s.
pub fn follow_autologin(scenario: &mut Scenario, user: &str) {
    let default = LoginRecipe::default_root();
    let follow = |who: &mut String, password: &Password| {
        if *who == default.user && *password == default.password {
            user.clone_into(who);
        }
    };
    if let Start::Login(recipe) = &mut scenario.start {
        follow(&mut recipe.user, &recipe.password);
    }
    for step in &mut scenario.steps {
        if let Action::Login {
            user: who, password, ..
        } = &mut step.action
        {
            follow(who, password);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::parse;

    const STEPS: &str = r#"name = "x"
[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }
[[steps]]
login = { user = "admin", password_env = "ADMIN_PASSWORD" }
[[steps]]
login = { user = "root", password_env = "OTHER" }
"#;

    #[test]
    fn only_the_default_root_logins_become_the_autologin_user() {
        let mut scenario = parse(STEPS, Path::new("x.toml")).unwrap();
        follow_autologin(&mut scenario, "nixos");
        let users: Vec<&str> = scenario
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Login { user, .. } => Some(user.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(users, ["nixos", "admin", "root"]);
    }

    #[test]
    fn a_login_start_left_to_the_harness_becomes_the_autologin_users_and_a_named_one_stays() {
        let user_of = |text: &str| {
            let mut scenario = parse(text, Path::new("x.toml")).unwrap();
            follow_autologin(&mut scenario, "nixos");
            match scenario.start {
                Start::Login(recipe) => recipe.user,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            user_of("name = \"x\"\nstart = \"login\"\n[[steps]]\nrun = \"true\"\n"),
            "nixos"
        );
        assert_eq!(
            user_of("name = \"x\"\nstart = \"login\"\nlogin = { user = \"admin\", password_env = \"P\" }\n[[steps]]\nrun = \"true\"\n"),
            "admin"
        );
    }
}
