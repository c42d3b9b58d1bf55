"""Shared fixtures: real weights and photos from ../shared (through EDGEBENCH_WEIGHTS / EDGEBENCH_DATA)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from edgebench.build.artifacts import Artifacts

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


def edgebench_in_process(*args: object, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in this process through Click's CliRunner, as a CompletedProcess: a refusal costs no interpreter
    start and no torch import (about 40 CLI subprocesses each imported torch, 10 of them for refusals). An
    exception that escapes the CLI is appended to stderr as the traceback a real run would print."""
    import traceback

    from click.testing import CliRunner

    from edgebench.cli import main
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=True)
    finally:
        os.chdir(here)
    stderr = result.stderr
    if result.exc_info is not None and not issubclass(result.exc_info[0], SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, no traceback, and an error line naming the problem."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.lower().startswith("error")]
    assert errors, proc.stderr
    for needle in needles:
        assert needle.lower() in proc.stderr.lower(), (needle, proc.stderr)


class ArtifactCache:
    """Artifacts exported once per session and shared: squeezenet1_1 was exported into about 12 folders and
    mobilenet_v3_small into about 10, each export seconds to minutes.

    One folder per weights choice (weights, weights folder, verification photos), so that no test's export
    replaces another's model; in it, ``export_model`` reuses every file whose content key matches and builds
    only what is missing. A test that changes a folder (tampers with a file, calibrates, sweeps) works on a
    :meth:`clone`, never on the cache."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, weights: str = "random", weights_dir: Path | None = None, data: Path | None = None) -> Path:
        """The shared ``--out`` folder of one weights choice (a CLI run may point ``--out`` here)."""
        choice = repr((weights, str(weights_dir) if weights_dir else None, str(data) if data else None))
        return self.root / f"{weights.replace('/', '_')[-40:]}-{hashlib.sha256(choice.encode()).hexdigest()[:8]}"

    def export(self, name: str, runtimes: tuple[str, ...] = ("ort", "openvino"), precision: str = "fp32",
               weights: str = "random", weights_dir: Path | None = None, data: Path | None = None) -> Artifacts:
        """``export_model`` into the shared folder of this weights choice."""
        from edgebench.build.export import export_model
        return export_model(name, runtimes, precision, weights, str(weights_dir) if weights_dir else None,
                            self.folder(weights, weights_dir, data), data)

    @staticmethod
    def clone(artifacts: Artifacts, into: Path) -> Artifacts:
        """A private copy of ``artifacts`` under ``into`` (same model name), for a test that changes it."""
        from edgebench.build.artifacts import Artifacts
        target = Path(into) / artifacts.root.name
        shutil.copytree(artifacts.root, target)
        return Artifacts.open(target)


@pytest.fixture(scope="session")
def artifact_cache(tmp_path_factory) -> ArtifactCache:
    return ArtifactCache(tmp_path_factory.mktemp("artifact-cache"))


# Marks set here rather than in their files while those tests are being changed elsewhere (issue 27):
# node id prefix -> marker.
MARKS_FROM_HERE = {
    "tests/test_fleet.py::": "system",  # labgrid's coordinator and one sshd per place
    "tests/test_int8_recipes.py::test_run_records_the_recipe_and_warns_on_a_forced_saturating_one": "integration",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for prefix, marker in MARKS_FROM_HERE.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(marker)
