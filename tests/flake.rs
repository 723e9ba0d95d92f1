//! `flake.nix` parses (Nix cannot build here: the check is the parser's), and the command its
//! `bootCheck` derivation runs is the harness run the sandbox test runs (tests/sandbox.rs
//! takes it from the flake through `r2s_tests::flake`).

use std::process::Command;

use r2s_tests::flake::boot_check_words;
use r2s_tests::*;

fn parse(path: &std::path::Path) -> std::process::Output {
    Command::new("nix-instantiate")
        .arg("--parse")
        .arg(path)
        .output()
        .expect("nix-instantiate runs (Debian's nix-bin; .ci/setup installs it)")
}

#[test]
fn the_flake_parses() {
    let parsed = parse(&repo_root().join("flake.nix"));
    assert!(
        parsed.status.success(),
        "nix-instantiate --parse flake.nix: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
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
        String::from_utf8_lossy(&parsed.stderr)
    );
}

#[test]
fn the_boot_check_runs_the_harness_on_the_image_writing_everything_to_out() {
    assert_eq!(
        boot_check_words(),
        [
            "harness",
            "run",
            "--image",
            "\"$img\"",
            "--transcripts",
            "\"$out/transcripts\"",
            "--junit",
            "\"$out/junit.xml\"",
            "--html",
            "\"$out/report.html\"",
            "\"$@\"",
        ]
    );
}
