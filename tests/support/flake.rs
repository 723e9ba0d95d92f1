//! `flake.nix` evaluated by Nix against a stand-in for nixpkgs (`flake_stub.nix` beside this
//! file; nixpkgs cannot be fetched here): what its outputs are, and the build script of its
//! `bootCheck` derivation, which the sandbox test runs as the Nix build would (`bash` with
//! stdenv's `set -eu -o pipefail`, `$out` set, the harness on `PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::repo_root;

/// The marker comment on the line before the harness's command in `bootCheck`'s script.
pub const MARKER: &str = "# bootCheck command";

/// What the stand-in evaluation returns (see `flake_stub.nix`), as JSON.
pub fn evaluate(image: &Path, scenarios: &[PathBuf]) -> serde_json::Value {
    evaluate_with(image, scenarios, true)
}

/// [`evaluate`] with the check's `failOnFail` as given.
pub fn evaluate_with(image: &Path, scenarios: &[PathBuf], fail_on_fail: bool) -> serde_json::Value {
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/flake_stub.nix");
    let scenarios: Vec<String> = scenarios
        .iter()
        .map(|path| format!("{:?}", path.display().to_string()))
        .collect();
    let evaluated = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(&stub)
        .arg("--arg")
        .arg("flake")
        .arg(repo_root().join("flake.nix"))
        .arg("--argstr")
        .arg("image")
        .arg(image)
        .arg("--arg")
        .arg("scenarios")
        .arg(format!("[ {} ]", scenarios.join(" ")))
        .arg("--arg")
        .arg("failOnFail")
        .arg(fail_on_fail.to_string())
        .output()
        .expect("nix-instantiate runs (Debian's nix-bin; .ci/setup installs it)");
    assert!(
        evaluated.status.success(),
        "evaluating flake.nix: {}",
        String::from_utf8_lossy(&evaluated.stderr)
    );
    serde_json::from_slice(&evaluated.stdout).expect("nix-instantiate --json prints JSON")
}

/// The build script of `bootCheck { name = "r2s"; image; scenarios; }`.
pub fn boot_check_script(image: &Path, scenarios: &[PathBuf]) -> String {
    boot_check_script_with(image, scenarios, true)
}

/// The build script of `bootCheck { name = "r2s"; image; scenarios; failOnFail; }`.
pub fn boot_check_script_with(image: &Path, scenarios: &[PathBuf], fail_on_fail: bool) -> String {
    let evaluated = evaluate_with(image, scenarios, fail_on_fail);
    evaluated["check"]["buildCommand"]
        .as_str()
        .expect("the check has a build script")
        .to_owned()
}

/// The harness's command line in that script: the line after [`MARKER`].
pub fn boot_check_command(script: &str) -> &str {
    let mut lines = script.lines().skip_while(|line| !line.starts_with(MARKER));
    assert!(lines.next().is_some(), "no `{MARKER}` line in\n{script}");
    lines.next().expect("a line follows the marker")
}
