//! Where an initrd keeps its kernel modules. `modprobe` looks in `/lib/modules/<release>/`,
//! and that path means what the archive's own symlinks make it mean: Debian's `lib` is a
//! link to `usr/lib`; NixOS's scripted stage 1 links `/lib` to
//! `/nix/store/<hash>-linux-<ver>-modules-shrunk/lib`, its systemd stage 1 links `/lib/modules`
//! to that store path's `lib/modules`. So the archive's entries are gathered as they come (a
//! symlink may follow the files it points to, or come in a later archive that replaces an
//! earlier one's), and only then is it decided which of them are the kernel's modules.

use std::collections::{BTreeMap, BTreeSet};

use super::{canonical, module_name, parse_builtin_list, Index, InitrdError, Limits, RootFiles};

/// How many symlinks one path may pass through, as the kernel's `MAXSYMLINKS`.
const MAX_HOPS: usize = 40;

/// The paths modprobe looks in, before the archive's symlinks are followed.
const MODULE_DIRS: [&str; 2] = ["lib/modules", "usr/lib/modules"];

/// Which files' data an [`Entries`] wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    /// Only the name.
    Nothing,
    /// A `modules.builtin` list.
    BuiltinList,
    /// A `modules.alias` list.
    AliasList,
    /// One of the [`RootFiles`] (or a file `/etc/fstab` may lead to).
    RootFile,
}

/// Where a NixOS initrd keeps its store paths, and the names of the store paths that say which
/// filesystem is the root.
const STORE: &str = "nix/store/";
const STORE_FSTAB: &str = "-initrd-fstab";
const STORE_FS_INFO: &str = "-initrd-fsinfo";
const FSTAB: &str = "etc/fstab";

/// The entries of an archive that may say what modules it holds and which filesystem is the
/// root.
#[derive(Debug, Default)]
pub(super) struct Entries {
    /// Files and symlinks named like modules (`*.ko`, `*.ko.zst`, …), by path.
    module_files: BTreeSet<String>,
    /// The module names of each `modules.builtin`, by the path of its directory.
    builtin_lists: BTreeMap<String, BTreeSet<String>>,
    /// Symlinks and where they point, as the archive writes them.
    symlinks: BTreeMap<String, String>,
    /// Bytes of paths and link targets kept, against [`Limits::names`].
    kept: u64,
    /// Bytes of `modules.builtin` lists read, against [`Limits::builtin_list`].
    builtin_bytes: u64,
    /// The text of each `modules.alias`, by the path of its directory.
    alias_lists: BTreeMap<String, String>,
    /// Bytes of `modules.alias` lists kept, against [`Limits::alias_lists`].
    alias_bytes: u64,
    /// The root files' texts by path (at most [`Limits::root_file`] bytes each, and only the
    /// paths [`Entries::wants_data`] names, so few).
    root_texts: BTreeMap<String, String>,
}

impl Entries {
    /// Whether the data of a regular file at `path` is wanted, and as what.
    pub(super) fn wants_data(path: &[u8]) -> Wanted {
        if path.ends_with(b"modules.builtin") {
            return Wanted::BuiltinList;
        }
        if path.ends_with(b"/modules.alias") {
            return Wanted::AliasList;
        }
        let path = normal(std::str::from_utf8(path).unwrap_or(""));
        let store_file = path.strip_prefix(STORE).is_some_and(|name| {
            !name.contains('/') && (name.ends_with(STORE_FSTAB) || name.ends_with(STORE_FS_INFO))
        });
        if path == FSTAB || store_file {
            Wanted::RootFile
        } else {
            Wanted::Nothing
        }
    }

    /// Records a regular file; `data` is its contents if [`Entries::wants_data`] said so.
    pub(super) fn file(&mut self, path: &str, data: &[u8], limits: Limits) -> Result<(), InitrdError> {
        let path = normal(path);
        if let Some(dir) = path.strip_suffix("/modules.builtin") {
            self.builtin_bytes += data.len() as u64;
            if self.builtin_bytes > limits.builtin_list {
                return Err(InitrdError::BuiltinListTooLarge {
                    path: path.to_owned(),
                    size: self.builtin_bytes,
                    limit: limits.builtin_list,
                });
            }
            self.keep(dir.len(), limits)?;
            let list = parse_builtin_list(&String::from_utf8_lossy(data)).collect();
            self.builtin_lists.insert(dir.to_owned(), list);
        } else if let Some(dir) = path.strip_suffix("/modules.alias") {
            // Only what the limit leaves room for: the list only adds aliases.
            if self.alias_bytes + data.len() as u64 <= limits.alias_lists {
                self.alias_bytes += data.len() as u64;
                self.keep(dir.len(), limits)?;
                self.alias_lists
                    .insert(dir.to_owned(), String::from_utf8_lossy(data).into_owned());
            }
        } else if Self::wants_data(path.as_bytes()) == Wanted::RootFile {
            self.root_texts
                .insert(path.to_owned(), String::from_utf8_lossy(data).into_owned());
        } else {
            self.module_file(path, limits)?;
        }
        Ok(())
    }

    /// Records a symlink at `path` to `target`.
    pub(super) fn symlink(&mut self, path: &str, target: &[u8], limits: Limits) -> Result<(), InitrdError> {
        let path = normal(path);
        let target = String::from_utf8_lossy(target).into_owned();
        self.keep(path.len() + target.len(), limits)?;
        self.module_file(path, limits)?;
        self.symlinks.insert(path.to_owned(), target);
        Ok(())
    }

    fn module_file(&mut self, path: &str, limits: Limits) -> Result<(), InitrdError> {
        let file = path.rsplit('/').next().unwrap_or(path);
        if module_name(file).is_some() {
            self.keep(path.len(), limits)?;
            self.module_files.insert(path.to_owned());
        }
        Ok(())
    }

    fn keep(&mut self, bytes: usize, limits: Limits) -> Result<(), InitrdError> {
        self.kept += bytes as u64;
        if self.kept > limits.names {
            return Err(InitrdError::NamesTooLarge { limit: limits.names });
        }
        Ok(())
    }

    /// Fills `index` with the modules and builtin lists below the directories modprobe looks
    /// in; if there are none, with those below any `nix/store/<path>/lib/modules/` (initrds
    /// whose init makes the `/lib/modules` link only when it runs).
    pub(super) fn index_into(&self, index: &mut Index) {
        index.root_files = self.root_files();
        let linked: Vec<String> = MODULE_DIRS
            .iter()
            .filter_map(|dir| resolve(dir, &self.symlinks))
            .collect();
        self.index_below(index, |path| {
            linked
                .iter()
                .find_map(|dir| path.strip_prefix(dir.as_str())?.strip_prefix('/'))
        });
        if index.modules.is_empty() && index.builtin.is_none() {
            self.index_below(index, |path| {
                let in_store = path.strip_prefix("nix/store/")?;
                let (_, below) = in_store.split_once("/lib/modules/")?;
                Some(below)
            });
        }
    }

    /// The root files: `/etc/fstab` where its links lead, and the store's fstab and fsinfo
    /// (a store fstab that `/etc/fstab` leads to is the fstab, not another one).
    fn root_files(&self) -> RootFiles {
        let fstab_path = resolve(FSTAB, &self.symlinks);
        let fstab = fstab_path
            .as_ref()
            .and_then(|path| self.root_texts.get(path))
            .cloned();
        let store = |suffix: &str| {
            self.root_texts
                .iter()
                .find(|(path, _)| path.ends_with(suffix) && Some(*path) != fstab_path.as_ref())
                .map(|(_, text)| text.clone())
        };
        RootFiles {
            fstab,
            store_fstab: store(STORE_FSTAB),
            fs_info: store(STORE_FS_INFO),
        }
    }

    /// Adds what lies below the modules directory `below` finds in a path (`<release>/…`).
    fn index_below<'a>(&'a self, index: &mut Index, below: impl Fn(&'a str) -> Option<&'a str>) {
        for path in &self.module_files {
            let Some(below) = below(path) else { continue };
            let Some((release, rest)) = below.split_once('/') else {
                continue;
            };
            if release.is_empty() || rest.is_empty() {
                continue;
            }
            let file = path.rsplit('/').next().unwrap_or(path);
            if let Some(module) = module_name(file) {
                // `below` ends `path`: what comes before it is the modules directory.
                let dir = format!("{}{release}", &path[..path.len() - below.len()]);
                index.module_dirs.entry(release.to_owned()).or_insert(dir);
                index.module_paths.insert(module.clone(), rest.to_owned());
                index.modules.insert(module);
                index.releases.insert(release.to_owned());
            }
        }
        for (dir, list) in &self.builtin_lists {
            let Some(release) = below(dir) else { continue };
            if release.is_empty() || release.contains('/') {
                continue;
            }
            index
                .builtin
                .get_or_insert_with(BTreeSet::new)
                .extend(list.iter().cloned());
            index.releases.insert(release.to_owned());
        }
        for (dir, text) in &self.alias_lists {
            let Some(release) = below(dir) else { continue };
            if release.is_empty() || release.contains('/') {
                continue;
            }
            // `alias PATTERN MODULE` lines; anything else is not one and is passed over.
            for line in text.lines() {
                if let ["alias", pattern, module] = line.split_whitespace().collect::<Vec<_>>()[..] {
                    let patterns = index.aliases.entry(canonical(module)).or_default();
                    if !patterns.iter().any(|known| known == pattern) {
                        patterns.push(pattern.to_owned());
                    }
                }
            }
        }
    }
}

/// A path of the archive as one spelling: no `./` or `/` in front.
fn normal(path: &str) -> &str {
    path.trim_start_matches("./").trim_start_matches('/')
}

/// Where `path` leads through `symlinks`, as a path of the archive (no leading `/`); `None`
/// when it passes through more than [`MAX_HOPS`] links or climbs above the root.
pub(super) fn resolve(path: &str, symlinks: &BTreeMap<String, String>) -> Option<String> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = components(path).rev().map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                done.pop()?;
                continue;
            }
            _ => done.push(part),
        }
        if let Some(target) = symlinks.get(&done.join("/")) {
            hops += 1;
            if hops > MAX_HOPS {
                return None;
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(components(target).rev().map(str::to_owned));
        }
    }
    Some(done.join("/"))
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|part| !part.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(from, to)| (from.to_string(), to.to_string()))
            .collect()
    }

    #[test]
    fn a_path_without_links_leads_to_itself() {
        assert_eq!(
            resolve("lib/modules", &links(&[])).as_deref(),
            Some("lib/modules")
        );
    }

    #[test]
    fn an_absolute_link_restarts_at_the_root_and_a_relative_one_at_its_directory() {
        let store = "/nix/store/0a1b-linux-6.6-modules-shrunk/lib";
        assert_eq!(
            resolve("lib/modules", &links(&[("lib", store)])).as_deref(),
            Some("nix/store/0a1b-linux-6.6-modules-shrunk/lib/modules")
        );
        assert_eq!(
            resolve("lib/modules", &links(&[("lib", "usr/lib")])).as_deref(),
            Some("usr/lib/modules")
        );
        assert_eq!(
            resolve("lib/modules", &links(&[("lib", "./x/../usr/lib")])).as_deref(),
            Some("usr/lib/modules")
        );
    }

    #[test]
    fn links_are_followed_through_links() {
        let chain = links(&[
            ("lib", "usr/lib"),
            ("usr/lib/modules", "/nix/store/h-m/lib/modules"),
        ]);
        assert_eq!(
            resolve("lib/modules", &chain).as_deref(),
            Some("nix/store/h-m/lib/modules")
        );
    }

    #[test]
    fn a_link_loop_and_a_climb_above_the_root_lead_nowhere() {
        assert_eq!(
            resolve("lib/modules", &links(&[("lib", "lib2"), ("lib2", "lib")])),
            None
        );
        assert_eq!(resolve("lib/modules", &links(&[("lib", "../../x")])), None);
    }
}
