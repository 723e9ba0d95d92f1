//! Putting a fixture together: kernel, initrd, boot and root filesystems, disk image.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cpio::Archive;
use crate::debian::{Parts, BUSYBOX};
use crate::disk::{self, Piece};
use crate::fixture::Breakage;
use crate::recipe::{self, RecipeFile};
use crate::store::{self, Generation};
use crate::{crypt, ext4, kernel, modules, BuildError, ROOT_PASSWORD};

/// The label stage 1 waits for and the good root filesystem carries.
const ROOT_LABEL: &str = "NIXOS_SD";
/// The boot filesystem's label.
const BOOT_LABEL: &str = "NIXOS_BOOT";
/// The board's device tree, as NixOS's `FDT` line names it below the dtbs directory.
const DTB: &str = "rockchip/rk3328-nanopi-r2s.dtb";
/// The kernel's store name; boot files are named after it as NixOS names them.
const KERNEL_STORE_NAME: &str = "linux-6.1";
/// extlinux `TIMEOUT`, in tenths of a second (U-Boot 2023.01 divides by ten and rounds up):
/// 3 s of menu, long enough to choose an entry, short enough not to slow every boot.
pub const MENU_TIMEOUT: u32 = 30;
/// How long stage 1 waits for the root device, in seconds.
const ROOT_WAIT_SECONDS: &str = "10";
/// Seed of the disk and filesystem identities (GUIDs, UUIDs).
const IDENTITY_SEED: &str = "r2s-fixture";
/// Fixed salt: the same password gives the same /etc/shadow on every build.
const SHADOW_SALT: &str = "r2sfixture";

/// Builds fixture `name` with `breakage` from `parts` in `work`, returning the image path.
pub fn fixture(name: &str, breakage: Breakage, parts: &Parts, work: &Path) -> Result<PathBuf, BuildError> {
    let release = &parts.kernel_release;
    let image = kernel::raw_image(&parts.kernel.file(&format!("boot/vmlinuz-{release}"))?)?;
    let busybox_path = parts.busybox.file("bin/busybox")?;
    let busybox = read(&busybox_path)?;
    let initrd = initrd(parts, &busybox)?;

    let boot_dir = work.join("boot");
    stage_boot(&boot_dir, parts, &image, &initrd, breakage)?;
    let root_dir = work.join("root");
    stage_root(&root_dir, parts, &busybox)?;

    // GUIDs and UUIDs come from one seed for every fixture: broken images differ from the good
    // one only in what is broken.
    let table = disk::r2s_table(IDENTITY_SEED);
    let root_label = match breakage {
        Breakage::RootLabel(label) => label,
        _ => ROOT_LABEL,
    };
    let boot_fs = work.join("boot.ext4");
    let root_fs = work.join("root.ext4");
    let filesystems = [
        ("boot", &boot_dir, BOOT_LABEL, &boot_fs),
        ("root", &root_dir, root_label, &root_fs),
    ];
    for ((role, dir, label, fs), partition) in filesystems.into_iter().zip(&table.partitions) {
        let seed = format!("{IDENTITY_SEED}/{role}");
        ext4::make(dir, label, partition.size(), &seed, fs)?;
    }

    let uboot_dir = "usr/lib/u-boot/rock64-rk3328";
    let idbloader = read(&parts.uboot.file(&format!("{uboot_dir}/idbloader.img"))?)?;
    let itb = read(&parts.uboot.file(&format!("{uboot_dir}/u-boot.itb"))?)?;
    let out = work.join(format!("{name}.img"));
    disk::write(
        &out,
        &table,
        &[
            Piece::Bytes {
                sector: disk::IDBLOADER_SECTOR,
                bytes: &idbloader,
            },
            Piece::Bytes {
                sector: disk::UBOOT_ITB_SECTOR,
                bytes: &itb,
            },
            Piece::Filesystem {
                partition: &table.partitions[0],
                file: &boot_fs,
            },
            Piece::Filesystem {
                partition: &table.partitions[1],
                file: &root_fs,
            },
        ],
    )?;
    Ok(out)
}

/// Names of the files in NIXOS_BOOT's `/nixos`, as NixOS's extlinux builder derives them from
/// store paths (`/nix/store/<hash>-linux-6.1/Image` becomes `<hash>-linux-6.1-Image`).
struct BootFiles {
    kernel: String,
    initrd: String,
    dtbs: String,
}

impl BootFiles {
    fn new() -> BootFiles {
        let kernel = format!("{}-{KERNEL_STORE_NAME}", store::store_hash(KERNEL_STORE_NAME));
        let initrd_name = format!("initrd-{KERNEL_STORE_NAME}");
        BootFiles {
            kernel: format!("{kernel}-Image"),
            initrd: format!("{}-{initrd_name}-initrd", store::store_hash(&initrd_name)),
            dtbs: format!("{kernel}-dtbs"),
        }
    }
}

fn stage_boot(
    dir: &Path,
    parts: &Parts,
    image: &[u8],
    initrd: &[u8],
    breakage: Breakage,
) -> Result<(), BuildError> {
    let files = BootFiles::new();
    let nixos = dir.join("nixos");
    put(&nixos.join(&files.kernel), image, 0o444)?;
    if breakage != Breakage::InitrdMissing {
        put(&nixos.join(&files.initrd), initrd, 0o444)?;
    }
    let release = &parts.kernel_release;
    let dtb = read(
        &parts
            .kernel
            .file(&format!("usr/lib/linux-image-{release}/{DTB}"))?,
    )?;
    put(&nixos.join(&files.dtbs).join(DTB), &dtb, 0o444)?;
    let extra = match breakage {
        Breakage::DefaultEntryParams(params) => params,
        _ => "",
    };
    put(
        &dir.join("extlinux/extlinux.conf"),
        extlinux_conf(&files, extra).as_bytes(),
        0o644,
    )
}

/// `extlinux.conf` as NixOS's generic-extlinux-compatible builder writes it: the current
/// generation as `nixos-default`, then every generation newest first. `default_extra` is
/// appended to the default entry's APPEND.
fn extlinux_conf(files: &BootFiles, default_extra: &str) -> String {
    let timeout = MENU_TIMEOUT.to_string();
    let mut conf = recipe::EXTLINUX_HEADER.render(&[("timeout", &timeout)]);
    let base_params = recipe::KERNEL_PARAMS.joined();
    let generations = store::generations();
    let default = std::iter::once((&generations[0], true));
    for (generation, is_default) in default.chain(generations[1..].iter().map(|g| (g, false))) {
        let (label, menu_label, params) = if is_default {
            let params = format!("{base_params} {default_extra}");
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
                base_params.clone(),
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

/// The initrd: busybox, stage 1 as `/init`, and the kernel modules it loads with their
/// dependencies and a `modules.dep` for busybox `modprobe`. gzip-compressed.
fn initrd(parts: &Parts, busybox: &[u8]) -> Result<Vec<u8>, BuildError> {
    let release = &parts.kernel_release;
    let modules_root = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|base| parts.kernel.root.join(base).join(release))
        .find(|p| p.is_dir())
        .ok_or_else(|| BuildError::PartMissing {
            package: parts.kernel.package.clone(),
            path: format!("lib/modules/{release}").into(),
        })?;
    let tree = modules::Tree::open(&modules_root)?;
    let wanted = recipe::INITRD_MODULES.items();
    let modules = tree.closure(&wanted)?;

    let mut cpio = Archive::new();
    for dir in [
        "bin", "dev", "etc", "lib", "mnt-root", "proc", "run", "sys", "tmp",
    ] {
        cpio.dir(dir, 0o755);
    }
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("bin/busybox", 0o755, busybox);
    for applet in checked_applets(&recipe::INITRD_APPLETS, busybox)? {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    let init = recipe::STAGE_1_INIT.render(&[
        ("waitSeconds", ROOT_WAIT_SECONDS),
        ("kernelModules", &wanted.join(" ")),
        ("rootDevice", &format!("/dev/disk/by-label/{ROOT_LABEL}")),
    ]);
    cpio.file("init", 0o755, init.as_bytes());

    let base = format!("lib/modules/{release}");
    let mut made = vec!["lib".to_owned()];
    for module in &modules {
        let path = format!("{base}/{}", module.path);
        for (at, _) in path.match_indices('/') {
            let parent = &path[..at];
            if !made.iter().any(|m| m == parent) {
                cpio.dir(parent, 0o755);
                made.push(parent.to_owned());
            }
        }
        cpio.file(&path, 0o644, &module.data);
    }
    cpio.file(
        &format!("{base}/modules.dep"),
        0o644,
        modules::modules_dep(&modules).as_bytes(),
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&cpio.finish()).expect("writing to memory");
    Ok(gz.finish().expect("writing to memory"))
}

/// The items of an applet list, each checked to be compiled into `busybox`: its applet-name
/// table holds every name NUL-terminated.
fn checked_applets(list: &RecipeFile, busybox: &[u8]) -> Result<Vec<&'static str>, BuildError> {
    let strings: std::collections::HashSet<&[u8]> = busybox.split(|&b| b == 0).collect();
    let applets = list.items();
    for applet in &applets {
        if !strings.contains(applet.as_bytes()) {
            return Err(BuildError::PartMissing {
                package: BUSYBOX.to_owned(),
                path: format!(
                    "applet `{applet}` in bin/busybox (listed in recipes/{})",
                    list.path
                )
                .into(),
            });
        }
    }
    Ok(applets)
}

/// The root filesystem: a Nix store with busybox, a system path of applet links, and one
/// system per generation (init, activate, etc), the profile links, and mutable /etc files.
fn stage_root(dir: &Path, parts: &Parts, busybox: &[u8]) -> Result<(), BuildError> {
    let busybox_store = store::store_path(&format!(
        "busybox-static-{}",
        upstream_version(&parts.busybox.deb_name)
    ));
    let busybox_bin = format!("{busybox_store}/bin/busybox");
    let shell = format!("{busybox_store}/bin/sh");
    put(&under(dir, &busybox_bin), busybox, 0o555)?;
    link(&under(dir, &shell), "busybox")?;

    let system_path = store::store_path("system-path");
    for applet in checked_applets(&recipe::SYSTEM_APPLETS, busybox)? {
        link(&under(dir, &format!("{system_path}/bin/{applet}")), &busybox_bin)?;
    }

    let login = format!("{}/bin/login", store::store_path("fixture-login"));
    put(
        &under(dir, &login),
        recipe::LOGIN.render(&[("shell", &shell)]).as_bytes(),
        0o555,
    )?;

    for generation in store::generations() {
        stage_generation(dir, generation, &shell, &system_path, &login)?;
    }
    let profiles = dir.join("nix/var/nix/profiles");
    for generation in store::generations() {
        link(
            &profiles.join(format!("system-{}-link", generation.number)),
            &generation.store_path,
        )?;
    }
    link(
        &profiles.join("system"),
        &format!("system-{}-link", store::generations()[0].number),
    )?;

    let root_hash = crypt::sha512_crypt(ROOT_PASSWORD, SHADOW_SALT);
    put(
        &dir.join("etc/passwd"),
        recipe::ETC_PASSWD.render(&[]).as_bytes(),
        0o644,
    )?;
    put(
        &dir.join("etc/group"),
        recipe::ETC_GROUP.render(&[]).as_bytes(),
        0o644,
    )?;
    put(
        &dir.join("etc/shadow"),
        recipe::ETC_SHADOW.render(&[("rootHash", &root_hash)]).as_bytes(),
        0o600,
    )?;
    put(&dir.join("etc/NIXOS"), b"", 0o644)?;
    for mount_point in ["bin", "dev", "proc", "root", "run", "sys", "tmp", "var"] {
        let path = dir.join(mount_point);
        std::fs::create_dir_all(&path).map_err(BuildError::io("creating directory", &path))?;
    }
    set_mode(&dir.join("root"), 0o700)?;
    set_mode(&dir.join("tmp"), 0o1777)
}

fn stage_generation(
    dir: &Path,
    generation: &Generation,
    shell: &str,
    system_path: &str,
    login: &str,
) -> Result<(), BuildError> {
    let system = &generation.store_path;
    // One etc per generation (/etc/issue names the generation's version), each its own store
    // path named "etc" as in NixOS.
    let etc = format!(
        "/nix/store/{}-etc",
        store::store_hash(&format!("etc-{}", generation.version))
    );
    let esc = "\x1b";
    put(
        &under(dir, &format!("{etc}/etc/issue")),
        recipe::ETC_ISSUE
            .render(&[("esc", esc), ("label", generation.version)])
            .as_bytes(),
        0o444,
    )?;
    put(
        &under(dir, &format!("{etc}/etc/hostname")),
        recipe::ETC_HOSTNAME
            .render(&[("hostname", store::HOSTNAME)])
            .as_bytes(),
        0o444,
    )?;
    put(
        &under(dir, &format!("{etc}/etc/profile")),
        recipe::ETC_PROFILE.render(&[]).as_bytes(),
        0o444,
    )?;

    let vars = [
        ("shell", shell),
        ("systemConfig", system.as_str()),
        ("login", login),
    ];
    put(
        &under(dir, &format!("{system}/init")),
        recipe::STAGE_2_INIT.render(&vars).as_bytes(),
        0o555,
    )?;
    put(
        &under(dir, &format!("{system}/activate")),
        recipe::ACTIVATE.render(&vars).as_bytes(),
        0o555,
    )?;
    put(
        &under(dir, &format!("{system}/nixos-version")),
        generation.version.as_bytes(),
        0o444,
    )?;
    put(
        &under(dir, &format!("{system}/kernel-params")),
        recipe::KERNEL_PARAMS.joined().as_bytes(),
        0o444,
    )?;
    link(&under(dir, &format!("{system}/sw")), system_path)?;
    link(&under(dir, &format!("{system}/etc")), &format!("{etc}/etc"))
}

/// `1.35.0` from `busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb`.
fn upstream_version(deb_name: &str) -> &str {
    let version = deb_name.split('_').nth(1).unwrap_or("0");
    let version = version.split_once("%3a").map_or(version, |(_, v)| v);
    version.split('-').next().unwrap_or(version)
}

/// `path` (absolute, as inside the image) below the staging directory `dir`.
fn under(dir: &Path, path: &str) -> PathBuf {
    dir.join(path.trim_start_matches('/'))
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(BuildError::io("reading", path))
}

fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BuildError> {
    let parent = path.parent().expect("staged files live in a directory");
    std::fs::create_dir_all(parent).map_err(BuildError::io("creating directory", parent))?;
    std::fs::write(path, bytes).map_err(BuildError::io("writing", path))?;
    set_mode(path, mode)
}

fn link(path: &Path, target: &str) -> Result<(), BuildError> {
    let parent = path.parent().expect("staged links live in a directory");
    std::fs::create_dir_all(parent).map_err(BuildError::io("creating directory", parent))?;
    std::os::unix::fs::symlink(target, path).map_err(BuildError::io("linking", path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(BuildError::io("setting mode of", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_version_drops_epoch_and_debian_revision() {
        assert_eq!(
            upstream_version("busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb"),
            "1.35.0"
        );
        assert_eq!(
            upstream_version("u-boot-rockchip_2023.01+dfsg-2+deb12u3_arm64.deb"),
            "2023.01+dfsg"
        );
    }

    #[test]
    fn extlinux_conf_lists_default_then_generations_newest_first() {
        let conf = extlinux_conf(&BootFiles::new(), "");
        let labels: Vec<&str> = conf.lines().filter_map(|l| l.strip_prefix("LABEL ")).collect();
        assert_eq!(labels, ["nixos-default", "nixos-2-default", "nixos-1-default"]);
        assert!(conf.starts_with("# Generated file, all changes will be lost on nixos-rebuild!\n"));
        assert!(conf.contains("\nDEFAULT nixos-default\n"));
        assert!(conf.contains(&format!("\nTIMEOUT {MENU_TIMEOUT}\n")));
        assert!(conf.contains("\nMENU TITLE ------------------------------------------------------------\n"));
        assert!(conf.contains("  MENU LABEL NixOS - Configuration 2 (2025-07-01 - 25.05.20250701.1a2b3c4)\n"));
    }

    #[test]
    fn default_entry_boots_the_current_generation_with_the_qemu_console() {
        let conf = extlinux_conf(&BootFiles::new(), "");
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
        let conf = extlinux_conf(&BootFiles::new(), "rdinit=/bin/false");
        let appends: Vec<&str> = conf.lines().filter(|l| l.contains("APPEND")).collect();
        assert!(appends[0].ends_with(" loglevel=4 rdinit=/bin/false"));
        assert!(appends[1..].iter().all(|a| a.ends_with(" loglevel=4")));
    }

    #[test]
    fn boot_files_are_named_like_nixos_copies_of_store_paths() {
        let files = BootFiles::new();
        let conf = extlinux_conf(&files, "");
        let hash = store::store_hash(KERNEL_STORE_NAME);
        assert_eq!(files.kernel, format!("{hash}-linux-6.1-Image"));
        assert!(files.initrd.ends_with("-initrd-linux-6.1-initrd"));
        assert!(conf.contains(&format!(
            "  FDT ../nixos/{hash}-linux-6.1-dtbs/rockchip/rk3328-nanopi-r2s.dtb\n"
        )));
        assert!(conf.contains(&format!("  LINUX ../nixos/{hash}-linux-6.1-Image\n")));
    }

    #[test]
    fn applets_missing_from_busybox_are_reported() {
        let list = RecipeFile {
            path: "x/applets",
            text: "sh\nnosuchapplet\n",
        };
        let err = checked_applets(&list, b"\0[\0sh\0ls\0").unwrap_err().to_string();
        assert!(err.contains("applet `nosuchapplet`"), "{err}");
        assert!(err.contains("recipes/x/applets"), "{err}");
    }
}
