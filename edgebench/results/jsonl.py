"""The JSON-lines results file: one JSON object per record, appended; the source of truth.

Each record carries the measured figures and what produced them: model, weights
source and hash, runtime and version, device, CPU, threads, batch, precision,
edgebench version / git commit, timestamp and the stability verdict
(:mod:`edgebench.results.records`).

A results file is valid JSON lines, with at most a damaged *last* line after a crash
(a writer killed in the middle of its write). Every append holds an exclusive
``flock``, repairs or quarantines such a line first (never merges it with the new
records), writes the batch in one ``O_APPEND`` write and fsyncs; when the write fails
(no space left, quota, file size limit) the file is truncated back to its size before
the write and the records go to a rescue file, so a result is either saved or said
to be unsaved, never half-saved. :func:`read_records` is the one tolerant reader.

This module knows nothing of the SQLite history: :mod:`edgebench.results.store` writes each batch
here first, then to the history (which reads these files back through :func:`read_records`).
"""

from __future__ import annotations

import errno
import os
import tempfile
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.portable import strict_json
from edgebench.portable.errors import UsageError
from edgebench.results.records import Record
from edgebench.results.schema import problem

try:
    import fcntl
except ImportError:  # Windows: no flock; the single O_APPEND write still never interleaves
    fcntl = None  # type: ignore[assignment]

DEFAULT_RESULTS = Path("results") / "results.jsonl"
QUARANTINE_SUFFIX = ".damaged"  # <results>.damaged: fragments of lines a crashed writer left unfinished
_TAIL_CHUNK = 1 << 16


class ResultsNotSaved(UsageError):
    """An append that did not happen: the results file is as it was before it, and the records are in
    ``rescued`` (a file), else in ``unsaved`` (JSON lines the CLI prints on stdout)."""

    def __init__(self, message: str, rescued: Path | None, unsaved: list[str]) -> None:
        super().__init__(message)
        self.rescued = rescued
        self.unsaved = unsaved


class ResultsFile(os.PathLike):
    """A results file opened for append once, before any measurement, and kept open: one that cannot be
    appended to (read-only, immutable, a folder) stops a command before any work. A file that does not exist
    yet is created by the first append (a command that fails first leaves none), in a folder proved
    writable now."""

    _FLAGS = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.fd: int | None = None
        self.closed = False
        try:
            self.fd = os.open(self.path, self._FLAGS)
        except FileNotFoundError:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=self.path.parent).close()
            except OSError as exc:
                raise UsageError(f"cannot create results file {self.path}: {exc.strerror or exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot append to results file {self.path}: {exc.strerror or exc}") from None

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.closed = True

    def append(self, records: list[Record | dict]) -> None:
        """Append ``records`` as one write under an exclusive lock; ResultsNotSaved if it fails."""
        if self.closed:
            raise ValueError(f"{self.path} is closed")
        lines = [strict_json.dumps(r.to_dict() if isinstance(r, Record) else r, sort_keys=True) for r in records]
        if not lines:
            return
        blob = "".join(line + "\n" for line in lines).encode()
        if self.fd is not None and not self._still_at_path():  # moved or replaced since: append to what it names now
            os.close(self.fd)
            self.fd = None
        if self.fd is None:
            try:
                self.fd = os.open(self.path, self._FLAGS | os.O_CREAT, 0o644)
            except OSError as exc:
                self._not_saved(exc, lines, kept=True)
        fd = self.fd
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(fd).st_size
            try:
                size = self._end_last_line(size)
                _write_all(fd, blob)
                os.fsync(fd)
            except OSError as exc:
                self._not_saved(exc, lines, kept=_truncate(fd, size))
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _still_at_path(self) -> bool:
        try:
            named, held = os.stat(self.path), os.fstat(self.fd)
        except OSError:
            return False
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _end_last_line(self, size: int) -> int:
        """Make the file end in a newline; return its size. A last line that is a whole JSON object (a file
        edited by hand) gets its newline; a fragment of one (a writer killed mid-write) is copied to
        ``<results>.damaged`` and cut off, so it is never merged with the next record."""
        if size == 0 or os.pread(self.fd, 1, size - 1) == b"\n":
            return size
        start = _last_line_start(self.fd, size)
        tail = os.pread(self.fd, size - start, start)
        try:
            whole = isinstance(strict_json.loads(tail.decode("utf-8")), dict)
        except ValueError:
            whole = False
        if whole:
            _write_all(self.fd, b"\n")
            return size + 1
        quarantine = self.path.with_name(self.path.name + QUARANTINE_SUFFIX)
        with open(quarantine, "ab") as f:  # copied before it is cut: a crash here duplicates, never loses
            f.write(tail + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.ftruncate(self.fd, start)
        return start

    def _not_saved(self, exc: OSError, lines: list[str], kept: bool) -> typing.NoReturn:
        reason = "no space left on device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror or str(exc)
        state = "the file is as it was" if kept else "could not truncate the partial write back"
        rescued = rescue(self.path, lines)
        where = f"saved in {rescued}" if rescued else "printed on stdout"
        raise ResultsNotSaved(f"{reason}: {len(lines)} record(s) not appended to {self.path} ({state}); "
                              f"they are {where}", rescued, [] if rescued else lines)


def _write_all(fd: int, blob: bytes) -> None:
    view = memoryview(blob)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _truncate(fd: int, size: int) -> bool:
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return False
    return True


def _last_line_start(fd: int, size: int) -> int:
    """The offset just after the last newline before ``size`` (0 when there is none)."""
    end = size
    while end > 0:
        begin = max(0, end - _TAIL_CHUNK)
        found = os.pread(fd, end - begin, begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


def rescue(results: Path, lines: list[str]) -> Path | None:
    """Write records that could not be appended to a new file next to ``results``, else in the temp folder;
    the path, or None when neither can hold them."""
    for folder in (results.parent, Path(tempfile.gettempdir())):
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=f"{results.name}.unsaved-", suffix=".jsonl")
        except OSError:
            continue
        try:
            with os.fdopen(fd, "w") as f:
                f.writelines(line + "\n" for line in lines)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            Path(name).unlink(missing_ok=True)
            continue
        return Path(name)
    return None


def append_records(records: list[Record | dict], path: Path | ResultsFile = DEFAULT_RESULTS) -> Path:
    """Append records in one locked O_APPEND write + fsync, never interleaved with another writer; older
    lines are never rewritten, and a failed write is cut back (ResultsNotSaved). ``path``: an open
    :class:`ResultsFile` (the CLI opens it before measuring), or a path opened for this append. The path."""
    if isinstance(path, ResultsFile):
        path.append(records)
        return path.path
    if records:
        results = ResultsFile(path)
        try:
            results.append(records)
        finally:
            results.close()
    return Path(path)


@dataclass(frozen=True)
class ReadResult:
    """The records of a results file, and the lines that were skipped, counted by reason."""

    records: list[dict]
    lines: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> lines
    examples: dict[str, str] = field(default_factory=dict)  # reason -> "line N: what is wrong", the first one

    @property
    def skipped_count(self) -> int:
        return sum(self.skipped.values())

    def warning(self, path: Path | str) -> str | None:
        """One line naming what was skipped, or None."""
        if not self.skipped:
            return None
        reasons = "; ".join(f"{n} {why}, e.g. {self.examples[why]}" for why, n in self.skipped.most_common())
        return f"skipped {self.skipped_count} of {self.lines} lines of {path} that are not readable records: {reasons}"


def read_records(path: Path | str | os.PathLike = DEFAULT_RESULTS) -> ReadResult:
    """Every readable record of a results file, and what was skipped: bytes that are not UTF-8 are
    replaced (U+FFFD), and a line that is not JSON, not an object or fails the schema check
    (:func:`edgebench.results.schema.problem`) is skipped and counted. A missing file has no records."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ReadResult([])
    except OSError as exc:
        raise UsageError(f"cannot read results file {path}: {exc.strerror or exc}") from None
    records, skipped, examples, lines = [], Counter(), {}, 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").split("\n"), start=1):  # JSON lines: \n
        if not line.strip():
            continue
        lines += 1
        try:
            record = strict_json.loads(line)
        except ValueError as exc:
            why, detail = "not JSON", str(exc).split(":")[0]
        else:
            detail = problem(record)
            if detail is None:
                records.append(record)
                continue
            why = "not an object" if not isinstance(record, dict) else "failing the schema check"
        skipped[why] += 1
        examples.setdefault(why, f"line {number}: {detail}")
    return ReadResult(records, lines, skipped, examples)


__all__ = ["DEFAULT_RESULTS", "QUARANTINE_SUFFIX", "ReadResult", "ResultsFile", "ResultsNotSaved", "append_records",
           "read_records", "rescue"]
