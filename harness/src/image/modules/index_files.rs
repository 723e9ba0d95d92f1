//! The files a module loader reads in `lib/modules/<release>/`, written for a set of modules as
//! `depmod` would write them: `modules.dep` and `modules.alias` as text (busybox `modprobe`
//! reads these) and as kmod's binary index (`modules.dep.bin`, `modules.alias.bin`: libkmod's
//! `modprobe` and udev read only these), with `modules.symbols(.bin)` and
//! `modules.builtin(.bin)`, which libkmod opens when a name is none of the modules'.

use std::collections::BTreeMap;

use super::kmod_index::{Index, IndexError};

/// A module as the index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedModule {
    /// Canonical name.
    pub name: String,
    /// Path below `lib/modules/<release>/`.
    pub path: String,
    /// Canonical names of what it needs, in modules.dep's order (the last is loaded first).
    pub deps: Vec<String>,
    /// Its alias patterns.
    pub aliases: Vec<String>,
}

/// The index files for `modules` (in depmod's order: their priority), and for `builtin` (the
/// kernel's modules.builtin text, if known): file name and contents.
pub fn index_files(
    modules: &[IndexedModule],
    builtin: Option<&str>,
) -> Result<Vec<(&'static str, Vec<u8>)>, IndexError> {
    let paths: BTreeMap<&str, &str> = modules
        .iter()
        .map(|m| (m.name.as_str(), m.path.as_str()))
        .collect();
    let mut dep_text = String::new();
    let mut dep_bin = Index::new();
    let mut alias_text = String::from("# Aliases extracted from modules themselves.\n");
    let mut alias_bin = Index::new();
    for (priority, module) in modules.iter().enumerate() {
        let priority = priority as u32;
        // A dependency outside the set is built into the kernel: nothing to load.
        let deps: Vec<&str> = module
            .deps
            .iter()
            .filter_map(|d| paths.get(d.as_str()).copied())
            .collect();
        let mut line = format!("{}:", module.path);
        for dep in deps {
            line.push(' ');
            line.push_str(dep);
        }
        dep_text.push_str(&line);
        dep_text.push('\n');
        dep_bin.insert(&module.name, &line, priority)?;
        for alias in &module.aliases {
            alias_text.push_str(&format!("alias {alias} {}\n", module.name));
            alias_bin.insert(&normalized_alias(alias), &module.name, priority)?;
        }
    }
    let mut builtin_bin = Index::new();
    for line in builtin.unwrap_or("").lines() {
        if let Some(name) = crate::image::initrd::module_name(line.trim().rsplit('/').next().unwrap_or("")) {
            builtin_bin.insert(&name, "", 0)?;
        }
    }
    let mut files = vec![
        ("modules.dep", dep_text.into_bytes()),
        ("modules.dep.bin", dep_bin.write()?),
        ("modules.alias", alias_text.into_bytes()),
        ("modules.alias.bin", alias_bin.write()?),
        (
            "modules.symbols",
            b"# Aliases for symbols, used by symbol_request().\n".to_vec(),
        ),
        ("modules.symbols.bin", Index::new().write()?),
        ("modules.builtin.bin", builtin_bin.write()?),
    ];
    if let Some(text) = builtin {
        files.push(("modules.builtin", text.as_bytes().to_vec()));
    }
    Ok(files)
}

/// An alias as libkmod looks it up: `-` is `_` except inside a `[…]` character class.
fn normalized_alias(alias: &str) -> String {
    let mut in_class = false;
    alias
        .chars()
        .map(|c| match c {
            '[' => {
                in_class = true;
                c
            }
            ']' => {
                in_class = false;
                c
            }
            '-' if !in_class => '_',
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    const RELEASE: &str = "6.1.0-test-arm64";

    fn module(name: &str, path: &str, deps: &[&str], aliases: &[&str]) -> IndexedModule {
        IndexedModule {
            name: name.into(),
            path: path.into(),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn set() -> Vec<IndexedModule> {
        vec![
            module("crc16", "kernel/lib/crc16.ko", &[], &[]),
            module("jbd2", "kernel/fs/jbd2/jbd2.ko", &[], &[]),
            module(
                "ext4",
                "kernel/fs/ext4/ext4.ko",
                &["jbd2", "crc16"],
                &["fs-ext4", "ext3"],
            ),
            module(
                "virtio_mmio",
                "kernel/drivers/virtio/virtio_mmio.ko",
                &[],
                &["of:N*T*Cvirtio,mmio", "of:N*T*Cvirtio,mmioC*"],
            ),
            module(
                "virtio_blk",
                "kernel/drivers/block/virtio_blk.ko",
                &["virtio_ring"],
                &["virtio:d00000002v*"],
            ),
        ]
    }

    #[test]
    fn the_text_files_are_depmods_format_and_builtin_dependencies_are_left_out() {
        let files: BTreeMap<_, _> = index_files(&set(), None).unwrap().into_iter().collect();
        assert_eq!(
            String::from_utf8(files["modules.dep"].clone()).unwrap(),
            "kernel/lib/crc16.ko:\nkernel/fs/jbd2/jbd2.ko:\n\
             kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/lib/crc16.ko\n\
             kernel/drivers/virtio/virtio_mmio.ko:\nkernel/drivers/block/virtio_blk.ko:\n"
        );
        assert!(String::from_utf8(files["modules.alias"].clone())
            .unwrap()
            .ends_with("alias of:N*T*Cvirtio,mmioC* virtio_mmio\nalias virtio:d00000002v* virtio_blk\n"));
        assert!(!files.contains_key("modules.builtin"));
    }

    /// A root directory (`--dirname`) as the host's kmod sees it: the index files, empty module files, and
    /// no text files, so that only the binary index can answer.
    fn binary_only_dir(dir: &Path, builtin: Option<&str>) {
        let base = dir.join("lib/modules").join(RELEASE);
        for m in set() {
            let path = base.join(&m.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        for (name, bytes) in index_files(&set(), builtin).unwrap() {
            if !name.ends_with(".bin") {
                continue;
            }
            std::fs::write(base.join(name), bytes).unwrap();
        }
    }

    fn modprobe(dir: &Path, args: &[&str]) -> String {
        let Ok(output) = Command::new("modprobe")
            .arg("--dirname")
            .arg(dir)
            .args(["--set-version", RELEASE])
            .args(args)
            .output()
        else {
            panic!("kmod's modprobe is needed (apt-get install kmod; .ci/setup installs it)");
        };
        assert!(
            output.status.success(),
            "modprobe {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn kmods_modprobe_reads_the_dependencies_from_modules_dep_bin() {
        let dir = tempfile::tempdir().unwrap();
        binary_only_dir(dir.path(), None);
        let base = dir.path().join("lib/modules").join(RELEASE);
        let shown = modprobe(dir.path(), &["--show-depends", "ext4"]);
        assert_eq!(
            shown,
            format!(
                "insmod {0}/kernel/lib/crc16.ko \ninsmod {0}/kernel/fs/jbd2/jbd2.ko \ninsmod {0}/kernel/fs/ext4/ext4.ko \n",
                base.display()
            )
        );
    }

    #[test]
    fn kmods_modprobe_resolves_device_aliases_with_wildcards_from_modules_alias_bin() {
        let dir = tempfile::tempdir().unwrap();
        binary_only_dir(dir.path(), Some("kernel/drivers/virtio/virtio_ring.ko\n"));
        assert_eq!(
            modprobe(dir.path(), &["-R", "virtio:d00000002v00001AF4"]),
            "virtio_blk\n"
        );
        assert_eq!(
            modprobe(dir.path(), &["-R", "of:NvirtioT(null)Cvirtio,mmio"]),
            "virtio_mmio\n"
        );
        assert_eq!(modprobe(dir.path(), &["-R", "fs-ext4"]), "ext4\n");
    }

    #[test]
    fn dashes_in_aliases_are_underscores_except_in_character_classes() {
        assert_eq!(normalized_alias("fs-ext4"), "fs_ext4");
        assert_eq!(normalized_alias("pci:v*d[0-9]*"), "pci:v*d[0-9]*");
    }

    #[test]
    fn kmods_modprobe_knows_built_in_modules_from_modules_builtin_bin() {
        let dir = tempfile::tempdir().unwrap();
        binary_only_dir(dir.path(), Some("kernel/drivers/virtio/virtio_ring.ko\n"));
        assert_eq!(
            modprobe(dir.path(), &["--show-depends", "virtio_ring"]),
            "builtin virtio_ring\n"
        );
    }
}
