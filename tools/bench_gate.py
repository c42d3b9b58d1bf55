"""Evidence for `edgebench gate` (make bench-gate): false alarms, power, cost, the in-loop detector.

Every measuring command runs under ``flock $LOCK`` (other benchmarks on this machine wait), and
/proc/loadavg is recorded beside each. Results: one JSON line per gate in $OUT/bench-gate.jsonl,
a summary at the end. Counts via env: AA (20), POWER (10), SKIP (comma list of parts to skip:
detector, cost, aa, power, power-slower, power-faster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

PY = sys.executable
LOCK = os.environ.get("LOCK", "/tmp/edgebench-bench.lock")
OUT = Path(os.environ.get("OUT", "results/bench-gate")).resolve()
AA, POWER = int(os.environ.get("AA", 20)), int(os.environ.get("POWER", 10))
SKIP = set(filter(None, os.environ.get("SKIP", "").split(",")))
ART = OUT / "artifacts"
LOG = OUT / "bench-gate.jsonl"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def edgebench(*args: str, lock: bool = True, timeout: float = 1200) -> tuple[int, str, str, float]:
    cmd = (["flock", LOCK] if lock else []) + [PY, "-m", "edgebench.cli", *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=OUT)
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def log(entry: dict) -> None:
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")
    print(json.dumps({k: v for k, v in entry.items() if k != "record"}), flush=True)


def gate(part: str, *args: str) -> dict:
    before = loadavg()
    t0 = time.monotonic()
    rc, out, err, _ = edgebench("gate", *args, "--json", "--results", str(OUT / "gate-results.jsonl"))
    wall = time.monotonic() - t0  # includes waiting for the lock
    try:
        record = json.loads(out)
    except json.JSONDecodeError:
        entry = {"part": part, "rc": rc, "error": err.strip().splitlines()[-1:] or [""], "loadavg": before}
        log(entry)
        return entry
    p50 = record["metrics"][0]
    entry = {"part": part, "rc": rc, "verdict": record["verdict"]["overall"], "p50_ratio": p50.get("ratio"),
             "p50_ci": p50.get("ci"), "rounds": record["rounds_used"], "gate_seconds": record["seconds"],
             "wall_seconds_with_lock_wait": round(wall, 1), "loadavg_before": before, "loadavg_after": loadavg(),
             "contended_rounds": sum(1 for n in record.get("noise") or [] if n.get("contended"))}
    log(entry)
    return entry


def onnx_at(size: int) -> Path:
    """torchvision mobilenet_v3_large, seeded random weights, exported at ``size``x``size`` (same graph)."""
    path = OUT / f"mbv3_{size}.onnx"
    if path.is_file():
        return path
    code = f"""
import torch, torchvision
torch.manual_seed(0)
m = torchvision.models.mobilenet_v3_large().eval()
torch.onnx.export(m, torch.randn(1, 3, {size}, {size}), {str(path)!r}, opset_version=17, dynamo=False,
                  input_names=["input"], output_names=["logits"], dynamic_axes={{"input": {{0: "batch"}}}})
"""
    subprocess.run([PY, "-c", code], check=True, capture_output=True)
    return path


def detector() -> None:
    """`edgebench run` with a competing 2-thread load started halfway through the 10 s timed loop."""
    load_code = ("import numpy as np, time\nfrom threadpoolctl import threadpool_limits\n"
                 "a = np.random.rand(512, 512)\nt = time.time()\nwith threadpool_limits(2):\n"
                 "    while time.time() - t < 14: a @ a\n")
    results = OUT / "detector.jsonl"
    holder = subprocess.Popen(["flock", LOCK, "sleep", "60"])  # hold the lock for the run and its load
    time.sleep(0.5)
    before = loadavg()
    run = subprocess.Popen([PY, "-m", "edgebench.cli", "run", "--runtime", "openvino", "--model", "mobilenet_v3",
                            "--weights", "random", "--out", str(ART), "--min-seconds", "10", "--retries", "0",
                            "--results", str(results), "--json"], cwd=OUT, stdout=subprocess.PIPE, text=True)
    # probe ~1 s + worker start/import/load ~2-3 s + warm-up 1 s: the loop runs from ~5 s to ~15 s
    timer = threading.Timer(10.0, lambda: subprocess.Popen([PY, "-c", load_code]))
    timer.start()
    out, _ = run.communicate(timeout=300)
    timer.join()
    holder.terminate()
    record = json.loads(out)[0]
    attempt = record["stability"]["attempts"][-1]
    log({"part": "detector", "loadavg_before": before, "verdict": record["stability"]["verdict"],
         "seen": record["stability"].get("seen"), "p50": record["latency_ms"]["p50"],
         "p50_ci95": record["latency_ms"]["p50_ci95"], "phases": attempt.get("phases"), "load": attempt.get("load")})


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {open('/proc/cpuinfo').read().split('model name')[1].split(chr(10))[0].strip(': ')}; "
          f"loadavg {loadavg()}; results in {LOG}", flush=True)
    rc, _, err, secs = edgebench("export", "mobilenet_v3", "--runtime", "openvino", "--weights", "random",
                                 "--out", str(ART))
    assert rc == 0, err
    base = ART / "mobilenet_v3_large"
    copy = OUT / "aa-copy"
    if not copy.is_dir():
        shutil.copytree(base, copy)
    if "detector" not in SKIP:
        detector()
    if "cost" not in SKIP:
        for precision in ("fp32", "int8"):
            extra = ["--data", os.environ["EDGEBENCH_DATA"]] if precision == "int8" else []
            edgebench("export", "mobilenet_v3", "--runtime", "openvino", "--precision", precision, "--weights",
                      "random", "--out", str(ART), *extra)  # cache the artifacts, as CI does
            entry = gate(f"cost-{precision}", "--baseline", "mobilenet_v3", "--candidate", "mobilenet_v3",
                         "--weights", "random", "--runtime", "openvino", "--precision", precision, "--out", str(ART),
                         *extra)
            print(f"cost {precision}: {entry.get('gate_seconds')} s", flush=True)
    if "aa" not in SKIP:
        for _ in range(AA):
            gate("aa", "--baseline", str(base), "--candidate", str(copy), "--runtime", "openvino")
    if "power" not in SKIP:
        # 212 px measured only 0.98x of 224 px: with five stride-2 stages, 212 and 224 both end in 14x14 and
        # 7x7 maps, so only the first stages shrink; 200 px shrinks every stage but the last (7x7).
        small, mid, large = onnx_at(200), onnx_at(224), onnx_at(236)
        common = ["--runtime", "openvino", "--allow-different-inputs", "--out", str(ART)]
        for name, cand in (("slower", large), ("faster", small)):
            if f"power-{name}" in SKIP:
                continue
            gate(f"true-ratio-{name}", "--baseline", str(mid), "--candidate", str(cand), *common,
                 "--rounds", "12", "--max-rounds", "12", "--round-seconds", "6")
            for _ in range(POWER):
                gate(f"power-{name}", "--baseline", str(mid), "--candidate", str(cand), *common)
    summarize()


def summarize() -> None:
    from collections import Counter
    rows = [json.loads(line) for line in LOG.read_text().splitlines()]
    for part in dict.fromkeys(r["part"] for r in rows):
        got = [r for r in rows if r["part"] == part]
        verdicts = Counter(r.get("verdict", "error") for r in got)
        secs = [r["gate_seconds"] for r in got if "gate_seconds" in r]
        print(f"{part}: n={len(got)} {dict(verdicts)}"
              + (f"; gate seconds median {sorted(secs)[len(secs) // 2]:.0f} (max {max(secs):.0f})" if secs else "")
              + (f"; rounds {[r['rounds'] for r in got if 'rounds' in r]}" if secs else ""), flush=True)


if __name__ == "__main__":
    summarize() if sys.argv[1:] == ["summary"] else main()
