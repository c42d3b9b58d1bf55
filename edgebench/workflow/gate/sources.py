"""The options of one gate, and the two sides it compares: what the user named and the artifacts it resolved to,
with the refusals of a comparison that would not mean anything."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgebench.bench.guarded import Guard
from edgebench.bench.paired import PairedSettings
from edgebench.build.artifacts import Artifacts
from edgebench.models import get_spec
from edgebench.portable.errors import UsageError
from edgebench.portable.hashing import sha256_file
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare

MIN_HISTORY = 3


@dataclass(frozen=True)
class GateOptions:
    runtime: str
    precision: str = "fp32"
    batch: int = 1
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    rounds: int = 5
    max_rounds: int = 15
    step: int = 2
    threshold: float = 0.05
    last: int = 10
    allow_other_host: bool = False
    allow_different_inputs: bool = False
    paired: PairedSettings = field(default_factory=PairedSettings)
    accuracy_images: int = 200
    # the candidate's rounds (history, budgets): re-measure once after a noisy round, waiting settle_seconds
    guard: Guard = field(default_factory=lambda: Guard(retries=1))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Source:
    """One side of the comparison: what the user named and the artifacts it resolved to."""

    role: str
    given: str
    artifacts: object  # edgebench.build.artifacts.Artifacts

    @property
    def model(self) -> str:
        return self.artifacts.manifest["model"]["name"]

    def engine(self, opts: GateOptions) -> Path:
        return self.artifacts.engine_path(opts.runtime, opts.precision)

    def describe(self, opts: GateOptions) -> dict:
        engine = self.engine(opts)
        return {"given": self.given, "model": self.model, "artifacts": str(self.artifacts.root),
                "engine": str(engine), "engine_sha256": sha256_file(engine) if engine.is_file() else None,
                "input_shape": self.artifacts.manifest["input"]["shape"][1:],
                "preprocess": self.artifacts.manifest.get("preprocess"),
                "weights": (self.artifacts.manifest.get("weights") or {}).get("source")}


def input_differences(a: Source, b: Source) -> list[str]:
    """Input shape and preprocessing differences between two sources."""
    ma, mb = (json.loads(json.dumps(s.artifacts.manifest, default=str)) for s in (a, b))
    found = []
    if ma["input"]["shape"][1:] != mb["input"]["shape"][1:]:
        found.append(f"input shape {ma['input']['shape'][1:]} vs {mb['input']['shape'][1:]}")
    pa, pb = ma.get("preprocess") or {}, mb.get("preprocess") or {}
    for k in sorted(set(pa) | set(pb)):
        if pa.get(k) != pb.get(k):
            found.append(f"preprocess {k} {pa.get(k)!r} vs {pb.get(k)!r}")
    return found


def check_engine(source: Source, opts: GateOptions) -> None:
    if source.artifacts.engine_entry(opts.runtime, opts.precision) is None:
        engines = ", ".join(source.artifacts.manifest["engines"]) or "none"
        raise UsageError(f"{source.role} {source.given}: no {opts.runtime} {opts.precision} engine in "
                         f"{source.artifacts.root} (its engines: {engines}); "
                         f"export it with --runtime {opts.runtime} --precision {opts.precision}")


def resolve_source(role: str, given: str, weights: str, opts, weights_dir: Path | None, out: Path, data: Path | None):
    """A registry model name, an ONNX file, or an artifacts folder (with manifest.json) -> a gate Source."""
    path = Path(given)
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise UsageError(f"--{role} {given}: a folder without manifest.json (give an artifacts/<model> folder)")
        artifacts = Artifacts.open(path)
        if not artifacts.manifest.get("model"):
            raise UsageError(f"--{role} {given}: manifest.json is not an edgebench manifest of this version")
        return Source(role, given, artifacts)
    if path.suffix.lower() == ".onnx" or path.exists():
        if not path.is_file():
            raise UsageError(f"--{role} {given}: no such file")
        # own folder per side: two ONNX files named model.onnx must not share artifacts/model/
        return Source(role, given, prepare(ModelSource(None, path, weights, weights_dir), (opts.runtime,),
                                           opts.precision, BuildRequest(out / f"gate-{role}", data)))
    try:
        get_spec(given)
    except UsageError as exc:
        if any(sep and sep in given for sep in ("/", os.sep, os.altsep)) or given.startswith((".", "~")):
            raise UsageError(f"--{role} {given}: no such file or folder") from None
        raise UsageError(f"--{role} {given}: no such file or folder, and {exc}") from None
    return Source(role, given, prepare(ModelSource(given, None, weights, weights_dir), (opts.runtime,), opts.precision,
                                       BuildRequest(out, data)))
