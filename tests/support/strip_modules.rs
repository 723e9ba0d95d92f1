//! An initrd made for the board out of one made for any machine: the kernel modules of every
//! disk QEMU can attach are taken out of a "newc" cpio archive (zstd-compressed, as dracut
//! writes it) and the module index is written again by the host's `depmod` for what is left,
//! as if the initrd had been built without them. Done on the host, in a second: no dracut run
//! under emulation.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

/// The modules that drive a disk QEMU's `virt` machine can attach: virtio-blk on virtio-mmio
/// or PCI, NVMe, AHCI, and USB storage on qemu-xhci (PCI). What is left (the SD card's
/// `dw_mmc_rockchip`, with `mmc_block` built into the kernel; ext4, `xhci_hcd`, `sd_mod`) drives none of them.
pub const QEMU_DISK_MODULES: &[&str] = &[
    "virtio_blk",
    "virtio_mmio",
    "virtio_pci",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "nvme",
    "nvme_core",
    "ahci",
    "libahci",
    "xhci_pci",
    "usb_storage",
];

/// One entry of a newc archive: its header fields (13 numbers, as written) and name and data.
struct Entry {
    fields: [u32; 13],
    name: String,
    data: Vec<u8>,
}

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";
/// The header's field holding the data's size.
const FILESIZE: usize = 6;

/// `initrd` (zstd-compressed newc) without the modules named in `drop`, its module index
/// regenerated for the rest; zstd-compressed again.
pub fn without_modules(initrd: &[u8], drop: &[&str]) -> Vec<u8> {
    let archive = tool(&["zstd", "-q", "-d", "-c"], initrd);
    let entries = parse(&archive);
    let dropped: HashSet<&str> = drop.iter().copied().collect();
    let is_dropped = |name: &str| {
        name.ends_with(".ko")
            && name.contains("/lib/modules/")
            && dropped.contains(module_name(name).as_str())
    };
    let before = entries.len();
    let kept: Vec<Entry> = entries.into_iter().filter(|e| !is_dropped(&e.name)).collect();
    let removed = before - kept.len();
    assert_eq!(removed, drop.len(), "not every module to drop was in the initrd");
    let kept = with_index_regenerated(kept);
    let mut out = Vec::new();
    for entry in &kept {
        write(&mut out, entry);
    }
    let mut trailer = [0u32; 13];
    trailer[4] = 1;
    write(
        &mut out,
        &Entry {
            fields: trailer,
            name: TRAILER.to_owned(),
            data: Vec::new(),
        },
    );
    out.resize(out.len().next_multiple_of(512), 0);
    tool(&["zstd", "-q", "-3", "-c"], &out)
}

/// `kernel/drivers/block/virtio_blk.ko` → `virtio_blk` (dashes as underscores, as kmod names
/// modules).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.trim_end_matches(".ko").replace('-', "_")
}

/// The entries with every `modules.*` file of their module tree replaced by what the host's
/// `depmod` writes for the `.ko` files among them.
fn with_index_regenerated(mut entries: Vec<Entry>) -> Vec<Entry> {
    let tree = entries
        .iter()
        .find_map(|e| {
            let (tree, _) = e.name.split_once("/kernel/")?;
            tree.contains("lib/modules/").then(|| tree.to_owned())
        })
        .expect("the initrd has a module tree");
    let release = tree.rsplit('/').next().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("lib/modules").join(&release);
    for entry in &entries {
        let Some(relative) = entry.name.strip_prefix(&format!("{tree}/")) else {
            continue;
        };
        let keep = relative.ends_with(".ko")
            || ["modules.builtin", "modules.builtin.modinfo", "modules.order"].contains(&relative);
        if keep {
            let path = dir.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &entry.data).unwrap();
        }
    }
    let status = Command::new("depmod")
        .arg("-b")
        .arg(work.path())
        .arg(&release)
        .status()
        .expect("depmod runs (kmod is installed)");
    assert!(status.success(), "depmod failed");
    for entry in &mut entries {
        let Some(relative) = entry.name.strip_prefix(&format!("{tree}/")) else {
            continue;
        };
        if relative.starts_with("modules.") && !relative.contains('/') {
            if let Ok(data) = std::fs::read(dir.join(relative)) {
                entry.data = data;
                entry.fields[FILESIZE] = u32::try_from(entry.data.len()).unwrap();
            }
        }
    }
    entries
}

/// The entries of newc `archive` (one archive, or several one after another with zero padding
/// between), the trailers left out.
fn parse(archive: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < archive.len() {
        if archive[at] == 0 {
            at += 1;
            continue;
        }
        assert_eq!(&archive[at..at + 6], MAGIC, "not a newc header at {at}");
        let mut fields = [0u32; 13];
        for (i, field) in fields.iter_mut().enumerate() {
            let hex = std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
            *field = u32::from_str_radix(hex, 16).unwrap();
        }
        let name_len = fields[11] as usize;
        let name_start = at + 110;
        let name = String::from_utf8(archive[name_start..name_start + name_len - 1].to_vec()).unwrap();
        let data_start = (name_start + name_len).next_multiple_of(4);
        let data_end = data_start + fields[FILESIZE] as usize;
        let data = archive[data_start..data_end].to_vec();
        at = data_end.next_multiple_of(4);
        if name != TRAILER {
            entries.push(Entry { fields, name, data });
        }
    }
    entries
}

fn write(out: &mut Vec<u8>, entry: &Entry) {
    let mut fields = entry.fields;
    fields[11] = u32::try_from(entry.name.len() + 1).unwrap();
    out.extend_from_slice(MAGIC);
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(entry.name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(&entry.data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// `argv`'s stdout with `input` on its stdin.
fn tool(argv: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{argv:?} failed");
    out.stdout
}

/// The initrd of `image`'s default boot entry, rewritten by [`without_modules`] in place (the
/// image is a copy of a fixture: `hostile::copy_of`); returns the initrd's path on the boot
/// partition.
pub fn strip_default_initrd(image: &Path, drop: &[&str]) -> String {
    let conf = String::from_utf8(crate::hostile::debugfs_cat(image, 1, "/extlinux/extlinux.conf")).unwrap();
    let default = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("DEFAULT "))
        .expect("a DEFAULT")
        .trim()
        .to_owned();
    let relative = conf
        .lines()
        .skip_while(|l| l.trim() != format!("LABEL {default}"))
        .find_map(|l| l.trim().strip_prefix("INITRD "))
        .expect("an INITRD for the DEFAULT")
        .trim();
    let path = format!("/extlinux/{relative}");
    let path = normalise(&path);
    let stripped = without_modules(&crate::hostile::debugfs_cat(image, 1, &path), drop);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("initrd");
    std::fs::write(&local, stripped).unwrap();
    crate::hostile::debugfs(
        image,
        1,
        &[
            &format!("rm {path}"),
            &format!("write {} {path}", local.display()),
        ],
    );
    path
}

/// `/extlinux/../nixos/x` → `/nixos/x`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}
