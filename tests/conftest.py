"""Shared fixtures: real weights and photos from ../shared (through EDGEBENCH_WEIGHTS / EDGEBENCH_DATA)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def _dir_from_env(var: str, default: Path) -> Path | None:
    value = os.environ.get(var)
    path = Path(value) if value else default
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    found = _dir_from_env("EDGEBENCH_WEIGHTS", SHARED / "weights")
    if found is None:
        pytest.skip("no real weights: set EDGEBENCH_WEIGHTS to the shared weights folder")
    return found


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = _dir_from_env("EDGEBENCH_DATA", SHARED / "data" / "imagenet-sample")
    if found is None or not (found / "labels.csv").is_file():
        pytest.skip("no labelled photos: set EDGEBENCH_DATA to the shared imagenet-sample folder")
    return found


def edgebench(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgebench.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, no traceback, and an error line naming the problem."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.lower().startswith("error")]
    assert errors, proc.stderr
    for needle in needles:
        assert needle.lower() in proc.stderr.lower(), (needle, proc.stderr)


@pytest.fixture(scope="session")
def shared_artifacts(tmp_path_factory) -> Path:
    """An artifacts folder reused by tests that need an exported model."""
    return tmp_path_factory.mktemp("artifacts")
