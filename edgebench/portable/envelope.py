"""The record envelope and schema: identity, time and provenance around what was measured.

The library's typed records (:mod:`edgebench.results.records`) and the device runner
both start from :func:`envelope`, so a record made on a Jetson has the same keys as
one made on the host.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from .host import edgebench_info, host_info

SCHEMA = "edgebench.result/1"


def envelope(kind: str, *, edgebench: dict | None = None) -> dict:
    """``schema, id, kind, timestamp, host, edgebench``; ``edgebench``: the version that built a bundle."""
    return {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex,
        "kind": kind,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        "edgebench": edgebench if edgebench is not None else edgebench_info(),
    }
