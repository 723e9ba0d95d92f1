"""Prints the NetworkSerialPort of an acquired labgrid place as one JSON object.

Run by the harness with the Python next to labgrid-client, as
`python3 -c SCRIPT LABGRID_CLIENT [-x COORDINATOR] [-P PROXY] -p PLACE`. `labgrid-client show`
prints each acquired resource as a Python dict (pformat), read here with Python's literal
parser (no code runs); `labgrid-client env` would leave out the exporter's proxy settings
(`extra`). The harness reads a stable JSON shape: {"host": …, "port": …, "speed": …,
"protocol": …, "proxy": …, "proxy_required": …}.
"""

import ast
import json
import subprocess
import sys

client, *args = sys.argv[1:]
done = subprocess.run([client, *args, "show"], capture_output=True, text=True, timeout=60)
if done.returncode != 0:
    sys.stderr.write(done.stderr.strip() or f"{client} show exited {done.returncode}")
    sys.exit(1)
# "Acquired resource 'NAME' (EXPORTER/GROUP/CLS/NAME):" then the dict, indented two spaces.
blocks = []
block = None
for line in done.stdout.splitlines():
    if line.startswith("Acquired resource "):
        block = []
        blocks.append(block)
    elif block is not None and line.startswith("  "):
        block.append(line[2:])
    else:
        block = None
found = []
for block in blocks:
    try:
        resource = ast.literal_eval("\n".join(block))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        continue
    if isinstance(resource, dict) and resource.get("cls") == "NetworkSerialPort":
        params = resource.get("params")
        found.append(params if isinstance(params, dict) else {})
if not found:
    sys.stderr.write("the place has no NetworkSerialPort (is the exporter's serial port up?)")
    sys.exit(1)
port = found[0]
if port.get("port") is None:
    sys.stderr.write("the place's NetworkSerialPort has no port yet (ser2net not started?)")
    sys.exit(1)
extra = port.get("extra")
extra = extra if isinstance(extra, dict) else {}
proxy = extra.get("proxy")
print(json.dumps({
    "host": str(port.get("host", "")),
    "port": int(port["port"]),
    "speed": int(port.get("speed") or 0),
    "protocol": str(port.get("protocol") or "rfc2217"),
    "proxy": str(proxy) if proxy else None,
    "proxy_required": bool(extra.get("proxy_required")),
}))
