"""``[[budget]]`` tables of ``edgebench.toml``: absolute limits on the candidate, each a gated metric."""

from __future__ import annotations

import contextlib
import fnmatch
import sys
from collections.abc import Callable
from pathlib import Path

from edgebench.backends import RUNTIMES, Status, canonical
from edgebench.bench.accuracy import evaluate_model, headline
from edgebench.bench.paired import speedup
from edgebench.bench.stats import budget_verdict
from edgebench.models import get_spec
from edgebench.portable.errors import UsageError, finite
from edgebench.workflow.gate.modes import engine_mb, metric
from edgebench.workflow.gate.sources import GateOptions, Source

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

BUDGET_MATCH = ("model", "runtime", "precision", "batch")
BUDGET_LIMITS = {"p50_ms": "latency p50 (ms)", "p99_ms": "latency p99 (ms)", "peak_rss_mb": "peak RSS (MB)",
                 "engine_mb": "engine size (MB)", "int8_drop_points": "INT8 top-1 drop (points)",
                 "min_int8_speedup": "INT8 speed-up vs FP32"}


def load_budgets(path: Path, known_models: Callable[[str], bool]) -> list[dict]:
    """``[[budget]]`` tables of ``edgebench.toml``; an unknown key, model or value is a UsageError naming it."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"budget file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise UsageError(f"cannot read budget file {path} ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"budget file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"budget"}
    if unknown:
        raise UsageError(f"budget file {path}: unknown table {min(unknown)!r} (write [[budget]] tables)")
    budgets = data.get("budget", [])
    if not isinstance(budgets, list) or not budgets:
        raise UsageError(f"budget file {path} has no [[budget]] table")
    for i, b in enumerate(budgets, 1):
        where = f"budget file {path}, [[budget]] #{i}"
        for key in b:
            if key not in BUDGET_MATCH and key not in BUDGET_LIMITS:
                raise UsageError(f"{where}: unknown key {key!r} (limits: {', '.join(BUDGET_LIMITS)}; "
                                 f"match keys: {', '.join(BUDGET_MATCH)})")
        if "model" not in b:
            raise UsageError(f"{where}: 'model' is required")
        if not is_pattern(str(b["model"])) and not known_models(str(b["model"])):
            raise UsageError(f"{where}: unknown model {b['model']!r}")
        if "runtime" in b:
            if str(b["runtime"]).lower() not in {*RUNTIMES, "onnxruntime", "ov", "tensorrt", "pytorch"}:
                raise UsageError(f"{where}: unknown runtime {b['runtime']!r}")
            b["runtime"] = canonical(str(b["runtime"]))
        if "precision" in b and b["precision"] not in ("fp32", "fp16", "int8"):
            raise UsageError(f"{where}: unknown precision {b['precision']!r}")
        if "batch" in b and (not isinstance(b["batch"], int) or b["batch"] < 1):
            raise UsageError(f"{where}: batch must be a positive integer, got {b['batch']!r}")
        limits = [k for k in b if k in BUDGET_LIMITS]
        if not limits:
            raise UsageError(f"{where}: no limit ({', '.join(BUDGET_LIMITS)})")
        for k in limits:
            if finite(b[k], f"{where}: {k}") < 0:
                raise UsageError(f"{where}: {k} must be a non-negative number, got {b[k]!r}")
    return budgets


def is_pattern(name: str) -> bool:
    """A budget's ``model`` with ``*``, ``?`` or ``[...]``: a shell-style pattern of model names."""
    return any(c in name for c in "*?[")


def budgets_for(budgets: list[dict], model: str, opts: GateOptions) -> dict:
    """The limits that apply to ``model`` under ``opts``; later tables override earlier ones. A ``model``
    pattern (``"*"``: any candidate, whatever its file is named) matches by :func:`fnmatch.fnmatchcase`."""
    found: dict = {}
    for b in budgets:
        name = str(b["model"])
        if is_pattern(name):
            matched = fnmatch.fnmatchcase(model, name)
        else:
            with contextlib.suppress(UsageError):  # an imported model's own name stays as written
                name = get_spec(name).name
            matched = name == model
        if not matched or b.get("runtime", opts.runtime) != opts.runtime \
                or b.get("precision", opts.precision) != opts.precision or b.get("batch", opts.batch) != opts.batch:
            continue
        found.update({k: v for k, v in b.items() if k in BUDGET_LIMITS})
    return found


def budget_metrics(cand: Source, opts: GateOptions, limits: dict, measured: dict, data: Path | None,
                   status: Status = lambda _m: None) -> list[dict]:
    """One metric per budget limit on the candidate, from ``measured`` (the mode's candidate figures)."""
    out = []
    lat = measured["candidate_latency"]
    for key, limit in limits.items():
        label = BUDGET_LIMITS[key]
        if key == "p50_ms":
            v, value, ci = budget_verdict(lat["p50"], lat["p50_ci95"], limit), lat["p50"], lat["p50_ci95"]
        elif key == "p99_ms":
            v, value, ci = budget_verdict(lat["p99"], lat["p99_ci95"], limit), lat["p99"], lat["p99_ci95"]
        elif key == "peak_rss_mb":
            value, ci = measured["candidate_peak_rss_mb"], None
            v = budget_verdict(value, None, limit)
        elif key == "engine_mb":
            value, ci = engine_mb(cand, opts), None
            v = budget_verdict(value, None, limit)
        elif key == "min_int8_speedup":
            if opts.precision != "int8":
                raise UsageError("budget min_int8_speedup applies to --precision int8 only")
            status("paired FP32 vs INT8 rounds of the candidate (min_int8_speedup)")
            found = speedup(cand.artifacts, opts.runtime, opts.batch, opts.threads, max(3, min(opts.rounds, 5)),
                            opts.paired)
            value, ci = found["speedup"], found["ci95"]
            v = budget_verdict(value, ci, limit, higher_is_better=True)
        else:  # int8_drop_points
            value, ci, v = _int8_drop(cand, opts, limit, data, status)
        out.append(metric(label, "budget", v, candidate=None if value is None else round(value, 4),
                           limit=limit, ci=None if ci is None else [round(x, 4) for x in ci], budget_key=key))
    return out


def _int8_drop(cand: Source, opts: GateOptions, limit: float, data: Path | None, status: Status):
    if opts.precision != "int8":
        raise UsageError("budget int8_drop_points applies to --precision int8 only")
    if data is None:
        raise UsageError("budget int8_drop_points needs labelled images: pass --data DIR (or set EDGEBENCH_DATA)")
    if (cand.artifacts.manifest.get("weights") or {}).get("trained") is False:
        raise UsageError("budget int8_drop_points: the candidate has random weights, its top-1 drop means nothing")
    status(f"INT8 vs FP32 accuracy on {opts.accuracy_images} evaluation images")
    summary = evaluate_model(cand.artifacts, opts.runtime, "int8", data, opts.threads, limit=opts.accuracy_images)
    h = headline(summary, opts.runtime, "int8")
    if h["drop_points"] is None:
        raise UsageError(f"budget int8_drop_points: no top-1 drop measured ({summary.get('top1_reason')})")
    half = 1.96 * h["drop_se_points"]
    ci = (h["drop_points"] - half, h["drop_points"] + half)
    return h["drop_points"], ci, budget_verdict(h["drop_points"], ci, limit)
