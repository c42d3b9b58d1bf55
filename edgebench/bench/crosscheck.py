"""Cross-check edgebench's OpenVINO latency with OpenVINO's own ``benchmark_app``.

Both measure the same IR, same batch, LATENCY hint and FP32 inference precision,
alternating round by round so that a slow phase of the machine hits both alike.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from edgebench.portable.errors import RuntimeUnavailable

_FIELDS = {name: re.compile(rf"^\[ INFO \]\s+{name}:\s+([\d.]+) ms", re.MULTILINE) for name in ("Median", "Average", "Min", "Max")}
_COUNT = re.compile(r"Count:\s+(\d+) iterations")


def benchmark_app_path() -> str:
    found = Path(sys.executable).parent / "benchmark_app"
    if found.is_file():
        return str(found)
    which = shutil.which("benchmark_app")
    if not which:
        raise RuntimeUnavailable("benchmark_app not found (it ships with the openvino package)")
    return which


def run_benchmark_app(xml: Path, shape: list[int], seconds: float) -> dict:
    """``benchmark_app -hint latency`` on ``xml`` at a static ``shape``; its latency figures in ms."""
    cmd = [benchmark_app_path(), "-m", str(xml), "-d", "CPU", "-hint", "latency", "-infer_precision", "f32",
           "-shape", "[" + ",".join(str(d) for d in shape) + "]", "-t", str(int(max(seconds, 1)))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    figures: dict = {"command": cmd}
    for name, pattern in _FIELDS.items():
        match = pattern.search(proc.stdout)
        figures[name.lower()] = float(match.group(1)) if match else None
    count = _COUNT.search(proc.stdout)
    figures["iterations"] = int(count.group(1)) if count else None
    if figures["median"] is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeUnavailable(f"benchmark_app failed: {tail[0][:300]}")
    return figures
