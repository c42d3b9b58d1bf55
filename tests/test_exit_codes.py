"""Every outcome has its own exit code, through the real CLI: CI scripts branch on them, and a gate reads 1 as
a regression. 0 pass, 1 regression, 2 usage error, 3 inconclusive, 4 a measurement failed (tests/test_fleet.py:
a job past its timeout on every place), 70 internal error, 130 interrupted (Ctrl-C and SIGTERM, the worker
with it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import assert_one_line_error, edgebench
from tiny_onnx import classifier

from edgebench.portable import errors

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--rounds", "1", "--max-rounds", "1", "--round-seconds", "0.2", "--block", "5", "--settle-seconds", "0")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("exits")
    classifier(root / "tiny.onnx")
    return root


def gate(work: Path, *args: str) -> subprocess.CompletedProcess:
    return edgebench("gate", "--runtime", "ort", "--candidate", "tiny.onnx", "--out", str(work / "artifacts"),
                     "--results", str(work / "results.jsonl"), *FAST, *args, cwd=work, env={"GITHUB_STEP_SUMMARY": ""})


def budget(work: Path, name: str, text: str | bytes) -> str:
    path = work / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return name


def test_the_codes_are_distinct_and_documented():
    codes = [errors.EXIT_OK, errors.EXIT_REGRESSION, errors.EXIT_USAGE, errors.EXIT_INCONCLUSIVE, errors.EXIT_FAILED,
             errors.EXIT_INTERNAL, errors.EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes) == len(errors.EXIT_CODES)
    helptext = edgebench("gate", "--help", cwd=ROOT).stdout
    readme = (ROOT / "README.md").read_text()
    for code in (0, 1, 2, 3, 70, 130):
        assert f"  {code} " in helptext, code
        assert f"{code} " in readme, code


def test_pass_0_regression_1_inconclusive_3(work):
    passing = gate(work, "--budget", budget(work, "pass.toml", '[[budget]]\nmodel = "tiny"\np50_ms = 1e6\n'))
    assert passing.returncode == 0, passing.stderr
    failing = gate(work, "--budget", budget(work, "fail.toml", '[[budget]]\nmodel = "tiny"\np50_ms = 0.0001\n'))
    assert failing.returncode == 1, failing.stderr
    empty = gate(work, "--against", "history", "--db", str(work / "empty.db"))
    assert empty.returncode == 3, empty.stderr
    assert "Traceback" not in passing.stderr + failing.stderr + empty.stderr


@pytest.mark.parametrize(("text", "needles"), [
    ('[[budget]]\nmodel = "tiny"\np50_ms = nan\n', ("[[budget]] #1: p50_ms must be a finite number", "nan")),
    ('[[budget]]\nmodel = "tiny"\np99_ms = inf\n', ("[[budget]] #1: p99_ms must be a finite number", "inf")),
    ('[[budget]]\nmodel = "tiny"\npeak_rss_mb = 1e400\n', ("[[budget]] #1: peak_rss_mb must be a finite number",)),
    ('[[budget]]\nmodel = "tiny"\np50_ms = 1e6\n[[budget]]\nmodel = "tiny"\nengine_mb = -inf\n',
     ("[[budget]] #2: engine_mb must be a finite number",)),
    (b'[[budget]]\nmodel = "tiny"\np50_ms = 5 # \xff\xfe\n', ("is not UTF-8 text",)),
])
def test_a_budget_value_that_is_not_a_finite_number_is_a_usage_error(work, text, needles):
    name = budget(work, "bad.toml", text)
    assert_one_line_error(gate(work, "--budget", name), "budget file bad.toml", *needles)


@pytest.mark.parametrize("args", [
    ("gate", "--runtime", "ort", "--candidate", "tiny.onnx", "--threshold", "nan"),
    ("gate", "--runtime", "ort", "--candidate", "tiny.onnx", "--round-seconds", "inf"),
    ("fleet", "sweep", "--coordinator", "127.0.0.1:1", "--bundle", "b.tar.gz", "--min-seconds", "nan"),
    ("fleet", "sweep", "--coordinator", "127.0.0.1:1", "--bundle", "b.tar.gz", "--warmup-seconds", "inf"),
    ("fleet", "sweep", "--coordinator", "127.0.0.1:1", "--bundle", "b.tar.gz", "--job-timeout", "nan"),
    ("run", "--runtime", "ort", "--onnx", "tiny.onnx", "--min-seconds", "nan"),
])
def test_every_float_option_refuses_non_finite_numbers(work, args):
    """Click's own usage errors (exit 2): NaN passed FloatRange's bounds, since it compares false with both."""
    proc = edgebench(*args, cwd=work)
    assert proc.returncode == 2 and "is not a finite number" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_float_option_of_every_command_is_finite():
    """No command takes a plain float or FloatRange (both accept nan): each is a FiniteFloat."""
    import click

    from edgebench.cli import main
    from edgebench.cli.options import FiniteFloat

    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
            return
        for param in command.params:
            if isinstance(param.type, (click.types.FloatParamType, click.FloatRange)):
                yield " ".join(path), param.name, isinstance(param.type, FiniteFloat)

    loose = [(cmd, name) for cmd, name, ok in walk(main, ()) if not ok]
    assert not loose, loose


def test_an_internal_error_exits_70_in_one_line(work):
    """A bug (here a fault put into the results store) is not a regression (1) nor the user's mistake (2)."""
    inject = ("import edgebench.results.store as s\n"
              "def broken(*a, **k): raise ZeroDivisionError('injected')\n"
              "s.append_record = broken\n"
              "from edgebench.cli import main\nmain()")
    args = ["gate", "--runtime", "ort", "--candidate", "tiny.onnx", "--out", str(work / "artifacts"),
            "--results", str(work / "r70.jsonl"), *FAST, "--budget",
            budget(work, "p.toml", '[[budget]]\nmodel = "tiny"\np50_ms = 1e6\n')]
    proc = subprocess.run([sys.executable, "-c", inject, *args], cwd=work, capture_output=True, text=True, check=False,
                          timeout=600, env={**os.environ, "GITHUB_STEP_SUMMARY": ""})
    assert proc.returncode == 70, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: internal error: ZeroDivisionError: injected (run with -v for details)" in proc.stderr
    verbose = subprocess.run([sys.executable, "-c", inject, "-v", *args], cwd=work, capture_output=True, text=True, check=False,
                             timeout=600, env={**os.environ, "GITHUB_STEP_SUMMARY": ""})
    assert verbose.returncode == 70 and "Traceback" in verbose.stderr  # -v asks for the traceback


def _worker_of(proc: subprocess.Popen, timeout: float = 300) -> psutil.Process:
    """The measurement worker ``proc`` has started (its timed loop is running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if "edgebench.bench.worker" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)
    raise AssertionError("no measurement worker started")


def _long_run(work: Path, results: Path, command: str = "run") -> subprocess.Popen:
    """A ``run`` (or a budget ``gate``) whose timed loop lasts 100 s: long enough to be interrupted in it."""
    args = {"run": ["run", "--runtime", "ort", "--onnx", "tiny.onnx", "--batch", "1,2", "--warmup-seconds", "0",
                    "--min-seconds", "100"],
            "gate": ["gate", "--runtime", "ort", "--candidate", "tiny.onnx", "--rounds", "1", "--round-seconds", "100",
                     "--budget", budget(work, "long.toml", '[[budget]]\nmodel = "tiny"\np50_ms = 1e6\n')]}[command]
    return subprocess.Popen([sys.executable, "-m", "edgebench.cli", *args, "--out", str(work / "artifacts"),
                             "--results", str(results)], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "GITHUB_STEP_SUMMARY": ""})


@pytest.mark.parametrize("command", ["run", "gate"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_exits_130_and_its_worker_goes_with_it(work, sig, command):
    """Ctrl-C (Click's "Aborted!" exited 1: a regression to a CI gate) and SIGTERM, what `timeout` and CI runners
    send (the worker used to go on measuring at full CPU), during `run` and during `gate`."""
    results = work / f"r{int(sig)}{command}.jsonl"
    proc = _long_run(work, results, command)
    worker = _worker_of(proc)
    proc.send_signal(sig)  # to the parent alone (a terminal's Ctrl-C would reach the whole group)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Aborted!" not in err and "interrupted" in err, err
    worker.wait(timeout=30)  # raises psutil.TimeoutExpired if it is still measuring
    assert not results.exists() or all(json.loads(line) for line in results.read_text().splitlines())


def test_a_killed_run_takes_its_worker_with_it(work):
    """SIGKILL leaves the parent no say: the kernel ends the worker (PR_SET_PDEATHSIG)."""
    proc = _long_run(work, work / "r9.jsonl")
    worker = _worker_of(proc)
    proc.kill()
    proc.communicate(timeout=60)
    worker.wait(timeout=30)


def test_sigterm_during_export_leaves_no_partial_model(tmp_path):
    """The export writes ``.model.onnx.partial`` and renames it when whole; SIGTERM there removes it."""
    out = tmp_path / "artifacts"
    proc = subprocess.Popen([sys.executable, "-m", "edgebench.cli", "export", "resnet50", "--weights", "random",
                             "--runtime", "ort", "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    partial = out / "resnet50" / "fp32" / ".model.onnx.partial"
    deadline = time.monotonic() + 300
    while not partial.exists():
        assert proc.poll() is None and time.monotonic() < deadline, ("the export ended before it was seen",
                                                                     proc.communicate())
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert not partial.exists() and not (out / "resnet50" / "fp32" / "model.onnx").exists()
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--warmup-seconds", "--min-seconds", "--max-seconds"])
def test_the_device_runner_refuses_non_finite_seconds(option):
    """The bundle's runner (argparse, on the device) takes its seconds through the same kind of check."""
    proc = subprocess.run([sys.executable, str(ROOT / "edgebench" / "deploy" / "runner.py"), option, "nan"],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "edgebench")})
    assert proc.returncode == 2 and "not a finite, non-negative number of seconds" in proc.stderr, proc.stderr
