//! The matcher benchmarks' shared workload: the 50 patterns (40 literals, 10 regexes), the
//! boot transcript they run over, and how our matcher is timed on it.
//!
//! Each bench binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use r2s_harness::console::{Event, Matcher, Pattern};

/// Bytes per read, as a serial port or a pty delivers a console.
pub const CHUNK: usize = 4096;
pub const MIB: usize = 1024 * 1024;

/// The 50 patterns as our matcher takes them: the literals, then the regexes.
pub fn patterns() -> Vec<Pattern> {
    let literals = literal_patterns();
    let regexes = regex_patterns();
    assert_eq!((literals.len(), regexes.len()), (40, 10));
    literals
        .iter()
        .map(|l| Pattern::literal(*l))
        .chain(regexes.iter().map(|r| Pattern::regex(r).expect("valid regex")))
        .collect()
}

pub fn time_ours(input: &[u8], patterns: &[Pattern]) -> (Duration, usize) {
    time_ours_in(input, patterns, CHUNK)
}

/// [`time_ours`], fed `chunk` bytes at a time.
pub fn time_ours_in(input: &[u8], patterns: &[Pattern], chunk: usize) -> (Duration, usize) {
    let mut matcher = Matcher::new(patterns.to_vec());
    let started = Instant::now();
    let mut hits = 0;
    for chunk in input.chunks(chunk) {
        hits += matcher
            .feed(chunk)
            .iter()
            .filter(|e| matches!(e, Event::Watch { .. }))
            .count();
    }
    (started.elapsed(), hits)
}

/// Fatal messages (design.md §2 and common kernel/systemd failures) and stage markers.
pub fn literal_patterns() -> Vec<&'static str> {
    vec![
        "Kernel panic - not syncing",
        "Unable to handle kernel",
        "Internal error: Oops",
        "An error occurred in stage 1 of the boot process",
        "SCRIPT FAILED",
        "Bad Linux ARM64 Image magic!",
        "Wrong Ramdisk Image Format",
        "### ERROR ### Please RESET the board ###",
        "Synchronous Abort",
        "Retry count exceeded",
        "Resetting CPU",
        "Unable to mount root fs",
        "Out of memory: Killed process",
        "BUG: soft lockup",
        "rcu_sched self-detected stall",
        "EXT4-fs error",
        "Buffer I/O error on dev",
        "You are in emergency mode",
        "Dependency failed for",
        "Timed out waiting for device",
        "Failed to mount",
        "Welcome to emergency mode!",
        "Give root password for maintenance",
        "segfault at",
        "end Kernel panic",
        "Attempted to kill init!",
        "VFS: Cannot open root device",
        "No working init found",
        "Hit any key to stop autoboot",
        "Found /extlinux/extlinux.conf",
        "Retrieving file: /extlinux/extlinux.conf",
        "Enter choice: ",
        "Starting kernel ...",
        "Booting Linux on physical CPU",
        "<<< NixOS Stage 1 >>>",
        "running udev...",
        "<<< NixOS Stage 2 >>>",
        "running activation script...",
        "starting systemd...",
        "Reached target Multi-User System",
    ]
}

pub fn regex_patterns() -> Vec<&'static str> {
    vec![
        r"^U-Boot 20\d\d\.\d\d",
        r"^U-Boot SPL 20\d\d\.\d\d",
        r"Skipping \S+ for failure retrieving (kernel|initrd|FDT)",
        r"^\S+ not found$",
        r"Run /\S+ as init process",
        r"<<< Welcome to NixOS \S+ \(aarch64\) - \w+ >>>",
        r"^[a-z0-9-]+ login: $",
        r"Failed to start .+\.service",
        r"EXT4-fs \(\w+\): mounted filesystem",
        r"^Password: $",
    ]
}

/// A recorded boot if one exists, else a synthetic one.
pub fn boot_transcript() -> (Vec<u8>, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/transcripts");
    let mut recorded: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "raw"))
        .collect();
    recorded.sort();
    let mut bytes = Vec::new();
    for path in &recorded {
        bytes.extend(std::fs::read(path).expect("readable transcript"));
    }
    if bytes.is_empty() {
        return (synthetic_boot(), "synthetic NixOS boot log".to_owned());
    }
    let names: Vec<String> = recorded
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
        .collect();
    (
        bytes,
        format!("recorded tests/transcripts/{{{}}}", names.join(",")),
    )
}

/// A NixOS boot on an R2S as design.md §2 describes it: U-Boot, a kernel log, stage 1 and 2,
/// systemd's coloured status lines, the getty banner and a login prompt.
pub fn synthetic_boot() -> Vec<u8> {
    let mut log = String::new();
    log.push_str("\r\nU-Boot TPL 2024.01 (Jan 01 2024 - 00:00:00)\r\nDDR4, 333MHz\r\nU-Boot SPL 2024.01 (Jan 01 2024 - 00:00:00)\r\n");
    log.push_str("Trying to boot from MMC1\r\n\r\n\r\nU-Boot 2024.01 (Jan 01 2024 - 00:00:00 +0000)\r\n\r\n");
    log.push_str("Model: FriendlyElec NanoPi R2S\r\nDRAM:  1 GiB (effective 1022 MiB)\r\nCore:  227 devices, 24 uclasses\r\n");
    log.push_str("MMC:   mmc@ff500000: 1\r\nIn:    serial@ff130000\r\nOut:   serial@ff130000\r\nNet:   eth0: ethernet@ff540000\r\n");
    log.push_str("Hit any key to stop autoboot:  1 \x08\x08\x08 0 \r\nScanning mmc 1:1...\r\nFound /extlinux/extlinux.conf\r\n");
    log.push_str("Retrieving file: /extlinux/extlinux.conf\r\n------------------------------------------------------------\r\n");
    log.push_str("1:\tNixOS - Default\r\n2:\tNixOS - Configuration 41 (2025-01-01 12:00 - 25.05)\r\nEnter choice: 1:\tNixOS - Default\r\n");
    log.push_str("Retrieving file: /nixos/abc-linux-6.12.8-Image\r\nRetrieving file: /nixos/def-initrd-linux-6.12.8-initrd\r\n");
    log.push_str(
        "append: init=/nix/store/xyz-nixos-system-nixos-25.05/init console=ttyS2,1500000 loglevel=4\r\n",
    );
    log.push_str("Retrieving file: /nixos/ghi-dtbs/rockchip/rk3328-nanopi-r2s.dtb\r\n## Flattened Device Tree blob at 01f00000\r\n");
    log.push_str("   Booting using the fdt blob at 0x1f00000\r\nWorking FDT set to 1f00000\r\nStarting kernel ...\r\n\r\n");
    let kernel_messages = [
        "Booting Linux on physical CPU 0x0000000000 [0x410fd034]",
        "Linux version 6.12.8 (nixbld@localhost) (gcc (GCC) 13.3.0, GNU ld (GNU Binutils) 2.43.1) #1-NixOS SMP PREEMPT",
        "Machine model: FriendlyElec NanoPi R2S",
        "efi: UEFI not found.",
        "OF: reserved mem: 0x0000000000110000..0x00000000001fffff (960 KiB) nomap non-reusable",
        "Zone ranges:",
        "  DMA      [mem 0x0000000000200000-0x000000003fffffff]",
        "psci: probing for conduit method from DT.",
        "percpu: Embedded 33 pages/cpu s97048 r8192 d29928 u135168",
        "Kernel command line: init=/nix/store/xyz-nixos-system-nixos-25.05/init console=ttyS2,1500000 loglevel=4",
        "Dentry cache hash table entries: 131072 (order: 8, 1048576 bytes, linear)",
        "Memory: 969432K/1046528K available (17216K kernel code, 2430K rwdata)",
        "rcu: Preemptible hierarchical RCU implementation.",
        "GICv2m: range[mem 0xff811000-0xff811fff], SPI[288:319]",
        "arch_timer: cp15 timer(s) running at 24.00MHz (phys).",
        "sched_clock: 56 bits at 24MHz, resolution 41ns, wraps every 4398046511097ns",
        "Console: colour dummy device 80x25",
        "Calibrating delay loop (skipped), value calculated using timer frequency.. 48.00 BogoMIPS",
        "Mount-cache hash table entries: 2048 (order: 2, 16384 bytes, linear)",
        "CPU1: Booted secondary processor 0x0000000001 [0x410fd034]",
        "smp: Brought up 1 node, 4 CPUs",
        "devtmpfs: initialized",
        "NET: Registered PF_NETLINK/PF_ROUTE protocol family",
        "rockchip-pinctrl pinctrl: probed pinctrl",
        "SCSI subsystem initialized",
        "usbcore: registered new interface driver usbfs",
        "clocksource: Switched to clocksource arch_sys_counter",
        "Unpacking initramfs...",
        "Freeing initrd memory: 10240K",
        "ff130000.serial: ttyS2 at MMIO 0xff130000 (irq = 30, base_baud = 1500000) is a 16550A",
        "printk: console [ttyS2] enabled",
        "rk_gmac-dwmac ff540000.ethernet: IRQ eth_wake_irq not found",
        "dwmmc_rockchip ff500000.mmc: IDMAC supports 32-bit address mode.",
        "mmc_host mmc1: Bus speed (slot 0) = 50000000Hz (slot req 50000000Hz, actual 50000000HZ div = 0)",
        "mmcblk1: mmc1:aaaa SC32G 29.7 GiB",
        " mmcblk1: p1 p2",
        "Freeing unused kernel memory: 9536K",
        "Run /init as init process",
    ];
    let mut t = 0.0f64;
    for round in 0..12 {
        for message in &kernel_messages[if round == 0 { 0 } else { 2 }..] {
            if round > 0 && message.starts_with("Run /init") {
                continue;
            }
            t += 0.003_71;
            log.push_str(&format!("[{t:12.6}] {message}\r\n"));
        }
    }
    log.push_str(&format!("[{:12.6}] Run /init as init process\r\n", t + 0.01));
    log.push_str("\r\n\x1b[1;32m<<< NixOS Stage 1 >>>\x1b[0m\r\n\r\n");
    for module in ["dm_mod", "ext4", "mmc_block", "rockchipdrm", "dw_mmc_rockchip"] {
        log.push_str(&format!("loading module {module}...\r\n"));
    }
    log.push_str("running udev...\r\nStarting systemd-udevd version 256.8\r\n");
    log.push_str("waiting for device /dev/disk/by-label/NIXOS_SD to appear...\r\n");
    log.push_str("[    4.123456] EXT4-fs (mmcblk1p2): mounted filesystem 44444444-1111-2222-3333-555555555555 r/w with ordered data mode.\r\n");
    log.push_str(
        "mounting /dev/disk/by-label/NIXOS_SD on /...\r\n\r\n\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n\r\n",
    );
    log.push_str("running activation script...\r\nsetting up /etc...\r\nstarting systemd...\r\n\r\n");
    log.push_str("\x1b[0;1;39mWelcome to \x1b[0m\x1b[38;2;126;186;228mNixOS 25.05 (Warbler)\x1b[0m!\r\n\r\n");
    let units = [
        "Created slice Slice /system/getty.",
        "Started Dispatch Password Requests to Console Directory Watch.",
        "Reached target Local Encrypted Volumes.",
        "Reached target Path Units.",
        "Listening on Journal Socket (/dev/log).",
        "Listening on udev Control Socket.",
        "Mounted Huge Pages File System.",
        "Started Journal Service.",
        "Finished Load Kernel Modules.",
        "Finished Create Static Device Nodes in /dev.",
        "Started Rule-based Manager for Device Events and Files.",
        "Found device /dev/ttyS2.",
        "Reached target Network.",
        "Started OpenSSH Daemon.",
        "Started Getty on tty1.",
        "Started Serial Getty on ttyS2.",
        "Reached target Login Prompts.",
        "Reached target Multi-User System.",
    ];
    for _ in 0..3 {
        for unit in units {
            log.push_str(&format!("[  \x1b[0;32mOK  \x1b[0m] {unit}\r\n"));
        }
    }
    log.push_str("\r\n\r\n<<< Welcome to NixOS 25.05.20250101.abcdef (aarch64) - ttyS2 >>>\r\n\r\n");
    log.push_str("Run 'nixos-help' for the NixOS manual.\r\n\r\nnixos login: ");
    log.into_bytes()
}

pub fn repeat_to(unit: &[u8], size: usize) -> Vec<u8> {
    unit.iter().copied().cycle().take(size).collect()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
