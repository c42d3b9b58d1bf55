"""``edgebench history import|rebuild|show``: the SQLite history of every result (see :mod:`edgebench.results.history`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgebench.portable.errors import UsageError

db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="EDGEBENCH_DB",
                         help="History database [env: EDGEBENCH_DB; default: results/edgebench.db].")


def _db(db: Path | None, results: Path | None = None) -> Path:
    from edgebench.results.history import db_path
    found = db_path(results or Path("results") / "results.jsonl", db)
    if found is None:
        raise UsageError("the history database is switched off (EDGEBENCH_DB=off): pass --db FILE")
    return found


@click.group("history")
def command() -> None:
    """The history database: import JSON-lines results, rebuild it after corruption, show a trend."""


@command.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_(files: tuple[Path, ...], db: Path | None, as_json: bool) -> None:
    """Import FILE.jsonl ...; idempotent: records already present (same id) are skipped."""
    from edgebench.results.history import import_jsonl
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")
    path = _db(db, files[0])
    report = import_jsonl(path, list(files))
    _warn_other_schema(report)
    if as_json:
        click.echo(json.dumps({"db": str(path), **report}, indent=2))
        return
    click.echo(f"{path}: {report['added']} added, {report['already_present']} already present"
               + (f", {report['damaged_lines']} damaged line(s) skipped" if report["damaged_lines"] else ""))


def _warn_other_schema(report: dict) -> None:
    if report.get("other_schema"):
        from edgebench.portable.envelope import SCHEMA
        click.echo(f"warning: {report['other_schema']} record(s) of another schema than {SCHEMA} (a newer "
                   "edgebench's?) skipped, as `report` skips them: upgrade edgebench to import them", err=True)


@command.command()
@click.option("--results", "files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSON-lines files to rebuild from (repeatable) [default: every *.jsonl beside the database].")
@db_option
def rebuild(files: tuple[Path, ...], db: Path | None) -> None:
    """Recreate the database from the JSON-lines results (after corruption or deletion)."""
    from edgebench.results.history import rebuild as do_rebuild
    path = _db(db, files[0] if files else None)
    chosen = list(files) or sorted(path.parent.glob("*.jsonl"))
    for f in chosen:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")
    report = do_rebuild(path, chosen)
    click.echo(f"{path}: rebuilt from {len(chosen)} file(s), {report['added']} records"
               + (f", {report['damaged_lines']} damaged line(s) skipped" if report["damaged_lines"] else ""))
    if report.get("backup"):
        click.echo(f"the unreadable file that was at {path} is kept as {report['backup']}", err=True)
    _warn_other_schema(report)


@command.command()
@click.option("--model", required=True)
@click.option("--runtime", "runtime_name", required=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default=None)
@click.option("--batch", type=click.IntRange(1), default=None)
@click.option("--threads", type=click.IntRange(1), default=None)
@click.option("--last", type=click.IntRange(1), default=30, show_default=True)
@db_option
@click.option("--json", "as_json", is_flag=True)
def show(model: str, runtime_name: str, precision: str | None, batch: int | None, threads: int | None, last: int,
         db: Path | None, as_json: bool) -> None:
    """A trend table of latency records and of the sides gates measured (marked "gate ..." in the source
    column): date, commit, device, p50 with its CI, stability, host. No record is one line and exit 0."""
    from rich.table import Table

    from edgebench.backends import canonical
    from edgebench.cli.output import stdout
    from edgebench.portable.host import fingerprint, fingerprint_key, host_summary
    from edgebench.results.history import gate_sides, query
    from edgebench.results.records import device_of
    path = _db(db)
    if path.is_dir():
        raise UsageError(f"history database {path} is a directory, not a file: pass --db FILE naming a database file")
    if not path.is_file():
        raise UsageError(f"no history database at {path} (run a measurement, or `edgebench history import FILE`)")
    try:
        from edgebench.models import get_spec
        model = get_spec(model).name
    except UsageError:
        pass  # an imported model's own name
    runtime = canonical(runtime_name)
    found = query(path, model=model, runtime=runtime, precision=precision, batch=batch, threads=threads, status=None,
                  last=last)
    gates = gate_sides(path, model=model, runtime=runtime, precision=precision, batch=batch, threads=threads,
                       last=last)
    rows = []
    for r in found:
        lat = r.get("latency_ms") or {}
        fp = fingerprint(r)
        rows.append({"id": r["id"], "timestamp": r["timestamp"], "commit": (r.get("edgebench") or {}).get("git_commit"),
                     "source": "run", "precision": r.get("precision"), "batch": r.get("batch"),
                     "threads": r.get("threads"), "status": r.get("status"), "p50": lat.get("p50"),
                     "p50_ci95": lat.get("p50_ci95"), "rounds": len(r.get("rounds") or []) or 1,
                     "stability": (r.get("stability") or {}).get("verdict"), "device": device_of(r),
                     "host": host_summary(fp), "fingerprint": fingerprint_key(fp)})
    for side in gates:  # a team that only gates: the sides its gates measured are its trend
        r = side["record"]
        fp = fingerprint(r)
        rows.append({"id": r["id"], "timestamp": r["timestamp"], "commit": (r.get("edgebench") or {}).get("git_commit"),
                     "source": f"gate {r.get('mode') or '?'} {side['side']}", "precision": r.get("precision"),
                     "batch": r.get("batch"), "threads": r.get("threads"), "status": r.get("status"),
                     "p50": side["p50"], "p50_ci95": side["p50_ci95"], "rounds": side["rounds"] or 1,
                     "stability": None, "device": device_of(r), "host": host_summary(fp),
                     "fingerprint": fingerprint_key(fp)})
    rows.sort(key=lambda row: str(row["timestamp"]))
    rows = rows[-last:]
    if not rows:
        if as_json:
            click.echo("[]")
        else:
            click.echo(f"no latency or gate records of {model} on {runtime}{' ' + precision if precision else ''} "
                       f"in {path}")
        return
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    gated = sum(1 for row in rows if row["source"] != "run")
    table = Table(title=f"{model} on {runtime}: {len(rows)} record(s) from {path}"
                        + (f" ({gated} measured by gate rounds)" if gated else ""))
    rows.sort(key=lambda row: (row["device"], row["timestamp"]))  # one trend per device (a fleet's places apart)
    for col in ("date", "commit", "device", "source", "prec", "b", "thr", "p50 ms", "95% CI", "rounds", "stability",
                "host"):
        table.add_column(col, justify="right" if col in ("b", "thr", "p50 ms", "rounds") else "left")
    for row in rows:
        ci = row["p50_ci95"]
        table.add_row(row["timestamp"].replace("T", " ")[:16], row["commit"] or "-", row["device"], row["source"],
                      row["precision"] or "-",
                      str(row["batch"]), str(row["threads"]),
                      f"{row['p50']:.3f}" if row["p50"] is not None else "failed",
                      f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-", str(row["rounds"]), row["stability"] or "-",
                      f"{row['host']} ({row['fingerprint'][:8]})")
    stdout.print(table)
