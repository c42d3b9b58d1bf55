"""The ``edgebench`` command line (Click): one module per command, over :mod:`edgebench.workflow`.

Every problem the user can act on (unknown model, missing runtime, corrupt file,
bad option value) is one line on stderr and exit code 2, never a traceback. Each outcome has its own
exit code (:mod:`edgebench.portable.errors`): 0 pass, 1 regression (the gate only), 2 usage error,
3 inconclusive, 4 a measurement failed, 70 internal error, 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import logging
import signal
import sys
import traceback

import click

from edgebench import __version__
from edgebench.portable.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EdgebenchError, one_line


class _Group(click.Group):
    """A Click group that turns EdgebenchError into one line and its exit code (2 for the user's mistakes),
    Ctrl-C or SIGTERM into one line and 130 (Click's ``Aborted!`` exited 1, which a CI gate reads as a
    regression), and any other failure into one line and 70 (the traceback only with --verbose)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EdgebenchError as exc:
            for line in getattr(exc, "unsaved", None) or ():  # records no file could hold (ResultsNotSaved)
                click.echo(line)
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: the records of finished measurements are kept", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - every other failure is a bug: one line and exit 70
            if logging.getLogger().isEnabledFor(logging.INFO):
                traceback.print_exc()
            click.echo(f"error: internal error: {one_line(exc, with_type=True)} (run with -v for details)", err=True)
            sys.exit(EXIT_INTERNAL)


def _interrupt(signum: int, _frame) -> None:
    """SIGTERM (what ``timeout`` and CI runners send) unwinds like Ctrl-C: ``finally`` blocks remove partial
    files, and ``subprocess.run`` kills the measurement worker instead of leaving it to measure on."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


class _OnceHandler(logging.Handler):
    """Each distinct message once per command, on the stderr of the moment: a data folder read for the
    calibration and again for the evaluation warned twice about the same rows."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.levelname.lower()}: {self.format(record)}"  # as the CLI's own "error:" lines
        if (record.levelno, message) not in self.seen:
            self.seen.add((record.levelno, message))
            click.echo(message, err=True)


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OnceHandler)]:  # main() called again in one process
        root.removeHandler(old)
    root.addHandler(_OnceHandler())
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("nncf", "torch", "openvino"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not verbose else logging.INFO)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
@click.option("-v", "--verbose", is_flag=True, help="Log what each step does.")
def main(verbose: bool) -> None:
    """Export image classifiers to ONNX Runtime, OpenVINO and TensorRT engines and
    measure their latency, memory and accuracy with one protocol.

    Exit codes: 0 pass, 1 regression (gate only), 2 usage error, 3 inconclusive, 4 a measurement failed,
    70 internal error, 130 interrupted."""
    _setup_logging(verbose)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _register() -> None:
    from edgebench.cli import (
        calibrate,
        crosscheck,
        deploy,
        doctor,
        evaluate,
        export,
        fleet,
        gate,
        history,
        models,
        report,
        run,
        sweep,
    )
    for module in (models, export, run, sweep, report, crosscheck, calibrate, evaluate, gate, history, doctor,
                   deploy, fleet):
        main.add_command(module.command)


_register()
