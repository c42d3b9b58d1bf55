"""A device's fingerprint: the parts of a board's set-up that change its numbers, hashed, so that
history and reports group records by device and ``fleet sweep --resume`` knows what a device has done.

Parts: the board (device-tree model: the Jetson module), CPU model and count, machine and kernel,
the L4T release (``/etc/nv_tegra_release``, the BSP under JetPack), the ``nvidia-jetpack`` package
version, the TensorRT version the runner found (none: the ONNX Runtime fallback), the nvpmodel
mode and jetson_clocks' settings. The host name is kept beside the hash but not in it: two boards
set up alike share a fingerprint, which is what a comparison across a fleet wants. jetson_clocks'
``CurrentFreq`` values are left out of the hash: without locked clocks they follow DVFS from one
call to the next.
"""

from __future__ import annotations

import re

from edgebench.deploy.remote import run_remote
from edgebench.portable.hashing import sha256_json
from edgebench.portable.host import nvpmodel_mode

_SPLIT = "@@edgebench@@"
RELEASE_PROBE = ["sh", "-c", "cat /etc/nv_tegra_release 2>/dev/null; echo " + _SPLIT + "; "
                 "dpkg-query --showformat='${Version}' --show nvidia-jetpack 2>/dev/null; true"]
_CURRENT_FREQ = re.compile(r"\s*CurrentFreq=\S+")


def probe_release(client) -> dict:
    """``{"l4t": ..., "jetpack": ...}`` from the device (None where it has neither: not a Jetson)."""
    code, out, _err = run_remote(client, RELEASE_PROBE, 30)
    l4t, _, jetpack = out.partition(_SPLIT) if code == 0 else ("", "", "")
    return {"l4t": l4t.strip().splitlines()[0] if l4t.strip() else None, "jetpack": jetpack.strip() or None}


def device_of(record: dict, release: dict) -> dict:
    """The ``device`` block of a record measured over SSH: its parts and their fingerprint."""
    host = record.get("host") or {}
    deploy = record.get("deploy") or {}
    settings = (record.get("runtime") or {}).get("settings") or {}
    clocks = deploy.get("jetson_clocks")
    parts = {
        "board": host.get("board"), "cpu": host.get("cpu"), "cpu_count": host.get("cpu_count"),
        "machine": host.get("machine"), "os": host.get("os"),
        "l4t": release.get("l4t"), "jetpack": release.get("jetpack"),
        "tensorrt": settings.get("tensorrt_version"),
        "nvpmodel": nvpmodel_mode(deploy.get("nvpmodel")),
        "jetson_clocks": _CURRENT_FREQ.sub("", clocks) if clocks else None,
    }
    return {"fingerprint": sha256_json(parts)[:16], "hostname": host.get("hostname"), **parts}
