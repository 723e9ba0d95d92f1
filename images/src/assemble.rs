//! Putting a fixture together: kernel, initrd, boot files, root filesystem, card image.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::boot::{self, BootContents};
use crate::card::{self, Bootloader, ROOT_LABEL};
use crate::cpio::Archive;
use crate::debian::{Parts, BUSYBOX};
use crate::fixture::{Breakage, Console, InitrdLayout, Layout, Recipe};
use crate::recipe::{self, RecipeFile};
use crate::staging::{link, put, read, set_mode, under};
use crate::store::{self, Generation};
use crate::{kernel, modules, BuildError, ROOT_PASSWORD};

/// How long stage 1 waits for the root device, in seconds.
const ROOT_WAIT_SECONDS: &str = "10";
/// Fixed salt: the same password gives the same /etc/shadow on every build.
pub(crate) const SHADOW_SALT: &str = "r2sfixture";
/// The system the reference write-up installed, store path exactly as it printed it.
const FIRST_BOOT_SYSTEM: &str =
    "/nix/store/crzbn8gb8c1gs54wdw2kgizxmwp1pq0i-nixos-system-ivy-25.05.20250817.48f4c98";

/// Builds fixture `name` from `recipe` and `parts` in `work`, returning the image path.
pub fn fixture(name: &str, recipe: Recipe, parts: &Parts, work: &Path) -> Result<PathBuf, BuildError> {
    fixture_with_root_data(name, recipe, parts, work, 0)
}

/// [`fixture`], with a file of `root_data` pseudo-random bytes at [`ROOT_DATA_PATH`] on the
/// root filesystem (none when 0), whose partition grows to hold it.
pub fn fixture_with_root_data(
    name: &str,
    recipe: Recipe,
    parts: &Parts,
    work: &Path,
    root_data: u64,
) -> Result<PathBuf, BuildError> {
    let release = &parts.kernel_release;
    let kernel = kernel::raw_image(&parts.kernel.file(&format!("boot/vmlinuz-{release}"))?)?;
    let busybox = read(&parts.busybox.file("bin/busybox")?)?;
    let dtb = match recipe.breakage {
        Breakage::FdtFrom(other) => other,
        _ => boot::DTB,
    };
    let board_initrd = recipe.breakage == Breakage::BoardInitrd;
    let initrd_modules = if board_initrd {
        &recipe::BOARD_INITRD_MODULES
    } else {
        &recipe::INITRD_MODULES
    };
    let contents = BootContents {
        kernel,
        initrd: initrd(parts, &busybox, recipe.layout.initrd_layout(), initrd_modules)?,
        dtb: read(
            &parts
                .kernel
                .file(&format!("usr/lib/linux-image-{release}/{dtb}"))?,
        )?,
    }
    .broken(recipe.breakage);

    let generations = generations(recipe.layout);
    let params = kernel_params(recipe.layout);
    let root_dir = work.join("root");
    let kernel_modules = if board_initrd {
        Some(stage_module_tree(&root_dir, parts)?)
    } else {
        None
    };
    stage_root(
        &root_dir,
        parts,
        &busybox,
        &generations,
        &params,
        kernel_modules.as_deref(),
    )?;
    if root_data > 0 {
        write_root_data(&root_dir, root_data)?;
    }
    // nixpkgs' sd-image keeps /boot on the root filesystem; the R2S cards have NIXOS_BOOT.
    let boot_dir = match recipe.layout {
        Layout::SdImage => root_dir.join("boot"),
        Layout::Generations(_) | Layout::FirstBoot => work.join("boot"),
    };
    boot::stage(&boot_dir, recipe, &contents, &generations, &params)?;

    let bootloader = match recipe.breakage {
        crate::fixture::Breakage::LargeKernel(large) if large.uboot_ramdisk_addr_r.is_some() => {
            let value = large.uboot_ramdisk_addr_r.unwrap_or_default();
            Bootloader::rock64(&parts.uboot)?.with_ramdisk_addr_r(value)?
        }
        _ => Bootloader::rock64(&parts.uboot)?,
    };
    let out = work.join(format!("{name}.img"));
    match recipe.layout {
        Layout::SdImage => card::sd_image(&out, work, &bootloader, &root_dir)?,
        Layout::Generations(_) | Layout::FirstBoot if root_data > 0 => {
            // The fixture's root, the data, and a tenth more for ext4's metadata.
            const MIB: u64 = 1 << 20;
            let size = crate::disk::ROOT_SIZE + (root_data + root_data / 10).div_ceil(MIB) * MIB;
            card::r2s_with_root_size(
                &out,
                work,
                recipe.breakage,
                &bootloader,
                &boot_dir,
                &root_dir,
                size,
            )?
        }
        Layout::Generations(_) | Layout::FirstBoot => {
            card::r2s(&out, work, recipe.breakage, &bootloader, &boot_dir, &root_dir)?
        }
    }
    Ok(out)
}

/// Where [`fixture_with_root_data`] puts its data on the root filesystem.
pub const ROOT_DATA_PATH: &str = "var/lib/r2s-data";

/// Writes `bytes` of pseudo-random data (xorshift64, fixed seed: no two blocks alike, none of
/// them zeros, so the file is stored and read in full) to [`ROOT_DATA_PATH`] under `root`.
fn write_root_data(root: &Path, bytes: u64) -> Result<(), BuildError> {
    let path = root.join(ROOT_DATA_PATH);
    let parent = path.parent().expect("the data path has a directory");
    std::fs::create_dir_all(parent).map_err(BuildError::io("creating directory", parent))?;
    let file = std::fs::File::create(&path).map_err(BuildError::io("creating", &path))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 16];
    let mut left = bytes;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])
            .map_err(BuildError::io("writing", &path))?;
        left -= n as u64;
    }
    out.flush().map_err(BuildError::io("writing", &path))?;
    Ok(())
}

/// The systems in a layout's store, current first: three generations after nixos-rebuild;
/// the one system a first install or an sd-image build has.
fn generations(layout: Layout) -> Vec<Generation> {
    let all = store::generations();
    match layout {
        Layout::Generations(_) => all.to_vec(),
        Layout::SdImage => vec![Generation {
            number: 1,
            ..all[0].clone()
        }],
        Layout::FirstBoot => vec![Generation {
            number: 1,
            store_path: FIRST_BOOT_SYSTEM.to_owned(),
            ..all[0].clone()
        }],
    }
}

/// The kernel parameters NixOS writes after `init=`: the QEMU console for the default fixture,
/// the board's for images made for the R2S.
fn kernel_params(layout: Layout) -> String {
    match layout {
        Layout::Generations(Console::Qemu) => recipe::KERNEL_PARAMS.joined(),
        Layout::Generations(Console::Board) | Layout::FirstBoot | Layout::SdImage => {
            recipe::KERNEL_PARAMS_BOARD.joined()
        }
    }
}

/// The initrd: busybox, stage 1 as `/init`, and the kernel modules it loads with their
/// dependencies and a `modules.dep` for busybox `modprobe`, laid out and compressed as
/// `layout` says.
fn initrd(
    parts: &Parts,
    busybox: &[u8],
    layout: InitrdLayout,
    list: &RecipeFile,
) -> Result<Vec<u8>, BuildError> {
    let release = &parts.kernel_release;
    let tree = modules::Tree::open(&package_modules(parts)?)?;
    let wanted = list.items();
    let modules = tree.closure(&wanted)?;

    let mut cpio = Archive::new();
    for dir in ["bin", "dev", "etc", "mnt-root", "proc", "run", "sys", "tmp"] {
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

    let lib = match layout {
        InitrdLayout::NixStore => {
            let closure = store::store_path(&format!("linux-{release}-modules-shrunk"));
            cpio.symlink("lib", &format!("{closure}/lib"));
            format!("{}/lib", closure.trim_start_matches('/'))
        }
        InitrdLayout::Plain => "lib".to_owned(),
    };
    let base = format!("{lib}/modules/{release}");
    let mut made = Vec::new();
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

    let archive = cpio.finish();
    Ok(match layout {
        InitrdLayout::NixStore => {
            ruzstd::encoding::compress_to_vec(archive.as_slice(), ruzstd::encoding::CompressionLevel::Fastest)
        }
        InitrdLayout::Plain => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&archive).expect("writing to memory");
            gz.finish().expect("writing to memory")
        }
    })
}

/// `lib/modules/<release>` of the unpacked kernel package.
fn package_modules(parts: &Parts) -> Result<PathBuf, BuildError> {
    let release = &parts.kernel_release;
    ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|base| parts.kernel.root.join(base).join(release))
        .find(|p| p.is_dir())
        .ok_or_else(|| BuildError::PartMissing {
            package: parts.kernel.package.clone(),
            path: format!("lib/modules/{release}").into(),
        })
}

/// The kernel's module tree in the root's store, as NixOS keeps the one each system links as
/// `kernel-modules`: the modules `recipes/system/kernel-modules` lists and what they need, with
/// depmod's `modules.dep` and `modules.alias` for them and the kernel's `modules.builtin`.
/// Returns the store path.
fn stage_module_tree(dir: &Path, parts: &Parts) -> Result<String, BuildError> {
    let release = &parts.kernel_release;
    let source = package_modules(parts)?;
    let tree = modules::Tree::open(&source)?;
    let chosen = tree.closure(&recipe::ROOT_KERNEL_MODULES.items())?;
    let store = store::store_path(&format!("linux-{release}-modules"));
    let base = format!("{store}/lib/modules/{release}");
    for module in &chosen {
        put(
            &under(dir, &format!("{base}/{}", module.path)),
            &module.data,
            0o444,
        )?;
    }
    put(
        &under(dir, &format!("{base}/modules.dep")),
        modules::modules_dep(&chosen).as_bytes(),
        0o444,
    )?;
    put(
        &under(dir, &format!("{base}/modules.alias")),
        modules::modules_alias(&chosen)?.as_bytes(),
        0o444,
    )?;
    let builtin = source.join("modules.builtin");
    put(
        &under(dir, &format!("{base}/modules.builtin")),
        &read(&builtin)?,
        0o444,
    )?;
    Ok(store)
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
/// system per generation (init, activate, etc, kernel-params), the profile links, and mutable
/// /etc files. The first generation is the current one.
fn stage_root(
    dir: &Path,
    parts: &Parts,
    busybox: &[u8],
    generations: &[Generation],
    params: &str,
    kernel_modules: Option<&str>,
) -> Result<(), BuildError> {
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

    for generation in generations {
        stage_generation(dir, generation, &shell, &system_path, &login, params)?;
        if let Some(tree) = kernel_modules {
            link(
                &under(dir, &format!("{}/kernel-modules", generation.store_path)),
                tree,
            )?;
        }
    }
    store::link_profiles(dir, generations)?;

    let root_hash = shadow_hash(ROOT_PASSWORD, SHADOW_SALT)?;
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

/// The `$6$<salt>$<hash>` /etc/shadow entry for `password`: SHA-512 crypt with the default 5000
/// rounds, as NixOS writes it and the fixture's login script checks it.
pub(crate) fn shadow_hash(password: &str, salt: &str) -> Result<String, BuildError> {
    let params = sha_crypt::Sha512Params::default();
    let hash = sha_crypt::sha512_crypt_b64(password.as_bytes(), salt.as_bytes(), &params)
        .map_err(BuildError::PasswordHash)?;
    Ok(format!("$6${salt}${hash}"))
}

fn stage_generation(
    dir: &Path,
    generation: &Generation,
    shell: &str,
    system_path: &str,
    login: &str,
    params: &str,
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
        params.as_bytes(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_hash_is_glibc_s_sha512_crypt_of_the_root_password() {
        // What glibc's crypt(3) gives for the same password and salt.
        assert_eq!(
            shadow_hash(ROOT_PASSWORD, SHADOW_SALT).unwrap(),
            "$6$r2sfixture$lL4nK7rKjtReS/3eMZiw7Y/67tQDq9ACii6ZjnIeLzsvvs3xMTiAu0Ng7gXvcwDN6SpWJ.yfezEQqK9W4UL6e0"
        );
    }

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
    fn first_boot_store_holds_the_write_up_system_only() {
        let gens = generations(Layout::FirstBoot);
        assert_eq!(gens.len(), 1);
        assert_eq!(
            gens[0].init(),
            "/nix/store/crzbn8gb8c1gs54wdw2kgizxmwp1pq0i-nixos-system-ivy-25.05.20250817.48f4c98/init"
        );
        assert_eq!(generations(Layout::SdImage).len(), 1);
        assert_eq!(generations(Layout::Generations(Console::Board)).len(), 3);
    }

    #[test]
    fn board_layouts_name_the_r2s_console_and_the_default_fixture_qemu_s() {
        assert!(kernel_params(Layout::Generations(Console::Qemu)).starts_with("console=ttyAMA0,115200 "));
        for layout in [
            Layout::Generations(Console::Board),
            Layout::FirstBoot,
            Layout::SdImage,
        ] {
            assert_eq!(
                kernel_params(layout),
                "console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 loglevel=4"
            );
        }
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
