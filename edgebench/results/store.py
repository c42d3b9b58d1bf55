"""The results store: where every record is appended, the JSON-lines file first, then the SQLite history.

The two writes sit here, above both: :mod:`edgebench.results.jsonl` (the source of truth) knows nothing
of the history, and :mod:`edgebench.results.history` reads the JSONL files back through ``jsonl`` on
import and rebuild; neither imports the other's caller. The file's names (``ResultsFile``,
``read_records``, ...) are this module's too, so that a caller has one place to save and read results.
"""

from __future__ import annotations

from pathlib import Path

from edgebench.results import history, jsonl
from edgebench.results.jsonl import (
    DEFAULT_RESULTS,
    QUARANTINE_SUFFIX,
    ReadResult,
    ResultsFile,
    ResultsNotSaved,
    read_records,
    rescue,
)
from edgebench.results.records import Record


def append_record(record: Record | dict, path: Path | ResultsFile = DEFAULT_RESULTS, db: Path | None = None) -> Path:
    """Append one record as one line; older lines are never rewritten."""
    return append_records([record], path, db)


def append_records(records: list[Record | dict], path: Path | ResultsFile = DEFAULT_RESULTS,
                   db: Path | str | None = None) -> Path:
    """Append ``records`` to the JSON-lines file (:func:`edgebench.results.jsonl.append_records`: one locked
    write, cut back and ResultsNotSaved when it fails), then the same records to the history database
    (``db``, $EDGEBENCH_DB, else edgebench.db beside the file; ``"off"``: none). The JSONL goes first: a
    history that cannot take them is one warning line and never costs the JSONL line."""
    target = jsonl.append_records(records, path)
    if records:
        history.record_quietly([r.to_dict() if isinstance(r, Record) else r for r in records], target, db)
    return target


__all__ = ["DEFAULT_RESULTS", "QUARANTINE_SUFFIX", "ReadResult", "ResultsFile", "ResultsNotSaved", "append_record",
           "append_records", "read_records", "rescue"]
