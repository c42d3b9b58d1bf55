"""``edgebench fleet places`` and ``edgebench fleet sweep``: bundles over the places of a labgrid coordinator."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from edgebench.cli.options import FiniteFloat, parse_batches, runner_options, split
from edgebench.deploy.spec import RunnerSpec
from edgebench.portable.errors import EXIT_INTERRUPTED

_COORDINATOR = click.option("--coordinator", envvar="LG_COORDINATOR", required=True, metavar="HOST:PORT",
                            help="labgrid coordinator [env LG_COORDINATOR; port default 20408].")
_RESULTS = Path("results/results.jsonl")


@click.group("fleet")
def command() -> None:
    """Sweep bundles over many devices held as labgrid places, one exclusive job per device at a time."""


@command.command("places")
@_COORDINATOR
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), default=_RESULTS, show_default=True,
              help="Results file whose newest record per place gives the device fingerprint.")
@click.option("--json", "as_json", is_flag=True, help="Print the places as JSON.")
def places(coordinator: str, results: Path, as_json: bool) -> None:
    """List the places: tags, who holds each, its NetworkService, and the device the last run saw."""
    from edgebench.cli.output import stdout
    from edgebench.deploy import lab
    from edgebench.deploy.fleet import list_places

    found = lab.run(list_places(coordinator, results))
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    from rich.table import Table
    table = Table(title=f"labgrid places on {coordinator}")
    for col in ("place", "tags", "acquired by", "NetworkService", "power", "device (last run)"):
        table.add_column(col)
    for p in found:
        service = p["service"]
        where = f"{service['username']}@{service['address']}:{service.get('port', 22)}" if service else "none"
        device = p["device"] or {}
        seen = " ".join(str(v) for v in (device.get("fingerprint"), device.get("board") or device.get("cpu"),
                                         device.get("tensorrt") and f"TensorRT {device['tensorrt']}",
                                         device.get("nvpmodel")) if v) or "-"
        table.add_row(p["name"], ", ".join(f"{k}={v}" for k, v in sorted(p["tags"].items())) or "-",
                      p["acquired"] or "-", where + ("" if p["service_avail"] or not service else " (unavailable)"),
                      p["power"] or "-", seen)
    stdout.print(table)


@command.command("sweep")
@_COORDINATOR
@click.option("--places", "patterns", default="*", show_default=True, help="Comma-separated globs of place names.")
@click.option("--models", default="", help="Comma-separated registry models to bundle.")
@click.option("--onnx", "onnx_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An ONNX classifier to bundle (repeatable).")
@click.option("--bundle", "bundle_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A bundle made by `edgebench deploy bundle` (repeatable).")
@click.option("--precisions", default="fp32", show_default=True, help="Comma-separated: fp32, fp16, int8.")
@click.option("--batch", default="1", show_default=True, callback=parse_batches,
              help="Comma-separated batch sizes: one job per bundle and batch.")
@click.option("--data", type=click.Path(path_type=Path), envvar="EDGEBENCH_DATA",
              help="Image folder: sample photos in each bundle, and INT8 calibration.")
@click.option("--weights", default="auto", show_default=True, help="As for `edgebench export`.")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EDGEBENCH_WEIGHTS")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
              show_default=True, help="Artifacts folder; the bundles go to its bundles/.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="SSH private key (else agent / ~/.ssh).")
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path),
              help="Known-hosts file [default: ~/.edgebench/known_hosts].")
@click.option("--fallback", type=click.Choice(["none", "ort"]), default="none", show_default=True,
              help="ort: measure on ONNX Runtime (CPU) where a device has no usable TensorRT.")
@click.option("--python", "python", default="python3", show_default=True, help="Python on the devices.")
@click.option("--remote-dir", default="edgebench-deploy/{place}", show_default=True,
              help="Working folder on the devices (relative: to the login's home); {place}: the place's name.")
@runner_options
@click.option("--job-timeout", type=FiniteFloat(1), default=1800, show_default=True, metavar="SECONDS",
              help="A job still running after this fails on that place and is requeued.")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True,
              help="How often a failed job is requeued (on another place where one is alive).")
@click.option("--power-cycle", is_flag=True, help="Cycle the power of a place set aside as unhealthy.")
@click.option("--resume", is_flag=True, help="Skip jobs whose records exist for the places' device fingerprints.")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), default=_RESULTS, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def sweep(coordinator: str, patterns: str, models: str, onnx_files: tuple[Path, ...], bundle_files: tuple[Path, ...],
          precisions: str, batch: tuple[int, ...], data: Path | None, weights: str, weights_dir: Path | None,
          artifacts: Path, key: Path | None, known_hosts: Path | None, fallback: str, python: str,
          remote_dir: str, runner: RunnerSpec, job_timeout: float, retries: int, power_cycle: bool, resume: bool,
          results: Path, as_json: bool) -> None:
    """Bundle each model x precision once, then run every (bundle, batch) job on the matching places."""
    from edgebench.cli.options import open_results
    from edgebench.cli.output import console
    from edgebench.deploy import fleet, lab
    from edgebench.portable.errors import UsageError
    from edgebench.workflow.prepare import ModelSource

    wanted = split(precisions)
    if not wanted or set(wanted) - {"fp32", "fp16", "int8"}:
        raise UsageError(f"--precisions takes fp32, fp16, int8; got {precisions!r}")
    sources = [ModelSource(m, None, weights, weights_dir) for m in split(models)]
    sources += [ModelSource(None, f, weights, weights_dir) for f in onnx_files]
    if not sources and not bundle_files:
        raise UsageError("nothing to sweep: give --models, --onnx or --bundle")
    if key is not None and not key.is_file():
        raise UsageError(f"SSH key {key} does not exist")
    open_results(results)  # a results file that cannot be appended to stops the sweep before any bundle or place
    bundles = [fleet.read_bundle(b) for b in bundle_files]
    if sources:
        with console.status("building bundles") as spinner:
            bundles += fleet.build_bundles(sources, wanted, data, artifacts, artifacts / "bundles", spinner.update)
    options = fleet.SweepOptions(results, key, known_hosts, python, remote_dir, fallback, tuple(runner.argv()), job_timeout,
                                 retries, power_cycle, resume)
    progress = _Progress(console)
    try:
        summary = lab.run(fleet.sweep(coordinator, patterns, bundles, batch, options, progress.event,
                                          progress.start))
    except KeyboardInterrupt:
        progress.stop()
        click.echo(f"interrupted: every acquired place was released; {progress.records()} records of finished jobs "
                   f"are in {results}; `--resume` runs the rest", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        progress.stop()
    _print_summary(summary, as_json)
    jobs = summary["jobs"]
    if jobs["failed"]:
        failed = [j for j in summary["job_list"] if j["state"] == "failed"]
        raise fleet.FleetIncomplete(f"{jobs['failed']} of {len(summary['job_list'])} jobs failed on every place "
                                    f"tried; first: {failed[0]['model']} b{failed[0]['batch']}: {failed[0]['errors'][-1]}")


class _Progress:
    """A rich live table of place, job, state and elapsed time on a terminal; one line per event elsewhere."""

    def __init__(self, console):
        self.console = console
        self.sweep = None
        self.live = None

    def start(self, sweep) -> None:
        self.sweep = sweep
        if sweep.skipped:
            self.console.print(f"--resume: {sweep.skipped} jobs already measured on these devices are skipped")
        if self.console.is_terminal:
            from rich.live import Live
            self.live = Live(get_renderable=self.table, console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def event(self, sweep, message: str | None) -> None:
        if message is None:
            return
        if self.live is not None:
            self.live.console.print(message)
        else:
            click.echo(f"[fleet {time.monotonic() - sweep.started:7.1f}s] {message}", err=True)

    def table(self):
        from rich.table import Table
        table = Table(title="edgebench fleet sweep")
        for col in ("place", "job", "state", "elapsed", "done", "failed"):
            table.add_column(col)
        now = time.monotonic()
        for run in self.sweep.places.values():
            table.add_row(run.name, run.job.label if run.job else "-", run.state, f"{now - run.since:.0f} s",
                          str(run.jobs_done), str(run.failures))
        return table

    def records(self) -> int:
        return self.sweep.records if self.sweep else 0

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    jobs = summary["jobs"]
    click.echo(f"{jobs['done']} jobs done, {jobs['failed']} failed, {jobs['skipped']} skipped (--resume); "
               f"{summary['records']} records appended to {summary['results']} in {summary['wall_s']:.1f} s")
    for place in summary["places"]:
        state = f"UNHEALTHY: {place['unhealthy']}" if place["unhealthy"] else "healthy"
        power = f"; {place['power']}" if place["power"] else ""
        click.echo(f"  {place['place']}: {place['jobs_done']} jobs, {place['failures']} failures, {state}{power}")
