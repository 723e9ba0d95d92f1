//! End-to-end: the image as `nix build` leaves it, `result/sd-image/*.img.zst`, taken by `run`
//! and `inspect` as it is: compressed by the real zstd (and xz), unpacked once into the cache,
//! booted in real QEMU, and refused with a clear error when cut short.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

/// The entries of the cache's unpacked folder, dot files (build locks, staging) apart.
fn unpacked_entries(cache: &Path) -> Vec<String> {
    match std::fs::read_dir(cache.join("unpacked")) {
        Ok(read) => read
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_zstd_image_boots_to_login_unpacked_once_and_reused_by_the_next_run() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let image = compressed_fixture("zstd", "zst", dir.path());
    let options = ["--cache-dir", cache.to_str().unwrap(), "--no-snapshots"];
    let first = run_scenario_file_with(
        &image,
        &scenario("boot-to-login"),
        &dir.path().join("one"),
        LIMIT,
        &options,
    );
    assert_eq!(first.code(), Some(0), "{}", first.explain());
    assert!(
        first.stdout.contains("PASS  boot-to-login  "),
        "{}",
        first.explain()
    );
    assert!(
        first.stdout.contains(&format!("image: {}", image.display())),
        "the run names the file given\n{}",
        first.explain()
    );
    assert!(
        first
            .stderr
            .contains(&format!("{} is zstd-compressed: unpacked to ", image.display())),
        "{}",
        first.explain()
    );
    assert_eq!(unpacked_entries(&cache).len(), 1);

    let second = run_scenario_file_with(
        &image,
        &scenario("boot-to-login"),
        &dir.path().join("two"),
        LIMIT,
        &options,
    );
    assert_eq!(second.code(), Some(0), "{}", second.explain());
    assert!(
        second.stderr.contains("is zstd-compressed: unpacked before, at "),
        "the second run unpacked again\n{}",
        second.explain()
    );
    assert_eq!(unpacked_entries(&cache).len(), 1);
}

#[test]
fn inspect_reads_an_xz_image_as_it_reads_the_raw_one() {
    let dir = temp_dir();
    let image = compressed_fixture("xz", "xz", dir.path());
    let raw = fixture(r2s_images::DEFAULT_FIXTURE);
    let env = [("R2S_CACHE_DIR", dir.path().join("cache").into_os_string())];
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let inspect = |path: &Path| {
        let args = [
            OsStr::new("inspect"),
            path.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ];
        let (child, command) = spawn_harness_env(&args, &env);
        finish(child, command, std::time::Instant::now(), LIMIT)
    };
    let packed = inspect(&image);
    let plain = inspect(&raw);
    assert_eq!(packed.code(), plain.code(), "{}", packed.explain());
    let mut packed_json: serde_json::Value = serde_json::from_str(&packed.stdout).unwrap();
    let mut plain_json: serde_json::Value = serde_json::from_str(&plain.stdout).unwrap();
    assert_eq!(packed_json["image"], image.display().to_string());
    packed_json["image"] = serde_json::Value::Null;
    plain_json["image"] = serde_json::Value::Null;
    assert_eq!(packed_json, plain_json);
}

#[test]
fn a_cut_archive_is_refused_naming_the_file_with_exit_2_and_no_cache_entry() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let whole = compressed_fixture("zstd", "zst", dir.path());
    let cut = dir.path().join("cut.img.zst");
    let len = std::fs::metadata(&whole).unwrap().len() as usize;
    write_truncated_copy(&whole, len / 2, &cut);
    let options = ["--cache-dir", cache.to_str().unwrap()];
    let run = run_scenario_file_with(&cut, &scenario("boot-to-login"), dir.path(), LIMIT, &options);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "{}: zstd-compressed, and the zstd data does not decode at unpacked byte",
            cut.display()
        )),
        "{}",
        run.explain()
    );
    assert!(
        !run.stdout.contains("PASS") && !run.stdout.contains("FAIL"),
        "{}",
        run.explain()
    );
    assert_eq!(unpacked_entries(&cache), Vec::<String>::new());
}
