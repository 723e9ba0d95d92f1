//! A root filesystem whose kernel modules are xz-compressed, as NixOS ships them (`*.ko.xz`):
//! chosen modules of an ext4 root's module tree replaced by their `xz --check=crc32` form (the
//! check the kernel's own decompressor accepts; kmod inflates xz in userspace too), and the
//! module index written again by the host's `depmod` for the changed names. Done on a dumped
//! copy of the tree and written back with `debugfs`: the image must be a copy of a fixture.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::hostile::{debugfs, debugfs_rdump};

/// A module tree's files changed by [`compress_root_modules`].
pub struct Compressed {
    /// The tree on the root: `/lib/modules/6.1.0-57-arm64`.
    pub dir: String,
    /// The compressed modules' paths below the tree: `kernel/drivers/block/virtio_blk.ko.xz`.
    pub modules: Vec<String>,
    /// The index files `depmod` wrote differently: `modules.dep`, `modules.dep.bin`, ….
    pub index: Vec<String>,
}

/// Replaces the modules named in `names` (canonical names, as [`crate::strip_modules`] lists
/// them) in the one module tree of `/lib/modules` on partition `index` of `image` by `.ko.xz`
/// files, and the index files by what `depmod -b` writes for the tree then. Every name must be
/// an uncompressed module of the tree.
pub fn compress_root_modules(image: &Path, index: u32, names: &[&str]) -> Compressed {
    let work = tempfile::tempdir().unwrap();
    let lib = work.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    debugfs_rdump(image, index, "/lib/modules", &lib);
    let releases: Vec<_> = std::fs::read_dir(lib.join("modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let [release] = &releases[..] else {
        panic!("not one release in /lib/modules: {releases:?}")
    };
    let dir = format!("/lib/modules/{release}");
    let local = lib.join("modules").join(release);
    let dep = std::fs::read_to_string(local.join("modules.dep")).expect("the tree has a modules.dep");
    let paths: BTreeMap<String, String> = dep
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(path, _)| (module_name(path), path.to_owned()))
        .collect();
    let before = index_files(&local);
    let mut modules = Vec::new();
    for name in names {
        let path = paths
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is not in {dir}/modules.dep"));
        assert!(path.ends_with(".ko"), "{path} is compressed already");
        let status = Command::new("xz")
            .arg("--check=crc32")
            .arg(local.join(path))
            .status()
            .expect("xz runs (xz-utils is installed)");
        assert!(status.success(), "xz {path} failed");
        modules.push(format!("{path}.xz"));
    }
    let status = Command::new("depmod")
        .arg("-b")
        .arg(work.path())
        .arg(release)
        .status()
        .expect("depmod runs (kmod is installed)");
    assert!(status.success(), "depmod failed");
    let after = index_files(&local);
    let changed: Vec<String> = after
        .iter()
        .filter(|(name, bytes)| before.get(*name) != Some(bytes))
        .map(|(name, _)| name.clone())
        .collect();
    let mut commands = Vec::new();
    for path in &modules {
        commands.push(format!("rm {dir}/{}", path.trim_end_matches(".xz")));
        commands.push(format!("write {} {dir}/{path}", local.join(path).display()));
    }
    for name in &changed {
        if before.contains_key(name) {
            commands.push(format!("rm {dir}/{name}"));
        }
        commands.push(format!("write {} {dir}/{name}", local.join(name).display()));
    }
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    debugfs(image, index, &commands);
    Compressed {
        dir,
        modules,
        index: changed,
    }
}

/// The `modules.*` files at the top of tree `dir`, by name.
fn index_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.starts_with("modules.")
                .then(|| (name, std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

/// `kernel/drivers/usb/storage/usb-storage.ko` → `usb_storage`.
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}
