//! `--place NAME --flash IMG`: the card is written through the place's SD-mux, then the board
//! boots it and is judged. A real labgrid coordinator and exporter on localhost (see
//! `support/labgrid.rs`) export the virtual bench and a USBSDMuxDevice; `labgrid-client sd-mux`
//! runs the mux's tool on the exporter's host over SSH, a real sshd on loopback
//! (`support/exporter_ssh.rs`). The tool and the card stand in for the hardware
//! (`support/sd_mux.rs`): a script named `usbsdmux` that shows the card's loop device at the
//! reader's path only while the card is with the host, and a file the bench's board boots from
//! only while it is with the board.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2s_tests::bench::VirtualBench;
use r2s_tests::exporter_ssh::ExporterSsh;
use r2s_tests::labgrid::{labgrid_bin, path_with_labgrid, Farm, PLACE};
use r2s_tests::sd_mux::SdMuxStandIn;
use r2s_tests::*;

const LIMIT: Duration = Duration::from_secs(300);

/// A farm whose place has an SD-mux in front of the card its board boots from.
struct MuxFarm {
    farm: Farm,
    bench: Arc<VirtualBench>,
    ssh: ExporterSsh,
    mux: SdMuxStandIn,
    /// Holds the mux's files; removed last.
    dir: tempfile::TempDir,
}

impl MuxFarm {
    /// A blank card as long as `image`, with the board; `None` where no loop device can be
    /// attached here (said on stderr).
    fn start(image: &Path) -> Option<MuxFarm> {
        let dir = temp_dir();
        let mux = SdMuxStandIn::new(dir.path(), std::fs::metadata(image).unwrap().len())?;
        let bench = Arc::new(VirtualBench::with_card(&mux.card(), &mux.state_file()));
        let ssh = ExporterSsh::start(dir.path(), &mux.tools());
        let farm = Farm::start_with_sd_mux(bench.clone(), bench.dir(), &mux);
        Some(MuxFarm {
            farm,
            bench,
            ssh,
            mux,
            dir,
        })
    }

    /// `harness -v run --place PLACE --flash IMAGE --yes boot-to-login` and `extra`, with
    /// labgrid-client and the `ssh` that reaches the exporter's host on PATH.
    fn run_flash(&self, image: &Path, extra: &[&str]) -> Finished {
        // The bench's power profile at the fixture's console rate, so that inspect passes.
        let profile = self.bench.dir().join("bench-at-115200.toml");
        let power = std::fs::read_to_string(self.bench.profile("10s")).unwrap();
        std::fs::write(&profile, power.replace("baud = 1500000", "baud = 115200")).unwrap();
        let transcripts = self.bench.dir().join("transcripts");
        let boot = scenario("boot-to-login");
        let mut args: Vec<&OsStr> = [
            "-v",
            "run",
            "--place",
            PLACE,
            "--coordinator",
            self.farm.coordinator(),
            "--board",
        ]
        .map(OsStr::new)
        .to_vec();
        args.extend([profile.as_os_str(), OsStr::new("--flash"), image.as_os_str()]);
        args.extend([
            OsStr::new("--yes"),
            OsStr::new("--transcripts"),
            transcripts.as_os_str(),
        ]);
        args.extend(extra.iter().map(OsStr::new));
        args.push(boot.as_os_str());
        let mut paths = vec![self.ssh.bin().to_owned(), labgrid_bin()];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path: OsString = std::env::join_paths(paths).unwrap();
        let started = Instant::now();
        let (child, command) = spawn_harness_env(&args, &[("PATH", &path)]);
        finish(child, command, started, LIMIT)
    }

    /// Whether nothing was ever written to the card: its sparse file has no block allocated.
    fn card_untouched(&self) -> bool {
        std::fs::metadata(self.mux.card()).unwrap().blocks() == 0
    }

    /// Asserts that `run` was refused with exit 2 and `line` on stderr, and that nothing
    /// happened on the place but the board's power-off: the card unwritten, the board never
    /// powered on, the place released.
    fn assert_refused(&self, run: &Finished, line: &str) {
        assert_eq!(run.code(), Some(2), "{}", run.explain());
        assert!(
            run.stderr.contains(line),
            "{line:?} not on stderr\n{}",
            run.explain()
        );
        assert!(self.card_untouched(), "the card was written\n{}", run.explain());
        assert_eq!(*self.farm.power_log.lock().unwrap(), ["off"]);
        assert!(self.bench.observed().all_qemu_pids.is_empty());
        assert_eq!(self.farm.holder(), "None", "the place was not released");
    }

    /// Stops the farm, the bench (checking its QEMUs are gone), sshd, then detaches the loop
    /// device and checks it is gone.
    fn tear_down(self) {
        let MuxFarm {
            farm,
            bench,
            ssh,
            mux,
            dir,
        } = self;
        drop(farm);
        let pids = bench.observed().all_qemu_pids;
        drop(bench);
        for pid in pids {
            assert!(!process_alive(pid), "QEMU {pid} outlived the bench");
        }
        drop(ssh);
        let card = mux.card();
        drop(mux);
        let attached = std::process::Command::new("losetup")
            .arg("-j")
            .arg(&card)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&attached.stdout),
            "",
            "the card's loop device stayed"
        );
        drop(dir);
    }
}

#[test]
fn flash_through_the_places_sd_mux_writes_the_card_and_the_board_boots_it() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let Some(farm) = MuxFarm::start(&image) else {
        return;
    };
    // A card that is not a removable disk (a loop device) needs --allow-fixed, as `harness flash`.
    let run = farm.run_flash(&image, &["--allow-fixed"]);
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(run.stdout.contains("PASS  boot-to-login  "), "{}", run.explain());
    // The board booted what was written: the card was blank before.
    assert_eq!(sha256(&farm.mux.card()), sha256(&image));
    assert_eq!(farm.mux.switches(), ["host", "dut"]);
    run.assert_stdout_in_order(&[
        "power: the board off before its card is taken: ",
        "SD-mux: switching the card to the host: ",
        "read back and verified",
        "SD-mux: switching the card back to the board: ",
        "PASS  boot-to-login",
    ]);
    let client = format!(
        "labgrid-client -v -x {} -p {PLACE} sd-mux",
        farm.farm.coordinator()
    );
    for line in [
        format!("SD-mux: switching the card to the host: {client} host\n"),
        format!("SD-mux: switching the card back to the board: {client} dut\n"),
    ] {
        assert!(
            run.stdout.contains(&line),
            "{line:?} not printed\n{}",
            run.explain()
        );
    }
    // Off before the card is taken; the scenario's power cycle; off at the end.
    assert_eq!(*farm.farm.power_log.lock().unwrap(), ["off", "off", "on", "off"]);
    assert_eq!(farm.farm.holder(), "None", "the place was not released");
    farm.tear_down();
}

#[test]
fn a_card_the_device_guards_refuse_is_not_written_goes_back_to_the_board_and_the_place_is_released() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let Some(farm) = MuxFarm::start(&image) else {
        return;
    };
    // Without --allow-fixed: a loop device is not removable, so not plainly a card.
    let run = farm.run_flash(&image, &[]);
    farm.assert_refused(
        &run,
        &format!(
            "harness: {} is not removable (sysfs removable = 0, on virtual): it looks like a fixed disk, not a \
             card; pass --allow-fixed if it is the card\n",
            farm.mux.loop_device().display()
        ),
    );
    // Switched to the host, where the guards looked at it, and given back to the board.
    assert_eq!(farm.mux.switches(), ["host", "dut"]);
    assert!(
        farm.mux.reader().symlink_metadata().is_err(),
        "the card stayed with the host"
    );
    farm.tear_down();
}

#[test]
fn a_mux_that_cannot_switch_ends_the_run_with_its_tools_words_and_the_place_released() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let Some(farm) = MuxFarm::start(&image) else {
        return;
    };
    // The mux's control device is gone (unplugged): its tool cannot open it.
    std::fs::remove_file(farm.mux.control()).unwrap();
    let run = farm.run_flash(&image, &["--allow-fixed"]);
    farm.assert_refused(
        &run,
        &format!(
            "harness: SD-mux host command `labgrid-client -v -x {} -p {PLACE} sd-mux host` failed (exit status: 2): \
             usbsdmux: cannot open {}: No such file or directory\n",
            farm.farm.coordinator(),
            farm.mux.control().display()
        ),
    );
    assert!(farm.mux.switches().is_empty(), "{:?}", farm.mux.switches());
    farm.tear_down();
}

#[test]
fn a_place_without_an_sd_mux_is_refused_for_flash_and_released() {
    let image = fixture(r2s_images::DEFAULT_FIXTURE);
    let bench = Arc::new(VirtualBench::new(&image));
    let farm = Farm::start(bench.clone(), bench.dir());
    let path = path_with_labgrid();
    let transcripts = bench.dir().join("transcripts");
    let args = [
        OsStr::new("run"),
        OsStr::new("--place"),
        OsStr::new(PLACE),
        OsStr::new("--coordinator"),
        OsStr::new(farm.coordinator()),
        OsStr::new("--flash"),
        image.as_os_str(),
        OsStr::new("--yes"),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
    ];
    let started = Instant::now();
    let (child, command) = spawn_harness_env(&args, &[("PATH", &path)]);
    let run = finish(child, command, started, LIMIT);
    assert_eq!(run.code(), Some(2), "{}", run.explain());
    assert!(
        run.stderr.contains(&format!(
            "harness: place {PLACE}: it has no SD-mux (a USBSDMuxDevice, USBSDWireDevice or USBSDWire3Device in its \
             exporter's configuration), and --flash writes the card through one\n"
        )),
        "{}",
        run.explain()
    );
    assert!(
        farm.power_log.lock().unwrap().is_empty(),
        "the board was switched"
    );
    assert_eq!(farm.holder(), "None", "the place was not released");
    drop(farm);
    drop(bench);
}
