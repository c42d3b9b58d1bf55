"""A full disk, for real: a 1 MiB tmpfs mounted for the test (root only; skipped otherwise, with the reason).

An append that runs out of space is truncated back to the file as it was, says "no space left on device",
and leaves its records in a rescue file (here in the temp folder: the full disk cannot hold one); once
space is freed the next append is whole. A failed export or manifest write leaves no partial file.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import tiny_onnx
from click.testing import CliRunner

from edgebench.portable.errors import EdgebenchError
from edgebench.results.store import ResultsNotSaved, append_records, read_records

PAGE = 4096


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A mounted 1 MiB tmpfs, and a temp folder elsewhere for the rescue files."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as in CI): {proc.stderr.strip()}")
    rescue = tmp_path / "tmp"
    rescue.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    try:
        yield mount, rescue
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write until the file system is full; the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * PAGE)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def record(n: int, pad: int = 0) -> dict:
    return {"kind": "latency", "id": f"r{n}", "pad": "p" * pad}


@pytest.mark.system
def test_short_write_and_zero_free_are_truncated_back_and_rescued(full_disk):
    mount, rescue = full_disk
    results = mount / "results.jsonl"
    append_records([record(1, 100)], results)  # leaves most of its page free: the next write is cut short
    filler = fill(mount)
    before = results.read_bytes()
    with pytest.raises(ResultsNotSaved, match="no space left on device: 1 record.*the file is as it was") as short:
        append_records([record(2, 3 * PAGE)], results)
    assert results.read_bytes() == before
    assert short.value.rescued.parent == rescue and json.loads(short.value.rescued.read_text())["id"] == "r2"

    results.write_bytes(before + b" " * (-len(before) % PAGE))  # its page full too: zero bytes free
    with pytest.raises(ResultsNotSaved, match="no space left on device"):
        append_records([record(3)], results)
    assert len(results.read_bytes()) % PAGE == 0

    filler.unlink()  # space again: the next append is whole, never glued to a fragment
    results.write_bytes(before)
    append_records([record(4)], results)
    assert [json.loads(line)["id"] for line in results.read_text().splitlines()] == ["r1", "r4"]


@pytest.mark.system
def test_rescue_on_stdout_when_no_folder_can_hold_the_records(full_disk, monkeypatch):
    mount, _rescue = full_disk
    monkeypatch.setattr(tempfile, "tempdir", str(mount))  # the temp folder is on the full disk too
    results = mount / "results.jsonl"
    append_records([record(1)], results)
    fill(mount)
    results.write_bytes(results.read_bytes() + b" " * (-results.stat().st_size % PAGE))
    with pytest.raises(ResultsNotSaved, match="they are printed on stdout") as caught:
        append_records([record(2)], results)
    assert caught.value.rescued is None and json.loads(caught.value.unsaved[0])["id"] == "r2"


@pytest.mark.system
def test_run_on_a_full_disk_exits_2_and_keeps_the_measurement(full_disk, tmp_path, monkeypatch):
    from edgebench.cli import main
    mount, rescue = full_disk
    results = mount / "results.jsonl"
    append_records([record(1, 3000)], results)  # its page has room for less than a latency record
    onnx = tiny_onnx.classifier(tmp_path / "tiny.onnx")
    fill(mount)
    before = results.read_bytes()

    def run():
        return CliRunner().invoke(main, ["run", "--runtime", "ort", "--onnx", str(onnx), "--out", str(tmp_path / "a"),
                                         "--results", str(results), "--threads", "1", "--warmup", "1",
                                         "--warmup-seconds", "0", "--iterations", "3", "--min-seconds", "0",
                                         "--retries", "0"])

    result = run()
    assert result.exit_code == 2, result.output
    assert "no space left on device: 1 record(s) not appended" in result.stderr and "Traceback" not in result.output
    assert results.read_bytes() == before
    (saved,) = rescue.glob("results.jsonl.unsaved-*.jsonl")
    measured = json.loads(saved.read_text())
    assert measured["model"]["name"] == "tiny" and measured["latency_ms"]["p50"] > 0
    assert read_records(saved).records == [measured]  # a rescue file is a results file

    monkeypatch.setattr(tempfile, "tempdir", str(mount))  # no folder can hold a rescue file: stdout keeps it
    result = run()
    assert result.exit_code == 2 and "they are printed on stdout" in result.stderr
    assert json.loads(result.stdout)["latency_ms"]["p50"] > 0 and results.read_bytes() == before


@pytest.mark.system
def test_export_and_manifest_on_a_full_disk_leave_no_partial_file(full_disk, tmp_path):
    import torch

    from edgebench.build.artifacts import Artifacts
    from edgebench.build.export import import_onnx
    from edgebench.build.onnx_export import export_onnx
    mount, _rescue = full_disk
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 256, 3), torch.nn.Conv2d(256, 256, 3), torch.nn.Flatten(1),
                                torch.nn.LazyLinear(10))
    model(torch.zeros(1, 3, 8, 8))
    fill(mount)
    target = mount / "fp32" / "model.onnx"
    with pytest.raises(EdgebenchError, match="No space left on device"):
        target.parent.mkdir()
        export_onnx(model, (3, 8, 8), target)
    assert not target.exists() and os.listdir(target.parent) == []

    big = tmp_path / "big.onnx"
    export_onnx(model, (3, 8, 8), big)
    with pytest.raises(EdgebenchError, match="cannot copy .* No space left on device"):
        import_onnx(big, ("ort",), out=mount / "imported")
    assert [p.name for p in (mount / "imported" / "big" / "fp32").iterdir()] == []

    artifacts = Artifacts(mount / "manifest-test", {"schema": "edgebench.manifest/1", "pad": "m" * PAGE * 4})
    with pytest.raises(EdgebenchError, match="cannot write .*manifest.json: No space left on device"):
        artifacts.save()
    assert os.listdir(artifacts.root) == []
