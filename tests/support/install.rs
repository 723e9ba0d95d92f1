//! The harness as a user installs it: `cargo install --path harness`, into a root of its own
//! under the target directory. Offline, and into the target directory the tests were built
//! in, so that it reuses what is built there (a link, not a rebuild). Concurrent test
//! processes take turns on a lock file; each gets a binary installed from the current sources.

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
    let target = target_dir();
    let root = target.join("installed");
    std::fs::create_dir_all(&root).expect("creating the install root");
    let lock = std::fs::File::create(root.join(".lock")).expect("creating the install lock");
    lock.lock().expect("taking the install lock");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("install")
        .arg("--path")
        .arg(repo_root().join("harness"))
        .arg("--root")
        .arg(&root)
        .args(["--debug", "--offline", "--locked", "--force", "--bin", "harness"])
        .env("CARGO_TARGET_DIR", &target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{command:?}");
    let started = Instant::now();
    let installed = finish(
        command.spawn().expect("cargo runs"),
        shown,
        started,
        INSTALL_LIMIT,
    );
    assert_eq!(installed.code(), Some(0), "{}", installed.explain());
    let bin = root.join("bin").join("harness");
    assert!(
        bin.is_file(),
        "{} not installed: {}",
        bin.display(),
        installed.explain()
    );
    bin
}
