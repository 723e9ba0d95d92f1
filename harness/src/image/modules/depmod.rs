//! A kernel's module directory as `depmod` leaves it: `modules.dep` (each module's path and the
//! paths of every module it needs, in load order) and `modules.alias` (device patterns to
//! module names), parsed, and a module's closure taken from them.

use std::collections::{BTreeMap, BTreeSet};

use crate::image::initrd::{canonical, module_name};

/// One module of `modules.dep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepEntry {
    /// Its path below `lib/modules/<release>/`, as modules.dep writes it.
    pub path: String,
    /// The canonical names of what it needs, loaded first, in modules.dep's order.
    pub deps: Vec<String>,
}

/// A parsed modules.dep and modules.alias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depmod {
    /// Canonical name → its entry.
    pub modules: BTreeMap<String, DepEntry>,
    /// Canonical name → its place in modules.dep (depmod's priority for its aliases).
    pub order: BTreeMap<String, u32>,
    /// Canonical module name → the alias patterns modules.alias gives it.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// A line of modules.dep or modules.alias that is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {detail}")]
pub struct DepmodError {
    /// `modules.dep` or `modules.alias`.
    pub file: &'static str,
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

impl Depmod {
    /// Parses `modules.dep` text and, if there is one, `modules.alias` text.
    pub fn parse(dep: &str, alias: Option<&str>) -> Result<Depmod, DepmodError> {
        let mut depmod = Depmod::default();
        for (i, line) in dep.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |detail: String| DepmodError {
                file: "modules.dep",
                line: i + 1,
                detail,
            };
            let (path, needs) = line
                .split_once(':')
                .ok_or_else(|| fail(format!("no ':' after the module's path in {line:?}")))?;
            let name = name_of(path).ok_or_else(|| fail(format!("{path:?} is not a module file")))?;
            let deps = needs
                .split_whitespace()
                .map(|dep| name_of(dep).ok_or_else(|| fail(format!("{dep:?} is not a module file"))))
                .collect::<Result<Vec<_>, _>>()?;
            let order = depmod.order.len() as u32;
            depmod.order.entry(name.clone()).or_insert(order);
            depmod.modules.entry(name).or_insert(DepEntry {
                path: path.trim().to_owned(),
                deps,
            });
        }
        for (i, line) in alias.unwrap_or("").lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let ["alias", pattern, module] = words[..] else {
                return Err(DepmodError {
                    file: "modules.alias",
                    line: i + 1,
                    detail: format!("not `alias PATTERN MODULE`: {line:?}"),
                });
            };
            depmod
                .aliases
                .entry(canonical(module))
                .or_default()
                .push(pattern.to_owned());
        }
        Ok(depmod)
    }

    /// `wanted` and every module they need, each after what it needs; `Err` names the first
    /// module modules.dep does not list.
    pub fn closure<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in wanted {
            let name = canonical(name);
            let entry = self.modules.get(&name).ok_or_else(|| name.clone())?;
            // modules.dep lists every module needed, not only the direct ones: its own order
            // is a load order, so no recursion is needed (nor possible to loop).
            for dep in entry.deps.iter().rev().chain(std::iter::once(&name)) {
                if !self.modules.contains_key(dep) {
                    return Err(dep.clone());
                }
                if seen.insert(dep.clone()) {
                    order.push(dep.clone());
                }
            }
        }
        Ok(order)
    }
}

/// The canonical name of a module path (`kernel/drivers/mmc/host/dw_mmc-rockchip.ko.xz`).
fn name_of(path: &str) -> Option<String> {
    let path = path.trim();
    module_name(path.rsplit('/').next().unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/block/virtio_blk.ko:
kernel/drivers/virtio/virtio_mmio.ko:
";

    #[test]
    fn modules_dep_lines_give_each_module_its_path_and_needs() {
        let depmod = Depmod::parse(DEP, None).unwrap();
        assert_eq!(
            depmod.modules["ext4"],
            DepEntry {
                path: "kernel/fs/ext4/ext4.ko".into(),
                deps: vec!["jbd2".into(), "mbcache".into(), "crc16".into()],
            }
        );
        assert_eq!(depmod.order["virtio_blk"], 4);
    }

    #[test]
    fn a_closure_loads_what_a_module_needs_first_in_reverse_dep_order() {
        let depmod = Depmod::parse(DEP, None).unwrap();
        assert_eq!(
            depmod.closure(["virtio_blk", "ext4"]).unwrap(),
            vec!["virtio_blk", "crc16", "mbcache", "jbd2", "ext4"]
        );
    }

    #[test]
    fn a_module_modules_dep_does_not_list_is_named() {
        let depmod = Depmod::parse(DEP, None).unwrap();
        assert_eq!(depmod.closure(["nvme"]), Err("nvme".to_owned()));
    }

    #[test]
    fn aliases_are_kept_per_module_with_dashes_as_underscores() {
        let depmod = Depmod::parse(
            DEP,
            Some("# Aliases extracted from modules themselves.\nalias virtio:d00000002v* virtio_blk\nalias of:N*T*Cvirtio,mmio virtio-mmio\n"),
        )
        .unwrap();
        assert_eq!(depmod.aliases["virtio_blk"], vec!["virtio:d00000002v*"]);
        assert_eq!(depmod.aliases["virtio_mmio"], vec!["of:N*T*Cvirtio,mmio"]);
    }

    #[test]
    fn malformed_lines_are_named_by_file_and_line() {
        assert_eq!(
            Depmod::parse("kernel/a.ko:\nno colon here\n", None),
            Err(DepmodError {
                file: "modules.dep",
                line: 2,
                detail: "no ':' after the module's path in \"no colon here\"".into()
            })
        );
        assert_eq!(
            Depmod::parse("", Some("alias x")).unwrap_err().file,
            "modules.alias"
        );
    }
}
