"""Evidence for the INT8 recipe table (issue 12; `make bench-int8-recipes`): every CPU recipe of ORT and NNCF.

Per model: one export, one seeded calibration split (the CLI's: --num 300, seed 0), one set of ORT calibration
ranges shared by the four ORT recipes (so only the types differ), the three NNCF ``overflow_fix`` values; top-1
drop ± paired SE and agreement against the same runtime's FP32 engine on every evaluation photo, and the
speed-up over FP32 measured in interleaved ABBA rounds (FP32 and INT8 in one process per round, the gate's
statistic, 95% CI). Runs under ``flock $LOCK``; prints one line per engine and writes $OUT/int8-recipes.jsonl.
Usage: python tools/bench_int8_recipes.py [MODEL ...]   (default: the five shared real-weight models)
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgebench.backends import RuntimeOptions, runtime_class
from edgebench.bench.accuracy import compare
from edgebench.bench.paired import PairedSettings, engine_spec, group_ratios, run_round
from edgebench.bench.stats import paired_ratio
from edgebench.data import open_dataset
from edgebench.data.loader import load_samples
from edgebench.data.split import split_dataset
from edgebench.portable.cpu_int8 import detect
from edgebench.quantize import nncf_quant, ort_quant, recipes
from edgebench.quantize.int8 import preprocess_of, transformer_like
from edgebench.workflow import BuildRequest, ModelSource, prepare

MODELS = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "squeezenet1_1", "mobilenet_v2")
DATA = Path(os.environ.get("EDGEBENCH_DATA", "../shared/data/imagenet-sample"))
OUT = Path(os.environ.get("OUT", "results/bench-int8-recipes")).resolve()
LOCK = os.environ.get("LOCK", "/tmp/edgebench-bench.lock")
NUM, SEED, THREADS, ROUNDS = 300, 0, 2, int(os.environ.get("ROUNDS", "3"))


def int8_models(artifacts, cal: np.ndarray, work: Path) -> dict[str, tuple[str, Path]]:
    """engine label -> (runtime, INT8 model) for every recipe of both runtimes."""
    prepared = ort_quant.pre_process(artifacts.path("fp32/model.onnx"), work / "prepared.onnx")
    fragile = list(ort_quant.fragile_nodes(prepared))
    ranges = work / "ranges.json"
    ranges.unlink(missing_ok=True)
    made = {}
    for name, recipe in recipes.ORT_RECIPES.items():
        out = work / f"ort-{name}.onnx"
        ort_quant.quantize(prepared, out, cal if not ranges.is_file() else None, "minmax", "cpu", ranges, fragile,
                           recipe)
        made[f"ort/{name}"] = ("ort", out)
    fp32_xml = artifacts.engine_path("openvino", "fp32")
    for fix in recipes.OVERFLOW_FIXES:
        out = work / f"openvino-{fix}" / "model.xml"
        nncf_quant.quantize_ir(fp32_xml, out, cal, transformer_like(artifacts.manifest), overflow_fix=fix)
        made[f"openvino/{fix}"] = ("openvino", out)
    return made


def logits(runtime: str, path: Path, precision: str, x: np.ndarray) -> np.ndarray:
    with runtime_class(runtime)(path, RuntimeOptions(precision=precision, threads=THREADS)) as r:
        return np.concatenate([r.infer(x[i:i + 1]) for i in range(len(x))])


def bench(model: str) -> None:
    work = OUT / model
    artifacts = prepare(ModelSource(model), ("ort", "openvino"), "fp32", BuildRequest(OUT / "artifacts", DATA))
    split = split_dataset(open_dataset(DATA), NUM, SEED)
    pre = preprocess_of(artifacts.manifest)
    cal = load_samples(split.calibration, pre).inputs
    ev = load_samples(split.evaluation, pre)
    labels = np.asarray(ev.labels)
    t0 = time.perf_counter()
    made = int8_models(artifacts, cal, work)
    built_s = time.perf_counter() - t0
    auto = {rt: recipes.select(rt, detect(), "auto").name for rt in ("ort", "openvino")}
    ref = {rt: logits(rt, artifacts.engine_path(rt, "fp32"), "fp32", ev.inputs) for rt in ("ort", "openvino")}
    settings = PairedSettings()
    for label, (rt, path) in made.items():
        acc = compare(ref[rt], logits(rt, path, "int8", ev.inputs), labels)
        specs = [engine_spec(artifacts, rt, "fp32", 1, THREADS), engine_spec(artifacts, rt, "int8", 1, THREADS,
                                                                              engine=path)]
        rounds = [run_round(specs, i, settings) for i in range(ROUNDS)]
        r = paired_ratio(group_ratios(rounds))
        row = {"model": model, "runtime": rt, "recipe": label.split("/")[1], "auto": label.split("/")[1] == auto[rt],
               "n": acc["n"], "drop_pt": round(acc["drop_top1_points"], 2), "se_pt": round(acc["drop_top1_se_points"], 2),
               "agreement": round(acc["top1_agreement"], 3),
               "int8_p50_ms": round(float(np.median([x["engines"][1]["latency_ms"]["p50"] for x in rounds])), 3),
               "fp32_p50_ms": round(float(np.median([x["engines"][0]["latency_ms"]["p50"] for x in rounds])), 3),
               "speedup": round(1 / r["ratio"], 3), "speedup_ci95": [round(1 / r["ci"][1], 3), round(1 / r["ci"][0], 3)],
               "contended_rounds": sum(bool(x["load"].get("contended")) for x in rounds),
               "cpu_int8": detect().name, "build_seconds_all_recipes": round(built_s, 1),
               "loadavg": Path("/proc/loadavg").read_text().split()[:3]}
        with open(OUT / "int8-recipes.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{model:22s} {rt:8s} {row['recipe']:11s}{'*' if row['auto'] else ' '} drop {row['drop_pt']:+.2f} ± "
              f"{row['se_pt']:.2f} pt  agree {row['agreement']:.3f}  int8 p50 {row['int8_p50_ms']:.2f} ms  "
              f"x{row['speedup']:.2f} [{row['speedup_ci95'][0]:.2f}, {row['speedup_ci95'][1]:.2f}]", flush=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cpu = Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(": \t")
    print(f"cpu: {cpu}, INT8 class {detect().name}; {NUM} calibration photos, the rest evaluate; * = auto",
          flush=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one benchmark at a time on this machine
        for model in sys.argv[1:] or MODELS:
            bench(model)


if __name__ == "__main__":
    main()
