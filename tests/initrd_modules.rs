//! An initrd built for the board — the SD card's driver and ext4, nothing QEMU can attach — with
//! a kernel that builds every QEMU disk driver as a module (Debian's) still boots under QEMU:
//! the harness adds the image's own virtio modules, from the module tree the `init=` system
//! links on the root filesystem, to the copy of the initrd U-Boot loads. Without the
//! adaptation stage 1 stops, and the failure names what the kernel and initrd can drive.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use r2s_harness::image::{Ext4Volume, Table};
use r2s_tests::*;

const FIXTURE: &str = "r2s-board-initrd";
const LIMIT: Duration = Duration::from_secs(240);
const ADDED: &str =
    "+ virtio_blk, virtio_mmio for the root disk on virtio-blk (virtio-mmio), from partition 2: \
                     /nix/store/mvlw2dj2bw4s951r4i3vwszps8zclq9b-nixos-system-ivy-25.05.20250817.48f4c98/\
                     kernel-modules/lib/modules/";

fn run(extra: &[&OsStr], dir: &Path) -> Finished {
    let image = fixture(FIXTURE);
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        dir.as_os_str(),
    ];
    args.extend_from_slice(extra);
    let scenario = scenario("boot-to-login");
    args.push(scenario.as_os_str());
    run_harness(&args, LIMIT)
}

#[test]
fn a_board_initrd_boots_to_login_with_the_images_own_virtio_modules_added() {
    let image = fixture(FIXTURE);
    let before = sha256(&image);
    let dir = temp_dir();
    let result = run(&[], dir.path());
    assert_eq!(result.code(), Some(0), "{}", result.explain());
    for said in [
        ADDED,
        "why: the image's kernel and initrd can drive none of QEMU's disk buses: virtio: no (virtio_blk, virtio_mmio missing)",
        "root disk on virtio-blk (virtio-mmio): the first bus the image's kernel and initrd can drive (virtio_blk in the initrd, virtio_mmio in the initrd)",
        "1 passed, 0 failed",
    ] {
        assert!(result.stdout.contains(said), "missing {said:?}\n{}", result.explain());
    }
    let log = std::fs::read_to_string(dir.path().join("boot-to-login.log")).unwrap();
    assert!(log.contains("-- adapted for QEMU: initrd /nixos/"), "{log}");
    assert!(log.contains(ADDED), "{log}");
    // Stage 1 loaded only the board's modules by name: the disk came from the added ones.
    assert!(log.contains("loading module dw_mmc_rockchip..."), "{log}");
    assert!(
        log.contains("mounting /dev/disk/by-label/NIXOS_SD on /..."),
        "{log}"
    );
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        report.contains("kernel/drivers/block/virtio_blk.ko"),
        "the HTML report does not say it"
    );
    assert_eq!(sha256(&image), before, "the image changed");
}

#[test]
fn without_adaptation_stage_1_stops_and_the_hint_names_what_the_initrd_drives() {
    let dir = temp_dir();
    let result = run(&[OsStr::new("--no-adapt")], dir.path());
    assert_eq!(result.code(), Some(1), "{}", result.explain());
    assert!(!result.stdout.contains("+ virtio_blk"), "{}", result.explain());
    for said in [
        "reason: fatal pattern \"An error occurred in stage 1 of the boot process\"",
        "hint: the root disk was on virtio-blk (virtio-mmio) (no bus the image's kernel and initrd can drive; \
         virtio-blk, the default); what the image's kernel and initrd can drive: virtio: no (virtio_blk, \
         virtio_mmio missing)",
    ] {
        assert!(result.stdout.contains(said), "missing {said:?}\n{}", result.explain());
    }
}

/// The qemu-virt profile with `adapt_initrd_modules = false`, written into `dir`.
fn no_modules_profile(dir: &Path) -> std::path::PathBuf {
    let profile = dir.join("no-modules.toml");
    let stock = std::fs::read_to_string(repo_root().join("harness/boards/qemu-virt.toml")).unwrap();
    std::fs::write(
        &profile,
        stock.replace("name = \"qemu-virt\"", "name = \"qemu-virt-no-modules\"")
            + "adapt_initrd_modules = false\n",
    )
    .unwrap();
    profile
}

#[test]
fn a_board_profile_can_turn_adding_modules_off() {
    let dir = temp_dir();
    let profile = no_modules_profile(dir.path());
    let result = run(&[OsStr::new("--board"), profile.as_os_str()], dir.path());
    assert_eq!(result.code(), Some(1), "{}", result.explain());
    assert!(
        result.stdout.contains(
            "adding disk drivers to the initrd: off (board profile qemu-virt-no-modules: adapt_initrd_modules = false)"
        ),
        "{}",
        result.explain()
    );
    assert!(!result.stdout.contains("+ virtio_blk"), "{}", result.explain());
    assert!(
        result.stdout.contains("hint: the root disk was on virtio-blk"),
        "{}",
        result.explain()
    );
}

/// The shim's initrd copy, unpacked by `cpio` into `dir` as the kernel unpacks it; returns the
/// modules directory the added archive wrote into.
fn appended_archive(dir: &Path) -> String {
    let image = fixture(FIXTURE);
    let adapted = r2s_harness::adapt::adapt(&image)
        .unwrap()
        .expect("the fixture needs adapting");
    let r2s_harness::adapt::InitrdModules::Added(addition) = &adapted.modules else {
        panic!("no modules added: {:?}", adapted.modules);
    };
    let original = Ext4Volume::open(&image, Table::read(&image).unwrap().partition(1).unwrap())
        .unwrap()
        .read(&addition.initrd)
        .unwrap();
    let copy = Ext4Volume::open_index(adapted.shim.as_ref().expect("a shim").disk(), 1)
        .unwrap()
        .read(&addition.initrd)
        .unwrap();
    let at = original.len().next_multiple_of(4);
    assert_eq!(
        &copy[..original.len()],
        &original[..],
        "the copy does not start with the image's initrd"
    );
    assert!(copy[original.len()..at].iter().all(|&b| b == 0));
    // As the kernel unpacks the copy: the image's archive (zstd), then the added one over it.
    std::fs::write(dir.join("original.cpio.zst"), &original).unwrap();
    std::fs::write(dir.join("added.cpio"), &copy[at..]).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("zstd -dcq original.cpio.zst | cpio -idm --quiet && cpio -idmu --quiet < added.cpio")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    format!("{}/{}", dir.display(), addition.into)
}

fn modprobe(root: &Path, release: &str, args: &[&str]) -> String {
    let output = Command::new("modprobe")
        .arg("--dirname")
        .arg(root)
        .args(["--set-version", release])
        .args(args)
        .output()
        .expect("kmod's modprobe (.ci/setup installs kmod)");
    assert!(
        output.status.success(),
        "modprobe {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn kmod_reads_the_added_binary_index_for_the_initrds_modules_and_the_added_ones() {
    let dir = temp_dir();
    let modules = appended_archive(dir.path());
    let (root, release) = modules.rsplit_once("/lib/modules/").unwrap();
    // Only the binary index may answer.
    for text in [
        "modules.dep",
        "modules.alias",
        "modules.builtin",
        "modules.symbols",
    ] {
        std::fs::remove_file(format!("{modules}/{text}")).unwrap();
    }
    let root = Path::new(root);
    assert_eq!(
        modprobe(root, release, &["--show-depends", "virtio_blk"]),
        format!("insmod {modules}/kernel/drivers/block/virtio_blk.ko \n")
    );
    assert_eq!(
        modprobe(root, release, &["-R", "virtio:d00000002v00001AF4"]),
        "virtio_blk\n"
    );
    assert_eq!(
        modprobe(root, release, &["-R", "of:NvirtioT(null)Cvirtio,mmio"]),
        "virtio_mmio\n"
    );
    // The initrd's own modules are in the regenerated index too, with what they need.
    assert_eq!(modprobe(root, release, &["-R", "fs-ext4"]), "ext4\n");
    let ext4 = modprobe(root, release, &["--show-depends", "ext4"]);
    assert!(ext4.contains("/kernel/fs/jbd2/jbd2.ko"), "{ext4}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/modules-load.d/r2s-harness-qemu-disk.conf")).unwrap(),
        "# Added by r2s-harness: the drivers for QEMU's virtio-blk (virtio-mmio) root disk.\nvirtio_blk\nvirtio_mmio\n"
    );
}

/// The real directory of the module tree the fixture's systems link as `kernel-modules`.
fn tree_dir(image: &Path) -> String {
    let root = Ext4Volume::open_index(image, 2).unwrap();
    let system = r2s_images::generations()[0].store_path.clone();
    let store = root.read_link(&format!("{system}/kernel-modules")).unwrap();
    format!("{store}/lib/modules/{}", release(image))
}

fn release(image: &Path) -> String {
    let root = Ext4Volume::open_index(image, 2).unwrap();
    let system = r2s_images::generations()[0].store_path.clone();
    root.list_dir(&format!("{system}/kernel-modules/lib/modules"))
        .unwrap()
        .remove(0)
}

/// What adapting `image` (a changed copy of the fixture) decided about its initrd.
fn refusal(image: &Path) -> String {
    let adapted = r2s_harness::adapt::adapt(image)
        .unwrap()
        .expect("the refusal is reported");
    let why = match adapted.modules {
        r2s_harness::adapt::InitrdModules::Refused(why) => why,
        other => panic!("not refused: {other:?}"),
    };
    assert_a_run_reports_the_refusal(image, &why);
    why
}

/// `harness run` of `image` (as far as the kernel's start) says `no disk drivers added: why`
/// on stdout, in the transcript and in the HTML report.
fn assert_a_run_reports_the_refusal(image: &Path, why: &str) {
    let dir = temp_dir();
    let to_kernel = dir.path().join("to-kernel.toml");
    std::fs::write(
        &to_kernel,
        "name = \"to-kernel\"\ntimeout = \"2m\"\n[[steps]]\nexpect = \"Starting kernel ...\"\n",
    )
    .unwrap();
    let transcripts = dir.path().join("transcripts");
    let run = run_harness(
        &[
            OsStr::new("run"),
            OsStr::new("--image"),
            image.as_os_str(),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
            to_kernel.as_os_str(),
        ],
        LIMIT,
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    let line = format!("initrd: no disk drivers added: {why}");
    assert!(
        run.stdout.contains(&line),
        "{line:?} not on stdout\n{}",
        run.explain()
    );
    let log = std::fs::read_to_string(transcripts.join("to-kernel.log")).unwrap();
    assert!(log.contains(&line), "{line:?} not in the transcript\n{log}");
    let html = std::fs::read_to_string(transcripts.join("report.html")).unwrap();
    let escaped = line
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert!(
        html.contains(&line) || html.contains(&escaped),
        "{line:?} not in the HTML report"
    );
}

#[test]
fn a_module_built_for_another_release_is_refused_naming_both() {
    let dir = temp_dir();
    let image = r2s_tests::hostile::copy_of(FIXTURE, dir.path());
    let release = release(&image);
    let block = format!("{}/kernel/drivers/block", tree_dir(&image));
    let module = Ext4Volume::open_index(&image, 2)
        .unwrap()
        .read(&format!("{block}/virtio_blk.ko"))
        .unwrap();
    // The same length, so only the vermagic differs.
    let other = release.replacen("6.1.0-", "6.1.9-", 1);
    let needle = format!("vermagic={release} ");
    let at = memchr::memmem::find(&module, needle.as_bytes()).expect("a vermagic");
    let mut changed = module.clone();
    changed[at..at + needle.len()].copy_from_slice(format!("vermagic={other} ").as_bytes());
    let local = dir.path().join("virtio_blk.ko");
    std::fs::write(&local, changed).unwrap();
    let write = format!("write {} virtio_blk.ko", local.display());
    r2s_tests::hostile::debugfs(&image, 2, &[&format!("cd {block}"), "rm virtio_blk.ko", &write]);
    let system = &r2s_images::generations()[0].store_path;
    assert_eq!(
        refusal(&image),
        format!(
            "{system}/kernel-modules/lib/modules/{release}/kernel/drivers/block/virtio_blk.ko was built for \
             {other} but the kernel is {release} (its vermagic); the kernel would refuse it"
        )
    );
}

#[test]
fn a_root_without_the_kernels_module_tree_is_refused_naming_where_it_looked() {
    let dir = temp_dir();
    let image = r2s_tests::hostile::copy_of(FIXTURE, dir.path());
    let release = release(&image);
    r2s_tests::hostile::debugfs(&image, 2, &[&format!("rm {}/modules.dep", tree_dir(&image))]);
    let system = &r2s_images::generations()[0].store_path;
    assert_eq!(
        refusal(&image),
        format!(
            "no modules of the kernel's release {release} to add: no modules.dep in \
             {system}/kernel-modules/lib/modules/{release}, /lib/modules/{release}, /usr/lib/modules/{release} \
             on any ext4 or f2fs partition"
        )
    );
}

#[test]
fn an_f2fs_root_is_searched_like_an_ext4_one() {
    let image = fixture("broken-inspect-root-filesystem");
    let table = Table::read(&image).unwrap();
    let error =
        r2s_harness::image::modules::on_root::find(&image, &table, 1, None, "6.1.0-57-arm64").unwrap_err();
    assert_eq!(
        error,
        "no modules.dep in /lib/modules/6.1.0-57-arm64, /usr/lib/modules/6.1.0-57-arm64 on any ext4 or f2fs \
         partition"
    );
}

/// `harness console --image FIXTURE --transcripts DIR` and `extra`, with nothing on stdin: it
/// sets QEMU up as `run` does, starts it, and leaves at the end of input.
fn console(extra: &[&OsStr], dir: &Path) -> Finished {
    let image = fixture(FIXTURE);
    let transcripts = dir.join("transcripts");
    let mut args = vec![
        OsStr::new("console"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
    ];
    args.extend_from_slice(extra);
    run_harness(&args, Duration::from_secs(120))
}

#[test]
fn console_adds_the_drivers_as_run_does_unless_no_adapt_or_the_board_profile_says_not_to() {
    let dir = temp_dir();
    let added = console(&[], dir.path());
    assert_eq!(added.code(), Some(0), "{}", added.explain());
    assert!(added.stdout.contains("+ virtio_blk"), "{}", added.explain());

    let no_adapt = console(&[OsStr::new("--no-adapt")], dir.path());
    assert_eq!(no_adapt.code(), Some(0), "{}", no_adapt.explain());
    assert!(
        no_adapt.stdout.contains("adaptation for QEMU: off (--no-adapt)"),
        "{}",
        no_adapt.explain()
    );
    assert!(
        !no_adapt.stdout.contains("+ virtio_blk"),
        "{}",
        no_adapt.explain()
    );

    let profile = no_modules_profile(dir.path());
    let off = console(&[OsStr::new("--board"), profile.as_os_str()], dir.path());
    assert_eq!(off.code(), Some(0), "{}", off.explain());
    assert!(
        off.stdout.contains(
            "adding disk drivers to the initrd: off (board profile qemu-virt-no-modules: adapt_initrd_modules = false)"
        ),
        "{}",
        off.explain()
    );
    assert!(!off.stdout.contains("+ virtio_blk"), "{}", off.explain());
}
