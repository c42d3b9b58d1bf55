"""Numeric agreement between an engine's outputs and the PyTorch reference.

Absolute error alone passes trivially on degenerate outputs (tiny or zero logits
from random init), so the checks use relative L2 error and per-sample cosine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgebench.portable.errors import ExportError


@dataclass(frozen=True)
class Tolerance:
    max_rel_err: float
    min_cosine: float


TOLERANCES = {"fp32": Tolerance(1e-3, 0.9999), "fp16": Tolerance(3e-2, 0.999)}


def agreement(reference: np.ndarray, output: np.ndarray) -> dict:
    """max abs error, relative L2 error, minimum per-sample cosine and top-1 agreement."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = output.reshape(len(output), -1).astype(np.float64)
    if ref.shape != out.shape:
        raise ExportError(f"output shape {output.shape} differs from the reference {reference.shape}")
    diff = out - ref
    ref_norm = np.linalg.norm(ref)
    denom = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = np.where(denom > 0, (ref * out).sum(axis=1) / np.maximum(denom, 1e-300), 1.0)
    return {
        "samples": len(ref),
        "max_abs_err": float(np.abs(diff).max()),
        "rel_err": float(np.linalg.norm(diff) / ref_norm) if ref_norm > 0 else float(np.linalg.norm(diff)),
        "cosine_min": float(cosine.min()),
        "top1_agreement": float((ref.argmax(1) == out.argmax(1)).mean()),
    }


def check(figures: dict, precision: str, what: str) -> dict:
    """Raise ExportError naming the figure that is beyond tolerance; return the figures with the verdict."""
    tol = TOLERANCES.get(precision)
    if tol is None:  # int8 is judged by accuracy, not by closeness to FP32
        return {**figures, "tolerance": None, "passed": True}
    if not np.isfinite(figures["rel_err"]) or figures["rel_err"] > tol.max_rel_err:
        raise ExportError(f"{what} differs from PyTorch: relative error {figures['rel_err']:.2e} > {tol.max_rel_err:.0e} "
                          f"(cosine {figures['cosine_min']:.6f}, max abs {figures['max_abs_err']:.2e})")
    if figures["cosine_min"] < tol.min_cosine:
        raise ExportError(f"{what} differs from PyTorch: cosine {figures['cosine_min']:.6f} < {tol.min_cosine}")
    return {**figures, "tolerance": asdict(tol), "passed": True}
