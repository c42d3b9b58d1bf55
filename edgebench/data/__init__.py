"""Image folders as datasets (labels.csv, ImageFolder, unlabelled), the seeded calibration/evaluation
split, and batches loaded through the portable decoding and preprocessing."""

from edgebench.data.dataset import Dataset, Sample, open_dataset

__all__ = ["Dataset", "Sample", "open_dataset"]
