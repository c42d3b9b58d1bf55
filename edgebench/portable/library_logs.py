"""Libraries that configure their own logging at import, handed back to the project's log level.

NNCF, on import, gives its ``nncf`` logger its own stdout handler at INFO and stops it propagating, so a
``sweep`` printed ``INFO:nncf:`` lines between its own progress bars whatever the CLI had set. After the
import, :func:`import_routed` removes the library's handlers, lets the logger propagate to the root
handler (the CLI's one-line ``info:``/``warning:`` on stderr) and restores the level the project had
given it (the CLI: ERROR, INFO with ``-v``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType


def import_routed(name: str) -> ModuleType:
    """``import name``; the first time, its logger of the same name is routed through the project's logging."""
    if name in sys.modules:
        return sys.modules[name]
    logger = logging.getLogger(name)
    level = logger.level
    module = importlib.import_module(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(level)
    return module
