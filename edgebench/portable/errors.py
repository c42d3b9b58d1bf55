"""Errors that the CLI turns into one clear line and exit code 2, never a traceback."""

from __future__ import annotations


class EdgebenchError(Exception):
    """A problem the user can act on; ``str(err)`` is the one-line message."""

    exit_code = 2


class UsageError(EdgebenchError):
    """Bad input: unknown model, invalid option value, unreadable file."""


class RuntimeUnavailable(EdgebenchError):
    """A runtime or device that is not installed or not present here."""


class ExportError(EdgebenchError):
    """Export or numeric verification failed."""


class EngineMismatch(EdgebenchError):
    """An engine built for another runtime version or device."""
