"""The results store under real crashes: writer processes appending big records are SIGKILLed at random
moments, round after round, and the file must always read back as valid JSON lines with at most a damaged
last line, keep every complete record it ever held, and be repaired by the next append.

A write failed by the operating system (here a file size limit, RLIMIT_FSIZE: EFBIG) must leave the file
as it was and the records in a rescue file next to it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgebench.results.store import QUARANTINE_SUFFIX, append_records, read_records

MIN_ROUNDS = 8  # and until MIN_FRAGMENTS rounds ended inside a write, within LIMIT_SECONDS (about 10 s here)
MIN_FRAGMENTS = 2
LIMIT_SECONDS = 40.0

# A writer appends records of 64 KiB .. 4 MiB, in batches of one to three, until it is killed: the kernel
# cuts a write of many pages short when SIGKILL arrives, which leaves a fragment of a line.
WRITER = """
import os, random, sys
from edgebench.results.store import ResultsFile
rng = random.Random(int(sys.argv[2]))
results = ResultsFile(sys.argv[1])
sys.stdout.write("ready\\n"); sys.stdout.flush()
n = 0
while True:
    batch = []
    for _ in range(rng.randint(1, 3)):
        n += 1
        batch.append({"kind": "latency", "id": f"{sys.argv[2]}-{n}", "pad": "x" * rng.randint(1 << 16, 1 << 22)})
    results.append(batch)
"""


def _complete_lines(path: Path) -> tuple[list[bytes], bytes]:
    """(lines that end in a newline, the unterminated rest)."""
    data = path.read_bytes() if path.exists() else b""
    *lines, rest = data.split(b"\n")
    return lines, rest


def _writers(path: Path, seeds: list[int]) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(seed)], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONHASHSEED": "0"}) for seed in seeds]
    for proc in procs:
        assert proc.stdout.readline() == b"ready\n"
    return procs


def test_sigkilled_writers_leave_at_most_a_damaged_last_line_and_the_next_append_repairs_it(tmp_path):
    path = tmp_path / "results.jsonl"
    rng = random.Random(11)
    ids: set[str] = set()
    rounds = fragments = 0
    start = time.monotonic()
    while (rounds < MIN_ROUNDS or fragments < MIN_FRAGMENTS) and time.monotonic() - start < LIMIT_SECONDS:
        procs = _writers(path, [rounds * 10 + i for i in range(rng.randint(1, 3))])
        time.sleep(rng.uniform(0.0, 0.4))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            proc.wait()
            proc.stdout.close()
        lines, rest = _complete_lines(path)
        records = [json.loads(line) for line in lines]  # every complete line is a whole record
        assert all(isinstance(r, dict) for r in records)
        now = {r["id"] for r in records}
        assert ids <= now, "a complete record was lost"
        ids = now
        fragments += bool(rest)
        rounds += 1
    append_records([{"kind": "latency", "id": "after"}], path)  # the next append repairs the damage
    lines, rest = _complete_lines(path)
    assert rest == b"" and {json.loads(line)["id"] for line in lines} == ids | {"after"}
    read = read_records(path)
    assert read.lines == len(ids) + 1 and read.skipped_count == read.lines  # no model: they fail the schema
    quarantined = Path(f"{path}{QUARANTINE_SUFFIX}")
    if fragments:
        assert quarantined.read_bytes().count(b"\n") >= 1
    print(f"{rounds} rounds, {len(ids)} records, {fragments} rounds ended in a fragment")
    assert fragments, "no kill landed inside a write: the test did not exercise the repair"


RLIMITED = """
import resource, signal, sys
from edgebench.results.store import ResultsNotSaved, append_records
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    append_records([{"kind": "latency", "id": "big", "pad": "y" * int(sys.argv[3])}], sys.argv[1])
except ResultsNotSaved as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_refused_write_is_truncated_back_and_rescued_next_to_the_results(tmp_path):
    path = tmp_path / "results.jsonl"
    append_records([{"kind": "latency", "id": "old", "pad": "o" * (64 << 10)}], path)
    before = path.read_bytes()
    limit = 1 << 20  # per file: the results file cannot take the record, a new rescue file can
    proc = subprocess.run([sys.executable, "-c", RLIMITED, str(path), str(limit), str(limit - (32 << 10))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "File too large: 1 record(s) not appended" in proc.stdout and "the file is as it was" in proc.stdout
    assert path.read_bytes() == before
    (rescued,) = tmp_path.glob("results.jsonl.unsaved-*.jsonl")
    assert str(rescued) in proc.stdout
    assert json.loads(rescued.read_text())["id"] == "big"
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # only the child was limited


def test_a_file_moved_away_during_a_command_is_not_appended_to_blindly(tmp_path):
    from edgebench.results.store import ResultsFile
    path, moved = tmp_path / "results.jsonl", tmp_path / "archived.jsonl"
    results = ResultsFile(path)  # opened before the work, as the CLI does
    assert not path.exists()  # created by the first append only
    results.append([{"kind": "latency", "id": "1"}])
    path.rename(moved)  # rotated by the user while the command measures
    results.append([{"kind": "latency", "id": "2"}])
    results.close()
    assert [json.loads(line)["id"] for line in moved.read_text().splitlines()] == ["1"]
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["2"]
