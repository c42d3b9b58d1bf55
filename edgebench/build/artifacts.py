"""The artifact folder of one model, ``artifacts/<model>/``, its ``manifest.json``, and build steps.

The manifest records the model spec, weights source and hash, input spec and
preprocessing, opset, tool versions, a hash of every file, the verification
figures, and one entry per built model (``<runtime>/<precision>``, ``qdq/int8``, ...).
Every entry is made by a :class:`Step` through :meth:`Artifacts.ensure`, which reuses
what matches the step's content key, else builds, records, verifies and saves.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.portable import strict_json
from edgebench.portable.errors import UsageError
from edgebench.portable.hashing import sha256_file

MANIFEST = "manifest.json"
SCHEMA = "edgebench.manifest/1"


@dataclass
class Step:
    """One build step: a manifest entry ``name`` made by ``build()`` (``{"files": [...], ...facts}``,
    the file a runtime loads first) and checked by ``verify(files)`` (figures, or None)."""

    name: str
    key: str
    build: Callable[[], dict]
    verify: Callable[[list[str]], dict | None] = field(default=lambda _files: None)
    precision: str | None = None
    runtime_version: str | None = None


class Artifacts:
    """Read and update one model's artifact folder."""

    def __init__(self, root: Path, manifest: dict | None = None) -> None:
        self.root = Path(root)
        self.manifest: dict = manifest or {"schema": SCHEMA, "files": {}, "engines": {}, "verification": {}}

    @classmethod
    def open(cls, root: Path) -> Artifacts:
        path = Path(root) / MANIFEST
        if not path.exists():
            return cls(root)
        try:
            manifest = json.loads(path.read_text())  # an older edgebench wrote NaN: read it, write strict JSON
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise UsageError(f"cannot read {path}: {reason}; delete the folder to re-export") from None
        if not isinstance(manifest, dict):
            raise UsageError(f"{path} is not a JSON object; delete the folder to re-export")
        return cls(root, manifest if manifest.get("schema") == SCHEMA else None)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def path(self, rel: str) -> Path:
        return self.root / rel

    def record_file(self, path: Path) -> str:
        """Hash ``path`` into the manifest; return its path relative to the folder."""
        rel = str(Path(path).resolve().relative_to(self.root.resolve()))
        self.manifest["files"][rel] = {"sha256": sha256_file(path), "bytes": Path(path).stat().st_size}
        return rel

    def file_intact(self, rel: str) -> bool:
        entry = self.manifest["files"].get(rel)
        path = self.path(rel)
        return bool(entry) and path.is_file() and path.stat().st_size == entry["bytes"] \
            and sha256_file(path) == entry["sha256"]

    def engine_entry(self, runtime: str, precision: str) -> dict | None:
        return self.manifest["engines"].get(f"{runtime}/{precision}")

    def int8_recipe(self, runtime: str) -> dict | None:
        """The INT8 recipe of ``runtime``'s engine as the last calibration asked for it: an engine built by
        ``auto`` and reused for the same recipe forced by the user says ``chosen_by: user``."""
        built = ((self.engine_entry(runtime, "int8") or {}).get("build") or {}).get("recipe")
        asked = ((self.manifest.get("int8") or {}).get("requested") or {}).get(runtime)
        same = isinstance(built, dict) and isinstance(asked, dict) and asked.get("name") == built.get("name")
        return asked if same else built

    def engine_current(self, runtime: str, precision: str, key: str) -> bool:
        entry = self.engine_entry(runtime, precision)
        return bool(entry) and entry.get("key") == key and all(self.file_intact(f) for f in entry["files"])

    def current(self, step: Step) -> bool:
        entry = self.manifest["engines"].get(step.name)
        return bool(entry) and entry.get("key") == step.key and all(self.file_intact(f) for f in entry["files"])

    def ensure(self, step: Step, status: Callable[[str], None] = lambda _m: None) -> dict:
        """Reuse ``step``'s entry when its key and files match; else build, hash the files, verify, and
        record the entry with the manifest saved atomically. A build or check that fails records nothing."""
        if self.current(step):
            status(f"{step.name} is up to date")
            return self.manifest["engines"][step.name]
        status(f"building {step.name}")
        t0 = time.perf_counter()
        built = step.build()
        seconds = time.perf_counter() - t0  # the build alone: hashing and verification are edgebench's
        files = [self.record_file(Path(p)) for p in built.pop("files")]
        figures = step.verify(files)
        entry = {"key": step.key, "files": files, "runtime_version": step.runtime_version,
                 "precision": step.precision, "build": built, "build_seconds": round(seconds, 3)}
        self.manifest["engines"][step.name] = entry
        if figures is not None:
            self.manifest["verification"][step.name] = figures
        self.save()
        return entry

    def engine_path(self, runtime: str, precision: str) -> Path:
        """The file a runtime loads for ``precision``; UsageError if it was never built.

        The torch runtime rebuilds the model from the manifest itself.
        """
        if runtime == "torch":
            return self.manifest_path
        entry = self.engine_entry(runtime, precision)
        if not entry:
            raise UsageError(f"no {runtime} {precision} engine in {self.root}; run `edgebench export` first")
        return self.path(entry["files"][0])

    def save(self) -> None:
        """Write the manifest atomically, so an interrupted run never leaves half a manifest, and a failed
        write (a full disk) leaves the old one and no temporary file."""
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".manifest.", suffix=".tmp")
            os.fchmod(fd, new_file_mode())  # mkstemp's 0600 would differ from the engines beside it (a shared cache)
            with os.fdopen(fd, "w") as f:
                f.write(strict_json.dumps(self.manifest, indent=2, sort_keys=True))
            os.replace(tmp, self.manifest_path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise UsageError(f"cannot write {self.manifest_path}: {exc.strerror or exc}") from None


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file here: 0666 less the process umask (0644 under the usual 022)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove it is writable; one-line UsageError otherwise."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as exc:
        raise UsageError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None
    return folder
