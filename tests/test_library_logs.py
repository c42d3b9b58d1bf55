"""Library logs stay quiet: NNCF's own INFO handler is routed through the CLI's log level (``-v`` shows it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

_SCRIPT = """
import sys
from edgebench.cli import _setup_logging
from edgebench.portable.library_logs import import_routed
_setup_logging(sys.argv[1] == "verbose")
nncf = import_routed("nncf")
from nncf.common.logging import nncf_logger
nncf_logger.info("a line NNCF logs at INFO")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_nncf_info_lines_follow_the_cli_log_level(verbose):
    pytest.importorskip("nncf")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, "verbose" if verbose else "quiet"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "INFO:nncf:" not in proc.stdout + proc.stderr  # never NNCF's own handler
    assert ("info: a line NNCF logs at INFO" in proc.stderr) is verbose, proc.stderr[-2000:]
