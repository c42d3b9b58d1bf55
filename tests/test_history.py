"""The SQLite history: both stores, concurrency of real processes, idempotent import, rebuild, migrations."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, edgebench, edgebench_in_process

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
    assert row[4] == history.fingerprint_key(history.fingerprint(record))
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
    assert history.fingerprint_key(history.fingerprint(a)) == history.fingerprint_key(history.fingerprint(b))
    b["host"]["cpu"] = "Intel Xeon"
    b["host"]["cpu_flags"] = ["avx2", "avx512_vnni", "avx512f"]
    diff = history.differences(history.fingerprint(a), history.fingerprint(b))
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
    fa, fb = history.fingerprint(a), history.fingerprint(b)
    assert fa["device"] == "aa11" and history.fingerprint_key(fa) != history.fingerprint_key(fb)
    assert "device: 'aa11' vs 'bb22'" in history.differences(fa, fb)
