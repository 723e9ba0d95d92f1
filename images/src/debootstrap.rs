//! A Debian arm64 root tree from Debian's own packages: `debootstrap --foreign` on the host, then
//! its second stage and every other command that must run arm64 code inside the tree under PRoot
//! with `qemu-aarch64-static`. PRoot runs the emulator per process itself, so neither
//! binfmt_misc nor a booted machine is needed; as root, files keep their owners and modes. Every
//! step runs under [`seccomp::without_faccessat2`], without which PRoot 5.1 gets `access(2)`
//! checks wrong.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::recipe;
use crate::seccomp;
use crate::staging::put;
use crate::tool::run_within;
use crate::BuildError;

/// The Debian release the fixture is made of: the one the host's apt lists and the kernel
/// package come from.
pub const SUITE: &str = "bookworm";
/// Where the host says its Debian archive is (deb822 format).
const SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
/// The one-line format, on hosts without a deb822 file.
const SOURCES_LIST: &str = "/etc/apt/sources.list";
/// How long one step inside the tree may run: the second stage configures ~130 packages under
/// emulation, measured at 12.5 minutes on a two-core machine at load 10 to 16.
const STEP_LIMIT: Duration = Duration::from_secs(45 * 60);
/// Where the systemd-tmpfiles stand-in goes: the real one is `/usr/bin/systemd-tmpfiles`, and
/// `/usr/sbin` comes first on debootstrap's own PATH (`/sbin:/usr/sbin:/bin:/usr/bin`, with `/sbin`
/// a link to `usr/sbin`) and on [`TARGET_PATH`].
const TMPFILES_SHIM: &str = "usr/sbin/systemd-tmpfiles";
/// The PATH of commands inside the tree.
const TARGET_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Niceness of the emulated steps: they keep a core busy for minutes on a shared machine.
const NICENESS: &str = "10";

/// The Debian archive the host's apt uses, from its sources file, so that no mirror is named
/// by the project: the `URIs:` of the first deb822 stanza with a plain `bookworm` suite, or the
/// URL of the first `deb URL bookworm main` line.
pub fn mirror() -> Result<String, BuildError> {
    let deb822 = std::fs::read_to_string(SOURCES).ok();
    let list = std::fs::read_to_string(SOURCES_LIST).ok();
    deb822
        .as_deref()
        .and_then(mirror_from_deb822)
        .or_else(|| list.as_deref().and_then(mirror_from_list))
        .ok_or_else(|| BuildError::PackageUnavailable {
            package: format!("debootstrap's {SUITE} archive"),
            detail: format!("neither {SOURCES} nor {SOURCES_LIST} names a Debian archive with suite {SUITE}"),
        })
}

fn mirror_from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim))
                .unwrap_or("")
        };
        let is_deb = field("Types:").split_whitespace().any(|t| t == "deb");
        let has_suite = field("Suites:").split_whitespace().any(|s| s == SUITE);
        let uri = field("URIs:").split_whitespace().next()?;
        (is_deb && has_suite).then(|| uri.to_owned())
    })
}

fn mirror_from_list(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[')).collect();
        match words[..] {
            ["deb", uri, suite, ref components @ ..] if suite == SUITE && components.contains(&"main") => {
                Some(uri.to_owned())
            }
            _ => None,
        }
    })
}

/// debootstrap's first stage into `target` (which must not exist yet or be empty): minbase plus
/// `packages`, downloaded from `mirror` and unpacked, nothing configured.
pub fn first_stage(target: &Path, packages: &[&str], mirror: &str, cwd: &Path) -> Result<(), BuildError> {
    let mut command = Command::new("nice");
    command
        .args(["-n", NICENESS, "debootstrap"])
        .args(["--foreign", "--arch=arm64", "--variant=minbase"])
        .arg(format!("--include={}", packages.join(",")))
        .arg(SUITE)
        .arg(target)
        .arg(mirror);
    run_within(&mut command, cwd, STEP_LIMIT)?;
    // Where debootstrap cannot mount /proc it leaves a symlink to the host's; PRoot binds /proc
    // over a directory.
    let proc_dir = target.join("proc");
    if proc_dir.is_symlink() {
        std::fs::remove_file(&proc_dir).map_err(BuildError::io("removing", &proc_dir))?;
        std::fs::create_dir(&proc_dir).map_err(BuildError::io("creating directory", &proc_dir))?;
    }
    put(
        &target.join(TMPFILES_SHIM),
        recipe::SYSTEMD_TMPFILES_SHIM.text.as_bytes(),
        0o755,
    )
}

/// Removes what [`first_stage`] added for the steps under PRoot, once they are done.
pub fn remove_shims(target: &Path) -> Result<(), BuildError> {
    let shim = target.join(TMPFILES_SHIM);
    std::fs::remove_file(&shim).map_err(BuildError::io("removing", &shim))
}

/// debootstrap's second stage, run inside `target`: unpacks and configures every package.
pub fn second_stage(target: &Path, cwd: &Path) -> Result<(), BuildError> {
    // The script finds its functions in /debootstrap only when `test -x` works on itself, which
    // qemu-user does not always emulate; named explicitly it needs no test.
    in_target(
        target,
        &[],
        &[("DEBOOTSTRAP_DIR", "/debootstrap")],
        &["/debootstrap/debootstrap", "--second-stage"],
        cwd,
    )
    .map(drop)
}

/// Runs `args` inside `target` under PRoot and qemu-aarch64-static, niced, with `env` added to
/// a clean environment and each `(host directory, path inside)` of `binds` bound into the tree,
/// and returns its stdout. PRoot keeps its own temporary files in `cwd` (not /tmp), so a killed
/// step leaves them where the build's work directory is removed.
pub fn in_target(
    target: &Path,
    binds: &[(&Path, &str)],
    env: &[(&str, &str)],
    args: &[&str],
    cwd: &Path,
) -> Result<String, BuildError> {
    let mut command = Command::new("nice");
    command
        .args(["-n", NICENESS, "proot", "-q", "qemu-aarch64-static", "-w", "/"])
        .args(["-b", "/proc", "-b", "/sys"]);
    for (host, inside) in binds {
        let mut bind = host.as_os_str().to_owned();
        bind.push(":");
        bind.push(inside);
        command.arg("-b").arg(bind);
    }
    command
        .arg("-r")
        .arg(target)
        .args(args)
        .env_clear()
        .env("PATH", TARGET_PATH)
        .env("LC_ALL", "C")
        .env("HOME", "/root")
        .env("PROOT_TMP_DIR", cwd)
        .envs(env.iter().copied());
    seccomp::without_faccessat2(&mut command);
    let out = run_within(&mut command, cwd, STEP_LIMIT)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_the_uri_of_the_stanza_with_the_release_suite() {
        let sources = "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm bookworm-updates\n\
                       Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n\
                       Suites: bookworm-security\nComponents: main\n";
        assert_eq!(
            mirror_from_deb822(sources).as_deref(),
            Some("http://archive.example/debian")
        );
        let security_first = "Types: deb\nURIs: http://security.example/s\nSuites: bookworm-security\n\n\
                              Types: deb-src deb\nURIs: http://archive.example/d\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_deb822(security_first).as_deref(),
            Some("http://archive.example/d")
        );
        assert_eq!(
            mirror_from_deb822("Types: deb-src\nURIs: http://x/\nSuites: bookworm\n"),
            None
        );
    }

    #[test]
    fn mirror_from_a_sources_list_skips_options_and_other_suites() {
        let list = "# comment\ndeb http://x/debian-security bookworm-security main\n\
                    deb [arch=amd64,arm64] http://archive.example/debian bookworm main contrib\n";
        assert_eq!(
            mirror_from_list(list).as_deref(),
            Some("http://archive.example/debian")
        );
        assert_eq!(mirror_from_list("deb http://x/ bookworm contrib\n"), None);
    }
}
