//! A stand-in for a USB-SD-Mux on the exporter's host. The card is a sparse file attached to a
//! real loop device, so the harness's block-device guards, exclusive open and read-back run on a
//! real block device. The mux's tool is a script named `usbsdmux`, taking what labgrid's
//! USBSDMuxDriver passes (`usbsdmux CONTROL_PATH host|dut|off|client|get`) and refusing a
//! control path that is not there, as the real tool does: `host` makes the loop device appear at
//! the card reader's path (a link, as `/dev/disk/by-id/…` are), `dut` and `off` take it away, so
//! nothing on the host can write the card while the board has it. It keeps the mode in a file
//! the virtual bench's board reads at power-on, and logs every switch. The loop device is
//! detached when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::loop_device::LoopDevice;

/// The card, its loop device and the mux's files.
pub struct SdMuxStandIn {
    dir: PathBuf,
    loop_device: LoopDevice,
}

impl SdMuxStandIn {
    /// A blank card of `len` bytes, with the board (mode `dut`); its files go in `dir/sdmux`.
    /// `None`, said on stderr, where no loop device can be attached here.
    pub fn new(dir: &Path, len: u64) -> Option<SdMuxStandIn> {
        let dir = dir.join("sdmux");
        std::fs::create_dir_all(dir.join("tools")).expect("sdmux dir");
        let card = dir.join("card.img");
        std::fs::File::create(&card)
            .and_then(|f| f.set_len(len))
            .expect("the card's file");
        let loop_device = LoopDevice::attach(&card)?;
        let mux = SdMuxStandIn { dir, loop_device };
        std::fs::write(mux.control(), "").expect("the control device's stand-in");
        std::fs::write(mux.state_file(), "dut\n").expect("the mux's mode");
        let tool = mux.tools().join("usbsdmux");
        std::fs::write(
            &tool,
            format!(
                "#!/bin/sh\n# usbsdmux CONTROL_PATH MODE, as labgrid's USBSDMuxDriver runs it\n\
                 if [ ! -e \"$1\" ]; then echo \"usbsdmux: cannot open $1: No such file or directory\" >&2; exit 1; fi\n\
                 case \"$2\" in\n  host) ln -sfn '{loop_device}' '{reader}' ;;\n  dut|off|client) rm -f '{reader}' ;;\n  \
                 get) cat '{state}'; exit 0 ;;\n  *) echo \"usbsdmux: invalid mode $2\" >&2; exit 2 ;;\nesac\n\
                 echo \"$2\" > '{state}'\necho \"$2\" >> '{log}'\n",
                loop_device = mux.loop_device.path().display(),
                reader = mux.reader().display(),
                state = mux.state_file().display(),
                log = mux.dir.join("switches.log").display(),
            ),
        )
        .expect("the mux's tool");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Some(mux)
    }

    /// The file that is the card's content, wherever the card is.
    pub fn card(&self) -> PathBuf {
        self.dir.join("card.img")
    }

    /// The loop device that is the card on the host.
    pub fn loop_device(&self) -> &Path {
        self.loop_device.path()
    }

    /// The card reader's block device path on the host: there only while the card is.
    pub fn reader(&self) -> PathBuf {
        self.dir.join("card-reader")
    }

    /// The mux's control device (`/dev/sgN` of a real USB-SD-Mux).
    pub fn control(&self) -> PathBuf {
        self.dir.join("sg-mux")
    }

    /// The directory holding the tool, for the exporter host's PATH.
    pub fn tools(&self) -> PathBuf {
        self.dir.join("tools")
    }

    /// The file holding the mux's mode (`host`, `dut`, …).
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("mode")
    }

    /// The modes the tool switched to, in order.
    pub fn switches(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("switches.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The mux as the exporter's configuration lists it: a USBSDMuxDevice whose control and
    /// disk paths are given, and whose udev match fits no device, so nothing real replaces them.
    pub fn exporter_resource(&self) -> String {
        format!(
            "  USBSDMuxDevice:\n    match:\n      ID_PATH: \"r2s-harness-test-no-such-usb-device\"\n    \
             control_path: '{}'\n    disk_path: '{}'\n",
            self.control().display(),
            self.reader().display()
        )
    }
}

impl Drop for SdMuxStandIn {
    fn drop(&mut self) {
        // The link first; the loop device is detached as the field drops.
        let _ = std::fs::remove_file(self.reader());
    }
}
