"""Result records: one JSON object per measurement, appended to a JSON-lines results file.

Each record carries the measured figures and what produced them: model, weights
source and hash, runtime and version, device, CPU, threads, batch, precision,
edgebench version / git commit, timestamp and the stability verdict.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .. import provenance
from ..errors import UsageError

SCHEMA = "edgebench.result/1"
DEFAULT_RESULTS = Path("results") / "results.jsonl"


def new_record(kind: str, **fields: object) -> dict:
    """A record with identity and provenance filled in; ``fields`` add the measured content."""
    return {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex,
        "kind": kind,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": provenance.host_info(),
        "edgebench": provenance.edgebench_info(),
        **fields,
    }


def append_record(record: dict, path: Path = DEFAULT_RESULTS, db: Path | None = None) -> Path:
    """Append one record as one line; older lines are never rewritten."""
    return append_records([record], path, db)


def append_records(records: list[dict], path: Path = DEFAULT_RESULTS, db: Path | None = None) -> Path:
    """Append records in one O_APPEND write + fsync: all or nothing, never interleaved with
    another writer, and older lines are never rewritten. Then the same records go to the
    history database (``db``, $EDGEBENCH_DB, else edgebench.db beside ``path``; see :mod:`edgebench.history`)."""
    path = Path(path)
    if not records:
        return path
    blob = "".join(json.dumps(r, default=str, sort_keys=True) + "\n" for r in records).encode()
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
    from ..history import record_quietly
    record_quietly(records, path, db)
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
