"""Many registry models x runtimes x precisions with one protocol; each failure becomes a failed record with the
precise reason, and the sweep goes on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgebench.backends import Status, canonical, quiet, runtime_class
from edgebench.bench.guarded import Guard
from edgebench.models import get_spec
from edgebench.portable.errors import EdgebenchError, UsageError, one_line
from edgebench.portable.protocol import Protocol
from edgebench.results.records import LatencyRecord
from edgebench.results.store import ResultsNotSaved, append_record
from edgebench.workflow.accuracy import evaluate
from edgebench.workflow.measure import MeasureRequest, measure, paired_speedups
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare


@dataclass(frozen=True)
class SweepRequest:
    """Many registry models x runtimes x precisions with one protocol; ``accuracy_images``: with int8 and
    ``build.data``, also compare INT8 with FP32 on the first N evaluation images."""

    models: tuple[str, ...]
    runtimes: tuple[str, ...]
    precisions: tuple[str, ...]
    batches: tuple[int, ...] = (1,)
    threads: int | None = None
    accuracy_images: int = 0
    weights: str = "auto"
    weights_dir: Path | None = None
    protocol: Protocol = Protocol()
    guard: Guard = Guard()
    build: BuildRequest = BuildRequest()
    results: Path = Path("results/results.jsonl")
    profile: bool = False  # per-layer times in each record (not for torch)


def sweep(request: SweepRequest, status: Status = quiet) -> Iterator[tuple[str, str, str, EdgebenchError | None]]:
    """Measure every combination; a model that cannot go through a runtime gets a failed record with the
    precise reason, and the sweep goes on. Yields (model, runtime, precision, error or None) as each ends."""
    from edgebench.models.catalog import complexity_of  # noqa: PLC0415 - torch: only the skipped models' sizes

    runtimes = tuple(canonical(r) for r in request.runtimes)
    threads = request.threads or os.cpu_count()
    for name in request.models:
        spec = get_spec(name)
        for runtime in runtimes:
            for precision in request.precisions:
                error = None
                try:
                    if runtime in spec.unsupported:
                        raise UsageError(f"{spec.name} cannot run on {runtime}: {spec.unsupported[runtime]}")
                    backend = {**request.build.backend}
                    default = runtime_class(runtime).default_build_options(request.batches)
                    if default is not None:
                        backend.setdefault(runtime, default)
                    build = BuildRequest(request.build.out, request.build.data, request.build.opset,
                                         request.build.int8, backend)
                    artifacts = prepare(ModelSource(spec.name, None, request.weights, request.weights_dir),
                                        (runtime,), precision, build, status)
                    measure(artifacts, MeasureRequest(runtime, precision, request.batches, threads,
                                                      profile=request.profile and runtime != "torch",
                                                      protocol=request.protocol, guard=request.guard,
                                                      results=request.results), status)
                    if precision == "int8" and request.accuracy_images and request.build.data is not None:
                        evaluate(artifacts, runtime, "int8", request.build.data, threads, request.results,
                                 limit=request.accuracy_images)
                    if precision == "int8" and "fp32" in request.precisions:
                        paired_speedups(artifacts, runtime, request.batches, threads, request.results,
                                        request.protocol, status)
                except ResultsNotSaved:  # the results file cannot take records: nothing more can be kept
                    raise
                except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the sweep
                    error = exc if isinstance(exc, EdgebenchError) else \
                        EdgebenchError(one_line(exc, with_type=True))
                    found = complexity_of(spec)
                    model = {"name": spec.name, "family": spec.family, "params": found.params,
                             "gmacs": round(found.gmacs, 4)}
                    for batch in request.batches:
                        append_record(LatencyRecord.failed(str(error), model=model, runtime={"name": runtime},
                                                           precision=precision, batch=batch, threads=threads),
                                      request.results)
                yield spec.name, runtime, precision, error
