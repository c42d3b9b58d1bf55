"""Two engines in one measurement process, alternated in ABBA blocks: ``python -m edgebench.bench.paired``.

Measured on this machine kind (mobilenet_v3_large, ORT FP32, 2 threads): 8 separate processes
gave p50s from 3.86 to 7.24 ms, while two sessions of one ONNX alternated in blocks of 25
iterations in one process gave a per-block B/A ratio with median 1.000 and a bootstrap 95% CI
of [0.970, 1.025] after 40 blocks (~10 s). A slow phase or a competing process hits both
engines of a group alike, so the ratio survives it. The A/B gate and the INT8/FP32 speed-up
of ``run --accuracy`` / ``sweep`` are measured this way.

The job (JSON on stdin): ``engines`` (two of {runtime, engine, options, input_shape}),
``b_first`` (load and warm up B first: rounds alternate it), ``block_iterations``,
``min_groups``, ``min_seconds``, ``max_seconds``, ``warmup_iterations``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass

from edgebench.bench.worker import serve

ORDER = (0, 1, 1, 0)  # A B B A


def _import(spec: dict):
    """The runtime class of ``spec``, imported and touched (its availability)."""
    from edgebench.backends import runtime_class
    cls = runtime_class(spec["runtime"])
    available = cls.availability()
    if not available.usable:
        raise RuntimeError(f"runtime {cls.name} is not usable: {available.reason}")
    return cls, available.version


def _open(spec: dict, cls, version: str):
    import numpy as np

    from edgebench.backends import RuntimeOptions
    options = RuntimeOptions.from_dict(spec["options"], cls.run_options_class)
    inputs = np.random.default_rng(0).standard_normal((options.batches[0], *spec["input_shape"]), dtype=np.float32)
    t0 = time.perf_counter()
    runtime = cls(spec["engine"], options)
    runtime.activate()
    return runtime, inputs, time.perf_counter() - t0, version


def measure(job: dict) -> dict:
    """Both runtimes imported first, then one engine after the other loaded and warmed up, the high-water
    mark reset before each step (:class:`~edgebench.portable.memory.EngineMemory`): each engine's ``memory``
    is its own load and its own first inferences (the warm-up), so the first engine's load does not count
    against the second's. The ABBA loop runs both, so its rise (``memory.loop_mb``) is the pair's."""
    import numpy as np

    from edgebench.bench import phases, samples
    from edgebench.portable import memory
    from edgebench.portable.protocol import summarize
    order = (1, 0) if job.get("b_first") else (0, 1)
    imported = {i: _import(job["engines"][i]) for i in order}
    engine_memory = memory.EngineMemory()  # the floor of both imports; resets the high-water mark
    opened: dict[int, tuple] = {}
    rss: dict[int, float] = {}
    load_memory: dict[int, dict] = {}
    for i in order:
        before = memory.current_rss_mb()
        opened[i] = _open(job["engines"][i], *imported[i])
        rss[i] = round(memory.current_rss_mb() - before, 1)
        load_memory[i] = engine_memory.mark(f"load_{i}")
    runtimes = [opened[0][0], opened[1][0]]
    calls = [runtimes[i].bind(opened[i][1]) for i in (0, 1)]
    try:
        run_memory: dict[int, dict] = {}
        for i in order:
            for _ in range(job.get("warmup_iterations", 10)):
                calls[i]()
            run_memory[i] = engine_memory.mark(f"run_{i}")
        block = job.get("block_iterations", 25)
        times: list[list[float]] = [[], []]
        blocks: list[list[float]] = [[], []]
        block_load: list[list[dict]] = [[], []]
        begin = time.perf_counter()
        with phases.LoadMeter() as load:
            while True:
                for i in ORDER:
                    t = np.empty(block)
                    call = calls[i]
                    for k in range(block):
                        t0 = time.perf_counter()
                        call()
                        t[k] = time.perf_counter() - t0
                    block_load[i].append(load.split())  # since the previous block's end: this block
                    times[i].extend(t)
                    blocks[i].append(float(np.median(t) * 1e3))
                elapsed = time.perf_counter() - begin
                if (len(blocks[0]) // 2 >= job.get("min_groups", 8) and elapsed >= job.get("min_seconds", 3.0)) \
                        or elapsed > job.get("max_seconds", 120.0):
                    break
        engine_memory.mark("loop")
        split = engine_memory.result()
        peak = split["process_peak_mb"]
        out = []
        for i in (0, 1):
            ms = np.asarray(times[i]) * 1e3
            mine = {f"{phase}_{k}": (None if v is None else round(v, 1))
                    for phase, rise in (("load", load_memory[i]), ("run", run_memory[i])) for k, v in rise.items()}
            mine["engine_mb"] = round(load_memory[i]["mb"] + run_memory[i]["mb"], 1)
            out.append({"runtime_version": opened[i][3], "settings": runtimes[i].settings(),
                        "effective_precision": runtimes[i].effective_precision(),
                        "latency_ms": summarize(ms, opened[i][1].shape[0]), "block_medians_ms": blocks[i],
                        "block_load": block_summary(block_load[i]),
                        "samples_ms": samples.encode(ms), "phases": phases.slow_phase(ms),
                        "load_seconds": round(opened[i][2], 3), "rss_added_by_load_mb": rss[i], "memory": mine})
        pair = {k: split[k] for k in ("import_mb", "import_anon_mb", "import_file_mb", "loop_mb", "loop_anon_mb",
                                      "loop_file_mb", "process_peak_mb", "method") if k in split}
        if "note" in split:
            pair["note"] = split["note"]
        return {"status": "ok", "engines": out, "load": load.result, "b_first": bool(job.get("b_first")),
                "seconds": round(time.perf_counter() - begin, 3), "block_iterations": block, "peak_rss_mb": peak,
                "memory": pair}
    finally:
        for r in runtimes:
            r.deactivate()


def block_summary(found: list[dict]) -> dict:
    """One engine's ABBA blocks' /proc/stat figures, in block order: ``steal_share`` and ``other_share`` per
    block, and ``contended`` (steal or competing processes above their thresholds in that block)."""
    return {"steal_share": [b.get("steal_share") for b in found], "other_share": [b.get("other_share") for b in found],
            "contended": [bool(b.get("contended")) for b in found],
            "available": all(b.get("available", True) for b in found)}


if __name__ == "__main__":
    sys.exit(serve(measure))


# ---------------------------------------------------------------- the parent side

def engine_spec(artifacts, runtime: str, precision: str, batch: int, threads: int, engine=None,
                device: str | None = None) -> dict:
    """One engine of a paired job: ``engine`` (default: the artifacts' engine for runtime/precision)."""
    from edgebench.backends import RuntimeOptions
    engine = engine or artifacts.engine_path(runtime, precision)
    options = RuntimeOptions(precision=precision, threads=threads, device=device, batches=(batch,))
    return {"runtime": runtime, "engine": str(engine), "options": options.to_dict(),
            "input_shape": artifacts.manifest["input"]["shape"][1:]}


@dataclass(frozen=True)
class PairedSettings:
    """One round: blocks of ``block_iterations``, at least ``min_groups`` ABBA groups and ``min_seconds``."""

    block_iterations: int = 25
    min_groups: int = 8
    min_seconds: float = 3.0
    max_seconds: float = 120.0
    warmup_iterations: int = 10
    timeout_seconds: float = 600.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_protocol(cls, protocol) -> PairedSettings:
        """A round that follows the measurement's protocol: at least ``--min-seconds`` and ``--iterations`` per
        engine (an ABBA group runs two blocks of each), after ``--warmup``. With fixed settings a sweep told to
        measure 10 iterations for 0.2 s still ran 8 groups per round: deit_tiny's three rounds took a minute
        per runtime."""
        per_group = 2 * cls.block_iterations
        return cls(min_groups=max(2, -(-protocol.min_iterations // per_group)), min_seconds=protocol.min_seconds,
                   max_seconds=max(protocol.max_seconds, protocol.min_seconds),
                   warmup_iterations=protocol.warmup_iterations)


def run_round(specs: list[dict], index: int, settings: PairedSettings) -> dict:
    """Round ``index`` (odd rounds load and warm up B first); a failed round raises EdgebenchError."""
    from edgebench.bench.guarded import run_worker
    from edgebench.portable.errors import EdgebenchError
    job = {"engines": specs, "b_first": index % 2 == 1, **settings.to_dict()}
    result = run_worker(job, settings.timeout_seconds, module="edgebench.bench.paired")
    if result.get("status") != "ok":
        raise EdgebenchError(f"paired measurement round {index + 1} failed: {result.get('error')}")
    return result


def group_ratios(rounds: list[dict]) -> list:
    """Per round, the ABBA-group ratios B/A of the block medians."""
    from edgebench.bench.stats import abba_ratios
    return [abba_ratios(r["engines"][0]["block_medians_ms"], r["engines"][1]["block_medians_ms"]) for r in rounds]


def round_noise(r: dict) -> dict:
    """What one paired round saw: slow phases of either engine, competing load, group-ratio spread."""
    import numpy as np
    ratios = group_ratios([r])[0]
    blocks = [(e.get("block_load") or {}).get("contended") or [] for e in r["engines"]]
    return {"slow_phase": [bool(e["phases"].get("slow_phase")) for e in r["engines"]],
            "contended": bool(r["load"].get("contended")), "other_share": r["load"].get("other_share"),
            "steal_share": r["load"].get("steal_share"), "contended_blocks": sum(sum(b) for b in blocks),
            "blocks": sum(len(b) for b in blocks),
            "group_ratio_cv": round(float(np.std(np.log(ratios), ddof=1)), 4) if len(ratios) > 1 else None,
            "b_first": r["b_first"], "seconds": r["seconds"]}


def speedup(artifacts, runtime: str, batch: int, threads: int, rounds: int = 3,
            settings: PairedSettings = PairedSettings(), slow: str = "fp32", fast: str = "int8",
            fast_engine=None) -> dict:
    """The paired, interleaved speed-up p50(slow) / p50(fast) with its 95% CI (ABBA rounds in one job)."""
    from edgebench.bench.stats import paired_ratio
    specs = [engine_spec(artifacts, runtime, slow, batch, threads),
             engine_spec(artifacts, runtime, fast, batch, threads, engine=fast_engine)]
    found = [run_round(specs, i, settings) for i in range(rounds)]
    r = paired_ratio(group_ratios(found))  # fast / slow
    return {"speedup": round(1 / r["ratio"], 4), "ci95": [round(1 / r["ci"][1], 4), round(1 / r["ci"][0], 4)],
            "of": f"{slow}/{fast}", "rounds": rounds, "groups": r["groups"],
            "method": "interleaved ABBA blocks in one process per round; " + r["method"],
            "noise": [round_noise(x) for x in found]}
