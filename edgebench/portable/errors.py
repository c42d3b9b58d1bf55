"""Errors that the CLI turns into one clear line, and the exit code of every outcome.

CI scripts branch on the code, so each outcome has its own: a regression (1) is only ever the gate's verdict.
"""

from __future__ import annotations

import math

EXIT_OK = 0  # done; the gate: pass (no change or an improvement)
EXIT_REGRESSION = 1  # the gate only: a regression, or a budget exceeded
EXIT_USAGE = 2  # the user's mistake: bad option, unknown model, unreadable or corrupt file
EXIT_INCONCLUSIVE = 3  # the gate: the measurements cannot tell (``--inconclusive pass|fail`` maps it to 0 or 1)
EXIT_FAILED = 4  # a measurement or fleet job failed (its record says why; the other records are kept)
EXIT_INTERNAL = 70  # a bug in edgebench (BSD sysexits' EX_SOFTWARE); rerun with -v for the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it); finished records are kept

EXIT_CODES = {EXIT_OK: "pass", EXIT_REGRESSION: "regression (gate only)", EXIT_USAGE: "usage error",
              EXIT_INCONCLUSIVE: "inconclusive", EXIT_FAILED: "a measurement failed",
              EXIT_INTERNAL: "internal error", EXIT_INTERRUPTED: "interrupted"}


class EdgebenchError(Exception):
    """A problem the user can act on; ``str(err)`` is the one-line message."""

    exit_code = EXIT_USAGE


class UsageError(EdgebenchError):
    """Bad input: unknown model, invalid option value, unreadable file."""


class RuntimeUnavailable(EdgebenchError):
    """A runtime or device that is not installed or not present here."""


class ExportError(EdgebenchError):
    """Export or numeric verification failed."""


class EngineMismatch(EdgebenchError):
    """An engine built for another runtime version or device."""


def finite(value: object, what: str) -> float:
    """``value`` as a float when it is a finite number, else UsageError naming ``what``: every float option and
    budget value goes through here. NaN compares false with every bound (``--threshold nan`` passed a range
    check), and TOML's ``inf`` or an overflowing ``1e400`` made a budget that always passes."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def one_line(exc: BaseException, limit: int = 300, *, with_type: bool = False) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters (its type's name when empty); with
    ``with_type``, prefixed by the type's name. Every "one clear line" of an exception is made here."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if with_type and first else (first or type(exc).__name__)
    return line[:limit]
