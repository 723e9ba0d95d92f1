//! Picking the kernel modules an initrd needs from an unpacked kernel package.
//!
//! A kernel package carries no `modules.dep` (depmod writes it at install time), so dependencies
//! come from each module's `.modinfo` section, as depmod reads them: `depends=` (hard) and
//! `softdep=pre:` (ext4 and jbd2 ask for `crypto-crc32c` that way; without it the first
//! metadata_csum mount fails).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use object::elf::FileHeader64;
use object::read::elf::{FileHeader, SectionHeader};
use object::{Endianness, ReadCache, ReadRef};

use crate::error::{ModinfoError, ModuleError};
use crate::BuildError;

/// A module chosen for the initrd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Canonical name (dashes as underscores), e.g. `virtio_blk`.
    pub name: String,
    /// Path below `lib/modules/<release>/`, always ending in `.ko` (compressed modules are
    /// stored decompressed so busybox `modprobe` needs no decompressor).
    pub path: String,
    /// Module names to load first, hard and soft dependencies together.
    pub deps: Vec<String>,
    /// The module's ELF bytes.
    pub data: Vec<u8>,
}

/// The modules of one kernel release.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
    /// Canonical name → path relative to `root` (as shipped, possibly compressed).
    files: BTreeMap<String, String>,
    builtin: BTreeSet<String>,
    aliases: OnceLock<BTreeMap<String, String>>,
}

impl Tree {
    /// Indexes `lib/modules/<release>` of an unpacked kernel package.
    pub fn open(root: &Path) -> Result<Tree, BuildError> {
        let mut files = BTreeMap::new();
        index(root, root, &mut files)?;
        let builtin_path = root.join("modules.builtin");
        let builtin = std::fs::read_to_string(&builtin_path)
            .map_err(BuildError::io("reading", &builtin_path))?
            .lines()
            .map(|line| canonical(line.rsplit('/').next().unwrap_or(line)))
            .collect();
        Ok(Tree {
            root: root.to_owned(),
            files,
            builtin,
            aliases: OnceLock::new(),
        })
    }

    /// `wanted` and everything they need, in an order that loads each module after its
    /// dependencies. Built-in modules are left out.
    pub fn closure(&self, wanted: &[&str]) -> Result<Vec<Module>, BuildError> {
        let mut loaded: BTreeMap<String, Module> = BTreeMap::new();
        let mut order = Vec::new();
        for name in wanted {
            self.visit(&canonical(name), &mut loaded, &mut order, &mut Vec::new(), true)?;
        }
        Ok(order
            .into_iter()
            .map(|name| loaded.remove(&name).expect("visited modules are loaded"))
            .collect())
    }

    fn visit(
        &self,
        name: &str,
        loaded: &mut BTreeMap<String, Module>,
        order: &mut Vec<String>,
        stack: &mut Vec<String>,
        required: bool,
    ) -> Result<(), BuildError> {
        if loaded.contains_key(name) || self.builtin.contains(name) {
            return Ok(());
        }
        let module_error = |source| BuildError::Module {
            module: name.to_owned(),
            source,
        };
        if stack.iter().any(|s| s == name) {
            let mut cycle = stack.clone();
            cycle.push(name.to_owned());
            return Err(module_error(ModuleError::Cycle(cycle)));
        }
        let Some(relative) = self.files.get(name) else {
            if !required {
                return Ok(());
            }
            return Err(module_error(ModuleError::NotFound {
                dir: self.root.clone(),
                needed_by: stack.last().cloned(),
            }));
        };
        let file = self.root.join(relative);
        let data = read_module(&file)?;
        let info = modinfo(data.as_slice()).map_err(|source| {
            module_error(ModuleError::Modinfo {
                path: file.clone(),
                source,
            })
        })?;
        let mut deps = Vec::new();
        for (key, value) in &info {
            match key.as_str() {
                "depends" => deps.extend(
                    value
                        .split(',')
                        .filter(|d| !d.is_empty())
                        .map(|d| (canonical(d), true)),
                ),
                "softdep" => deps.extend(
                    soft_pre(value)
                        .into_iter()
                        .filter_map(|d| Some((self.resolve(&d)?, false))),
                ),
                _ => {}
            }
        }
        stack.push(name.to_owned());
        for (dep, hard) in &deps {
            self.visit(dep, loaded, order, stack, *hard)?;
        }
        stack.pop();
        let deps: Vec<String> = deps
            .into_iter()
            .map(|(dep, _)| dep)
            .filter(|dep| loaded.contains_key(dep))
            .fold(Vec::new(), |mut acc, dep| {
                if !acc.contains(&dep) {
                    acc.push(dep);
                }
                acc
            });
        let path = match relative.find(".ko") {
            Some(at) => format!("{}.ko", &relative[..at]),
            None => relative.clone(),
        };
        loaded.insert(
            name.to_owned(),
            Module {
                name: name.to_owned(),
                path,
                deps,
                data,
            },
        );
        order.push(name.to_owned());
        Ok(())
    }

    /// A soft dependency names a module or an alias (`crypto-crc32c`).
    fn resolve(&self, name: &str) -> Option<String> {
        let name = canonical(name);
        if self.files.contains_key(&name) || self.builtin.contains(&name) {
            return Some(name);
        }
        self.aliases().get(&name).cloned()
    }

    /// Exact (non-wildcard) aliases of every module, built on first use: reading only the
    /// `.modinfo` section of a few thousand files takes well under a second.
    fn aliases(&self) -> &BTreeMap<String, String> {
        self.aliases.get_or_init(|| {
            let mut aliases = BTreeMap::new();
            for (name, relative) in &self.files {
                let Some(info) = modinfo_of_file(&self.root.join(relative)) else {
                    continue;
                };
                for (key, value) in info {
                    if key == "alias" && !value.contains(['*', '?', '[']) {
                        aliases.entry(canonical(&value)).or_insert_with(|| name.clone());
                    }
                }
            }
            aliases
        })
    }
}

/// `modules.alias` for `modules` as depmod writes it: `alias PATTERN MODULE` for each `alias=`
/// of each module's `.modinfo`, in the modules' order.
pub fn modules_alias(modules: &[Module]) -> Result<String, BuildError> {
    let mut out = String::from("# Aliases extracted from modules themselves.\n");
    for module in modules {
        let info = modinfo(module.data.as_slice()).map_err(|source| BuildError::Module {
            module: module.name.clone(),
            source: ModuleError::Modinfo {
                path: module.path.clone().into(),
                source,
            },
        })?;
        for (key, value) in info {
            if key == "alias" {
                out.push_str(&format!("alias {value} {}\n", module.name));
            }
        }
    }
    Ok(out)
}

/// `modules.dep` lines for `modules` in the format kmod and busybox read: each module's path,
/// then its transitive dependencies with the one to load first last.
pub fn modules_dep(modules: &[Module]) -> String {
    let by_name: BTreeMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = String::new();
    for module in modules {
        let mut load_order = Vec::new();
        transitive(module, &by_name, &mut load_order);
        load_order.pop(); // the module itself comes last in load order
        out.push_str(&module.path);
        out.push(':');
        for dep in load_order.iter().rev() {
            out.push(' ');
            out.push_str(&by_name[dep.as_str()].path);
        }
        out.push('\n');
    }
    out
}

fn transitive(module: &Module, by_name: &BTreeMap<&str, &Module>, order: &mut Vec<String>) {
    for dep in &module.deps {
        if !order.contains(dep) {
            transitive(by_name[dep.as_str()], by_name, order);
        }
    }
    if !order.contains(&module.name) {
        order.push(module.name.clone());
    }
}

/// Module names treat `-` and `_` alike; the kernel reports them with underscores.
fn canonical(name: &str) -> String {
    let file = name.split(".ko").next().unwrap_or(name);
    file.replace('-', "_")
}

/// The `pre:` names of a `softdep=` value such as `pre: crypto-crc32c post: foo`.
fn soft_pre(value: &str) -> Vec<String> {
    let mut pre = false;
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        match word {
            "pre:" => pre = true,
            "post:" => pre = false,
            name if pre => out.push(name.to_owned()),
            _ => {}
        }
    }
    out
}

fn index(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(BuildError::io("listing", dir))?;
    for entry in entries {
        let entry = entry.map_err(BuildError::io("listing", dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(BuildError::io("inspecting", &path))?;
        if file_type.is_dir() {
            index(root, &path, files)?;
            continue;
        }
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
            .iter()
            .any(|ext| file_name.ends_with(ext))
        {
            let relative = path
                .strip_prefix(root)
                .expect("walked below root")
                .to_string_lossy()
                .into_owned();
            files.insert(canonical(&file_name), relative);
        }
    }
    Ok(())
}

/// A module file's ELF bytes, decompressing `.gz` in process and `.xz`/`.zst` with the
/// standard tools.
fn read_module(path: &Path) -> Result<Vec<u8>, BuildError> {
    let name = path.to_string_lossy();
    if name.ends_with(".ko") {
        return std::fs::read(path).map_err(BuildError::io("reading", path));
    }
    if name.ends_with(".gz") {
        let file = File::open(path).map_err(BuildError::io("opening", path))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut out)
            .map_err(BuildError::io("decompressing", path))?;
        return Ok(out);
    }
    let tool = if name.ends_with(".xz") { "xz" } else { "zstd" };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut command = Command::new(tool);
    command.args(["-d", "-c"]).arg(path);
    let output = crate::tool::run_bytes(&mut command, dir)?;
    Ok(output)
}

/// `.modinfo` of a module file, reading only the ELF headers and that section when the file is
/// uncompressed. `None` when the file cannot be read or has no `.modinfo`.
fn modinfo_of_file(path: &Path) -> Option<Vec<(String, String)>> {
    if path.to_string_lossy().ends_with(".ko") {
        let cache = ReadCache::new(File::open(path).ok()?);
        modinfo(&cache).ok()
    } else {
        modinfo(read_module(path).ok()?.as_slice()).ok()
    }
}

/// `.modinfo` key/value pairs of a module's ELF, from its bytes or a file read on demand. Only
/// the file header, the section headers and their names are parsed (not the symbol tables an
/// `ElfFile` would read), so looking through every module for an alias stays fast.
fn modinfo<'data, R: ReadRef<'data>>(elf: R) -> Result<Vec<(String, String)>, ModinfoError> {
    let header = FileHeader64::<Endianness>::parse(elf)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, elf)?;
    let (_, modinfo) = sections
        .section_by_name(endian, b".modinfo")
        .ok_or(ModinfoError::Missing)?;
    Ok(parse_modinfo(modinfo.data(endian, elf)?))
}

fn parse_modinfo(section: &[u8]) -> Vec<(String, String)> {
    section
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            let (key, value) = entry.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, deps: &[&str]) -> Module {
        Module {
            name: name.to_owned(),
            path: format!("kernel/{name}.ko"),
            deps: deps.iter().map(|d| d.to_string()).collect(),
            data: Vec::new(),
        }
    }

    /// A minimal ELF64 with a section-name table and a `.modinfo` section.
    fn elf_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.modinfo\0";
        let mut data = vec![0u8; 64];
        data[0..4].copy_from_slice(b"\x7fELF");
        data[4] = 2; // ELFCLASS64
        data[5] = 1; // little-endian
        data[6] = 1; // EV_CURRENT
        let names_at = data.len() as u64;
        data.extend_from_slice(names);
        let modinfo_at = data.len() as u64;
        data.extend_from_slice(modinfo);
        let shoff = data.len() as u64;
        let mut section = |name: u32, kind: u32, offset: u64, size: u64| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            data.extend(h);
        };
        section(0, 0, 0, 0);
        section(1, 3, names_at, names.len() as u64); // SHT_STRTAB
        section(11, 1, modinfo_at, modinfo.len() as u64); // SHT_PROGBITS
        data[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        data[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        data[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        data[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        data
    }

    #[test]
    fn modinfo_pairs_are_read_from_the_section() {
        let elf = elf_with_modinfo(b"license=GPL\0depends=jbd2,mbcache\0softdep=pre: crypto-crc32c\0");
        assert_eq!(
            modinfo(elf.as_slice()).unwrap(),
            vec![
                ("license".to_owned(), "GPL".to_owned()),
                ("depends".to_owned(), "jbd2,mbcache".to_owned()),
                ("softdep".to_owned(), "pre: crypto-crc32c".to_owned()),
            ]
        );
    }

    #[test]
    fn modinfo_is_read_from_a_file_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ko");
        std::fs::write(&path, elf_with_modinfo(b"alias=crypto-crc32c\0")).unwrap();
        assert_eq!(
            modinfo_of_file(&path).unwrap(),
            [("alias".to_owned(), "crypto-crc32c".to_owned())]
        );
    }

    #[test]
    fn non_elf_data_is_rejected() {
        let data = b"not an elf file at all, but long enough to hold a header......";
        assert!(matches!(modinfo(&data[..]), Err(ModinfoError::Elf(_))));
    }

    #[test]
    fn elf_without_modinfo_section_is_rejected() {
        let mut elf = elf_with_modinfo(b"");
        let at = elf.windows(8).position(|w| w == b".modinfo").unwrap();
        elf[at + 1] = b'M';
        assert!(matches!(modinfo(elf.as_slice()), Err(ModinfoError::Missing)));
    }

    #[test]
    fn soft_pre_takes_only_pre_names() {
        assert_eq!(soft_pre("pre: a b post: c"), ["a", "b"]);
        assert_eq!(soft_pre("post: c"), Vec::<String>::new());
    }

    #[test]
    fn names_are_canonical_with_underscores_and_no_extension() {
        assert_eq!(canonical("crc32c-generic.ko.xz"), "crc32c_generic");
        assert_eq!(canonical("virtio_blk"), "virtio_blk");
    }

    /// A kernel module tree in a temporary directory: `(relative path, modinfo)` per module;
    /// `.xz` and `.gz` files are compressed with the standard tools.
    fn tree(modules: &[(&str, &[u8])], builtin: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, info) in modules {
            let plain = path.trim_end_matches(".xz").trim_end_matches(".gz");
            let file = dir.path().join(plain);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, elf_with_modinfo(info)).unwrap();
            for (ext, tool) in [(".xz", "xz"), (".gz", "gzip")] {
                if path.ends_with(ext) {
                    let status = Command::new(tool).arg(&file).status().unwrap();
                    assert!(status.success(), "{tool} failed");
                }
            }
        }
        std::fs::write(dir.path().join("modules.builtin"), builtin).unwrap();
        dir
    }

    #[test]
    fn closure_loads_hard_and_soft_dependencies_first() {
        let dir = tree(
            &[
                (
                    "kernel/fs/ext4/ext4.ko",
                    b"depends=jbd2,crc16\0softdep=pre: crypto-crc32c\0",
                ),
                ("kernel/fs/jbd2/jbd2.ko.xz", b"depends=\0"),
                ("kernel/lib/crc16.ko.gz", b"depends=\0"),
                (
                    "kernel/crypto/crc32c_generic.ko",
                    b"alias=crypto-crc32c\0alias=crc32c\0depends=\0",
                ),
                (
                    "kernel/drivers/block/virtio_blk.ko",
                    b"depends=virtio,virtio_ring\0",
                ),
            ],
            "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n",
        );
        let modules = Tree::open(dir.path())
            .unwrap()
            .closure(&["virtio_blk", "ext4"])
            .unwrap();
        let names: Vec<&str> = modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["virtio_blk", "jbd2", "crc16", "crc32c_generic", "ext4"]);
        assert_eq!(modules[4].deps, ["jbd2", "crc16", "crc32c_generic"]);
        assert!(modules[0].deps.is_empty(), "built-in dependencies are left out");
    }

    #[test]
    fn compressed_modules_are_stored_decompressed_as_ko() {
        let dir = tree(
            &[
                ("kernel/fs/jbd2/jbd2.ko.xz", b"depends=\0"),
                ("kernel/lib/crc16.ko.gz", b"depends=\0"),
            ],
            "",
        );
        let modules = Tree::open(dir.path())
            .unwrap()
            .closure(&["jbd2", "crc16"])
            .unwrap();
        assert_eq!(modules[0].path, "kernel/fs/jbd2/jbd2.ko");
        assert_eq!(modules[1].path, "kernel/lib/crc16.ko");
        assert!(modules.iter().all(|m| m.data.starts_with(b"\x7fELF")));
    }

    #[test]
    fn missing_hard_dependency_names_the_module_that_needs_it() {
        let dir = tree(&[("kernel/fs/ext4/ext4.ko", b"depends=jbd2\0")], "");
        let err = Tree::open(dir.path())
            .unwrap()
            .closure(&["ext4"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("kernel module `jbd2`"), "{err}");
        assert!(err.contains("(needed by ext4)"), "{err}");
    }

    #[test]
    fn unresolvable_soft_dependency_is_skipped() {
        let dir = tree(
            &[("kernel/fs/jbd2/jbd2.ko", b"softdep=pre: crypto-nothing\0")],
            "",
        );
        let modules = Tree::open(dir.path()).unwrap().closure(&["jbd2"]).unwrap();
        assert_eq!(modules.len(), 1);
        assert!(modules[0].deps.is_empty());
    }

    #[test]
    fn modules_dep_lists_first_to_load_last() {
        let modules = [
            module("crc16", &[]),
            module("crc32c_generic", &[]),
            module("jbd2", &["crc32c_generic"]),
            module("ext4", &["jbd2", "crc16", "crc32c_generic"]),
        ];
        assert_eq!(
            modules_dep(&modules),
            "kernel/crc16.ko:\n\
             kernel/crc32c_generic.ko:\n\
             kernel/jbd2.ko: kernel/crc32c_generic.ko\n\
             kernel/ext4.ko: kernel/crc16.ko kernel/jbd2.ko kernel/crc32c_generic.ko\n"
        );
    }
}
