//! `flake.nix`: it parses (`nix-instantiate --parse`), and evaluated against a stand-in for
//! nixpkgs (`support/flake_stub.nix`) it offers the wrapped harness and a `bootCheck` whose
//! build script, run here as Nix would run it with the installed harness, boots the image it
//! was given: a file, or the `sd-image/*.img*` of an `sdImage` derivation's output. The sandbox
//! test (tests/sandbox.rs) runs that same script on the busybox fixture.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use r2s_tests::flake::{boot_check_command, boot_check_script, boot_check_script_with, evaluate};
use r2s_tests::install::installed_harness;
use r2s_tests::*;

fn parse(path: &Path) -> Output {
    Command::new("nix-instantiate")
        .arg("--parse")
        .arg(path)
        .output()
        .expect("nix-instantiate runs (Debian's nix-bin; .ci/setup installs it)")
}

/// `script` run as stdenv runs a build (`set -eu -o pipefail`), with `$out` and the installed
/// harness on `PATH`, as the derivation's `nativeBuildInputs` puts it there.
fn build(script: &str, out: &Path, tmp: &Path) -> Output {
    let bin = installed_harness();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args([
            OsStr::new("-euo"),
            OsStr::new("pipefail"),
            OsStr::new("-c"),
            OsStr::new(script),
        ])
        .env("PATH", path)
        .env("out", out)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn the_flake_parses() {
    let parsed = parse(&repo_root().join("flake.nix"));
    assert!(parsed.status.success(), "{}", explain_output(&parsed));
}

#[test]
fn a_flake_with_a_syntax_error_is_refused_by_the_parse() {
    let dir = temp_dir();
    let flake = std::fs::read_to_string(repo_root().join("flake.nix")).unwrap();
    let broken = dir.path().join("flake.nix");
    // Without its last closing brace.
    let cut = flake.rfind('}').expect("flake.nix ends in a brace");
    std::fs::write(&broken, &flake[..cut]).unwrap();
    let parsed = parse(&broken);
    assert!(!parsed.status.success(), "a truncated flake parsed");
    assert!(
        String::from_utf8_lossy(&parsed.stderr).contains("syntax error"),
        "{}",
        explain_output(&parsed)
    );
}

#[test]
fn the_flake_offers_the_harness_as_package_and_app_on_both_systems() {
    let evaluated = evaluate(Path::new("/nonexistent/r2s.img"), &[]);
    for system in ["x86_64-linux", "aarch64-linux"] {
        assert_eq!(
            evaluated["packages"][system],
            serde_json::json!(["default", "harness"]),
            "{system}"
        );
    }
    assert_eq!(
        evaluated["app"],
        serde_json::json!({ "type": "app", "program": "/stub/harness/bin/harness" })
    );
}

#[test]
fn the_harness_is_wrapped_with_qemu_e2fsprogs_and_nixpkgs_u_boot_for_qemu() {
    let evaluated = evaluate(Path::new("/nonexistent/r2s.img"), &[]);
    // Cross-built for an x86_64 host, nixpkgs' own on aarch64.
    for (system, uboot) in [
        ("x86_64-linux", "/stub/uboot-cross"),
        ("aarch64-linux", "/stub/uboot-native"),
    ] {
        assert_eq!(
            evaluated["wrapper"][system],
            format!(
                "wrapProgram $out/bin/harness \\\n  --prefix PATH : /stub/qemu/bin:/stub/e2fsprogs/bin \\\n  --set-default R2S_FIRMWARE {uboot}/u-boot.bin\n"
            ),
            "{system}"
        );
    }
}

#[test]
fn the_boot_check_runs_the_harness_on_the_image_writing_everything_to_out() {
    let script = boot_check_script(Path::new("/nonexistent/r2s.img"), &[]);
    assert_eq!(
        boot_check_command(&script),
        r#"harness run --image "$img" --transcripts "$out/transcripts" --junit "$out/junit.xml" --html "$out/report.html" "$@" || status=$?"#
    );
    let evaluated = evaluate(Path::new("/nonexistent/r2s.img"), &[]);
    assert_eq!(evaluated["check"]["name"], "boot-check-r2s");
    assert_eq!(
        evaluated["check"]["R2S_PASSWORD"], "from-the-check",
        "the check's env"
    );
}

#[test]
fn the_boot_check_takes_the_image_of_an_sd_image_derivation() {
    let dir = temp_dir();
    // An sdImage derivation's output: sd-image/<name>.img.zst. Not an image inside: the harness
    // refuses it at once, naming the file it was given.
    let sd_image = dir.path().join("result/sd-image");
    std::fs::create_dir_all(&sd_image).unwrap();
    let packed = sd_image.join("nixos-sd-image.img.zst");
    write_garbage_image(&packed);
    let scenario = scenario("boot-to-login");
    let script = boot_check_script(&dir.path().join("result"), &[scenario]);
    let built = build(&script, &dir.path().join("out"), dir.path());

    assert_eq!(
        built.status.code(),
        Some(2),
        "the harness's error fails the build: {}",
        explain_output(&built)
    );
    let said = String::from_utf8_lossy(&built.stderr);
    assert!(
        said.contains(&packed.display().to_string()),
        "{}",
        explain_output(&built)
    );
}

#[test]
fn the_boot_check_fails_when_there_is_no_image() {
    let dir = temp_dir();
    let empty = dir.path().join("result");
    std::fs::create_dir(&empty).unwrap();
    let script = boot_check_script(&empty, &[]);
    let built = build(&script, &dir.path().join("out"), dir.path());

    assert_eq!(built.status.code(), Some(1), "{}", explain_output(&built));
    assert_eq!(
        String::from_utf8_lossy(&built.stderr),
        format!(
            "boot check r2s: no image in {} (expected a .img, a .img.zst or sd-image/*.img*)\n",
            empty.display()
        )
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}

/// A scenario that fails on the busybox fixture (its host step exits 1), in `dir`.
fn failing_scenario(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fails.toml");
    std::fs::write(&path, "name = \"fails\"\n[[steps]]\nhost = \"false\"\n").unwrap();
    path
}

/// The busybox fixture, the failing scenario, and the build of `bootCheck`'s script for them
/// with `failOnFail` as given, its `$out` in `dir/out`.
fn build_failing_check(dir: &Path, fail_on_fail: bool) -> Output {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let script = boot_check_script_with(&image, &[failing_scenario(dir)], fail_on_fail);
    build(&script, &dir.join("out"), dir)
}

#[test]
fn the_boot_check_fails_the_build_when_a_scenario_fails_with_the_failure_in_its_junit() {
    let dir = temp_dir();
    let built = build_failing_check(dir.path(), true);

    assert_eq!(
        built.status.code(),
        Some(1),
        "a FAIL fails the build: {}",
        explain_output(&built)
    );
    let xml = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    assert!(
        xml.contains("failures=\"1\"") && xml.contains("<failure"),
        "{xml}"
    );
    assert!(
        !dir.path().join("out/failed").exists(),
        "no marker: the build itself fails"
    );
}

#[test]
fn with_fail_on_fail_off_the_boot_check_succeeds_keeping_the_reports_and_a_failed_marker() {
    let dir = temp_dir();
    let built = build_failing_check(dir.path(), false);

    assert_eq!(built.status.code(), Some(0), "{}", explain_output(&built));
    let out = dir.path().join("out");
    assert_eq!(std::fs::read_to_string(out.join("failed")).unwrap(), "1\n");
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    assert!(out.join("report.html").is_file() && out.join("transcripts").is_dir());
    assert!(
        String::from_utf8_lossy(&built.stderr)
            .contains("boot check r2s: harness exited with 1; reports kept in "),
        "{}",
        explain_output(&built)
    );
}
