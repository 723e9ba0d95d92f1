//! `harness states`: the failed machines `harness run --keep-failed` kept, newest first, with
//! what a person needs to choose one: the scenario, where it failed, the image and the age.

use std::path::PathBuf;

use r2s_harness::escape::escape_control;
use r2s_harness::snapshot::kept::{self, KeptStates};
use r2s_harness::snapshot::SnapshotCache;

use super::{StatesArgs, EXIT_ERROR, EXIT_PASS};

/// Lists the kept states; a state that cannot be read is listed with the reason.
pub fn states(args: &StatesArgs) -> u8 {
    let cache = snapshot_cache_dir(args.snapshot_cache.as_ref(), args.cache_dir.as_ref());
    let states = KeptStates::in_cache(&cache);
    let mut listed = states.list();
    if listed.is_empty() {
        println!(
            "no kept states in {} (`harness run --keep-failed` keeps one per failed scenario)",
            states.dir().display()
        );
        return EXIT_PASS;
    }
    listed.sort_by_key(|state| std::cmp::Reverse(state.as_ref().map_or(0, |meta| meta.kept_at)));
    let now = kept::now_secs();
    let mut damaged = false;
    println!("kept states in {}:", states.dir().display());
    for state in listed {
        match state {
            Ok(meta) => println!(
                "  {}  {} ago  scenario {}: {}\n    image {}",
                escape_control(&meta.name),
                age(now.saturating_sub(meta.kept_at)),
                escape_control(&meta.scenario),
                escape_control(&meta.failure),
                escape_control(&meta.image.path.display().to_string())
            ),
            Err(e) => {
                damaged = true;
                println!("  {}", escape_control(&e.to_string()));
            }
        }
    }
    if damaged {
        EXIT_ERROR
    } else {
        EXIT_PASS
    }
}

/// The snapshot cache a run with these options uses: `--snapshot-cache`, else
/// `<--cache-dir>/snapshots`, else the default one.
pub fn snapshot_cache_dir(snapshot_cache: Option<&PathBuf>, cache_dir: Option<&PathBuf>) -> PathBuf {
    snapshot_cache
        .cloned()
        .or_else(|| cache_dir.map(|dir| dir.join("snapshots")))
        .unwrap_or_else(SnapshotCache::default_dir)
}

/// An age as a person reads it: `42s`, `5m`, `3h`, `2d`.
fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_largest_whole_unit() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(300), "5m");
        assert_eq!(age(3 * 3600 + 5), "3h");
        assert_eq!(age(2 * 86400), "2d");
    }
}
