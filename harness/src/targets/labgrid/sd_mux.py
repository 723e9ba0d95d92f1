"""Prints the SD-muxes of an acquired labgrid place as a JSON list.

Run by the harness with the Python next to labgrid-client, as
`python3 -c SCRIPT LABGRID_CLIENT [-x COORDINATOR] -p PLACE`. The SD-muxes are the resources
`labgrid-client sd-mux` switches (a USB-SD-Mux, an SDWire); each is printed as
{"class": …, "name": …, "host": …, "path": …}, `path` being the card's block device on the
exporter's host (null while the exporter has not found it).
"""

import json
import subprocess
import sys

import yaml

SD_MUXES = ("NetworkUSBSDMuxDevice", "NetworkUSBSDWireDevice", "NetworkUSBSDWire3Device")

client, *args = sys.argv[1:]
answer = subprocess.run([client, *args, "env"], capture_output=True, text=True, timeout=60)
if answer.returncode:
    sys.exit(answer.stderr.strip() or f"{client} env exited {answer.returncode}")
muxes = []
for target in ((yaml.safe_load(answer.stdout) or {}).get("targets") or {}).values():
    for resource in (target or {}).get("resources") or []:
        if not isinstance(resource, dict):
            continue
        for cls in SD_MUXES:
            if cls in resource:
                params = resource[cls] or {}
                path = params.get("path")
                muxes.append({
                    "class": cls,
                    "name": str(params.get("name") or cls),
                    "host": str(params.get("host") or ""),
                    "path": None if path is None else str(path),
                })
print(json.dumps(muxes))
