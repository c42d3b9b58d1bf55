"""A sweep of bundles over labgrid places: one job per place at a time, each place held exclusively.

The queue holds (bundle, batch) jobs. One worker per matching place acquires the place (a place
another user holds is waited for, never taken), takes the next job, runs it with the ``deploy run``
path over SSH (:func:`edgebench.deploy.remote.deploy_run`, in a thread: paramiko blocks), and
appends its records, with the place and the device fingerprint, before it takes the next job.

Faults: a lost connection, a runner crash or ``job_timeout`` fails the job on that place; it is
requeued, on another place where one is alive, up to ``retries`` times. Two failures in a row set a
place aside as unhealthy (power-cycled first with ``power_cycle``, when labgrid knows its power
switch). Every place this sweep acquired is released in a ``finally``: on success, on any error and
on Ctrl-C (asyncio cancels the workers; their ``finally`` releases). A job stopped that way is
killed on the device too, so a released place is not still busy with our runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.deploy.device import device_of, probe_release
from edgebench.deploy.lab import Lab, PlaceInfo
from edgebench.deploy.remote import Target, connect, run_remote
from edgebench.portable.errors import EXIT_FAILED, EdgebenchError, UsageError, one_line
from edgebench.portable.hashing import sha256_file
from edgebench.results.store import append_records, read_records

# one folder per place: boards sharing an NFS home (or loopback places sharing one host) never
# write into each other's bundle folders
DEFAULT_REMOTE_DIR = "edgebench-deploy/{place}"
UNHEALTHY_AFTER = 2  # failures in a row
POLL_S = 0.25  # how often an idle worker looks at the queue and the coordinator again
SETTLE_S = 10.0  # how long a stopped job's thread may take to notice its closed connection


class FleetIncomplete(EdgebenchError):
    """Some jobs failed on every place they were tried on (the records of the others are kept)."""

    exit_code = EXIT_FAILED


class JobFailed(Exception):
    """A job failed on one place (one line): requeued elsewhere."""


@dataclass
class Job:
    key: str  # model/precision/bBATCH/onnx sha: what --resume compares
    model: str
    precision: str
    batch: int
    bundle: Path
    digest: str  # the bundle's sha256 (deploy_run's remote folder is named by it)
    state: str = "pending"  # pending | running | done | failed | skipped
    attempts: int = 0
    failed_on: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    place: str | None = None
    records: int = 0
    seconds: float | None = None  # wall time of the attempt that measured it: deploy + run + fetch

    @property
    def label(self) -> str:
        return f"{self.model} {self.precision} b{self.batch}"

    def to_dict(self) -> dict:
        return {"key": self.key, "model": self.model, "precision": self.precision, "batch": self.batch,
                "state": self.state, "attempts": self.attempts, "place": self.place, "failed_on": self.failed_on,
                "errors": self.errors, "records": self.records, "seconds": self.seconds}


@dataclass
class PlaceRun:
    info: PlaceInfo
    target: Target | None
    state: str = "waiting"
    job: Job | None = None
    since: float = field(default_factory=time.monotonic)
    held: bool = False
    jobs_done: int = 0
    failures: int = 0
    in_a_row: int = 0
    unhealthy: str | None = None
    power: str | None = None
    fingerprint: str | None = None
    finished: bool = False

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def alive(self) -> bool:
        return self.unhealthy is None and not self.finished

    def to_dict(self) -> dict:
        return {"place": self.name, "jobs_done": self.jobs_done, "failures": self.failures,
                "unhealthy": self.unhealthy, "power": self.power, "fingerprint": self.fingerprint,
                "target": str(self.target) if self.target else None}


@dataclass(frozen=True)
class SweepOptions:
    results: Path
    key: Path | None = None
    known_hosts: Path | None = None
    python: str = "python3"
    remote_dir: str = DEFAULT_REMOTE_DIR  # "{place}" is the place's name
    fallback: str = "none"
    runner_args: tuple[str, ...] = ()
    job_timeout: float = 1800.0
    retries: int = 2
    power_cycle: bool = False
    resume: bool = False


def build_bundles(sources: list, precisions: tuple[str, ...], data: Path | None, artifacts: Path, out_dir: Path,
                  status: Callable[[str], None] = lambda _m: None) -> list[tuple[Path, dict]]:
    """One bundle per (model source, precision), as ``deploy bundle`` writes it: (archive, bundle.json)."""
    from edgebench.deploy.bundle import write_bundle
    from edgebench.workflow.prepare import BuildRequest, prepare

    built = []
    for source in sources:
        for precision in precisions:
            prepared = prepare(source, ("ort",), precision, BuildRequest(artifacts, data), status)
            name = prepared.manifest["model"]["name"]
            status(f"bundling {name} {precision}")
            out = Path(out_dir) / f"{name}-{precision}.tar.gz"
            built.append((out, write_bundle(prepared, precision, out, data)))
    return built


def read_bundle(path: Path) -> tuple[Path, dict]:
    """(archive, its bundle.json) for a bundle made earlier; UsageError when it is not one."""
    import json
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as tar:
            meta = json.loads(tar.extractfile("bundle.json").read())
    except (OSError, KeyError, AttributeError, tarfile.TarError, ValueError) as exc:
        raise UsageError(f"{path} is not an edgebench bundle ({one_line(exc, 200)}): make one with "
                         "`edgebench deploy bundle`") from None
    return Path(path), meta


def jobs_for(bundles: list[tuple[Path, dict]], batches: tuple[int, ...]) -> list[Job]:
    """One job per (bundle, batch); ``bundles``: (archive, its bundle.json)."""
    jobs = []
    for path, meta in bundles:
        digest = sha256_file(path)
        onnx = (meta.get("source_manifest") or {}).get("onnx_sha256", digest)[:12]
        for batch in batches:
            jobs.append(Job(f"{meta['model']['name']}/{meta['precision']}/b{batch}/{onnx}", meta["model"]["name"],
                            meta["precision"], batch, Path(path), digest))
    return jobs


def last_fingerprints(records: list[dict]) -> dict[str, str]:
    """place -> the device fingerprint of its newest record."""
    seen = {}
    for r in records:
        if r.get("place") and (r.get("device") or {}).get("fingerprint"):
            seen[r["place"]] = r["device"]["fingerprint"]
    return seen


def mark_resumed(jobs: list[Job], records: list[dict], places: list[str]) -> int:
    """Skip the jobs that already have a record from a device one of ``places`` last showed; how many."""
    fingerprints = {fp for place, fp in last_fingerprints(records).items() if place in places}
    done = {((r.get("fleet") or {}).get("job"), (r.get("device") or {}).get("fingerprint")) for r in records}
    skipped = 0
    for job in jobs:
        if any((job.key, fp) in done for fp in fingerprints):
            job.state, skipped = "skipped", skipped + 1
    return skipped


def target_of(info: PlaceInfo) -> Target:
    service = info.service or {}
    return Target(str(service["username"]), str(service["address"]), int(service.get("port") or 22))


class Queue:
    """Jobs in order; a failed job goes back to the front, marked with the place it failed on."""

    def __init__(self, jobs: list[Job], retries: int):
        self.jobs = jobs
        self.retries = retries

    def pending(self) -> list[Job]:
        return [j for j in self.jobs if j.state == "pending"]

    @property
    def finished(self) -> bool:
        return not any(j.state in ("pending", "running") for j in self.jobs)

    def take(self, place: str, others_alive: set[str]) -> Job | None:
        """The next job for ``place``: one it has not failed, else one no other live place can take."""
        for job in self.pending():
            if place not in job.failed_on or not (others_alive - set(job.failed_on)):
                return job
        return None

    def failed(self, job: Job, place: str, reason: str) -> bool:
        """Record the failure; True when the job goes back in the queue."""
        job.failed_on.append(place)
        job.errors.append(f"{place}: {reason}")
        job.state = "pending" if job.attempts <= self.retries else "failed"
        if job.state == "pending":
            self.jobs.remove(job)
            self.jobs.insert(0, job)
        return job.state == "pending"


Event = Callable[["Sweep", str | None], None]


class Sweep:
    """One sweep: the queue, the places, and what happened to each."""

    def __init__(self, lab: Lab, places: list[PlaceInfo], jobs: list[Job], options: SweepOptions,
                 on_event: Event = lambda _s, _m: None):
        self.lab = lab
        self.options = options
        self.queue = Queue(jobs, options.retries)
        self.places = {p.name: PlaceRun(p, target_of(p) if p.service else None) for p in places}
        self.on_event = on_event
        self.started = time.monotonic()
        self.records = 0
        self.skipped = 0
        for run in self.places.values():
            if not run.info.service_avail:
                run.unhealthy = "its NetworkService is not available (exporter offline?)"
                run.state = "unhealthy"

    def emit(self, message: str | None = None) -> None:
        self.on_event(self, message)

    def _set(self, run: PlaceRun, state: str, job: Job | None = None) -> None:
        if state != run.state or job is not run.job:
            run.state, run.job, run.since = state, job, time.monotonic()
            self.emit()

    async def run(self) -> dict:
        workers = [asyncio.ensure_future(self._worker(p)) for p in self.places.values() if p.alive]
        try:
            await asyncio.gather(*workers)  # the first error cancels the other workers below
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self._release_all())
        return self.summary()

    def summary(self) -> dict:
        jobs = self.queue.jobs
        return {"wall_s": round(time.monotonic() - self.started, 3), "records": self.records, "skipped": self.skipped,
                "results": str(self.options.results),
                "jobs": {s: sum(j.state == s for j in jobs) for s in ("done", "failed", "skipped", "pending", "running")},
                "places": [p.to_dict() for p in self.places.values()],
                "unhealthy": {p.name: p.unhealthy for p in self.places.values() if p.unhealthy},
                "job_list": [j.to_dict() for j in jobs]}

    # ---------------------------------------------------------------- one place

    async def _worker(self, run: PlaceRun) -> None:
        try:
            while not self.queue.finished and run.alive:
                others = {p.name for p in self.places.values() if p.alive and p is not run}
                if self.queue.take(run.name, others) is None:
                    self._set(run, "idle" if run.held else "waiting for work")
                    await asyncio.sleep(POLL_S)  # jobs in flight elsewhere may come back
                    continue
                if not run.held:
                    holder = self.lab.holder(run.name)
                    if holder not in (None, self.lab.me) or not await self.lab.acquire(run.name):
                        state = f"held by {self.lab.holder(run.name) or holder}: waiting"
                        if state != run.state:
                            self.emit(f"{run.name}: {state} (never taken from its user)")
                        self._set(run, state)
                        await asyncio.sleep(POLL_S)
                        continue
                    run.held = True
                    self.emit(f"{run.name}: acquired")
                job = self.queue.take(run.name, others)
                if job is not None:
                    await self._attempt(run, job)
        finally:
            run.finished = True
            if run.held:
                await asyncio.shield(self._release(run))
            if run.unhealthy is None:
                self._set(run, "done")

    async def _attempt(self, run: PlaceRun, job: Job) -> None:
        job.state, job.place = "running", run.name
        job.attempts += 1
        self._set(run, f"running (attempt {job.attempts})", job)
        began = time.monotonic()
        try:
            records = await self._run_job(run, job)
        except JobFailed as exc:
            run.failures += 1
            run.in_a_row += 1
            again = self.queue.failed(job, run.name, str(exc))
            job.place = None
            self.emit(f"{run.name}: {job.label} failed: {exc}"
                      + (" (requeued)" if again else f" (given up after {job.attempts} attempts)"))
            if run.in_a_row >= UNHEALTHY_AFTER:
                await self._set_aside(run, str(exc))
            return
        except BaseException:
            job.state, job.place = "pending", None  # interrupted: not measured, not lost
            raise
        append_records(records, self.options.results)
        self.records += len(records)
        job.state, job.records, job.seconds = "done", len(records), round(time.monotonic() - began, 3)
        run.jobs_done += 1
        run.in_a_row = 0
        run.fingerprint = records[0]["device"]["fingerprint"] if records else run.fingerprint
        self.emit(f"{run.name}: {job.label} done, {len(records)} records")

    async def _set_aside(self, run: PlaceRun, reason: str) -> None:
        run.unhealthy = f"{UNHEALTHY_AFTER} failures in a row, last: {reason}"
        if self.options.power_cycle:
            run.power = await self.lab.power_cycle(run.name) if run.info.power else "no power driver"
        self._set(run, "unhealthy")
        self.emit(f"{run.name}: set aside as unhealthy" + (f"; {run.power}" if run.power else ""))

    async def _run_job(self, run: PlaceRun, job: Job) -> list[dict]:
        """deploy_run in a thread; its records annotated; JobFailed with one line on a device fault."""
        from edgebench.deploy.remote import deploy_run

        opts = self.options
        clients: list = []
        release: dict = {}

        def on_connect(client) -> None:
            clients.append(client)
            release.update(probe_release(client))

        def work() -> dict:
            return deploy_run(run.target, job.bundle, None, key=opts.key, known_hosts=opts.known_hosts,
                              fallback=opts.fallback, python=opts.python, remote_dir=remote_dir(opts, run.name),
                              runner_args=["--batch", str(job.batch), *opts.runner_args], on_connect=on_connect,
                              timeout=opts.job_timeout)

        future = _in_thread(work, f"edgebench-{run.name}")
        try:
            done = await asyncio.wait_for(asyncio.shield(future), opts.job_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await self._stop(run, job, clients, future)
            raise JobFailed(f"timed out after {opts.job_timeout:g} s") from None
        except UsageError:
            raise  # bad input (a missing key or bundle): the same on every place
        except EdgebenchError as exc:
            raise JobFailed(str(exc)) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(run, job, clients, future))
            raise
        except Exception as exc:  # noqa: BLE001 - paramiko / socket errors of a lost device
            raise JobFailed(f"connection lost: {one_line(exc, 200, with_type=True)}") from None
        records = done["records"]
        for record in records:
            record["place"] = run.name
            record["device"] = device_of(record, release)
            record["fleet"] = {"job": job.key, "attempt": job.attempts, "coordinator": self.lab.address}
        return records

    async def _stop(self, run: PlaceRun, job: Job, clients: list, future: asyncio.Future) -> None:
        """Close the job's connection, let its thread notice, and kill its runner on the device."""
        for client in clients:
            client.close()
        with contextlib.suppress(Exception):  # it fails, as it should once its connection is closed
            await asyncio.wait_for(asyncio.shield(future), SETTLE_S)
        await asyncio.wait_for(asyncio.shield(_in_thread(lambda: kill_runner(run, job, self.options),
                                                         "edgebench-kill")), SETTLE_S + 5)

    async def _release(self, run: PlaceRun) -> None:
        try:
            await asyncio.wait_for(self.lab.release(run.name), 10)
            run.held = False
            self.emit(f"{run.name}: released")
        except Exception as exc:  # noqa: BLE001 - reported; labgrid-client release frees it by hand
            self.emit(f"{run.name}: could not release ({one_line(exc, 200)}): run "
                      f"`labgrid-client -x {self.lab.address} -p {run.name} release`")

    async def _release_all(self) -> None:
        for run in self.places.values():
            if run.held:
                await self._release(run)


def remote_dir(options: SweepOptions, place: str) -> str:
    return options.remote_dir.replace("{place}", place)


def kill_runner(run: PlaceRun, job: Job, options: SweepOptions) -> str:
    """Best effort: end this job's runner on the device (``[r]`` keeps pkill from matching its own shell)."""
    folder = remote_dir(options, run.name).replace(".", "[.]")
    pattern = f"{folder}/{job.digest[:16]}/[r]unner[.]py"
    try:
        client = connect(run.target, options.key, options.known_hosts, timeout=5)
    except EdgebenchError as exc:
        return f"not reachable: {exc}"
    try:
        code, _out, _err = run_remote(client, ["pkill", "-f", pattern], 10)
        return "killed" if code == 0 else "no runner left"
    except Exception as exc:  # noqa: BLE001
        return f"kill failed: {one_line(exc, 200)}"
    finally:
        client.close()


def _in_thread(fn: Callable[[], object], name: str) -> asyncio.Future:
    """Run ``fn`` in a daemon thread (a hung device must not keep the process alive at exit)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(ok: bool, value) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        try:
            result, ok = fn(), True
        except BaseException as exc:  # noqa: BLE001 - handed to the loop
            result, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, result)
        except RuntimeError:
            pass  # the loop is gone (the sweep was interrupted)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future



async def sweep(coordinator: str, patterns: str, bundles: list[tuple[Path, dict]], batches: tuple[int, ...],
                options: SweepOptions, on_event: Event = lambda _s, _m: None,
                on_start: Callable[[Sweep], None] = lambda _s: None) -> dict:
    """Connect, match the places, queue the jobs (``--resume``: minus those done), run them all."""
    lab = await Lab.connect(coordinator)
    try:
        places = lab.match(patterns)
        missing = [p.name for p in places if p.service is None]
        if missing:
            raise UsageError(f"place {missing[0]} has no NetworkService resource: export one for it and "
                             f"`labgrid-client -p {missing[0]} add-match EXPORTER/GROUP/NetworkService`")
        jobs = jobs_for(bundles, batches)
        run = Sweep(lab, places, jobs, options, on_event)
        if options.resume:
            run.skipped = mark_resumed(jobs, read_records(options.results).records, [p.name for p in places])
        on_start(run)
        return await run.run()
    finally:
        await lab.close()


async def list_places(coordinator: str, results: Path | None) -> list[dict]:
    """Every place: tags, holder, NetworkService, power, and the device fingerprint its last record saw."""
    lab = await Lab.connect(coordinator)
    try:
        newest = {}
        for r in read_records(results).records if results else []:
            if r.get("place"):
                newest[r["place"]] = r.get("device")
        return [{**p.to_dict(), "device": newest.get(p.name)} for p in lab.places()]
    finally:
        await lab.close()
