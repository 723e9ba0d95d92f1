//! The command line `flake.nix`'s `bootCheck` runs, read from the flake itself, so that the
//! sandbox test runs exactly what a Nix check runs: the line after the `# bootCheck command`
//! marker, with the derivation's shell variables (`$img`, `$out`, `"$@"`) put in.

use std::ffi::OsString;
use std::path::Path;

use super::repo_root;

/// The marker comment on the line before the command in `flake.nix`.
pub const MARKER: &str = "# bootCheck command";

/// The command's words as `flake.nix` writes them, e.g. `["harness", "run", "--image",
/// "\"$img\"", …]`.
pub fn boot_check_words() -> Vec<String> {
    let flake = std::fs::read_to_string(repo_root().join("flake.nix")).expect("flake.nix is readable");
    let mut lines = flake
        .lines()
        .skip_while(|line| !line.trim_start().starts_with(MARKER));
    assert!(lines.next().is_some(), "flake.nix has no `{MARKER}` line");
    let command = lines.next().expect("a line follows the marker");
    command.split_whitespace().map(str::to_owned).collect()
}

/// The command's arguments after `harness`, for this `image`, output directory `out` and
/// `rest` (what the derivation's `"$@"` holds: options, then scenario files).
pub fn boot_check_args(image: &Path, out: &Path, rest: &[OsString]) -> Vec<OsString> {
    let words = boot_check_words();
    assert_eq!(words.first().map(String::as_str), Some("harness"), "{words:?}");
    let mut args = Vec::new();
    for word in &words[1..] {
        if word == "\"$@\"" {
            args.extend(rest.iter().cloned());
            continue;
        }
        let unquoted = word
            .strip_prefix('"')
            .and_then(|w| w.strip_suffix('"'))
            .unwrap_or(word);
        let expanded = if let Some(tail) = unquoted.strip_prefix("$img") {
            format!("{}{tail}", image.display())
        } else if let Some(tail) = unquoted.strip_prefix("$out") {
            format!("{}{tail}", out.display())
        } else {
            unquoted.to_owned()
        };
        assert!(
            !expanded.contains('$'),
            "{word}: a variable the tests do not know"
        );
        args.push(expanded.into());
    }
    args
}
