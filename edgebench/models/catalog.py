"""What `edgebench models` shows: each spec with computed params/GMACs and weight availability.

Counting GMACs means building the model and tracing one forward pass, so the
figures are cached per spec and torch version in ``$XDG_CACHE_HOME/edgebench``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from edgebench.models.complexity import Complexity, measure_complexity
from edgebench.models.registry import ModelSpec
from edgebench.models.weights import find_local_weights, hub_cache_path
from edgebench.portable.hashing import sha256_json


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgebench" / "complexity.json"


def complexity_of(spec: ModelSpec) -> Complexity:
    """Params and MACs of ``spec`` (cached; recomputed when the spec or torch changes)."""
    key = sha256_json({"spec": spec.to_dict(), "torch": torch.__version__})
    path = _cache_file()
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    hit = cache.get(spec.name)
    if hit and hit.get("key") == key:
        return Complexity(hit["params"], hit["macs"])
    found = measure_complexity(spec.build(), spec.input_shape)
    cache[spec.name] = {"key": key, "params": found.params, "macs": found.macs}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs recomputation
    return found


def weights_available(spec: ModelSpec, weights_dir: str | os.PathLike | None) -> str:
    """Which trained weights `--weights auto` would use here: local, hub cache, or none (random)."""
    if find_local_weights(spec, weights_dir) is not None:
        return "local"
    cached = hub_cache_path(spec)
    return f"{cached[0].kind} cache" if cached else "random"


def describe(spec: ModelSpec, weights_dir: str | os.PathLike | None = None) -> dict:
    found = complexity_of(spec)
    return {**spec.to_dict(), "params_m": round(found.params_m, 3), "gmacs": round(found.gmacs, 4),
            "weights_available": weights_available(spec, weights_dir)}
