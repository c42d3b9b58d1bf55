"""Datasets, the shared preprocessing, and INT8 calibration."""

from .dataset import Dataset, Sample, open_dataset
from .images import UnreadableImage, read_rgb
from .preprocess import preprocess, preprocess_batch

__all__ = ["Dataset", "Sample", "UnreadableImage", "open_dataset", "preprocess", "preprocess_batch", "read_rgb"]
