"""``edgebench deploy bundle`` and ``edgebench deploy run``."""

from __future__ import annotations

from pathlib import Path

import click

from edgebench.cli.options import FiniteFloat, NonEmptyPath, open_results, parse_batches, runner_options
from edgebench.deploy.spec import RunnerSpec
from edgebench.portable import strict_json
from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare


@click.group("deploy")
def command() -> None:
    """Package a model for a device (Jetson) and benchmark it there over SSH."""


@command.command("bundle")
@click.option("--model", help="Registry model name (see `edgebench models`).")
@click.option("--onnx", "onnx_file", type=NonEmptyPath(path_type=Path), help="Bundle this ONNX classifier instead.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="int8 ships the Q/DQ ONNX made by `edgebench export --precision int8`.")
@click.option("--out", "out", type=NonEmptyPath(dir_okay=False, path_type=Path), default=Path("bundle.tar.gz"),
              show_default=True, help="The archive to write.")
@click.option("--data", type=NonEmptyPath(path_type=Path), envvar="EDGEBENCH_DATA",
              help="Image folder: a few sample photos + labels.csv go into the bundle (and INT8 calibration).")
@click.option("--weights", default="auto", show_default=True, help="As for `edgebench export`.")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), envvar="EDGEBENCH_WEIGHTS")
@click.option("--artifacts", type=NonEmptyPath(file_okay=False, path_type=Path), default=Path("artifacts"),
              show_default=True, help="Artifacts folder the model is exported into (reused when current).")
@click.option("--json", "as_json", is_flag=True, help="Print bundle.json on stdout.")
def bundle(model: str | None, onnx_file: Path | None, precision: str, out: Path, data: Path | None, weights: str,
           weights_dir: Path | None, artifacts: Path, as_json: bool) -> None:
    """Write a self-contained archive: ONNX, preprocessing, labels, runner, SHA256SUMS."""
    from edgebench.deploy.bundle import write_bundle

    prepared = prepare(ModelSource(model, onnx_file, weights, weights_dir), ("ort",), precision,
                       BuildRequest(artifacts, data))
    meta = write_bundle(prepared, precision, out, data)
    if as_json:
        click.echo(strict_json.dumps(meta, indent=2))
        return
    click.echo(f"wrote {out} ({meta['archive_bytes'] / 2**20:.1f} MB, {meta['checksummed_files']} files "
               f"checksummed): {meta['model']['name']} {precision}, sha256 {meta['archive_sha256'][:16]}")


@command.command("run")
@click.option("--host", required=True, help="user@host of the device.")
@click.option("--port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="SSH private key (else agent / ~/.ssh).")
@click.option("--bundle", "bundle_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fallback", type=click.Choice(["none", "ort"]), default="none", show_default=True,
              help="ort: measure on ONNX Runtime (CPU) when the device has no usable TensorRT.")
@click.option("--batch", default="1", show_default=True, callback=parse_batches, help="Comma-separated batch sizes.")
@runner_options
@click.option("--python", "python", default="python3", show_default=True, help="Python on the device.")
@click.option("--remote-dir", help="Working folder on the device [default: ~/edgebench-deploy].")
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path),
              help="Known-hosts file (new hosts are added, changed keys refused) [default: ~/.edgebench/known_hosts].")
@click.option("--results", type=NonEmptyPath(dir_okay=False, path_type=Path), default=Path("results/results.jsonl"),
              show_default=True, help="Local JSON-lines file the device's records are appended to.")
@click.option("--connect-timeout", type=FiniteFloat(0.1), default=15.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the device's SSH server to connect and answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the records on stdout.")
def run(host: str, port: int, key: Path | None, bundle_file: Path, fallback: str, batch: tuple[int, ...],
        runner: RunnerSpec, python: str, remote_dir: str | None, known_hosts: Path | None, results: Path,
        connect_timeout: float, as_json: bool) -> None:
    """Upload a bundle, verify its checksums on the device, build + benchmark there, fetch the records."""
    from edgebench.deploy.remote import Target, deploy_run

    results = open_results(results)
    done = deploy_run(Target.parse(host, port), bundle_file, results, key=key, known_hosts=known_hosts,
                      fallback=fallback, python=python, remote_dir=remote_dir, runner_args=runner.argv(batch),
                      connect_timeout=connect_timeout, status=lambda m: click.echo(m, err=True))
    summary = done["summary"]
    if as_json:
        click.echo(strict_json.dumps(done["records"], indent=2))
        return
    checks = summary["checksums"]
    click.echo(f"checksums verified on device: {checks['files']} files")
    reason = (summary.get("tensorrt") or {}).get("reason")
    click.echo(f"TensorRT: {'usable' if not reason else reason}")
    for r in done["records"]:
        lat = r["latency_ms"]
        fell = " (fallback)" if r.get("deploy", {}).get("fallback") else ""
        click.echo(f"{r['model']['name']} {r['runtime']['name']}{fell} {r['runtime']['version']} {r['precision']} "
                   f"batch {r['batch']}: p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, p99 {lat['p99']:.3f} ms, "
                   f"{lat['throughput_ips']:.1f} img/s")
    power = done["device_power"]
    click.echo(f"nvpmodel: {power['nvpmodel'] or 'not present'}; jetson_clocks: "
               f"{'recorded' if power['jetson_clocks'] else 'not present'}")
    click.echo(f"{len(done['records'])} records appended to {results}")
