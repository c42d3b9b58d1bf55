"""The SQLite history: both stores, concurrency of real processes, idempotent import, rebuild, migrations."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, edgebench, edgebench_in_process

from edgebench.portable import host
from edgebench.results import history
from edgebench.results.records import LatencyRecord
from edgebench.results.store import append_record, read_records


def _latency(p50: float, **fields) -> dict:
    return LatencyRecord(model={"name": "tiny"}, runtime={"name": "ort", "version": "1.0"}, precision="fp32",
                         batch=1, threads=2, latency_ms={"p50": p50, "p90": p50, "p99": p50,
                                                         "p50_ci95": [p50 * 0.9, p50 * 1.1]},
                         stability={"verdict": "stable"}, extra=fields).to_dict()


def test_every_record_goes_to_both_stores(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEBENCH_DB", raising=False)
    results = tmp_path / "results.jsonl"
    record = _latency(5.0)
    append_record(record, results)
    db = tmp_path / "edgebench.db"
    assert history.count(db) == 1 and history.schema_version(db) == history.SCHEMA_VERSION
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = conn.execute("SELECT model, runtime, p50_ms, p50_ci_lo, host_fingerprint, json FROM records").fetchone()
    assert row[:4] == ("tiny", "ort", 5.0, 4.5) and json.loads(row[5])["id"] == record["id"]
    assert row[4] == host.fingerprint_key(host.fingerprint(record))
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"records_key", "records_engine", "records_commit", "records_time"} <= indexes


_WRITER = """
import sys
from edgebench.results.records import LatencyRecord
from edgebench.results.store import append_record
for i in range(int(sys.argv[2])):
    append_record(LatencyRecord(model={"name": "tiny"}, runtime={"name": "ort"},
                                latency_ms={"p50": 1.0, "p90": 1.0, "p99": 1.0}, extra={"i": i}), sys.argv[1])
"""


def test_two_processes_writing_at_once_both_succeed(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEBENCH_DB", raising=False)
    results = tmp_path / "results.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(results), "150"], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs) and not any("warning" in e for e in errors), errors
    assert len(read_records(results).records) == 300 and history.count(tmp_path / "edgebench.db") == 300


def test_import_is_idempotent(tmp_path):
    results = tmp_path / "other.jsonl"
    results.write_text("".join(json.dumps(_latency(float(i))) + "\n" for i in range(5)) + "{damaged\n")
    db = tmp_path / "h.db"
    first = edgebench("history", "import", str(results), "--db", str(db), "--json", cwd=tmp_path)
    second = edgebench_in_process("history", "import", results, "--db", db, "--json", cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 5 and json.loads(first.stdout)["damaged_lines"] == 1
    assert json.loads(second.stdout)["added"] == 0 and json.loads(second.stdout)["already_present"] == 5
    assert history.count(db) == 5


def test_corrupt_database_keeps_jsonl_and_rebuild_fixes_it(tmp_path):
    env = {"EDGEBENCH_DB": ""}
    results = tmp_path / "results.jsonl"
    for i in range(3):
        append_record(_latency(1.0 + i), results)
    db = tmp_path / "edgebench.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    proc = subprocess.run([sys.executable, "-c", "from edgebench.results.records import LatencyRecord\n"
                           "from edgebench.results.store import append_record\n"
                           "lat = {'p50': 1.0, 'p90': 1.0, 'p99': 1.0}\n"
                           f"append_record(LatencyRecord(model={{'name': 'other'}}, runtime={{'name': 'ort'}}, "
                           f"latency_ms=lat), {str(results)!r})"],
                          capture_output=True, text=True, timeout=120, env={**__import__("os").environ, **env})
    assert proc.returncode == 0 and "history rebuild" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert len(read_records(results).records) == 4  # the JSONL got the record anyway
    shown = edgebench_in_process("history", "show", "--model", "tiny", "--runtime", "ort", "--db", db, cwd=tmp_path,
                                 env=env)
    assert_one_line_error(shown, "history rebuild")
    rebuilt = edgebench("history", "rebuild", "--db", str(db), cwd=tmp_path, env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert history.count(db) == 4
    shown = edgebench_in_process("history", "show", "--model", "tiny", "--runtime", "ort", "--db", db, "--json",
                                 cwd=tmp_path, env=env)
    rows = json.loads(shown.stdout)
    assert [r["p50"] for r in rows] == [1.0, 2.0, 3.0] and rows[0]["p50_ci95"] == [0.9, 1.1]


def test_deleted_database_is_rebuilt_and_show_prints_a_trend(tmp_path):
    results = tmp_path / "results.jsonl"
    append_record(_latency(4.0), results, db=tmp_path / "edgebench.db")
    (tmp_path / "edgebench.db").unlink()
    assert edgebench("history", "rebuild", "--results", str(results), cwd=tmp_path).returncode == 0
    shown = edgebench("history", "show", "--model", "tiny", "--runtime", "ort", "--db", str(tmp_path / "edgebench.db"),
                      cwd=tmp_path)
    assert shown.returncode == 0 and "4.000" in shown.stdout and "[3.600, 4.400]" in shown.stdout


def test_old_schema_is_migrated(tmp_path):
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(history.MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO records (id, kind, timestamp, json) VALUES ('old', 'latency', '2026', '{}')")
    conn.commit()
    conn.close()
    assert history.insert(db, [_latency(2.0)]) == 1
    assert history.schema_version(db) == history.SCHEMA_VERSION and history.count(db) == 2


def test_fingerprint_ignores_hostname_and_names_differences():
    a = _latency(1.0)
    b = json.loads(json.dumps(a))
    b["host"]["hostname"] = "another-runner"
    assert host.fingerprint_key(host.fingerprint(a)) == host.fingerprint_key(host.fingerprint(b))
    b["host"]["cpu"] = "Intel Xeon"
    b["host"]["cpu_flags"] = ["avx2", "avx512_vnni", "avx512f"]
    diff = host.differences(host.fingerprint(a), host.fingerprint(b))
    assert any(d.startswith("cpu:") for d in diff) and any(d.startswith("isa:") for d in diff)


def test_db_off(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_DB", "off")
    append_record(_latency(1.0), tmp_path / "r.jsonl")
    assert not (tmp_path / "edgebench.db").exists()


@pytest.mark.parametrize("args", [["import", "missing.jsonl"], ["show", "--model", "tiny", "--runtime", "ort"]])
def test_history_usage_errors(tmp_path, args):
    assert_one_line_error(edgebench_in_process("history", *args, "--db", tmp_path / "none.db", cwd=tmp_path))


def test_fleet_devices_are_never_mixed():
    """Two places of a fleet: their records group apart (report columns, history show) and their history
    fingerprints differ, so the gate's history mode never compares one board with another."""
    from edgebench.results.records import device_of
    a, b = (_latency(1.0, place=p, device={"fingerprint": f}) for p, f in (("orin-1", "aa11"), ("orin-2", "bb22")))
    assert device_of(a) == "orin-1@aa11" and device_of(b) == "orin-2@bb22"
    assert device_of(_latency(1.0)) == "cpu"  # a local ORT record: its runtime's default device
    fa, fb = host.fingerprint(a), host.fingerprint(b)
    assert fa["device"] == "aa11" and host.fingerprint_key(fa) != host.fingerprint_key(fb)
    assert "device: 'aa11' vs 'bb22'" in host.differences(fa, fb)


# ---------------------------------------------------------------- hostile input (issue 22)

def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _results(path: Path, n: int = 2, **fields) -> Path:
    path.write_text("".join(json.dumps(_latency(1.0 + i, **fields)) + "\n" for i in range(n)))
    return path


def test_future_schema_records_are_skipped_on_import_and_never_a_baseline(tmp_path):
    results = _results(tmp_path / "r.jsonl")
    future = {**_latency(9.0), "schema": "edgebench.result/9"}
    with open(results, "a") as f:
        f.write(json.dumps(future) + "\n")
    db = tmp_path / "h.db"
    proc = edgebench("history", "import", str(results), "--db", str(db), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["added"] == 2 and report["other_schema"] == 1
    assert "1 record(s) of another schema" in proc.stderr and "upgrade edgebench" in proc.stderr
    assert history.count(db) == 2
    # a database that took one before this fix: the gate's baseline query leaves it out, as `report` does
    conn = sqlite3.connect(db)
    conn.execute(f"INSERT INTO records ({', '.join(history._COLUMNS)}) VALUES ({', '.join('?' * len(history._COLUMNS))})",
                 history.row_of(future))
    conn.commit()
    conn.close()
    assert history.count(db) == 3
    assert sorted(r["latency_ms"]["p50"] for r in history.query(db, model="tiny", runtime="ort")) == [1.0, 2.0]


def _append_in_a_process(results: Path, db: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """What a measurement does after measuring: append one record to the JSONL file and the history."""
    code = ("from edgebench.results.store import append_record\n"
            f"append_record({_latency(3.0)!r}, {str(results)!r}, db={db!r})")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**__import__("os").environ, **env})


def _foreign(path: Path, user_version: int = 0, table: str = "users") -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {table} (name TEXT, email TEXT)")
    conn.execute(f"INSERT INTO {table} VALUES ('ada', 'ada@example.com')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize(("user_version", "table"), [(0, "users"), (3, "records")])
def test_foreign_sqlite_file_is_never_written_or_replaced(tmp_path, user_version, table):
    """Another application's SQLite file at --db: rebuild, import and a measurement's write refuse it, and
    leave every byte of it as it was (rebuild used to replace it without a backup)."""
    results = _results(tmp_path / "r.jsonl")
    db = _foreign(tmp_path / "app.db", user_version, table)
    before = _sha(db)
    for args in (("rebuild", "--results", str(results)), ("import", str(results))):
        proc = edgebench("history", *args, "--db", str(db), cwd=tmp_path)
        assert_one_line_error(proc, "not an edgebench history", "another file")
        assert "run `edgebench history rebuild" not in proc.stderr
        assert _sha(db) == before and not list(tmp_path.glob("app.db?*"))
    proc = _append_in_a_process(tmp_path / "m.jsonl", db=str(db))
    assert proc.returncode == 0 and "not an edgebench history" in proc.stderr, proc.stderr
    assert _sha(db) == before and len(read_records(tmp_path / "m.jsonl").records) == 1


def test_damaged_file_is_kept_aside_when_rebuilt(tmp_path):
    results = _results(tmp_path / "r.jsonl", 3)
    db = tmp_path / "edgebench.db"
    db.write_bytes(b"not a database at all " * 50)
    before = _sha(db)
    proc = edgebench("history", "rebuild", "--db", str(db), "--results", str(results), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [backup] = tmp_path.glob("edgebench.db.damaged-*")
    assert str(backup) in proc.stderr and _sha(backup) == before and history.count(db) == 3


def test_directory_at_the_db_path_is_one_line_without_rebuild_advice(tmp_path):
    results = _results(tmp_path / "r.jsonl")
    (tmp_path / "edgebench.db").mkdir()  # the default database beside the results file
    for args in (("import", str(results)), ("rebuild", "--results", str(results))):
        proc = edgebench("history", *args, cwd=tmp_path, env={"EDGEBENCH_DB": ""})
        assert_one_line_error(proc, "is a directory", "--db FILE")
        assert "run `edgebench history rebuild" not in proc.stderr
    proc = edgebench("history", "show", "--model", "tiny", "--runtime", "ort", cwd=tmp_path,
                     env={"EDGEBENCH_DB": str(tmp_path / "edgebench.db")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "directory" in proc.stderr
    warned = _append_in_a_process(results, EDGEBENCH_DB="")
    assert warned.returncode == 0 and "is a directory" in warned.stderr and "rebuild" not in warned.stderr
    assert len(read_records(results).records) == 3


def test_newer_history_says_upgrade_and_is_never_rebuilt(tmp_path):
    results = _results(tmp_path / "r.jsonl")
    db = tmp_path / "h.db"
    history.insert(db, [_latency(7.0)])
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {history.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    for args in (("import", str(results)), ("rebuild", "--results", str(results)),
                 ("show", "--model", "tiny", "--runtime", "ort")):
        proc = edgebench("history", *args, "--db", str(db), cwd=tmp_path)
        assert_one_line_error(proc, "newer edgebench", "upgrade edgebench")
        assert "history rebuild" not in proc.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1  # not erased
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION + 1


def test_importing_a_binary_file_is_exit_2_as_report_is(tmp_path):
    import random
    blob = tmp_path / "weights.bin"
    blob.write_bytes(random.Random(22).randbytes(4096))
    db = tmp_path / "h.db"
    assert_one_line_error(edgebench("history", "import", str(blob), "--db", str(db), cwd=tmp_path),
                          "no edgebench records", "nothing imported")
    assert_one_line_error(edgebench("report", "--results", str(blob), cwd=tmp_path))
    assert not db.exists() or history.count(db) == 0
    # with a good file beside it: still refused, and nothing of the good file imported either
    good = _results(tmp_path / "good.jsonl")
    assert_one_line_error(edgebench("history", "import", str(good), str(blob), "--db", str(db), cwd=tmp_path),
                          str(blob))
    assert not db.exists() or history.count(db) == 0


def test_a_failed_rebuild_leaves_no_rebuild_file_and_the_old_database(tmp_path):
    """The swap fails after the new database is built (here: a folder where the old -shm file would be,
    so it cannot be removed, as a read-only folder fails for a non-root user)."""
    results = _results(tmp_path / "r.jsonl", 3)
    db = tmp_path / "h.db"
    history.insert(db, [_latency(5.0)])
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    (tmp_path / "h.db-shm").mkdir()
    (tmp_path / "h.db-shm" / "keep").write_text("x")
    with pytest.raises(history.HistoryError, match="cannot rebuild .* the database is as it was"):
        history.rebuild(db, [results])
    assert not list(tmp_path.glob("*.rebuild*"))
    assert history.count(db) == 1
    proc = edgebench("history", "rebuild", "--db", str(db), "--results", str(results), cwd=tmp_path)
    assert_one_line_error(proc, "cannot rebuild", "the database is as it was")  # exit 2, not an internal error
    assert not list(tmp_path.glob("*.rebuild*")) and history.count(db) == 1


def test_migrations_split_only_between_complete_statements(tmp_path):
    step = """
    CREATE TABLE notes (note TEXT DEFAULT 'a;b');  -- a comment; with a semicolon
    CREATE TRIGGER records_note AFTER INSERT ON records BEGIN
        INSERT INTO notes (note) VALUES ('added; ' || NEW.id);
        INSERT INTO notes (note) VALUES ('end;');
    END;
    """
    assert len(history.statements(step)) == 2
    assert history.statements("SELECT 1; SELECT ';'") == ["SELECT 1;", "SELECT ';'"]
    db = tmp_path / "h.db"
    history.insert(db, [_latency(1.0)])
    conn = sqlite3.connect(db, isolation_level=None)
    history._migrate(conn, history.MIGRATIONS + (step,))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION + 1
    conn.execute("INSERT INTO records (id, kind, timestamp, json) VALUES ('x', 'latency', '2026', '{}')")
    assert [r[0] for r in conn.execute("SELECT note FROM notes ORDER BY rowid")] == ["added; x", "end;"]
    assert conn.execute("SELECT dflt_value FROM pragma_table_info('notes')").fetchone()[0] == "'a;b'"
    conn.close()


def test_a_team_that_only_gates_sees_its_gates_in_the_trend(tmp_path):
    """Two real gates of one model (budgets only, then A/B): `history show` lists the sides they measured,
    marked as gate rounds (it used to answer "no latency records" with exit 2); an empty trend is exit 0."""
    from tiny_onnx import classifier
    (tmp_path / "base").mkdir()
    classifier(tmp_path / "tiny.onnx")
    classifier(tmp_path / "base" / "tiny.onnx")
    (tmp_path / "budget.toml").write_text('[[budget]]\nmodel = "tiny"\np50_ms = 1e6\n')
    db, env = tmp_path / "h.db", {"GITHUB_STEP_SUMMARY": "", "EDGEBENCH_DB": str(tmp_path / "h.db")}
    fast = ("--runtime", "ort", "--rounds", "1", "--max-rounds", "1", "--round-seconds", "0.2", "--block", "5",
            "--settle-seconds", "0", "--results", str(tmp_path / "r.jsonl"))
    budget = edgebench("gate", "--candidate", "tiny.onnx", "--budget", "budget.toml", *fast, cwd=tmp_path, env=env)
    assert budget.returncode == 0, budget.stderr
    ab = edgebench("gate", "--baseline", "base/tiny.onnx", "--candidate", "tiny.onnx", *fast, cwd=tmp_path, env=env)
    assert ab.returncode in (0, 1, 3), ab.stderr
    shown = edgebench_in_process("history", "show", "--model", "tiny", "--runtime", "ort", "--db", str(db), "--json",
                                 cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert [r["source"] for r in rows] == ["gate budget candidate", "gate ab candidate", "gate ab baseline"]
    assert all(r["p50"] > 0 for r in rows) and rows[0]["p50_ci95"][0] <= rows[0]["p50"] <= rows[0]["p50_ci95"][1]
    table = edgebench_in_process("history", "show", "--model", "tiny", "--runtime", "ort", "--db", str(db),
                                 cwd=tmp_path, env={"COLUMNS": "200"})
    assert table.returncode == 0 and "3 measured by gate rounds" in table.stdout and "gate ab baseline" in table.stdout
    empty = edgebench_in_process("history", "show", "--model", "tiny", "--runtime", "ort", "--precision", "int8",
                                 "--db", str(db), cwd=tmp_path)
    assert empty.returncode == 0 and empty.stderr == "", empty.stderr
    assert empty.stdout.strip() == f"no latency or gate records of tiny on ort int8 in {db}"
