#!/usr/bin/env python3
"""Boots a fixture image under QEMU, drives its console, and saves the raw console bytes.

Used to verify fixtures and to (re)record tests/transcripts/<fixture>.raw:

    images/scripts/record-transcript.py IMAGE OUT.raw PLAN

PLAN is one of:
  login        wait for the login prompt, log in as root, run `readlink /run/booted-system`
  menu2        choose entry 2 at `Enter choice:`, then as `login`
  stage1-fail  wait for the stage-1 error dialog
  panic        wait for the kernel panic
  no-initrd    wait for U-Boot's "Skipping ... initrd" lines and its giving up
Milestone times (seconds since QEMU started) go to stderr. QEMU is always killed on exit.
"""

import os
import re
import subprocess
import sys
import threading
import time

UBOOT_QEMU = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
# NixOS's root prompt ends "]#" then a colour reset, then a space.
PROMPT = rb"\]#(\x1b\[0m)? "
PASSWORD = sys.argv[4] if len(sys.argv) > 4 else "r2s-fixture"

MILESTONES = [
    ("uboot", rb"U-Boot 20\d\d"),
    ("autoboot", rb"Hit any key to stop autoboot"),
    ("menu", rb"Enter choice: "),
    ("chosen", rb"Enter choice: [^\r\n]*\r?\n"),
    ("kernel", rb"Starting kernel \.\.\."),
    ("linux", rb"Booting Linux on physical CPU"),
    ("stage-1", rb"<<< NixOS Stage 1 >>>"),
    ("stage-2", rb"<<< NixOS Stage 2 >>>"),
    ("login", rb"login: "),
]


class Console:
    def __init__(self, image):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [
                "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024",
                "-nic", "none", "-bios", UBOOT_QEMU, "-display", "none", "-serial", "stdio",
                "-monitor", "none",
                "-drive", f"if=none,file={image},format=raw,id=d0,snapshot=on",
                "-device", "virtio-blk-device,drive=d0",
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.seen = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            with self.cond:
                self.buf += chunk
                now = time.monotonic() - self.start
                for name, pattern in MILESTONES:
                    if name not in self.seen and re.search(pattern, self.buf):
                        self.seen[name] = now
                        print(f"[{now:6.2f}s] {name}", file=sys.stderr)
                self.cond.notify_all()

    def expect(self, pattern, timeout, after=0):
        """Waits for `pattern` in the output after offset `after`; returns the match end."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = re.search(pattern, self.buf[after:])
                if m:
                    return after + m.end()
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = bytes(self.buf[-600:]).decode("utf-8", "replace")
                    raise TimeoutError(f"no {pattern!r} within {timeout}s; last output:\n{tail}")
                self.cond.wait(left)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def elapsed(self):
        return time.monotonic() - self.start

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def login(c, at=0):
    at = c.expect(rb"ivy login: ", 120, at)
    c.send(b"root\n")
    at = c.expect(rb"Password: ", 20, at)
    c.send(PASSWORD.encode() + b"\n")
    at = c.expect(PROMPT, 20, at)
    print(f"[{c.elapsed():6.2f}s] shell", file=sys.stderr)
    c.send(b"readlink /run/booted-system\n")
    at = c.expect(rb"/nix/store/[0-9a-z]{32}-nixos-system-ivy-[^\r\n]*\r\n", 20, at)
    at = c.expect(PROMPT, 20, at)
    time.sleep(0.5)
    return at


def main():
    image, out, plan = sys.argv[1], sys.argv[2], sys.argv[3]
    c = Console(image)
    try:
        if plan == "login":
            login(c)
        elif plan == "menu2":
            at = c.expect(rb"Enter choice: ", 60)
            c.send(b"2\n")
            login(c, at)
        elif plan == "stage1-fail":
            c.expect(rb"\*\) to ignore the error and continue\r?\n", 120)
            time.sleep(2)
        elif plan == "panic":
            c.expect(rb"Kernel panic - not syncing[^\n]*\n", 120)
            c.expect(rb"end Kernel panic[^\n]*\n", 20)
            time.sleep(1)
        elif plan == "no-initrd":
            c.expect(rb"Skipping nixos-1-default for failure retrieving initrd", 120)
            c.expect(rb"=> ", 120)
            time.sleep(1)
        else:
            raise SystemExit(f"unknown plan {plan}")
        print(f"[{c.elapsed():6.2f}s] done", file=sys.stderr)
    finally:
        c.kill()
        with c.cond:
            data = bytes(c.buf)
        with open(out, "wb") as f:
            f.write(data)
        print(f"wrote {len(data)} bytes to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
