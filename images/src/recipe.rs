//! The recipe files under `images/recipes/`: scripts and configuration written into the images,
//! compiled in so the builder is self-contained and their text is part of the cache key.

/// One recipe file: its path below `images/recipes/` and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipeFile {
    /// Path below `images/recipes/`.
    pub path: &'static str,
    /// File contents.
    pub text: &'static str,
}

macro_rules! recipe {
    ($path:literal) => {
        RecipeFile {
            path: $path,
            text: include_str!(concat!("../recipes/", $path)),
        }
    };
}

/// The initrd's `/init`, NixOS stage 1.
pub const STAGE_1_INIT: RecipeFile = recipe!("initrd/stage-1-init.sh");
/// Modules stage 1 loads by name.
pub const INITRD_MODULES: RecipeFile = recipe!("initrd/kernel-modules");
/// Modules stage 1 loads by name in an initrd built for the board (no QEMU disk driver).
pub const BOARD_INITRD_MODULES: RecipeFile = recipe!("initrd/board-kernel-modules");
/// The modules in the root filesystem's kernel module tree, for fixtures with the board's initrd.
pub const ROOT_KERNEL_MODULES: RecipeFile = recipe!("system/kernel-modules");
/// Busybox applets in the initrd.
pub const INITRD_APPLETS: RecipeFile = recipe!("initrd/applets");
/// Each generation's `init`, NixOS stage 2.
pub const STAGE_2_INIT: RecipeFile = recipe!("system/init.sh");
/// Each generation's `activate`.
pub const ACTIVATE: RecipeFile = recipe!("system/activate.sh");
/// The login program getty runs.
pub const LOGIN: RecipeFile = recipe!("system/login.sh");
/// Busybox applets in the system path.
pub const SYSTEM_APPLETS: RecipeFile = recipe!("system/applets");
/// Kernel parameters after `init=` in every boot entry, with the QEMU console.
pub const KERNEL_PARAMS: RecipeFile = recipe!("system/kernel-params");
/// Kernel parameters after `init=` in every boot entry, with the R2S's console.
pub const KERNEL_PARAMS_BOARD: RecipeFile = recipe!("system/kernel-params-board");
/// `/etc/issue` of a generation.
pub const ETC_ISSUE: RecipeFile = recipe!("etc/issue");
/// `/etc/hostname` of a generation.
pub const ETC_HOSTNAME: RecipeFile = recipe!("etc/hostname");
/// `/etc/profile` of a generation.
pub const ETC_PROFILE: RecipeFile = recipe!("etc/profile");
/// `/etc/passwd` (mutable, as NixOS keeps it).
pub const ETC_PASSWD: RecipeFile = recipe!("etc/passwd");
/// `/etc/group` (mutable).
pub const ETC_GROUP: RecipeFile = recipe!("etc/group");
/// `/etc/shadow` (mutable), with the root hash filled in.
pub const ETC_SHADOW: RecipeFile = recipe!("etc/shadow");
/// The top of `extlinux.conf`.
pub const EXTLINUX_HEADER: RecipeFile = recipe!("extlinux/header.conf");
/// One boot entry of `extlinux.conf`.
pub const EXTLINUX_ENTRY: RecipeFile = recipe!("extlinux/entry.conf");
/// The hand-written `extlinux.conf` of the reference write-up's first boot.
pub const EXTLINUX_FIRST_BOOT: RecipeFile = recipe!("extlinux/first-boot.conf");
/// A file on the sd-image's FIRMWARE partition.
pub const FIRMWARE_CONFIG: RecipeFile = recipe!("firmware/config.txt");

/// `debootstrap --include` of the systemd fixtures.
pub const SYSTEMD_PACKAGES: RecipeFile = recipe!("systemd/packages");
/// Run inside the systemd fixtures' tree after the second stage: the kernel package.
pub const SYSTEMD_FINISH: RecipeFile = recipe!("systemd/finish.sh");
/// Run inside the systemd fixtures' finished tree: one of its initrds.
pub const SYSTEMD_MAKE_INITRD: RecipeFile = recipe!("systemd/make-initrd.sh");
/// The systemd fixtures' own initrd's module list.
pub const SYSTEMD_INITRD_MODULES: RecipeFile = recipe!("systemd/initrd-modules");
/// Run inside the systemd fixtures' finished tree: the systemd initrd, with dracut.
pub const SYSTEMD_MAKE_DRACUT_INITRD: RecipeFile = recipe!("systemd/make-dracut-initrd.sh");
/// The systemd initrd's `/etc/initrd-release`: its name ends in ` (Initrd)`, as NixOS's does.
pub const SYSTEMD_INITRD_RELEASE: RecipeFile = recipe!("systemd/initrd-release");
/// The systemd initrd's `/etc/fstab`: the root for `/sysroot`, as NixOS's systemd stage 1 has it.
pub const SYSTEMD_INITRD_FSTAB: RecipeFile = recipe!("systemd/initrd-fstab");
/// The board-specific initrd's module list.
pub const SYSTEMD_BOARD_INITRD_MODULES: RecipeFile = recipe!("systemd/board-initrd-modules");
/// systemd-tmpfiles' stand-in while the systemd fixtures' tree is made under PRoot.
pub const SYSTEMD_TMPFILES_SHIM: RecipeFile = recipe!("systemd/tmpfiles-shim.sh");
/// `/etc/fstab` of the systemd fixtures.
pub const SYSTEMD_FSTAB: RecipeFile = recipe!("systemd/fstab");
/// `/etc/hosts` of the systemd fixtures.
pub const SYSTEMD_HOSTS: RecipeFile = recipe!("systemd/hosts");
/// The systemd fixtures' WAN for systemd-networkd (laid over the tree, [`crate::router`]).
pub const SYSTEMD_WAN_NETWORK: RecipeFile = recipe!("systemd/wan.network");
/// The systemd fixtures' LAN for systemd-networkd.
pub const SYSTEMD_LAN_NETWORK: RecipeFile = recipe!("systemd/lan.network");
/// sshd's drop-in letting root log in with its password.
pub const SYSTEMD_SSHD_ROOT_LOGIN: RecipeFile = recipe!("systemd/sshd-root-login.conf");
/// systemd's drop-in giving devices (the console's among them) time to appear under emulation.
pub const SYSTEMD_DEVICE_TIMEOUT: RecipeFile = recipe!("systemd/device-timeout.conf");

/// Every recipe file, for the cache key.
pub const ALL: &[RecipeFile] = &[
    STAGE_1_INIT,
    INITRD_MODULES,
    BOARD_INITRD_MODULES,
    ROOT_KERNEL_MODULES,
    INITRD_APPLETS,
    STAGE_2_INIT,
    ACTIVATE,
    LOGIN,
    SYSTEM_APPLETS,
    KERNEL_PARAMS,
    KERNEL_PARAMS_BOARD,
    ETC_ISSUE,
    ETC_HOSTNAME,
    ETC_PROFILE,
    ETC_PASSWD,
    ETC_GROUP,
    ETC_SHADOW,
    EXTLINUX_HEADER,
    EXTLINUX_ENTRY,
    EXTLINUX_FIRST_BOOT,
    FIRMWARE_CONFIG,
    SYSTEMD_PACKAGES,
    SYSTEMD_FINISH,
    SYSTEMD_MAKE_INITRD,
    SYSTEMD_INITRD_MODULES,
    SYSTEMD_BOARD_INITRD_MODULES,
    SYSTEMD_MAKE_DRACUT_INITRD,
    SYSTEMD_INITRD_RELEASE,
    SYSTEMD_INITRD_FSTAB,
    SYSTEMD_TMPFILES_SHIM,
    SYSTEMD_FSTAB,
    SYSTEMD_HOSTS,
    SYSTEMD_WAN_NETWORK,
    SYSTEMD_LAN_NETWORK,
    SYSTEMD_SSHD_ROOT_LOGIN,
    SYSTEMD_DEVICE_TIMEOUT,
];

impl RecipeFile {
    /// The text with every `@name@` replaced by its value. Panics when a placeholder is left
    /// unfilled: recipes are compiled in, so that is a builder bug the unit tests catch.
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        let mut text = self.text.to_owned();
        for (name, value) in vars {
            text = text.replace(&format!("@{name}@"), value);
        }
        if let Some(left) = placeholders(&text).first() {
            panic!("recipe {}: placeholder @{left}@ not filled", self.path);
        }
        text
    }

    /// The non-empty lines that are not `#` comments, trimmed: for list files.
    pub fn items(&self) -> Vec<&'static str> {
        self.text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// The items joined by spaces: for one-line values such as kernel parameters.
    pub fn joined(&self) -> String {
        self.items().join(" ")
    }
}

/// Names of `@name@` placeholders in `text` (letters only, so e-mail-like text is left alone).
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        let len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        if len > 0 && after.as_bytes().get(len) == Some(&b'@') {
            out.push(&after[..len]);
            rest = &after[len + 1..];
        } else {
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_every_placeholder() {
        let file = RecipeFile {
            path: "t",
            text: "a=@a@ b=@b@ @a@",
        };
        assert_eq!(file.render(&[("a", "1"), ("b", "2")]), "a=1 b=2 1");
    }

    #[test]
    #[should_panic(expected = "placeholder @b@ not filled")]
    fn render_refuses_to_leave_a_placeholder() {
        RecipeFile {
            path: "t",
            text: "@a@ @b@",
        }
        .render(&[("a", "1")]);
    }

    #[test]
    fn at_signs_that_are_not_placeholders_are_kept() {
        let file = RecipeFile {
            path: "t",
            text: "root@ivy @@ a@b.c",
        };
        assert_eq!(file.render(&[]), "root@ivy @@ a@b.c");
    }

    #[test]
    fn items_skip_comments_and_blank_lines() {
        let file = RecipeFile {
            path: "t",
            text: "# comment\n\nvirtio_blk\n  ext4  \n",
        };
        assert_eq!(file.items(), ["virtio_blk", "ext4"]);
    }

    #[test]
    fn recipe_placeholders_are_the_documented_ones() {
        let expected: &[(&RecipeFile, &[&str])] = &[
            (
                &STAGE_1_INIT,
                &["waitSeconds", "waitSeconds", "kernelModules", "rootDevice"],
            ),
            (&STAGE_2_INIT, &["shell", "systemConfig"]),
            (&ACTIVATE, &["shell", "systemConfig", "shell", "login"]),
            (&LOGIN, &["shell"]),
            (&ETC_ISSUE, &["esc", "label", "esc"]),
            (&ETC_HOSTNAME, &["hostname"]),
            (&ETC_SHADOW, &["rootHash"]),
            (&EXTLINUX_HEADER, &["timeout"]),
            (
                &EXTLINUX_ENTRY,
                &[
                    "label",
                    "menuLabel",
                    "kernel",
                    "initrd",
                    "init",
                    "kernelParams",
                    "fdt",
                ],
            ),
            (&EXTLINUX_FIRST_BOOT, &["root", "init"]),
        ];
        for (file, names) in expected {
            assert_eq!(placeholders(file.text), *names, "{}", file.path);
        }
    }

    #[test]
    fn every_recipe_file_is_in_all() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
        let mut on_disk = Vec::new();
        for sub in std::fs::read_dir(&dir).unwrap() {
            let sub = sub.unwrap().path();
            for file in std::fs::read_dir(&sub).unwrap() {
                let file = file.unwrap().path();
                on_disk.push(file.strip_prefix(&dir).unwrap().to_string_lossy().into_owned());
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ALL.iter().map(|f| f.path.to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }
}
