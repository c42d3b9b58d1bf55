"""A seeded, disjoint split of a dataset into calibration and evaluation images.

The same seed and folder always give the same split; the record carries the
seed, the counts and hashes of both file lists, so a calibration and an
accuracy figure can be traced to the exact images they used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from edgebench.data.dataset import Dataset, Sample
from edgebench.portable.hashing import sha256_json

log = logging.getLogger(__name__)

DEFAULT_NUM = 300
DEFAULT_SEED = 0
MIN_EVAL_FRACTION = 0.2  # kept for evaluation when the folder holds fewer images than asked for


@dataclass
class Split:
    calibration: list[Sample]
    evaluation: list[Sample]
    info: dict
    warnings: list[str] = field(default_factory=list)


def file_list_hash(dataset: Dataset, samples: list[Sample]) -> str:
    """Hash of the relative paths, sizes and labels of ``samples`` (order-independent)."""
    rows = sorted((str(s.path.relative_to(dataset.root)), s.path.stat().st_size, s.label) for s in samples)
    return sha256_json(rows)


def split_dataset(dataset: Dataset, num: int = DEFAULT_NUM, seed: int = DEFAULT_SEED) -> Split:
    """``num`` calibration images drawn with ``seed``; every other image is for evaluation.

    With fewer than ``num`` + 1 images, a fifth (at least one) is kept for evaluation
    and the rest calibrate, with a warning that says so.
    """
    samples = sorted(dataset.samples, key=lambda s: str(s.path))
    order = np.random.default_rng(seed).permutation(len(samples))
    total = len(samples)
    warnings = []
    n_cal = num
    if total <= num:
        keep = max(1, int(round(total * MIN_EVAL_FRACTION))) if total > 1 else 0
        n_cal = total - keep
        warnings.append(f"{dataset.root} holds {total} images, fewer than --num {num} + evaluation: "
                        f"calibrating on {n_cal}, keeping {keep} for evaluation")
        if keep < 50:
            warnings.append(f"only {keep} evaluation images: accuracy figures will be very noisy")
    calibration = [samples[i] for i in order[:n_cal]]
    evaluation = sorted((samples[i] for i in order[n_cal:]), key=lambda s: str(s.path))
    for w in warnings:
        log.warning(w)
    info = {
        "seed": seed, "requested": num, "total": total,
        "calibration_count": len(calibration), "evaluation_count": len(evaluation),
        "calibration_hash": file_list_hash(dataset, calibration),
        "evaluation_hash": file_list_hash(dataset, evaluation),
        "folder": str(dataset.root.resolve()), "layout": dataset.layout,
    }
    return Split(calibration, evaluation, info, warnings)
