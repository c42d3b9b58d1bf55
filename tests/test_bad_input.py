"""Issue 11: every defect found by trying to break edgebench, one case each, through the real CLI.

Each case checks the exit code, the key words of the message, that no traceback was printed,
and that the results file is intact: every line a readable record, as many as expected. The
CLI runs in this process (Click's CliRunner, one import of torch for all cases); measurements
still run in their real worker subprocesses, on a 10-class ONNX model that measures in a second.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import tiny_onnx
from click.testing import CliRunner
from onnx import TensorProto

from edgebench.cli import main
from edgebench.portable import strict_json
from edgebench.results.schema import problem

FAST = ["--warmup", "1", "--warmup-seconds", "0", "--iterations", "3", "--min-seconds", "0", "--retries", "0"]


@dataclass
class Env:
    root: Path
    seed: Path  # two good records from a real run

    def results(self, name: str, records: int = 2, tail: bytes = b"") -> Path:
        """A results file holding the first ``records`` seed records, then ``tail``."""
        path = self.root / f"{name}.jsonl"
        path.write_bytes(b"".join(self.seed.read_bytes().splitlines(keepends=True)[:records]) + tail)
        return path

    def data(self, name: str, images: int = 12, rows: tuple[str, ...] = (), encoding: str = "utf-8",
             bom: bool = False) -> Path:
        """A labels.csv folder of PNG photos-to-be (seeded noise), with extra ``rows``."""
        folder = self.root / name
        folder.mkdir()
        rng = np.random.default_rng(len(name))
        lines = ["file,class_index"]
        for i in range(images):
            cv2.imwrite(str(folder / f"img{i:02d}.png"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
            lines.append(f"img{i:02d}.png,{i % 10}")
        text = "\n".join([*lines, *rows]) + "\n"
        (folder / "labels.csv").write_bytes(b"\xef\xbb\xbf" * bom + text.encode(encoding))
        return folder

    def onnx(self, name: str, **kwargs) -> Path:
        return tiny_onnx.classifier(self.root / f"{name}.onnx", **kwargs)


def cli(*args: object, env: dict | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=True)


def run_tiny(e: Env, results: Path, *extra: object, onnx: Path | None = None, out: str = "art"):
    return cli("run", "--runtime", "ort", "--onnx", onnx or e.root / "tiny.onnx", "--out", e.root / out,
               "--results", results, "--threads", "1", *FAST, *extra)


def records_of(path: Path) -> list[dict]:
    """Every line of ``path`` must be a strict-JSON record that the reader's schema check accepts."""
    lines = path.read_bytes().splitlines()
    assert path.read_bytes().endswith(b"\n") or not lines, "the file must end with a newline"
    found = [strict_json.loads(line) for line in lines]
    assert all(problem(r) is None for r in found), [problem(r) for r in found]
    return found


@pytest.fixture(scope="module")
def e(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("bad-input")
    tiny_onnx.classifier(root / "tiny.onnx")
    seed = root / "seed.jsonl"
    result = cli("run", "--runtime", "ort", "--onnx", root / "tiny.onnx", "--out", root / "art", "--results", seed,
                 "--threads", "1", "--batch", "1,2", *FAST)
    assert result.exit_code == 0, result.output
    assert len(records_of(seed)) == 2
    return Env(root, seed)


@dataclass
class Case:
    """One defect of issue 11: ``invoke(env)`` returns (CLI result, results file or None); the file must then
    hold ``records`` readable records, and ``check(env, result, results)`` may look further."""

    defect: str
    invoke: Callable[[Env], tuple]
    exit_code: int
    words: tuple[str, ...] = ()
    records: int | None = None
    check: Callable[[Env, object, Path | None], None] = field(default=lambda _e, _r, _f: None)


def export_tiny(e: Env, out: str, *extra: object):
    return cli("export", "--onnx", e.root / "tiny.onnx", "--runtime", "ort", "--out", e.root / out, *extra)


def _huge_png(path: Path, side: int = 100_000) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _no_final_newline(e: Env):
    results = e.results("no-newline")
    results.write_bytes(results.read_bytes().rstrip(b"\n"))
    return run_tiny(e, results), results


def _fragment(e: Env):
    return run_tiny(e, results := e.results("fragment", tail=b'{"kind": "lat')), results


def _fragment_quarantined(e: Env, _result, results: Path) -> None:
    assert Path(f"{results}.damaged").read_bytes() == b'{"kind": "lat\n'


def _immutable(e: Env):
    results = e.results("immutable")
    if subprocess.run(["chattr", "+i", str(results)], check=False, capture_output=True).returncode:
        pytest.skip("chattr +i needs root and a file system with immutable files")
    try:
        return run_tiny(e, results, out="art-immutable"), results
    finally:
        subprocess.run(["chattr", "-i", str(results)], check=True)


def _report(e: Env, name: str, tail: bytes, records: int = 2):
    return cli("report", "--results", results := e.results(name, records, tail), "--json"), results


def _wrong_types(e: Env):
    record = json.loads(e.seed.read_text().splitlines()[0])
    return _report(e, "types", json.dumps({**record, "latency_ms": "fast"}).encode() + b"\n")


def _good_rows_reported(_e: Env, result, _results) -> None:
    (row,) = json.loads(result.stdout)
    assert row["model"] == "tiny" and row["ort/fp32"]["p50"] > 0


def _failed_attempts(e: Env):
    """A good CPU record, then a failed attempt on CUDA and a newer failed attempt with the same settings."""
    good = json.loads(e.seed.read_text().splitlines()[0])
    cuda = {**good, "id": "f1", "status": "failed", "error": "no CUDAExecutionProvider", "latency_ms": None,
            "timestamp": "2999-01-01T00:00:00+00:00", "runtime": {**good["runtime"], "device": "cuda"}}
    same_key = {**cuda, "id": "f2", "runtime": good["runtime"], "error": "worker crashed"}
    tail = "".join(json.dumps(r) + "\n" for r in (cuda, same_key)).encode()
    return cli("report", "--results", results := e.results("attempts", 1, tail), "--threads", "1", "--json"), results


def _good_number_beside_failures(_e: Env, result, _results) -> None:
    (row,) = json.loads(result.stdout)
    assert row["ort/fp32"]["p50"] > 0 and row["ort/fp32"]["newer_failure"]["error"] == "worker crashed"
    assert row["ort:cuda/fp32"]["status"] == "failed"


def _custom_onnx(name: str, **kwargs) -> Callable[[Env], tuple]:
    def invoke(e: Env):
        return run_tiny(e, results := e.results(name), onnx=e.onnx(name, **kwargs), out=f"art-{name}"), results
    return invoke


def _one_record(kind: str, verdict: str | None = None) -> Callable[[Env, object, Path], None]:
    def check(_e: Env, _result, results: Path) -> None:
        (record,) = records_of(results)
        assert record["kind"] == kind and record["status"] == "ok"
        assert verdict is None or record["stability"]["verdict"] == verdict
    return check


def _accuracy_warned_once(e: Env, result, results: Path) -> None:
    _one_record("accuracy")(e, result, results)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(set(warnings)), result.stderr
    assert any("do not exist" in w for w in warnings) and any("fewer than --num" in w for w in warnings)


def _huge_header(e: Env):
    data = e.data("huge", rows=("a-huge.png,3",))
    _huge_png(data / "a-huge.png")
    return export_tiny(e, "art-huge", "--data", data), None


def _folder_listed(e: Env):
    data = e.data("dirs", rows=("sub,1",))
    (data / "sub").mkdir()
    return export_tiny(e, "art-dirs", "--data", data), None


def _cached_calibration(e: Env):
    """The same images in a second folder: the cached INT8 engine is reused, and the manifest names
    the second folder with its own (no) warnings."""
    first = e.data("cal-first", rows=("gone.png,1",))
    second = e.root / "cal-second"
    second.mkdir()
    for image in first.glob("*.png"):
        (second / image.name).write_bytes(image.read_bytes())
    (second / "labels.csv").write_text("\n".join(first.joinpath("labels.csv").read_text().splitlines()[:-1]) + "\n")
    int8 = ("--precision", "int8", "--num", "8", "--data")
    assert export_tiny(e, "art-cal", *int8, first).exit_code == 0
    return export_tiny(e, "art-cal", *int8, second), None


def _calibration_names_this_folder(e: Env, result, _results) -> None:
    calibration = json.loads((e.root / "art-cal" / "tiny" / "manifest.json").read_text())["int8"]["calibration"]
    assert calibration["folder"] == str((e.root / "cal-second").resolve())
    assert not [w for w in calibration["warnings"] if "do not exist" in w]
    assert "do not exist" not in result.stderr


def _silent_ssh_port(e: Env):
    """A port that accepts the connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    held: list = []

    def accept() -> None:
        try:
            held.append(server.accept())
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    bundle = e.root / "bundle.tar.gz"
    bundle.write_bytes(b"never uploaded")
    results = e.results("ssh")
    try:
        return cli("deploy", "run", "--host", "me@127.0.0.1", "--port", server.getsockname()[1], "--bundle", bundle,
                   "--known-hosts", e.root / "known_hosts", "--results", results, "--connect-timeout", "1"), results
    finally:
        server.close()


def _manifest(name: str, make: Callable[[Path], None]) -> Callable[[Env], tuple]:
    def invoke(e: Env):
        folder = e.root / name / "tiny"
        folder.mkdir(parents=True)
        make(folder / "manifest.json")
        return export_tiny(e, name), None
    return invoke


def _no_temp_files(name: str) -> Callable[[Env, object, Path | None], None]:
    def check(e: Env, _result, _results) -> None:
        assert not [p.name for p in (e.root / name / "tiny").iterdir() if p.name.startswith(".")]
    return check


def _not_started(out: str) -> Callable[[Env, object, Path | None], None]:
    """The command stopped before any work: it made no artifacts folder."""
    def check(e: Env, _result, _results) -> None:
        assert not (e.root / out).exists()
    return check


def _data_export(name: str, **data) -> Callable[[Env], tuple]:
    def invoke(e: Env):
        return export_tiny(e, f"art-{name}", "--data", e.data(name, **data)), None
    return invoke


THREADS_OVER = str((os.cpu_count() or 1) + 1)

CASES = {
    # 1: a last line without its newline is ended (it is a whole record), never merged with the next
    "1-no-final-newline": Case("1", _no_final_newline, 0, records=3),
    # 2: the fragment a full disk (or a crash) left is quarantined, never glued to the next record
    "2-fragment-then-next-run": Case("2", _fragment, 0, records=3, check=_fragment_quarantined),
    # 3: a results file that cannot be appended to stops the command before any work
    "3-immutable-results-file": Case("3", _immutable, 2, ("cannot append to results file", "not permitted"),
                                     records=2, check=_not_started("art-immutable")),
    "3-empty-results-path": Case("3", lambda e: (run_tiny(e, "", out="art-empty"), None), 2,
                                 ("--results", "is empty"), check=_not_started("art-empty")),
    "3-results-is-a-folder": Case("3", lambda e: (run_tiny(e, e.root, out="art-folder"), None), 2,
                                  ("--results", "is a directory"), check=_not_started("art-folder")),
    # 4: report shows every good line and counts the others
    "4-report-non-utf8-line": Case("4", lambda e: _report(e, "utf", b'{"kind": "latency", "model": "\xff"}\n'), 0,
                                   ("skipped 1 of 3 lines", "failing the schema check"), check=_good_rows_reported),
    "4-report-array-line": Case("4", lambda e: _report(e, "array", b"[1, 2]\n"), 0,
                                ("skipped 1 of 3", "not an object but an array"), check=_good_rows_reported),
    "4-report-string-line": Case("4", lambda e: _report(e, "string", b'"x"\n'), 0,
                                 ("skipped 1 of 3", "not an object but a string"), check=_good_rows_reported),
    "4-report-wrong-field-types": Case("4", _wrong_types, 0, ("skipped 1 of 3", "latency_ms is a string"),
                                       check=_good_rows_reported),
    "4-report-nothing-readable": Case("4", lambda e: _report(e, "none", b"[1]\nnot json\n", records=0), 2,
                                      ("no records", "skipped 2 of 2")),
    # 5: NaN and Infinity are refused where they are typed
    "5-max-drop-nan": Case("5", lambda e: (run_tiny(e, e.root / "x.jsonl", "--precision", "int8", "--max-drop",
                                                    "nan"), None), 2, ("--max-drop", "not a finite number")),
    "5-min-seconds-nan": Case("5", lambda e: (run_tiny(e, e.root / "x.jsonl", "--min-seconds", "nan"), None), 2,
                              ("--min-seconds", "not a finite number")),
    "5-min-seconds-inf": Case("5", lambda e: (run_tiny(e, e.root / "x.jsonl", "--min-seconds", "inf"), None), 2,
                              ("--min-seconds", "'inf' is not a finite number")),
    # 6: a failed attempt, on another device or with the same settings, never hides the good number
    "6-failed-attempts-beside-good-number": Case("6", _failed_attempts, 0, records=3,
                                                 check=_good_number_beside_failures),
    # 7: a user's ONNX file is checked before anything is built; the runtime's own limit is quoted in full
    "7-opset-newer-than-runtime": Case("7", _custom_onnx("opset", opset=28, ir_version=11), 2, (
        "ort 1.", "cannot load it", "Opset 28 is under development", "support for domain ai.onnx is till opset"),
        records=2),
    "7-ir-version-newer": Case("7", _custom_onnx("ir", ir_version=14), 2,
                               ("Unsupported model IR version: 14, max supported IR version:",), records=2),
    "7-two-inputs": Case("7", _custom_onnx("two", inputs=2), 2, ("has 2 inputs (input, second)",), records=2),
    "7-nhwc-input": Case("7", _custom_onnx("nhwc", layout="NHWC"), 2, ("NHWC", "batch x 32 x 32 x 3"), records=2),
    "7-uint8-input": Case("7", _custom_onnx("uint8", dtype=TensorProto.UINT8), 2, ("takes uint8 input", "float32"),
                          records=2),
    "7-image-to-image": Case("7", _custom_onnx("i2i", image_to_image=True), 2,
                             ("batch x 4 x 32 x 32", "not batch x classes"), records=2),
    # 8 (and 12, each warning once): accuracy and INT8 on a user's ONNX file
    "8-onnx-accuracy": Case("8", lambda e: (run_tiny(e, results := e.results("acc", 0), "--accuracy", "--data",
                                                     e.data("acc-data", rows=("gone.png,1",))), results), 0,
                            ("fewer than --num",), records=1, check=_accuracy_warned_once),
    "8-onnx-int8": Case("8", lambda e: (run_tiny(e, results := e.results("int8", 0), "--precision", "int8", "--num",
                                                 "8", "--data", e.data("int8-data"), out="art-int8"), results), 0,
                        records=1, check=_one_record("accuracy")),
    # 9: threads beyond the cores
    "9-threads-999": Case("9", lambda e: (run_tiny(e, e.root / "x.jsonl", "--threads", "999"), None), 2,
                          ("--threads", "more than 4x")),
    "9-threads-above-cores": Case("9", lambda e: (run_tiny(e, results := e.results("over", 0), "--threads",
                                                           THREADS_OVER), results), 0,
                                  ("more than the", "marked oversubscribed"), records=1,
                                  check=_one_record("latency", "oversubscribed")),
    # 10: data folders fail cleanly
    "10-labels-not-utf8": Case("10", _data_export("latin", rows=("caf\u00e9.png,1",), encoding="latin-1"), 2,
                               ("labels.csv is not UTF-8", "0xe9")),
    "10-absolute-path-in-labels": Case("10", lambda e: _data_export("abs", rows=(f"{e.root / 'tiny.onnx'},1",))(e), 2,
                                       ("labels.csv line 14", "is not inside the data folder")),
    "10-dotdot-path-in-labels": Case("10", _data_export("up", rows=("../acc-data/img00.png,1",)), 2,
                                     ("'../acc-data/img00.png' is not inside the data folder",)),
    "10-oversized-image-header": Case("10", _huge_header, 0, ("1 of 13 verification images unreadable, skipped",
                                                             "claims 100000x100000 pixels, over the limit")),
    # 11: an absent device is exit 2, before any work, and leaves no failed record
    "11-ort-cuda-absent": Case("11", lambda e: (run_tiny(e, results := e.results("cuda"), "--device", "cuda",
                                                         out="art-cuda"), results), 2,
                               ("ort has no device 'cuda'", "available: cpu"), records=2, check=_not_started("art-cuda")),
    "11-openvino-gpu-absent": Case("11", lambda e: (cli("run", "--runtime", "openvino", "--onnx", e.root / "tiny.onnx",
                                                        "--out", e.root / "art-gpu", "--results",
                                                        results := e.results("gpu"), "--device", "GPU", *FAST),
                                                    results), 2, ("openvino has no device 'GPU'", "available: CPU"),
                                   records=2, check=_not_started("art-gpu")),
    # 12: messages that pointed at the wrong problem
    "12-labels-with-byte-order-mark": Case("12", _data_export("bom", bom=True), 0),
    "12-cached-calibration-names-this-folder": Case("12", _cached_calibration, 0,
                                                    check=_calibration_names_this_folder),
    "12-folder-listed-in-labels": Case("12", _folder_listed, 0,
                                       ("1 entries listed in labels.csv are folders, not image files",)),
    "12-ssh-port-that-never-answers": Case("12", _silent_ssh_port, 2, ("sent no SSH banner in 1 s", "timed out"),
                                           records=2),
    # 13: smaller ones
    "13-sweep-no-models": Case("13", lambda e: (cli("sweep", "--models", "", "--results", e.root / "s.jsonl"), None),
                               2, ("--models", "names nothing")),
    "13-sweep-int8-without-data": Case("13", lambda e: (cli("sweep", "--models", "squeezenet1_1", "--runtimes", "ort",
                                                            "--precisions", "int8", "--out", e.root / "art-sweep",
                                                            "--results", e.root / "s.jsonl",
                                                            env={"EDGEBENCH_DATA": None}), None), 2,
                                       ("--precisions int8 needs calibration images",), check=_not_started("art-sweep")),
    "13-sweep-unknown-precision": Case("13", lambda e: (cli("sweep", "--models", "squeezenet1_1", "--precisions",
                                                            "fp32,int9", "--results", e.root / "s.jsonl"), None), 2,
                                       ("int9: choose from fp32, fp16, int8",)),
    "13-out-empty": Case("13", lambda e: (cli("export", "--onnx", e.root / "tiny.onnx", "--out", ""), None), 2,
                         ("--out", "is empty")),
    "13-manifest-is-a-folder": Case("13", _manifest("art-mdir", lambda p: p.mkdir()), 2,
                                    ("manifest.json", "is a directory"), check=_no_temp_files("art-mdir")),
    "13-manifest-not-an-object": Case("13", _manifest("art-mlist", lambda p: p.write_text("[1, 2]")), 2,
                                      ("manifest.json is not a JSON object",), check=_no_temp_files("art-mlist")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(e, name, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(e.root)  # --out "" would write here
    result, results = case.invoke(e)
    assert result.exit_code == case.exit_code, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    if case.exit_code:
        assert [line for line in result.stderr.splitlines() if line.lower().startswith("error")], result.stderr
    for word in case.words:
        assert word.lower() in result.stderr.lower(), (word, result.stderr)
    if case.records is not None:
        assert len(records_of(Path(results))) == case.records
    case.check(e, result, results)


def test_every_defect_has_a_case():
    assert {c.defect for c in CASES.values()} == {str(n) for n in range(1, 14)}


def test_a_backends_own_int8_recipe_line_is_a_readable_record(e):
    """ExecuTorch records its PT2E recipe as one line; the report once skipped all such records."""
    record = {**records_of(e.seed)[0], "precision": "int8",
              "int8_recipe": "PT2E S8 per-channel weights / S8 activations (int8 per-tensor affine, HistogramObserver)"}
    assert problem(record) is None
    assert problem({**record, "int8_recipe": 3}) is not None
