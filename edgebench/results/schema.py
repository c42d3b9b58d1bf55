"""The schema check of the tolerant reader: is a decoded line a record this version can show?

The top-level field types are the typed records' own annotations (:mod:`edgebench.results.records`),
so the check cannot drift from the writer; the nested fields are the ones the report reads.
A record from an older or newer edgebench with extra keys passes; one whose fields have
other types (``"batch": "one"``, ``"latency_ms": "fast"``) does not.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from numbers import Real

from edgebench.results.records import KINDS, LatencyRecord, Record

REQUIRED = ("kind", "model", "status", "runtime", "precision")
STATUSES = ("ok", "failed")
NUMBER = (Real, type(None))
# field -> {key: allowed types}; "*" applies to every key
NESTED: dict[str, dict[str, tuple[type, ...]]] = {
    "model": {"name": (str,), "family": (str, type(None)), "params": NUMBER, "gmacs": NUMBER},
    "runtime": {"name": (str,), "device": (str, type(None)), "version": (str, type(None))},
    # a non-finite figure is written as null (strict_json); the CI is [lo, hi] with the method that made it
    "latency_ms": {"p50": (Real,), "p50_ci95": (list, type(None)), "ci_method": (str, type(None)), "*": NUMBER},
    "memory_mb": {"*": NUMBER},
    "memory": {"method": (str, type(None)), "note": (str, type(None)), "*": NUMBER},
    "headline": {"*": NUMBER},
    "stability": {"verdict": (str,)},
}
LATENCY_FIGURES = ("p50", "p90", "p99")


@functools.cache
def _fields(klass: type[Record]) -> dict[str, object]:
    return {k: v for k, v in typing.get_type_hints(klass).items()
            if k not in ("envelope", "extra") and typing.get_origin(v) is not typing.ClassVar}


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, Real) else type(value).__name__)


def _fits(value: object, hint: object) -> bool:
    """Whether a decoded JSON value has the annotated type (``float`` takes ints; ``bool`` is not a number)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, Real) and math.isfinite(value)
    return isinstance(value, hint)  # type: ignore[arg-type]


def _nested_problem(name: str, value: dict, allowed: dict[str, tuple[type, ...]]) -> str | None:
    for key, sub in value.items():
        kinds = allowed.get(key, allowed.get("*"))
        if kinds is None:
            continue
        if isinstance(sub, bool) or not isinstance(sub, kinds) or (isinstance(sub, float) and not math.isfinite(sub)):
            return f"{name}.{key} is {_json_type(sub)}"
    for key, kinds in allowed.items():
        if key != "*" and type(None) not in kinds and key not in value:
            return f"{name} has no {key}"
    return None


def problem(record: object) -> str | None:
    """Why ``record`` (a decoded JSON line) is not a result record this version can read; None if it is."""
    if not isinstance(record, dict):
        return f"not an object but {_json_type(record)}"
    klass = KINDS.get(record.get("kind")) if isinstance(record.get("kind"), str) else None
    if klass is None:
        return f"unknown kind {record.get('kind')!r}"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"no {', '.join(missing)}"
    for name, hint in _fields(klass).items():
        if name in record and not _fits(record[name], hint):
            return f"{name} is {_json_type(record[name])}"
    if record["status"] not in STATUSES:
        return f"status {record['status']!r} is not one of {', '.join(STATUSES)}"
    for name, allowed in NESTED.items():
        value = record.get(name)
        if isinstance(value, dict) and (found := _nested_problem(name, value, allowed)):
            return found
    if klass is LatencyRecord and record["status"] == "ok" and \
            not all(k in (record.get("latency_ms") or {}) for k in LATENCY_FIGURES):
        return f"an ok latency record without {'/'.join(LATENCY_FIGURES)}"
    return None
