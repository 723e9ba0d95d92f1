#!/usr/bin/env python3
"""The pexpect side of `cargo bench -p r2s-harness --bench matcher_pexpect`.

Usage: pexpect_matcher.py TRANSCRIPT PATTERNS.json

Watches the transcript for the benchmark's 50 patterns the way a pexpect user would: an
`expect_list` loop over the compiled patterns (literals escaped, regexes in multi-line mode, as
our matcher reads them), each call consuming the buffer up to the earliest match, with reads of
4 KiB as a serial console delivers them. Prints one JSON line: seconds, matches, bytes.

Prerequisite: `apt-get install python3-pexpect`.
"""

import json
import os
import re
import sys
import time

import pexpect
from pexpect import fdpexpect

CHUNK = 4096


def main():
    transcript, patterns_file = sys.argv[1], sys.argv[2]
    with open(patterns_file, encoding="utf-8") as f:
        spec = json.load(f)
    compiled = [re.compile(re.escape(lit.encode())) for lit in spec["literals"]]
    compiled += [re.compile(rx.encode(), re.MULTILINE) for rx in spec["regexes"]]
    eof = len(compiled)
    fd = os.open(transcript, os.O_RDONLY)
    try:
        child = fdpexpect.fdspawn(fd, maxread=CHUNK, timeout=None)
        started = time.perf_counter()
        matches = 0
        while child.expect_list(compiled + [pexpect.EOF]) != eof:
            matches += 1
        took = time.perf_counter() - started
    finally:
        os.close(fd)
    print(json.dumps({
        "seconds": took,
        "matches": matches,
        "bytes": os.path.getsize(transcript),
        "pexpect": pexpect.__version__,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
