"""Content hashes for artifacts, weights and cache keys, and the bundle's SHA256SUMS."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: object) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


CHECKSUMS = "SHA256SUMS"


def verify_checksums(root: Path, listing: str = CHECKSUMS) -> dict:
    """Check every file listed in ``root/listing`` (sha256sum format); list problems, never raise."""
    root = Path(root)
    if not (root / listing).is_file():
        return {"verified": False, "files": 0, "problems": [f"{listing} is missing"]}
    problems, count = [], 0
    for line in (root / listing).read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = root / name
        count += 1
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: checksum mismatch")
    return {"verified": not problems, "files": count, "problems": problems}
