"""The append-only store: one JSON object per record, appended to a JSON-lines results file.

Each record carries the measured figures and what produced them: model, weights
source and hash, runtime and version, device, CPU, threads, batch, precision,
edgebench version / git commit, timestamp and the stability verdict
(:mod:`edgebench.results.records`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgebench.portable.errors import UsageError
from edgebench.results.records import Record

DEFAULT_RESULTS = Path("results") / "results.jsonl"


def append_record(record: Record | dict, path: Path = DEFAULT_RESULTS, db: Path | None = None) -> Path:
    """Append one record as one line; older lines are never rewritten."""
    return append_records([record], path, db)


def append_records(records: list[Record | dict], path: Path = DEFAULT_RESULTS, db: Path | None = None) -> Path:
    """Append records in one O_APPEND write + fsync: all or nothing, never interleaved with
    another writer, and older lines are never rewritten. Then the same records go to the
    history database (``db``, $EDGEBENCH_DB, else edgebench.db beside ``path``; see :mod:`edgebench.results.history`)."""
    path = Path(path)
    if not records:
        return path
    dicts = [r.to_dict() if isinstance(r, Record) else r for r in records]
    blob = "".join(json.dumps(r, default=str, sort_keys=True) + "\n" for r in dicts).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write results to {path} ({exc.strerror or exc})") from None
    try:
        if os.write(fd, blob) != len(blob):
            raise UsageError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
    from edgebench.results.history import record_quietly
    record_quietly(dicts, path, db)
    return path


def read_records(path: Path = DEFAULT_RESULTS) -> list[dict]:
    """All records of a results file; a damaged line (e.g. from a crash) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
