"""One measurement in its own process: ``python -m edgebench.bench.worker`` reads a job
(JSON) on stdin and prints one result line. A runtime crash loses only this measurement,
and the process's memory is that runtime's alone."""

from __future__ import annotations

import json
import sys
import time
import traceback

from edgebench.portable.errors import one_line

RESULT_PREFIX = "EDGEBENCH_RESULT "


def measure(job: dict) -> dict:
    import numpy as np

    from edgebench.backends import RuntimeOptions, runtime_class
    from edgebench.bench import phases, samples
    from edgebench.portable import memory
    from edgebench.portable.protocol import Protocol, measure
    before_import = memory.current_rss_mb()
    cls = runtime_class(job["runtime"])
    available = cls.availability()  # imports the runtime library and touches it
    if not available.usable:
        return {"status": "failed", "error": f"runtime {cls.name} is not usable: {available.reason}"}
    engine_memory = memory.EngineMemory()  # the import floor; resets the high-water mark
    memory_mb = {"after_import": engine_memory.peak_mb}
    options = RuntimeOptions.from_dict(job["options"], cls.run_options_class)
    batch = options.batches[0]
    inputs = np.random.default_rng(0).standard_normal((batch, *job["input_shape"]), dtype=np.float32)
    runtime = cls(job["engine"], options)
    t0 = time.perf_counter()
    runtime.activate()
    load_seconds = time.perf_counter() - t0
    engine_memory.mark("load")
    memory_mb["after_load"] = engine_memory.peak_mb
    try:
        with phases.LoadMeter() as load:
            measured, times = measure(lambda: runtime.infer(inputs), runtime.bind(inputs), Protocol(**job["protocol"]),
                                      batch)
        engine_memory.mark("run")  # the first inference and the timed loop
        memory_mb["peak"] = engine_memory.peak_mb
        settings = runtime.settings()
        if options.profile:  # after the peak memory: the profiled runs may load a second engine
            settings["layer_profile"] = runtime.layer_profile(inputs)
        return {
            "status": "ok",
            "runtime_version": available.version,
            "settings": settings,
            "effective_precision": runtime.effective_precision(),
            **measured,
            "samples_ms": samples.encode(times),
            "phases": phases.slow_phase(times),
            "load": load.result,
            "load_seconds": round(load_seconds, 3),
            "memory_mb": memory_mb,  # the whole process's peak after the import, the load and the run
            "memory": {**engine_memory.result(), "before_import_mb": round(before_import, 1)},
            "device_memory_mb": runtime.device_memory(),
        }
    finally:
        runtime.deactivate()


PARENT_ENV = "EDGEBENCH_WORKER_PARENT"  # the pid of the process that started the worker (run_worker sets it)


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (``PR_SET_PDEATHSIG``). A SIGKILLed
    ``edgebench run`` left its worker measuring at full CPU until its loop ended, disturbing the next job.
    A parent that died before the request took effect is seen by its pid, handed over in the environment (once
    orphaned, ``getppid()`` names the new parent, so comparing it with itself would never notice)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the request took effect


def serve(measure_job) -> int:
    """A measurement process's main: a job (JSON) on stdin, ``measure_job(job)``, one result line on stdout;
    any failure becomes a failed result, reported to the parent as one line. It dies with its parent."""
    die_with_parent()
    job = json.loads(sys.stdin.read())
    try:
        result = measure_job(job)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        result = {"status": "failed", "error": one_line(exc, 500, with_type=True),
                  "traceback": traceback.format_exc(limit=5)}
    sys.stdout.write(RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(measure))
