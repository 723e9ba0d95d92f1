//! The f2fs reader behind `inspect` and the image facts, on a partition given as blocks over
//! zeros (`r2s_harness_fuzz::sparse`): open, look the paths inspect uses up, read and list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use r2s_harness::image::budget::ReadBudget;
use r2s_harness::image::f2fs::F2fs;
use r2s_harness_fuzz::sparse::Sparse;
use r2s_harness_fuzz::PATHS;

/// 256 MiB of partition at most: larger than the seeds' 64 MiB, small enough that reading
/// blocks past the given ones stays fast.
const MAX_BLOCKS: u32 = 1 << 16;
/// What one operation may read: the harness allows 64 MiB, a fuzz run wants quick inputs.
const OPERATION: u64 = 4 << 20;

/// Paths of an f2fs root: an fstab, a system's init through symlinks.
const ROOT_PATHS: [&str; 4] = ["/etc/fstab", "/system/init", "/nix/store/abc-nixos-system-r2s/sw/init", "/a/b/../c"];

fuzz_target!(|data: &[u8]| {
    let Some(sparse) = Sparse::parse(data, MAX_BLOCKS) else {
        return;
    };
    let len = sparse.len();
    let Ok(fs) = F2fs::open(sparse, 0, len, ReadBudget::new(OPERATION)) else {
        return;
    };
    for path in PATHS.iter().chain(ROOT_PATHS.iter()) {
        fs.budget().allow(OPERATION);
        if let Ok(inode) = fs.resolve(path, true) {
            let mut sink = std::io::sink();
            let _ = fs.copy_to(&inode, 1 << 20, &mut sink);
            let _ = fs.list(&inode);
        }
        fs.budget().allow(OPERATION);
        if let Ok(inode) = fs.resolve(path, false) {
            let _ = fs.read_link(&inode);
        }
    }
});
