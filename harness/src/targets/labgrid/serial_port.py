"""Prints the NetworkSerialPort of an acquired labgrid place as one JSON object.

Run by the harness with the Python next to labgrid-client, as
`python3 -c SCRIPT LABGRID_CLIENT [-x COORDINATOR] -p PLACE`. `labgrid-client show` prints
Python reprs; `labgrid-client env` prints YAML, read here with labgrid's own YAML library,
so the harness reads a stable JSON shape: {"host": …, "port": …, "speed": …, "protocol": …}.
"""

import json
import subprocess
import sys

import yaml

client, *args = sys.argv[1:]
done = subprocess.run([client, *args, "env"], capture_output=True, text=True, timeout=60)
if done.returncode != 0:
    sys.stderr.write(done.stderr.strip() or f"{client} env exited {done.returncode}")
    sys.exit(1)
env = yaml.safe_load(done.stdout) or {}
found = []
for target in (env.get("targets") or {}).values():
    for resource in target.get("resources") or []:
        if isinstance(resource, dict) and "NetworkSerialPort" in resource:
            found.append(resource["NetworkSerialPort"] or {})
if not found:
    sys.stderr.write("the place has no NetworkSerialPort (is the exporter's serial port up?)")
    sys.exit(1)
port = found[0]
if port.get("port") is None:
    sys.stderr.write("the place's NetworkSerialPort has no port yet (ser2net not started?)")
    sys.exit(1)
print(json.dumps({
    "host": str(port.get("host", "")),
    "port": int(port["port"]),
    "speed": int(port.get("speed") or 0),
    "protocol": str(port.get("protocol") or "rfc2217"),
}))
