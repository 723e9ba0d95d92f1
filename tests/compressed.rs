//! End-to-end: the image as `nix build` leaves it, `result/sd-image/*.img.zst`, taken by `run`
//! and `inspect` as it is: compressed by the real zstd (and xz), unpacked once into the cache,
//! booted in real QEMU, and refused with a clear error when cut short.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(240);

/// The entries of the cache's unpacked folder, dot files (build locks, staging) apart.
fn unpacked_entries(cache: &Path) -> Vec<String> {
    unpacked_names(cache, |name| !name.starts_with('.'))
}

/// The names in the cache's unpacked folder that `keep` keeps.
fn unpacked_names(cache: &Path, keep: fn(&str) -> bool) -> Vec<String> {
    match std::fs::read_dir(cache.join("unpacked")) {
        Ok(read) => read
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| keep(name))
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

/// `harness inspect PATH --format json` with its cache in `cache`.
fn inspect_json(path: &Path, cache: &Path) -> Finished {
    let args = [
        OsStr::new("inspect"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    let (child, command) = spawn_harness_env(&args, &[("R2S_CACHE_DIR", cache.as_os_str())]);
    finish(child, command, std::time::Instant::now(), LIMIT)
}

/// `inspect`'s JSON report of `tool`'s compression of the default fixture is the raw fixture's
/// but for the file it names.
fn assert_inspect_reads_as_raw(tool: &str, suffix: &str) {
    let dir = temp_dir();
    let image = compressed_fixture(tool, suffix, dir.path());
    let raw = fixture(r2s_images::DEFAULT_FIXTURE);
    let cache = dir.path().join("cache");
    let packed = inspect_json(&image, &cache);
    let plain = inspect_json(&raw, &cache);
    assert!(
        packed
            .stderr
            .contains(&format!("{} is {tool}-compressed: unpacked to ", image.display())),
        "{}",
        packed.explain()
    );
    assert_eq!(packed.code(), plain.code(), "{}", packed.explain());
    let mut packed_json: serde_json::Value = serde_json::from_str(&packed.stdout).unwrap();
    let mut plain_json: serde_json::Value = serde_json::from_str(&plain.stdout).unwrap();
    assert_eq!(packed_json["image"], image.display().to_string());
    packed_json["image"] = serde_json::Value::Null;
    plain_json["image"] = serde_json::Value::Null;
    assert_eq!(packed_json, plain_json);
}

#[test]
fn inspect_reads_an_xz_image_as_it_reads_the_raw_one() {
    assert_inspect_reads_as_raw("xz", "xz");
}

#[test]
fn inspect_reads_a_gzip_image_as_it_reads_the_raw_one() {
    assert_inspect_reads_as_raw("gzip", "gz");
}

#[test]
fn inspect_reads_a_bzip2_image_as_it_reads_the_raw_one() {
    assert_inspect_reads_as_raw("bzip2", "bz2");
}

/// Every file the cache's unpacked folder holds, dot files included: `.unpacking-*` staging
/// left by a failed unpack, or a build's `.building.lock` left after it, would be one.
fn unpacked_files(cache: &Path) -> Vec<String> {
    unpacked_names(cache, |_| true)
}

/// `run` of boot-to-login on `image` with its cache in `dir/cache`: refused with exit 2
/// before any boot, saying `said`, and nothing left in the cache.
fn assert_refused_before_boot(image: &Path, dir: &Path, said: &str) {
    let cache = dir.join("cache");
    let options = ["--cache-dir", cache.to_str().unwrap()];
    let run = run_scenario_file_with(image, &scenario("boot-to-login"), dir, LIMIT, &options);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(run.stderr.contains(said), "{said:?} not said\n{}", run.explain());
    assert!(
        !run.stdout.contains("PASS") && !run.stdout.contains("FAIL"),
        "{}",
        run.explain()
    );
    assert_eq!(unpacked_files(&cache), Vec::<String>::new());
}

#[test]
fn a_decompression_bomb_is_refused_where_it_passes_its_partition_table_with_exit_2_and_no_cache_entry() {
    let dir = temp_dir();
    // A 4 MiB disk by its MBR, then 4 GiB of zeros: a few hundred KiB compressed.
    let raw = dir.path().join("bomb.img");
    let mut disk = vec![0u8; 4 << 20];
    disk[446 + 4] = 0x83;
    disk[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    disk[446 + 12..446 + 16].copy_from_slice(&((4u32 << 20) / 512 - 2048).to_le_bytes());
    disk[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&raw, &disk).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&raw)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let status = Command::new("zstd")
        .args(["-q", "-1", "--rm"])
        .arg(&raw)
        .status()
        .unwrap();
    assert!(status.success());
    let bomb = dir.path().join("bomb.img.zst");
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    assert_refused_before_boot(
        &bomb,
        dir.path(),
        &format!(
            "{}: zstd-compressed, and it unpacks past 4194304 bytes, where its partition table says the disk ends",
            bomb.display()
        ),
    );
}

#[test]
fn a_corrupt_archive_is_refused_naming_the_file_and_the_offset_with_exit_2_and_no_cache_entry() {
    let dir = temp_dir();
    let whole = compressed_fixture("zstd", "zst", dir.path());
    let mut bytes = std::fs::read(&whole).unwrap();
    // Whole, not cut: a run of bytes in the middle of the data changed.
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    let corrupt = dir.path().join("corrupt.img.zst");
    std::fs::write(&corrupt, bytes).unwrap();
    assert_refused_before_boot(
        &corrupt,
        dir.path(),
        &format!(
            "{}: zstd-compressed, and the zstd data does not decode at unpacked byte ",
            corrupt.display()
        ),
    );
}

#[test]
fn two_processes_opening_the_same_new_image_at_once_unpack_it_once() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let image = compressed_fixture("zstd", "zst", dir.path());
    let args = [
        OsStr::new("inspect"),
        image.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    let env = [("R2S_CACHE_DIR", cache.as_os_str())];
    let started = std::time::Instant::now();
    let (first, first_command) = spawn_harness_env(&args, &env);
    let (second, second_command) = spawn_harness_env(&args, &env);
    let runs = [
        finish(first, first_command, started, LIMIT),
        finish(second, second_command, started, LIMIT),
    ];
    // Both read the image (the fixture fails an R2S check or two: exit 1, not 2).
    for run in &runs {
        assert_eq!(run.code(), Some(1), "{}", run.explain());
    }
    assert_eq!(runs[0].stdout, runs[1].stdout);
    let unpacked_now = runs
        .iter()
        .filter(|run| run.stderr.contains("is zstd-compressed: unpacked to "))
        .count();
    let reused = runs
        .iter()
        .filter(|run| run.stderr.contains("is zstd-compressed: unpacked before, at "))
        .count();
    assert_eq!(
        (unpacked_now, reused),
        (1, 1),
        "{}\n{}",
        runs[0].explain(),
        runs[1].explain()
    );
    assert_eq!(unpacked_entries(&cache).len(), 1);
    assert_eq!(unpacked_files(&cache).len(), 1, "{:?}", unpacked_files(&cache));
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

#[test]
fn a_zstd_image_starts_a_login_scenario_from_a_snapshot_kept_in_the_cache() {
    let dir = temp_dir();
    let cache = dir.path().join("cache");
    let image = compressed_fixture("zstd", "zst", dir.path());
    let options = ["--cache-dir", cache.to_str().unwrap()];
    let scenario = scenario("shell-checks");
    let first = run_scenario_file_with(&image, &scenario, &dir.path().join("one"), LIMIT, &options);
    assert_eq!(first.code(), Some(0), "{}", first.explain());
    assert!(
        first.stdout.contains("PASS  shell-checks  "),
        "{}",
        first.explain()
    );
    let snapshots: Vec<_> = std::fs::read_dir(cache.join("snapshots"))
        .unwrap_or_else(|e| panic!("no snapshot cache: {e}\n{}", first.explain()))
        .flatten()
        .collect();
    assert!(!snapshots.is_empty(), "{}", first.explain());
    // The next run restores the snapshot the first one saved: no boot, no priming.
    let second = run_scenario_file_with(&image, &scenario, &dir.path().join("two"), LIMIT, &options);
    assert_eq!(second.code(), Some(0), "{}", second.explain());
    let log = std::fs::read_to_string(dir.path().join("two").join("shell-checks.log")).unwrap();
    assert!(!log.contains("U-Boot 20"), "the second run booted:\n{log}");
}
