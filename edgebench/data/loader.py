"""Decode and preprocess dataset samples, skipping (and counting) unreadable files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edgebench.data.dataset import Sample
from edgebench.portable.images import UnreadableImage, read_rgb
from edgebench.portable.preprocess import preprocess

if TYPE_CHECKING:
    from edgebench.portable.preprocess import Preprocess

log = logging.getLogger(__name__)


@dataclass
class LoadedBatch:
    inputs: np.ndarray  # NCHW float32
    labels: list[int | None]
    samples: list[Sample]
    skipped: list[str] = field(default_factory=list)  # one line per unreadable file


def load_samples(samples: list[Sample], spec: Preprocess) -> LoadedBatch:
    """Decode + preprocess every readable sample; unreadable ones are skipped and listed."""
    arrays, kept, skipped = [], [], []
    for sample in samples:
        try:
            arrays.append(preprocess(read_rgb(sample.path), spec))
            kept.append(sample)
        except UnreadableImage as exc:
            skipped.append(str(exc))
    if skipped:  # each caller warns once with its total: the evaluation loads many chunks
        log.info("skipped %d unreadable image(s), e.g. %s", len(skipped), skipped[0])
    shape = (0, 3, spec.input_size, spec.input_size)
    inputs = np.stack(arrays) if arrays else np.zeros(shape, np.float32)
    return LoadedBatch(inputs, [s.label for s in kept], kept, skipped)
