//! The harness as a user installs it: `cargo install --path harness`, or `cargo install --git
//! URL` from a clone of the checkout's `HEAD` (as README and the CI recipes install it), each
//! into a root of its own under the target directory. Offline, and into the target directory
//! the tests were built in, so that it reuses what is built there: `--path` is a link, `--git`
//! builds `r2s-harness` again from the clone (20 s to a minute on two loaded cores;
//! BENCHMARKS.md) and no dependency. Concurrent test processes take turns
//! on a lock file; each gets a binary installed from the current sources (`--git`: the
//! current commit).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{finish, repo_root};

/// A rebuild of the harness binary under load, with margin.
const INSTALL_LIMIT: Duration = Duration::from_secs(1200);

/// The target directory the tests were built in (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_owned)
        .expect("the test runs from <target>/<profile>/deps")
}

/// `cargo install --path harness --root <target>/installed --debug --offline --locked`, once
/// per test process, and the installed binary.
pub fn installed_harness() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let harness = repo_root().join("harness");
    let (root, _lock) = locked_root("installed");
    cargo_install(&root, &["--path", harness.to_str().expect("a UTF-8 path")]).0
}

/// `<target>/NAME`, created, and its lock, held by this process until dropped.
fn locked_root(name: &str) -> (PathBuf, std::fs::File) {
    let root = target_dir().join(name);
    std::fs::create_dir_all(&root).expect("creating the install root");
    let lock = std::fs::File::create(root.join(".lock")).expect("creating the install lock");
    lock.lock().expect("taking the install lock");
    (root, lock)
}

/// `cargo install SOURCE… --root ROOT --debug --offline --locked --force --bin harness`, which
/// must succeed: the installed binary, and what cargo said.
fn cargo_install(root: &Path, source: &[&str]) -> (PathBuf, String) {
    let mut args = vec!["install"];
    args.extend_from_slice(source);
    let root_arg = root.to_str().expect("a UTF-8 path");
    args.extend([
        "--root",
        root_arg,
        "--debug",
        "--offline",
        "--locked",
        "--force",
        "--bin",
        "harness",
    ]);
    let installed = cargo(&target_dir(), &args);
    assert_eq!(installed.code(), Some(0), "{}", installed.explain());
    let bin = root.join("bin").join("harness");
    assert!(
        bin.is_file(),
        "{} not installed: {}",
        bin.display(),
        installed.explain()
    );
    (bin, installed.stderr)
}

/// `cargo install --git file://<clone of HEAD> --root <target>/installed-git --debug --offline
/// --locked`, once per test process, and the installed binary with cargo's output (which names
/// the commit installed).
pub fn installed_from_git() -> (PathBuf, String) {
    static INSTALLED: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install_from_git).clone()
}

/// The commit the checkout's `HEAD` names.
pub fn head_commit() -> String {
    let head = git(&repo_root(), &["rev-parse", "HEAD"]);
    head.trim().to_owned()
}

fn install_from_git() -> (PathBuf, String) {
    let target = target_dir();
    let (root, _lock) = locked_root("installed-git");
    // A clone of its own, brought to HEAD: what a user's `--git URL` fetches.
    let clone = target.join("git-install").join("r2s-harness");
    if !clone.join(".git").is_dir() {
        let _ = std::fs::remove_dir_all(&clone);
        let from = repo_root();
        git(
            &from,
            &[
                "clone",
                "--quiet",
                "--no-local",
                ".",
                clone.to_str().expect("a UTF-8 path"),
            ],
        );
    }
    let from = repo_root();
    git(
        &clone,
        &["fetch", "--quiet", from.to_str().expect("a UTF-8 path"), "HEAD"],
    );
    git(&clone, &["reset", "--quiet", "--hard", "FETCH_HEAD"]);
    let url = format!("file://{}", clone.display());
    // Under --offline, cargo refuses a git source it has not fetched into its own database, and
    // installs the commit it fetched last. Fetching it needs no network (a file:// URL): a
    // package the repository does not have makes cargo stop right after the fetch, before it
    // resolves anything from the registry.
    let fetched = cargo(
        &target,
        &["install", "--git", &url, "--locked", "r2s-harness-fetch-only"],
    );
    assert!(
        fetched.stderr.contains("could not find `r2s-harness-fetch-only`"),
        "fetching {url} into cargo's git database: {}",
        fetched.explain()
    );
    cargo_install(&root, &["--git", &url, "r2s-harness"])
}

/// `cargo ARGS` with the tests' target directory, within the install's limit.
fn cargo(target: &Path, args: &[&str]) -> super::Finished {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(program);
    // What cargo sets for the test process (CARGO_MANIFEST_DIR, CARGO_PKG_…) would reach the
    // crates it builds and make their fingerprints differ from a user's: a rebuild every time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            command.env_remove(&*name);
        }
    }
    command
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{command:?}");
    let started = Instant::now();
    finish(
        command.spawn().expect("cargo runs"),
        shown,
        started,
        INSTALL_LIMIT,
    )
}

/// `git ARGS` in `dir`, which must succeed; its stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        super::explain_output(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
