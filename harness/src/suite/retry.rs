//! A failed try of a scenario that runs again: its transcripts are kept beside the next try's.

use std::path::{Path, PathBuf};

use crate::runner::ScenarioResult;

/// `result`, of failed try `try_number`, with its transcript files renamed
/// `<stem>.try<N>.<ext>` (the next try writes `<stem>.<ext>` afresh), the result naming the
/// new paths. A file that cannot be renamed keeps its name, and the next try overwrites it.
pub fn set_aside(mut result: ScenarioResult, try_number: usize) -> ScenarioResult {
    result.transcript = result
        .transcript
        .into_iter()
        .map(|path| {
            let aside = try_path(&path, try_number);
            match std::fs::rename(&path, &aside) {
                Ok(()) => aside,
                Err(_) => path,
            }
        })
        .collect();
    result
}

/// `dir/boot.log` → `dir/boot.try1.log`; a name without an extension gets `.try1` appended.
fn try_path(path: &Path, try_number: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.try{try_number}.{}", ext.to_string_lossy()),
        None => format!("{stem}.try{try_number}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_trys_transcripts_are_renamed_with_its_number_and_the_result_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("boot-to-login.log");
        let cast = dir.path().join("boot-to-login.cast");
        std::fs::write(&log, "try one").unwrap();
        std::fs::write(&cast, "{}").unwrap();
        let missing = dir.path().join("gone.raw");
        let result = ScenarioResult {
            transcript: vec![log.clone(), cast, missing.clone()],
            ..ScenarioResult::skip("boot-to-login", Path::new("b.toml"), "")
        };
        let aside = set_aside(result, 2);
        let kept = dir.path().join("boot-to-login.try2.log");
        assert_eq!(
            aside.transcript,
            [kept.clone(), dir.path().join("boot-to-login.try2.cast"), missing]
        );
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "try one");
        assert!(!log.exists());
    }
}
