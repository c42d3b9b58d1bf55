"""The report's figures (matplotlib), each a function of the rows/records that returns a Figure or None.

Text stays text in the SVG (``svg.fonttype: none``): the page stays small (the whole zoo is well
under 1 MB) and the labels stay readable and searchable in the browser.
"""

from __future__ import annotations

from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from edgebench.backends import RUNTIMES, runtime_class
from edgebench.portable.layer_profile import OP_CLASS_NAMES as CLASSES
from edgebench.portable.layer_profile import UNMAPPED
from edgebench.results.zoo_table import FAMILY_ORDER

from .op_classes import class_shares
from .rows import samples

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "edgebench", "font.size": 9, "axes.titlesize": 10,
                     "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 100})
RUNTIME_MARKERS = {name: runtime_class(name).marker for name in RUNTIMES}  # each backend's own (backends/*/runtime.py)
RUNTIME_COLORS = {name: runtime_class(name).colour for name in RUNTIMES}
PRECISION_SHADE = {"fp32": 1.0, "fp16": 0.75, "int8": 0.55}


def _model_colors(models: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(models) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(models)}


def _log_x(ax) -> None:
    """A log latency axis labelled in plain milliseconds (1, 2, 5, 10, 20, 50 ...)."""
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _family_key(row: dict) -> tuple:
    fam = row.get("family")
    return (FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else 99, row.get("gmacs") or 0, row["model"])


def _ordered_models(rows: list[dict]) -> list[str]:
    seen: dict[str, dict] = {}
    for r in sorted(rows, key=_family_key):
        seen.setdefault(r["model"], r)
    return list(seen)


def _frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto frontier (lower latency, higher score) as a staircase."""
    best, line = float("-inf"), []
    for x, y in sorted(points):
        if y > best:
            best = y
            line.append((x, y))
    return line


def pareto(rows: list[dict]) -> Figure | None:
    """Top-1 (trained weights) and INT8-vs-FP32 agreement (random weights) against p50 latency."""
    ok = [r for r in rows if r["status"] == "ok" and r["p50_ms"]]
    trained = [r for r in ok if r["weights"] not in (None, "random") and r["top1"] is not None]
    random_ = [r for r in ok if r["weights"] == "random" and r["precision"] == "int8" and r["agreement"] is not None]
    if not trained and not random_:
        return None
    models = _ordered_models(trained + random_)
    colors = _model_colors(models)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.0), layout="constrained")
    panels = ((axes[0], trained, "top1", "top-1 accuracy (%) on the evaluation photos", "trained weights: top-1"),
              (axes[1], random_, "agreement", "INT8 top-1 agreement with FP32 (not an accuracy)",
               "random weights: INT8 vs FP32 agreement"))
    for ax, data, key, ylabel, title in panels:
        ax.set_title(title)
        ax.set_xlabel("p50 latency (ms, log scale), batch 1")
        ax.set_ylabel(ylabel)
        if not data:
            ax.text(0.5, 0.5, "no such records", ha="center", va="center", transform=ax.transAxes)
            continue
        for r in data:
            filled = r["precision"] != "fp32"
            ax.scatter(r["p50_ms"], r[key], s=46, marker=RUNTIME_MARKERS.get(r["runtime"], "o"),
                       facecolors=colors[r["model"]] if filled else "white", edgecolors=colors[r["model"]],
                       linewidths=1.5, zorder=3)
        line = _frontier([(r["p50_ms"], r[key]) for r in data])
        ax.step([p[0] for p in line], [p[1] for p in line], where="post", color="black", lw=1, ls="--", zorder=2)
        _log_x(ax)
    handles = [Line2D([], [], ls="", marker="o", color=colors[m], label=m) for m in models]
    handles += [Line2D([], [], ls="", marker=RUNTIME_MARKERS.get(rt, "o"), mfc="grey", mec="grey", label=rt)
                for rt in sorted({r["runtime"] for r in trained + random_})]
    handles += [Line2D([], [], ls="", marker="o", mfc="white", mec="black", label="fp32 (hollow)"),
                Line2D([], [], ls="", marker="o", mfc="black", mec="black", label="int8 (filled)"),
                Line2D([], [], ls="--", color="black", label="Pareto frontier")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=8, frameon=False)
    return fig


def _grouped_axis(ax, models: list[str], family_of: dict[str, str]) -> None:
    ax.set_xticks(range(len(models)), models, rotation=35, ha="right")
    start = 0
    for i in range(1, len(models) + 1):
        if i == len(models) or family_of[models[i]] != family_of[models[start]]:
            ax.text((start + i - 1) / 2, 1.01, family_of[models[start]], ha="center", va="bottom",
                    transform=ax.get_xaxis_transform(), fontsize=8, style="italic")
            if i < len(models):
                ax.axvline(i - 0.5, color="grey", lw=0.8)
            start = i


def speedup(rows: list[dict]) -> Figure | None:
    """INT8 speed-up over FP32 per model, grouped by family, one bar per runtime, CI where paired."""
    data = [r for r in rows if r["precision"] == "int8" and r["int8_speedup"]]
    if not data:
        return None
    models = _ordered_models(data)
    family_of = {r["model"]: r["family"] for r in data}
    runtimes = sorted({r["runtime"] for r in data})
    width = 0.8 / len(runtimes)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(models) + 2), 4.2), layout="constrained")
    for j, rt in enumerate(runtimes):
        for i, m in enumerate(models):
            r = next((x for x in data if x["model"] == m and x["runtime"] == rt), None)
            if r is None:
                continue
            x = i + (j - (len(runtimes) - 1) / 2) * width
            err = None
            if r["int8_speedup_ci95_lo"] is not None:
                err = [[r["int8_speedup"] - r["int8_speedup_ci95_lo"]], [r["int8_speedup_ci95_hi"] - r["int8_speedup"]]]
            ax.bar(x, r["int8_speedup"], width, color=RUNTIME_COLORS.get(rt, "grey"), yerr=err, capsize=3,
                   label=rt if i == 0 or not ax.get_legend_handles_labels()[1].count(rt) else None)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_ylabel("INT8 speed-up over FP32 (p50 ratio, x)")
    _grouped_axis(ax, models, family_of)
    handles = [plt.Rectangle((0, 0), 1, 1, color=RUNTIME_COLORS.get(rt, "grey")) for rt in runtimes]
    ax.legend(handles, runtimes, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def op_classes(records: list[dict]) -> Figure | None:
    """Share of profiled time by operator class: FP32 and INT8 side by side, a panel per runtime."""
    by_rt: dict[str, dict[tuple, dict]] = defaultdict(dict)
    order = {}
    for r in records:
        rows = ((r.get("runtime") or {}).get("settings") or {}).get("layer_profile")
        if r.get("kind") != "latency" or r.get("status") != "ok" or not rows:
            continue
        key = (r["model"]["name"], r["precision"])
        old = by_rt[r["runtime"]["name"]].get(key)
        if old is None or r["timestamp"] >= old["timestamp"]:
            by_rt[r["runtime"]["name"]][key] = {"timestamp": r["timestamp"],
                                                "shares": class_shares(r["runtime"]["name"], rows)}
            order[r["model"]["name"]] = _family_key({"family": r["model"].get("family"),
                                                     "gmacs": r["model"].get("gmacs"), "model": r["model"]["name"]})
    if not by_rt:
        return None
    runtimes = sorted(by_rt)
    n = max(len(v) for v in by_rt.values())
    fig, axes = plt.subplots(1, len(runtimes), figsize=(5.2 * len(runtimes) + 2.2, 0.26 * n + 1.6),
                             layout="constrained", squeeze=False)
    cmap = plt.get_cmap("tab20")
    colors = {c: cmap(i * 2 % 20 + (i * 2 // 20)) for i, c in enumerate(CLASSES)}
    colors["other"] = (0.8, 0.8, 0.8, 1.0)
    colors[UNMAPPED] = cmap(5)  # light green: linear's green, undecided
    for ax, rt in zip(axes[0], runtimes):
        keys = sorted(by_rt[rt], key=lambda k: (order[k[0]], k[1] != "fp32"))
        for y, k in enumerate(keys):
            left = 0.0
            for c in CLASSES:
                share = by_rt[rt][k]["shares"].get(c, 0.0)
                if share:
                    ax.barh(y, share * 100, left=left, color=colors[c], edgecolor="white", lw=0.3)
                    left += share * 100
        ax.set_yticks(range(len(keys)), [f"{m} {p}" for m, p in keys], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of profiled time (%)")
        ax.set_title(f"{rt}: time by operator class")
        ax.grid(axis="y", visible=False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in CLASSES]
    fig.legend(handles, CLASSES, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def _runtime_bars(ax, data: list[dict], models: list[str], value) -> None:
    """One bar per (runtime, precision) beside each other at every model; ``value(row)`` (None: no bar)."""
    series = sorted({(r["runtime"], r["precision"]) for r in data})
    width = 0.8 / len(series)
    for j, (rt, p) in enumerate(series):
        xs, ys = [], []
        for i, m in enumerate(models):
            r = next((x for x in data if x["model"] == m and x["runtime"] == rt and x["precision"] == p), None)
            y = value(r) if r else None
            if y is not None:
                xs.append(i + (j - (len(series) - 1) / 2) * width)
                ys.append(y)
        ax.bar(xs, ys, width, color=RUNTIME_COLORS.get(rt, "grey"), alpha=PRECISION_SHADE.get(p, 1.0),
               hatch="//" if p == "int8" else None, edgecolor="white", label=f"{rt} {p}")


def attained(rows: list[dict], peaks: dict[tuple, dict]) -> Figure | None:
    """GMACs / p50 as a fraction of the GEMM peak measured on the same CPU, threads and precision."""
    data = []
    for r in rows:
        peak = peaks.get((r.get("cpu"), r["threads"], r["precision"]))
        if r["status"] == "ok" and r["gmacs"] and r["p50_ms"] and peak and r["batch"] == 1:
            data.append({**r, "fraction": r["gmacs"] / (r["p50_ms"] / 1e3) / peak["gmacs_per_s"]})
    if not data:
        return None
    models = _ordered_models(data)
    family_of = {r["model"]: r["family"] for r in data}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(models) + 2.5), 4.2), layout="constrained")
    _runtime_bars(ax, data, models, lambda r: r["fraction"] * 100)
    ax.set_ylabel("attained GMAC/s as % of this CPU's GEMM peak\n(FP32 vs the FP32 peak, INT8 vs the INT8 peak)")
    _grouped_axis(ax, models, family_of)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def memory(rows: list[dict]) -> Figure | None:
    """The engine's own memory (load + run, past the runtime's import) and engine size per model, by runtime and
    precision. Records made before the engine's memory was measured have no left bar: their figure is the whole
    process's peak, which counts the runtime's Python import (ExecuTorch's: torch) and is not comparable."""
    data = [r for r in rows if r["status"] == "ok" and r["batch"] == 1 and (r["engine_memory_mb"] or r["engine_mb"])]
    if not data:
        return None
    models = _ordered_models(data)
    family_of = {r["model"]: r["family"] for r in data}
    fig, axes = plt.subplots(1, 2, figsize=(max(10.0, 1.1 * len(models) + 3), 4.2), layout="constrained")
    for ax, key, label in ((axes[0], "engine_memory_mb", "the engine's own memory: load + run (MB)"),
                           (axes[1], "engine_mb", "engine files on disk (MB)")):
        _runtime_bars(ax, data, models, lambda r, key=key: r[key] or None)
        ax.set_ylabel(label)
        _grouped_axis(ax, models, family_of)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def latency_distribution(records: list[dict]) -> Figure | None:
    """Per (model, runtime, precision): a box plot of the stored samples; without samples, the
    stored min-p50-p90-p99-max (labelled so)."""
    latest: dict[tuple, dict] = {}
    for r in records:
        if r.get("kind") == "latency" and r.get("status") == "ok" and r.get("batch") == 1:
            k = (r["model"]["name"], r["runtime"]["name"], r["precision"])
            if k not in latest or r["timestamp"] >= latest[k]["timestamp"]:
                latest[k] = r
    if not latest:
        return None
    order = {k: _family_key({"family": r["model"].get("family"), "gmacs": r["model"].get("gmacs"), "model": k[0]})
             for k, r in latest.items()}
    keys = sorted(latest, key=lambda k: (order[k], k[1], k[2] != "fp32"))
    fig, ax = plt.subplots(figsize=(9.5, 0.24 * len(keys) + 1.6), layout="constrained")
    any_samples = any_percentiles = False
    for y, k in enumerate(keys):
        r, color = latest[k], RUNTIME_COLORS.get(k[1], "grey")
        found = samples(r)
        if found:
            any_samples = True
            box = ax.boxplot([found], positions=[y], vert=False, widths=0.6, whis=(1, 99), showfliers=False,
                             patch_artist=True, manage_ticks=False)
            for patch in box["boxes"]:
                patch.set(facecolor=color, alpha=PRECISION_SHADE.get(k[2], 1.0))
        else:
            any_percentiles = True
            lat = r["latency_ms"]
            ax.plot([lat.get("min", lat["p50"]), lat.get("max", lat["p99"])], [y, y], color=color, lw=1)
            ax.plot([lat["p50"], lat["p90"]], [y, y], color=color, lw=5, alpha=PRECISION_SHADE.get(k[2], 1.0),
                    solid_capstyle="butt")
            ax.plot([lat["p99"]], [y], marker="|", ms=9, color=color)
    ax.set_yticks(range(len(keys)), [" ".join(k) for k in keys], fontsize=8)
    ax.invert_yaxis()
    _log_x(ax)
    ax.set_xlabel("latency per inference (ms, log scale), batch 1")
    notes = []
    if any_samples:
        notes.append("box: quartiles of the stored samples, whiskers p1-p99")
    if any_percentiles:
        notes.append("no samples stored: thin line min-max, thick bar p50-p90, tick p99")
    ax.set_title("; ".join(notes), fontsize=8)
    handles = [Line2D([], [], color=RUNTIME_COLORS.get(rt, "grey"), lw=5, label=rt)
               for rt in sorted({k[1] for k in keys})]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig
