"""One self-contained HTML page: styles inline, figures inline as SVG, no fetch of any kind.

Readable without JavaScript; a small inline script only sorts the records table on a header click.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone

from edgebench.portable import host as provenance
from edgebench.portable.layer_profile import DENSE, DW, MOVE, QDQ, SE

from .op_classes import class_shares
from .rows import COLUMNS, Loaded

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 1.2em 3em;color:#1b1b1b;background:#fff}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0}td.l,th.l{text-align:left}
tr.failed td{background:#fde8e8}tr.unstable td{background:#fff6dd}
figure{margin:.6em 0}figure svg{max-width:100%;height:auto}figcaption{color:#444;font-size:13px;max-width:75em}
.kv td{text-align:left;vertical-align:top}.warn{color:#8a4b00}.scroll{overflow-x:auto;max-height:40em}
ul.findings li{margin:.2em 0}
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var t=th.closest('table'),b=t.tBodies[0],rows=Array.from(b.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
rows.sort(function(a,c){var x=a.cells[i].textContent,y=c.cells[i].textContent,nx=parseFloat(x),ny=parseFloat(y);
var r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?r:-r;});rows.forEach(function(r){b.appendChild(r);});});});
"""

FIGURES = (  # (id, heading, caption)
    ("pareto", "Accuracy against latency",
     ("One marker per model, runtime and precision (hollow FP32, filled INT8); the dashed staircase is the "
     "Pareto frontier (nothing is both faster and more accurate). Left: top-1 of trained weights on the "
     "evaluation photos. Right: models with random weights, where only INT8's top-1 agreement with FP32 on the "
     "same photos is meaningful; it is not an accuracy.")),
    ("speedup", "INT8 speed-up by model",
     ("FP32 p50 / INT8 p50 on the same runtime, models grouped by family; above the line at 1x INT8 pays. "
     "Error bars: the paired 95% confidence interval where the records carry one; bars without them are the "
     "ratio of the two medians.")),
    ("op_classes", "Mobile designs against ViT/Swin: where the time goes",
     ("Share of the profiled time (run/sweep --profile, 10 runs outside the timed loop) by operator class, "
     "FP32 and INT8 side by side, per runtime. The profiler names of each runtime are mapped into the classes "
     "by one table (edgebench/report/op_classes.py).")),
    ("attained", "Attained compute against this machine's peak",
     ("Model GMACs / p50 as a percentage of a large GEMM's GMAC/s measured through ONNX Runtime on the same CPU "
     "and thread count (FP32 MatMul for FP32, u8s8 MatMulInteger for INT8; `peak` records). Depthwise-, "
     "memory- and attention-bound designs sit far below the dense CNNs.")),
    ("memory", "Memory",
     ("Left: the engine's own memory, the rise of the measuring process's peak RSS while it loads the engine and "
      "runs it (the high-water mark reset after the runtime's Python import), which is what a device's runtime "
      "adds; the whole process's peak (peak_rss_mb) and the import floor (import_mb, for ExecuTorch torch's) stay "
      "in the records. Right: the engine's files on disk, by precision.")),
    ("latency", "Latency distributions", "Per model, runtime and precision, batch 1."),
)


def svg_of(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<svg ", '<svg role="img" ', text, count=1)


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return _e(value)


def _header(loaded: Loaded, rows: list[dict]) -> str:
    latency = [r for r in loaded.records if r.get("kind") == "latency"]
    hosts = {}
    gpus = set()
    for r in loaded.records:
        h = r.get("host") or {}
        key = (h.get("hostname"), h.get("cpu"))
        hosts.setdefault(key, h)
        settings = (r.get("runtime") or {}).get("settings") or {}
        for k in ("gpu", "device_name", "jetpack", "tensorrt_version"):
            if settings.get(k):
                gpus.add(f"{k}: {settings[k]}")
    versions: dict[str, set] = defaultdict(set)
    for r in loaded.records:
        rt = r.get("runtime") or {}
        if rt.get("version"):
            versions[rt["name"]].add(str(rt["version"]))
    builds = Counter(f"{(r.get('edgebench') or {}).get('version')} @ {(r.get('edgebench') or {}).get('git_commit')}"
                     for r in loaded.records)
    failed = sum(r.get("status") != "ok" for r in latency)
    unstable = sum(r.get("status") == "ok" and (r.get("stability") or {}).get("verdict") != "stable" for r in latency)
    me = provenance.edgebench_info()
    items = [
        ("hosts", "<br>".join(f"{_e(h.get('hostname'))}: {_e(h.get('cpu'))}, {_e(h.get('cpu_count'))} cores, "
                              f"ISA {_e(' '.join(h.get('cpu_flags') or []) or 'no AVX2/AVX-512 flags')}, "
                              f"{_e(h.get('os'))}" for h in hosts.values()) or "-"),
        ("GPU / TensorRT / JetPack", _e(", ".join(sorted(gpus)) or "none in these records")),
        ("runtime versions", _e(", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(versions.items())) or "-")),
        ("measured by", _e(", ".join(f"edgebench {b} ({n} records)" for b, n in builds.most_common()))),
        ("report by", _e(f"edgebench {me['version']} @ {me['git_commit']}, "
                         f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}")),
        ("results read", _e(", ".join(loaded.files) or "-")),
        ("records", _e(f"{len(loaded.records)} read; {len(latency)} latency, {len(rows)} shown "
                       f"(newest per model, runtime, precision, batch, threads); {failed} failed, {unstable} unstable; "
                       f"{sum(loaded.damaged.values())} damaged lines and {sum(loaded.older.values())} older-schema "
                       "records skipped")),
    ]
    out = ['<table class="kv">'] + [f"<tr><th class='l'>{k}</th><td>{v}</td></tr>" for k, v in items] + ["</table>"]
    out += [f'<p class="warn">warning: {_e(w)}</p>' for w in loaded.warnings]
    return "\n".join(out)


def findings(records: list[dict]) -> list[str]:
    """Sentences a reader can check against the op-class figure, computed from the profiles."""
    shares: dict[tuple, dict] = {}
    kernels: dict[tuple, list] = {}
    for r in records:
        rows = ((r.get("runtime") or {}).get("settings") or {}).get("layer_profile")
        if r.get("kind") == "latency" and r.get("status") == "ok" and rows:
            k = (r["model"]["name"], r["runtime"]["name"], r["precision"])
            shares[k] = class_shares(r["runtime"]["name"], rows)
            kernels[k] = rows
    out = []
    for (model, rt, precision), s in sorted(shares.items()):
        if precision != "int8":
            continue
        fp32 = shares.get((model, rt, "fp32"), {})
        qdq = s.get(QDQ, 0.0)
        if qdq >= 0.05:
            out.append(f"{rt} INT8 {model}: {qdq:.0%} of the profiled time in quantize/dequantize "
                       f"(squeeze-excitation {s.get(SE, 0):.0%}, data movement {s.get(MOVE, 0):.0%}; "
                       f"FP32: dense+depthwise conv {fp32.get(DENSE, 0) + fp32.get(DW, 0):.0%}).")
        if rt == "openvino":
            moves = [x for x in kernels[(model, rt, precision)] if x.get("op") in ("ShuffleChannels", "Concat",
                                                                                   "VariadicSplit", "Split")]
            total = sum(x["mean_ms"] for x in moves)
            f32 = sum(x["mean_ms"] for x in moves if str(x.get("kernel", "")).lower().endswith("f32"))
            if total and s.get(MOVE, 0) >= 0.1:
                out.append(f"openvino INT8 {model}: shuffle/split/concat take {s.get(MOVE, 0):.0%} of the time, and "
                           f"{f32 / total:.0%} of that runs in f32 kernels.")
            if qdq < 0.05 and shares.get((model, "ort", "int8"), {}).get(QDQ, 0) >= 0.05:
                out.append(f"openvino INT8 {model}: quantize/dequantize {qdq:.0%} (fused into its kernels), against "
                           f"{shares[(model, 'ort', 'int8')][QDQ]:.0%} on ONNX Runtime.")
    return out


def page(loaded: Loaded, rows: list[dict], table_md: str, figures: dict[str, str], notes: dict[str, str]) -> str:
    """The page: header, findings, the figures in the issue's order, then every record's row."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>edgebench report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>edgebench report</h1>", _header(loaded, rows)]
    found = findings(loaded.records)
    if found:
        parts += ["<h2>What the profiles say</h2>", '<ul class="findings">'] + \
                 [f"<li>{_e(s)}</li>" for s in found] + ["</ul>"]
    for fid, heading, caption in FIGURES:
        parts.append(f"<h2>{_e(heading)}</h2>")
        if fid in figures:
            parts.append(f'<figure id="fig-{fid}" data-figure="{fid}">{figures[fid]}'
                         f"<figcaption>{_e(caption)} {_e(notes.get(fid, ''))}</figcaption></figure>")
        else:
            parts.append(f'<p class="warn" id="fig-{fid}" data-figure-missing="{fid}">No figure: '
                         f"{_e(notes.get(fid, 'no records for it'))}</p>")
    parts.append("<h2>Records</h2><p>Every measurement's newest record, with provenance; failed rows red, "
                 "unstable rows yellow. Click a column to sort.</p>")
    parts.append('<div class="scroll"><table class="sortable" id="records"><thead><tr>' +
                 "".join(f"<th class='{'l' if c in ('model', 'family', 'runtime', 'error', 'host') else ''}'>"
                         f"{_e(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>")
    for r in rows:
        cls = "failed" if r["status"] != "ok" else ("unstable" if r["stability"] != "stable" else "")
        parts.append(f"<tr class='{cls}'>" + "".join(
            f"<td class='{'l' if c in ('model', 'family', 'runtime', 'error', 'host') else ''}'>{_fmt(r.get(c))}</td>"
            for c in COLUMNS) + "</tr>")
    parts.append("</tbody></table></div>")
    parts.append(f"<h2>The terminal table, as Markdown</h2><pre>{_e(table_md)}</pre>")
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts)
