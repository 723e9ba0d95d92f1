//! What U-Boot reads from a fixture: the kernel, initrd and device tree files and the
//! extlinux.conf naming them, laid out as NixOS's generic-extlinux builder or the reference
//! write-up's hand-written first boot lays them out.

use std::path::Path;

use crate::fixture::{Breakage, Layout, Recipe};
use crate::recipe;
use crate::staging::put;
use crate::store::{self, Generation};
use crate::BuildError;

/// The board's device tree, as NixOS's `FDT` line names it below the dtbs directory.
pub const DTB: &str = "rockchip/rk3328-nanopi-r2s.dtb";
/// The kernel's store name; boot files are named after it as NixOS names them.
const KERNEL_STORE_NAME: &str = "linux-6.1";
/// extlinux `TIMEOUT`, in tenths of a second (U-Boot 2023.01 divides by ten and rounds up):
/// 3 s of menu, long enough to choose an entry, short enough not to slow every boot.
pub const MENU_TIMEOUT: u32 = 30;
/// Offset of the arm64 Image header's `image_size` field (u64, little-endian): the memory the
/// kernel needs from its load address, which U-Boot's `booti` honours.
const IMAGE_SIZE_OFFSET: usize = 0x10;

/// The contents of the files U-Boot loads, before they are named and placed.
#[derive(Debug, Clone)]
pub struct BootContents {
    /// The raw arm64 Image.
    pub kernel: Vec<u8>,
    /// The gzip-compressed initrd.
    pub initrd: Vec<u8>,
    /// The board's device tree blob.
    pub dtb: Vec<u8>,
}

impl BootContents {
    /// The contents with a content breakage applied (gzipped kernel, patched image size).
    pub fn broken(mut self, breakage: Breakage) -> BootContents {
        match breakage {
            Breakage::KernelGzipped => self.kernel = gzip(&self.kernel),
            Breakage::KernelImageSize(size) => self.set_image_size(size),
            Breakage::LargeKernel(large) => {
                self.set_image_size(large.image_size);
                // Zeros after the Image's end are never read by the kernel; on ext4 they are holes.
                let len = self.kernel.len().max(large.file_size as usize);
                self.kernel.resize(len, 0);
            }
            _ => {}
        }
        self
    }

    fn set_image_size(&mut self, size: u64) {
        self.kernel[IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8].copy_from_slice(&size.to_le_bytes());
    }
}

/// Stages the boot files and extlinux.conf of `recipe` in `dir`, the root of the filesystem
/// U-Boot reads them from (NIXOS_BOOT, or the sd-image's `/boot`). `params` are the kernel
/// parameters after `init=` in NixOS's entries.
pub fn stage(
    dir: &Path,
    recipe: Recipe,
    contents: &BootContents,
    generations: &[Generation],
    params: &str,
) -> Result<(), BuildError> {
    let breakage = recipe.breakage;
    let (names, conf) = match recipe.layout {
        Layout::FirstBoot => {
            let names = Names {
                kernel: "Image".to_owned(),
                initrd: "initrd".to_owned(),
                dtb: "rk3328-nanopi-r2s.dtb".to_owned(),
            };
            let conf = recipe::EXTLINUX_FIRST_BOOT
                .render(&[("root", "root=LABEL=NIXOS_SD"), ("init", &generations[0].init())]);
            (names, conf)
        }
        Layout::Generations(_) | Layout::SdImage => {
            let files = NixosFiles::new();
            let extra = match breakage {
                Breakage::DefaultEntryParams(extra) => extra,
                _ => "",
            };
            let conf = extlinux_conf(&files, generations, params, extra);
            let names = Names {
                kernel: format!("nixos/{}", files.kernel),
                initrd: format!("nixos/{}", files.initrd),
                dtb: format!("nixos/{}/{DTB}", files.dtbs),
            };
            (names, conf)
        }
    };
    if breakage != Breakage::KernelMissing {
        put(&dir.join(&names.kernel), &contents.kernel, 0o444)?;
    }
    if breakage != Breakage::InitrdMissing {
        put(&dir.join(&names.initrd), &contents.initrd, 0o444)?;
    }
    if breakage != Breakage::FdtMissing {
        put(&dir.join(&names.dtb), &contents.dtb, 0o444)?;
    }
    if breakage != Breakage::ExtlinuxConfMissing {
        let conf = edit_conf(&conf, breakage);
        put(&dir.join("extlinux/extlinux.conf"), conf.as_bytes(), 0o644)?;
    }
    Ok(())
}

/// Where the boot files go, relative to the boot filesystem's root.
struct Names {
    kernel: String,
    initrd: String,
    dtb: String,
}

/// Names of the files in `/nixos`, as NixOS's extlinux builder derives them from store paths
/// (`/nix/store/<hash>-linux-6.1/Image` becomes `<hash>-linux-6.1-Image`).
pub struct NixosFiles {
    /// The kernel's file name.
    pub kernel: String,
    /// The initrd's file name.
    pub initrd: String,
    /// The device tree directory's name.
    pub dtbs: String,
}

impl NixosFiles {
    /// The names every fixture uses.
    pub fn new() -> NixosFiles {
        let kernel = format!("{}-{KERNEL_STORE_NAME}", store::store_hash(KERNEL_STORE_NAME));
        let initrd_name = format!("initrd-{KERNEL_STORE_NAME}");
        NixosFiles {
            kernel: format!("{kernel}-Image"),
            initrd: format!("{}-{initrd_name}-initrd", store::store_hash(&initrd_name)),
            dtbs: format!("{kernel}-dtbs"),
        }
    }
}

/// `extlinux.conf` as NixOS's generic-extlinux-compatible builder writes it: the current
/// generation (the first of `generations`) as `nixos-default`, then the older ones newest
/// first. `default_extra` is appended to the default entry's APPEND.
pub fn extlinux_conf(
    files: &NixosFiles,
    generations: &[Generation],
    params: &str,
    default_extra: &str,
) -> String {
    let timeout = MENU_TIMEOUT.to_string();
    let mut conf = recipe::EXTLINUX_HEADER.render(&[("timeout", &timeout)]);
    let default = std::iter::once((&generations[0], true));
    for (generation, is_default) in default.chain(generations[1..].iter().map(|g| (g, false))) {
        let (label, menu_label, params) = if is_default {
            let params = format!("{params} {default_extra}");
            (
                "nixos-default".to_owned(),
                "NixOS - Default".to_owned(),
                params.trim_end().to_owned(),
            )
        } else {
            (
                format!("nixos-{}-default", generation.number),
                format!(
                    "NixOS - Configuration {} ({} - {})",
                    generation.number, generation.date, generation.version
                ),
                params.to_owned(),
            )
        };
        conf.push_str(&recipe::EXTLINUX_ENTRY.render(&[
            ("label", &label),
            ("menuLabel", &menu_label),
            ("kernel", &format!("../nixos/{}", files.kernel)),
            ("initrd", &format!("../nixos/{}", files.initrd)),
            ("init", &generation.init()),
            ("kernelParams", &params),
            ("fdt", &format!("../nixos/{}/{DTB}", files.dtbs)),
        ]));
    }
    conf
}

/// The system a stale `init=` names: built and booted once, then garbage-collected.
fn stale_init() -> String {
    format!(
        "{}/init",
        store::store_path(&format!(
            "nixos-system-{}-25.05.20250801.0c1d2e3",
            store::HOSTNAME
        ))
    )
}

/// `conf` with the text breakages applied: a changed `DEFAULT` or `TIMEOUT`, an extra line after `TIMEOUT`,
/// and `console=`, `root=` or `init=` replaced in every `APPEND`.
fn edit_conf(conf: &str, breakage: Breakage) -> String {
    let replaced_param = match breakage {
        Breakage::Console(param) | Breakage::RootParam(param) => Some(param.to_owned()),
        Breakage::StaleInit | Breakage::F2fsRootStaleInit => Some(format!("init={}", stale_init())),
        _ => None,
    };
    let mut out = String::new();
    for line in conf.lines() {
        let keyword = line.split_whitespace().next().unwrap_or("");
        match (keyword, breakage, &replaced_param) {
            ("DEFAULT", Breakage::Default(label), _) => out.push_str(&format!("DEFAULT {label}")),
            ("TIMEOUT", Breakage::ExtlinuxLine(extra), _) => out.push_str(&format!("{line}\n{extra}")),
            ("TIMEOUT", Breakage::MenuTimeout(tenths), _) => out.push_str(&format!("TIMEOUT {tenths}")),
            ("APPEND", _, Some(param)) => {
                let key = param.split('=').next().unwrap_or("");
                let indent = &line[..line.len() - line.trim_start().len()];
                let words: Vec<&str> = line
                    .split_whitespace()
                    .map(|w| {
                        if w.split('=').next() == Some(key) {
                            param.as_str()
                        } else {
                            w
                        }
                    })
                    .collect();
                out.push_str(indent);
                out.push_str(&words.join(" "));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generations_conf(extra: &str) -> String {
        extlinux_conf(
            &NixosFiles::new(),
            store::generations(),
            &recipe::KERNEL_PARAMS.joined(),
            extra,
        )
    }

    #[test]
    fn extlinux_conf_lists_default_then_generations_newest_first() {
        let conf = generations_conf("");
        let labels: Vec<&str> = conf.lines().filter_map(|l| l.strip_prefix("LABEL ")).collect();
        assert_eq!(labels, ["nixos-default", "nixos-2-default", "nixos-1-default"]);
        assert!(conf.starts_with("# Generated file, all changes will be lost on nixos-rebuild!\n"));
        assert!(conf.contains("\nDEFAULT nixos-default\n"));
        assert!(conf.contains(&format!("\nTIMEOUT {MENU_TIMEOUT}\n")));
        assert!(conf.contains("\nMENU TITLE ------------------------------------------------------------\n"));
        assert!(conf.contains("  MENU LABEL NixOS - Configuration 2 (2025-07-01 - 25.05.20250701.1a2b3c4)\n"));
    }

    #[test]
    fn default_entry_boots_the_current_generation_with_the_given_console() {
        let conf = generations_conf("");
        let current = &store::generations()[0];
        let append = conf
            .lines()
            .find(|l| l.trim_start().starts_with("APPEND"))
            .unwrap();
        assert_eq!(
            append,
            format!(
                "  APPEND init={} console=ttyAMA0,115200 earlycon=pl011,0x9000000 loglevel=4",
                current.init()
            )
        );
    }

    #[test]
    fn extra_parameters_go_to_the_default_entry_only() {
        let conf = generations_conf("rdinit=/bin/false");
        let appends: Vec<&str> = conf.lines().filter(|l| l.contains("APPEND")).collect();
        assert!(appends[0].ends_with(" loglevel=4 rdinit=/bin/false"));
        assert!(appends[1..].iter().all(|a| a.ends_with(" loglevel=4")));
    }

    #[test]
    fn boot_files_are_named_like_nixos_copies_of_store_paths() {
        let files = NixosFiles::new();
        let conf = generations_conf("");
        let hash = store::store_hash(KERNEL_STORE_NAME);
        assert_eq!(files.kernel, format!("{hash}-linux-6.1-Image"));
        assert!(files.initrd.ends_with("-initrd-linux-6.1-initrd"));
        assert!(conf.contains(&format!(
            "  FDT ../nixos/{hash}-linux-6.1-dtbs/rockchip/rk3328-nanopi-r2s.dtb\n"
        )));
        assert!(conf.contains(&format!("  LINUX ../nixos/{hash}-linux-6.1-Image\n")));
    }

    #[test]
    fn console_breakage_replaces_the_console_of_every_entry() {
        let conf = edit_conf(&generations_conf(""), Breakage::Console("console=ttyS2,115200n8"));
        let appends: Vec<&str> = conf.lines().filter(|l| l.contains("APPEND")).collect();
        assert_eq!(appends.len(), 3);
        for append in appends {
            assert!(append.starts_with("  APPEND init="), "{append}");
            assert!(append.contains(" console=ttyS2,115200n8 earlycon="), "{append}");
        }
    }

    #[test]
    fn default_and_extra_line_breakages_edit_the_header() {
        let conf = edit_conf(&generations_conf(""), Breakage::Default("nixos-42"));
        assert!(conf.contains("\nDEFAULT nixos-42\n"), "{conf}");
        let conf = edit_conf(&generations_conf(""), Breakage::ExtlinuxLine("UI menu.c32"));
        assert!(
            conf.contains(&format!("\nTIMEOUT {MENU_TIMEOUT}\nUI menu.c32\n")),
            "{conf}"
        );
    }

    #[test]
    fn first_boot_conf_is_the_write_up_text_with_root_and_init_filled() {
        let conf = recipe::EXTLINUX_FIRST_BOOT
            .render(&[("root", "root=LABEL=NIXOS_SD"), ("init", "/nix/store/x/init")]);
        assert_eq!(
            conf,
            "DEFAULT NixOS\nTIMEOUT 1\nLABEL NixOS\n    KERNEL /Image\n    INITRD /initrd\n    FDT \
             /rk3328-nanopi-r2s.dtb\n    APPEND console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 \
             root=LABEL=NIXOS_SD rootfstype=ext4 rootwait init=/nix/store/x/init\n"
        );
        let stale = edit_conf(&conf, Breakage::StaleInit);
        assert!(
            stale.contains(&format!(" rootwait init={}\n", stale_init())),
            "{stale}"
        );
        let root = edit_conf(&conf, Breakage::RootParam("root=LABEL=nixos"));
        assert!(root.contains(" root=LABEL=nixos rootfstype=ext4 "), "{root}");
    }

    #[test]
    fn image_size_breakage_patches_the_header_field() {
        let mut kernel = vec![0u8; 64];
        kernel[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let contents = BootContents {
            kernel,
            initrd: Vec::new(),
            dtb: Vec::new(),
        }
        .broken(Breakage::KernelImageSize(68 << 20));
        assert_eq!(&contents.kernel[0x10..0x18], &(68u64 << 20).to_le_bytes());
    }

    #[test]
    fn large_kernel_breakage_raises_image_size_and_pads_the_file_with_zeros() {
        let mut kernel = vec![7u8; 64];
        kernel[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let contents = BootContents {
            kernel,
            initrd: Vec::new(),
            dtb: Vec::new(),
        }
        .broken(Breakage::LargeKernel(crate::fixture::LargeKernel {
            image_size: 66 << 20,
            file_size: 4096,
            uboot_ramdisk_addr_r: None,
        }));
        assert_eq!(&contents.kernel[0x10..0x18], &(66u64 << 20).to_le_bytes());
        assert_eq!(contents.kernel.len(), 4096);
        assert!(contents.kernel[64..].iter().all(|b| *b == 0));
    }
}
