"""The history store: every result record in SQLite, beside the JSON-lines file that stays the source of truth.

One table, ``records``: indexed columns for what a comparison filters on (model, runtime and
version, precision, batch, threads, engine content key, host fingerprint, edgebench commit,
timestamp, p50/p90/p99, peak RSS, verdicts) and the full record as JSON. ``sqlite3`` in WAL
mode with a busy timeout, so two processes appending at once both succeed; inserts are
keyed by the record id, so importing a file twice adds nothing. The schema version is
SQLite's ``user_version``; :data:`MIGRATIONS` brings any older file up to date on open.

A corrupt or locked database never costs a measurement: the JSONL line is written first,
and :func:`record_quietly` turns a database failure into one warning naming
``edgebench history rebuild``, which recreates the database from the JSONL files.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from edgebench.portable.envelope import SCHEMA
from edgebench.portable.errors import UsageError
from edgebench.portable.host import fingerprint, fingerprint_key, host_summary
from edgebench.results import jsonl

DB_FILE = "edgebench.db"
ENV = "EDGEBENCH_DB"
BUSY_TIMEOUT_S = 30.0

_COLUMNS = ("id", "kind", "status", "timestamp", "model", "runtime", "runtime_version", "precision", "batch",
            "threads", "engine_key", "host_fingerprint", "host", "edgebench_commit", "p50_ms", "p50_ci_lo",
            "p50_ci_hi", "p90_ms", "p99_ms", "peak_rss_mb", "stability", "verdict", "source", "json")

# MIGRATIONS[i] takes a database from user_version i to i + 1
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE records (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT, timestamp TEXT NOT NULL,
        model TEXT, runtime TEXT, runtime_version TEXT, precision TEXT, batch INTEGER, threads INTEGER,
        engine_key TEXT, host_fingerprint TEXT, edgebench_commit TEXT,
        p50_ms REAL, p90_ms REAL, p99_ms REAL, peak_rss_mb REAL, stability TEXT, verdict TEXT,
        source TEXT, json TEXT NOT NULL);
    CREATE INDEX records_key ON records (model, runtime, precision, batch, threads, host_fingerprint, timestamp);
    CREATE INDEX records_engine ON records (engine_key);
    CREATE INDEX records_commit ON records (edgebench_commit);
    CREATE INDEX records_time ON records (timestamp);
    CREATE INDEX records_verdict ON records (kind, verdict);
    """,
    # 2: the p50 CI and a readable host, for `history show` without parsing the JSON
    """
    ALTER TABLE records ADD COLUMN p50_ci_lo REAL;
    ALTER TABLE records ADD COLUMN p50_ci_hi REAL;
    ALTER TABLE records ADD COLUMN host TEXT;
    CREATE INDEX records_runtime_version ON records (runtime, runtime_version);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(UsageError):
    """The database cannot be used; the message names the fix."""


class ForeignDatabase(HistoryError):
    """An SQLite file that is not an edgebench history: never written to, never replaced."""


class NewerDatabase(HistoryError):
    """A history of a newer schema than this edgebench knows: upgrade, never rebuild (it would drop it)."""


def db_path(results: Path | None = None, db: Path | str | None = None) -> Path | None:
    """``db``, else $EDGEBENCH_DB, else edgebench.db next to the results file; None when set to "off"."""
    chosen = db if db is not None else os.environ.get(ENV) or None
    if chosen is not None and str(chosen).lower() in ("off", "none", ""):
        return None
    if chosen is not None:
        return Path(chosen)
    return Path(results).parent / DB_FILE if results is not None else Path("results") / DB_FILE


# ---------------------------------------------------------------- connection, schema

def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, each whole: split at a ``;`` only where :func:`sqlite3.complete_statement`
    says the statement is complete, so a ``;`` in a string literal, a comment or a trigger body stays inside."""
    found, buf = [], ""
    pieces = script.split(";")
    for i, piece in enumerate(pieces):
        buf += piece if i == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip().rstrip(";").strip():
                found.append(buf.strip())
            buf = ""
    if buf.strip():
        found.append(buf.strip())  # an unfinished statement: executing it names the syntax error
    return found


def _check_not_directory(path: Path) -> None:
    if path.is_dir():
        raise HistoryError(f"history database {path} is a directory, not a file: pass --db FILE "
                           "(or set EDGEBENCH_DB) naming a database file")


def _tables(conn: sqlite3.Connection) -> dict[str, set[str]]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%'")]
    return {n: {c[1] for c in conn.execute(f"PRAGMA table_info({_quoted(n)})")} for n in names}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _inspect(conn: sqlite3.Connection, path: Path) -> str:
    """What the open database is: "empty" (new), "history" (this edgebench's, maybe older) or, as a
    HistoryError that says what to do, a foreign SQLite file or a history from a newer edgebench."""
    conn.execute("BEGIN")  # one snapshot: another process may be creating the schema at this moment
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = _tables(conn)
    finally:
        conn.execute("COMMIT")
    if version == 0 and not tables:
        return "empty"
    ours = {"id", "kind", "timestamp", "json"} <= tables.get("records", set())
    if version == 0 or not ours:
        listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ForeignDatabase(f"{path} is an SQLite database but not an edgebench history "
                              f"(user_version {version}, tables: {listed or 'none'}); edgebench leaves it as it is: "
                              "pass --db (or set EDGEBENCH_DB) naming another file")
    if version > SCHEMA_VERSION:
        raise NewerDatabase(f"history database {path} was written by a newer edgebench (schema version {version}; "
                            f"this edgebench knows up to {SCHEMA_VERSION}): upgrade edgebench to use it "
                            "(the JSONL results are intact)")
    return "history"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating) the database; HistoryError naming the fix when unusable: `history rebuild`
    for a damaged one, another --db for a directory or a foreign SQLite file, an upgrade for a newer history."""
    path = Path(path)
    _check_not_directory(path)
    conn = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _inspect(conn, path)  # before anything is written to it: a foreign file stays as it was
        conn.execute("PRAGMA journal_mode = WAL")
        _migrate(conn)
        return conn
    except HistoryError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.DatabaseError, OSError) as exc:
        if conn is not None:
            conn.close()
        raise _error(path, exc) from None


def classify(path: Path) -> str:
    """Without writing to it: "missing", "empty", "history" or "damaged" (not a readable SQLite database);
    HistoryError for a directory, a foreign SQLite file or a newer history."""
    path = Path(path)
    _check_not_directory(path)
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    try:
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
            return _inspect(conn, path)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return "damaged"
        if "locked" in text or "busy" in text:
            raise _error(path, exc) from None
        raise HistoryError(f"cannot read the history database {path} ({text}); it is left as it is") from None


def _error(path: Path, exc: Exception) -> HistoryError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return HistoryError(f"history database {path} is locked by another process (waited {BUSY_TIMEOUT_S:.0f} s); "
                            "try again, or run `edgebench history rebuild` if no other process holds it")
    return HistoryError(f"history database {path} is unusable ({text}); the JSONL results are intact: "
                        f"run `edgebench history rebuild --db {path}`")


def _migrate(conn: sqlite3.Connection, migrations: tuple[str, ...] | None = None) -> None:
    migrations = MIGRATIONS if migrations is None else migrations
    target = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > target:
        raise sqlite3.DatabaseError(f"schema version {version} is newer than this edgebench's {target}")
    if version == target:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated meanwhile
        for step in range(version, target):
            for statement in statements(migrations[step]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def schema_version(path: Path) -> int:
    with closing(connect(path)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


# ---------------------------------------------------------------- writing

def row_of(record: dict, source: str | None = None) -> tuple:
    """The indexed columns of one record (latency, gate, accuracy, ... records alike)."""
    lat = record.get("latency_ms") or {}
    runtime = record.get("runtime") or {}
    fp = fingerprint(record)
    ci = lat.get("p50_ci95") or [None, None]
    verdict = record.get("verdict")
    values = {
        "id": record.get("id"), "kind": record.get("kind"), "status": record.get("status"),
        "timestamp": record.get("timestamp"), "model": (record.get("model") or {}).get("name"),
        "runtime": runtime.get("name"), "runtime_version": runtime.get("version"),
        "precision": record.get("precision"), "batch": record.get("batch"), "threads": record.get("threads"),
        "engine_key": (record.get("engine") or {}).get("sha256"), "host_fingerprint": fingerprint_key(fp),
        "host": host_summary(fp), "edgebench_commit": (record.get("edgebench") or {}).get("git_commit"),
        "p50_ms": lat.get("p50"), "p50_ci_lo": ci[0], "p50_ci_hi": ci[1], "p90_ms": lat.get("p90"),
        "p99_ms": lat.get("p99"), "peak_rss_mb": (record.get("memory_mb") or {}).get("peak"),
        "stability": (record.get("stability") or {}).get("verdict"),
        "verdict": verdict.get("overall") if isinstance(verdict, dict) else verdict,
        "source": source, "json": json.dumps(record, default=str, sort_keys=True)}
    return tuple(values[c] for c in _COLUMNS)


def insert(path: Path, records: Iterable[dict], source: str | None = None) -> int:
    """Insert records not yet present (by id) in one transaction; the number added."""
    rows = [row_of(r, source) for r in records if r.get("id") and r.get("timestamp") and r.get("kind")]
    if not rows:
        return 0
    path = Path(path)
    with closing(connect(path)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
            added = conn.total_changes - before
            conn.execute("COMMIT")
            return added
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _error(path, exc) from None


def record_quietly(records: list[dict], results: Path, db: Path | str | None = None) -> None:
    """What :func:`edgebench.results.store.append_records` calls after the JSONL write: a database
    failure is one warning line (the JSONL already holds the records), never an exception."""
    path = db_path(results, db)
    if path is None:
        return
    try:
        insert(path, records, str(results))
    except HistoryError as exc:
        print(f"warning: records saved to {results}, not to the history: {exc}", file=sys.stderr)


def import_jsonl(db: Path, files: list[Path]) -> dict:
    """Import JSON-lines files; idempotent (keyed by record id). Every file is read first: one that holds
    no readable record at all but lines that are not (a binary file, another format) is a UsageError and
    nothing is imported. A record of another schema than this edgebench's (a newer edgebench's) is skipped
    and counted (``other_schema``), as ``report`` skips it: it is never a gate's baseline."""
    report = {"files": [], "added": 0, "already_present": 0, "damaged_lines": 0, "other_schema": 0}
    read_all = []
    for f in files:
        if not Path(f).is_file():
            raise UsageError(f"cannot read {f}: no such file")
        read = jsonl.read_records(f)  # the one tolerant reader: damaged, non-object and schema-failing lines skipped
        if not read.records and read.skipped_count:
            raise UsageError(f"{f} holds no edgebench records, nothing imported: {read.warning(f)}")
        read_all.append((f, read))
    for f, read in read_all:
        records = [r for r in read.records if r.get("schema") == SCHEMA]
        other, damaged = len(read.records) - len(records), read.skipped_count
        added = insert(db, records, str(f))
        report["files"].append({"file": str(f), "records": len(records), "added": added, "damaged_lines": damaged,
                                "other_schema": other})
        report["added"] += added
        report["already_present"] += len(records) - added
        report["damaged_lines"] += damaged
        report["other_schema"] += other
    return report


def _move_aside(db: Path, why: str) -> Path:
    """Rename ``db`` (and its -wal/-shm) to ``<db>.<why>-<UTC time>``, never over an existing file; the new name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup, n = db.with_name(f"{db.name}.{why}-{stamp}"), 1
    while any(Path(f"{backup}{s}").exists() for s in ("", "-wal", "-shm")):
        n += 1
        backup = db.with_name(f"{db.name}.{why}-{stamp}-{n}")
    for suffix in ("-wal", "-shm", ""):  # the main file last: its name is what says "moved"
        if Path(f"{db}{suffix}").exists():
            os.replace(f"{db}{suffix}", f"{backup}{suffix}")
    return backup


def rebuild(db: Path, files: list[Path]) -> dict:
    """Recreate the database from JSON-lines files: built beside it, then swapped in atomically.

    A foreign SQLite file or a newer edgebench's history at ``db`` is refused (HistoryError) before any work;
    a damaged file is kept, renamed ``<db>.damaged-<time>`` (``report["backup"]``). A failure on the way
    (a read-only folder, a full disk) leaves no ``.rebuild`` file behind and ``db`` as it was."""
    db = Path(db)
    if not files:
        raise UsageError(f"no JSON-lines results to rebuild {db} from (pass --results FILE)")
    state = classify(db)  # raises for a directory, a foreign file, a newer history
    tmp = db.with_name(db.name + ".rebuild")
    parts = (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"))
    for stale in parts:
        stale.unlink(missing_ok=True)
    try:
        report = import_jsonl(tmp, files)
        with closing(connect(tmp)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
        report["backup"] = None
        if state == "damaged":
            report["backup"] = str(_move_aside(db, "damaged"))
        for stale in (Path(f"{db}-wal"), Path(f"{db}-shm")):
            stale.unlink(missing_ok=True)
        os.replace(tmp, db)
    except OSError as exc:  # a read-only folder or database, a full disk: the user's to fix, not a bug
        raise HistoryError(f"cannot rebuild {db} ({exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}); "
                           "the database is as it was") from None
    finally:
        for part in parts:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
    return report


# ---------------------------------------------------------------- reading

def query(db: Path, *, model: str | None, runtime: str, precision: str | None = None, batch: int | None = None,
          threads: int | None = None, kind: str = "latency", status: str | None = "ok", host: str | None = None,
          last: int | None = None) -> list[dict]:
    """Matching records of this edgebench's schema, oldest first (the ``last`` newest when given), as full
    records; ``model`` None: every model. A record of another schema (imported before such records were
    refused) is left out, as ``report`` leaves it out: it is never a gate's baseline."""
    where, args = ["kind = ?", "runtime = ?"], [kind, runtime]
    for column, value in (("model", model), ("precision", precision), ("batch", batch), ("threads", threads),
                          ("status", status), ("host_fingerprint", host)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    sql = f"SELECT json FROM records WHERE {' AND '.join(where)} ORDER BY timestamp DESC, rowid DESC"
    path = Path(db)
    _check_not_directory(path)
    if not path.is_file():
        return []
    found = []
    with closing(connect(path)) as conn:
        try:
            for (text,) in conn.execute(sql, args):
                record = json.loads(text)
                if isinstance(record, dict) and record.get("schema") == SCHEMA:
                    found.append(record)
                    if last and len(found) >= last:
                        break
        except sqlite3.DatabaseError as exc:
            raise _error(path, exc) from None
    return found[::-1]


def gate_sides(db: Path, *, model: str, runtime: str, precision: str | None = None, batch: int | None = None,
               threads: int | None = None, last: int | None = None) -> list[dict]:
    """The sides of ``model`` that gates measured (``kind: gate`` records), oldest first: the candidate of
    every mode and, in A/B, the baseline, each ``{"record", "side", "p50", "p50_ci95", "rounds"}``. A team
    that only gates has no latency records; these are its trend."""
    found = []
    for r in query(db, model=None, runtime=runtime, precision=precision, batch=batch, threads=threads, kind="gate",
                   status=None):
        sources = r.get("sources") if isinstance(r.get("sources"), dict) else {}
        p50_metric = next((m for m in r.get("metrics") or [] if isinstance(m, dict) and m.get("metric") == "latency p50"
                           and m.get("kind") == "compare"), {})
        lat = r.get("latency_ms") if isinstance(r.get("latency_ms"), dict) else {}
        if (r.get("model") or {}).get("name") == model:
            found.append({"record": r, "side": "candidate", "p50": lat.get("p50"), "p50_ci95": lat.get("p50_ci95"),
                          "rounds": r.get("rounds_used")})
        if isinstance(sources.get("baseline"), dict) and sources["baseline"].get("model") == model \
                and p50_metric.get("baseline") is not None:
            found.append({"record": r, "side": "baseline", "p50": p50_metric["baseline"], "p50_ci95": None,
                          "rounds": r.get("rounds_used")})
    return found[-last:] if last else found


def count(db: Path) -> int:
    with closing(connect(db)) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise _error(Path(db), exc) from None


def database_records(db: Path) -> list[dict]:
    """Every record the history holds (its full JSON), oldest first: ``report --db``'s input."""
    db = Path(db)
    _check_not_directory(db)
    if not db.is_file():
        raise UsageError(f"no history database at {db}")
    if classify(db) == "damaged":  # a foreign file or a newer history: HistoryError naming the fix
        raise UsageError(f"cannot read the history {db} (not an SQLite database); "
                         "`edgebench history rebuild` recreates it")
    try:
        with closing(sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)) as conn:
            rows = conn.execute("SELECT json FROM records ORDER BY timestamp").fetchall()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"cannot read the history {db} ({exc}); `edgebench history rebuild` recreates it") from None
    return [json.loads(row[0]) for row in rows]
