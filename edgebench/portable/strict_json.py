"""JSON that strict readers accept: never the bare ``NaN`` / ``Infinity`` Python's ``json`` writes by default.

Option values are refused at parse time when they are not finite, so a non-finite number
here comes from a measurement (a NaN logit, an empty sample). It is written as ``null``,
and the object lists where under ``non_finite``, so nothing is silently changed.
"""

from __future__ import annotations

import json
import math
from typing import Any

NON_FINITE = "non_finite"


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` with ``allow_nan=False``; non-finite floats become ``null``, their paths listed under
    ``non_finite`` when ``obj`` is an object. Other values that are not JSON are written as ``str``."""
    kwargs.setdefault("default", str)
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        found: list[str] = []
        clean = _finite(obj, "", found)
        if isinstance(clean, dict):
            before = clean.get(NON_FINITE)
            clean[NON_FINITE] = (before if isinstance(before, list) else [] if before is None else [before]) + found
        return json.dumps(clean, allow_nan=False, **kwargs)


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity`` (ValueError), as strict readers do."""
    return json.loads(text, parse_constant=_refuse)


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path or ".")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value
