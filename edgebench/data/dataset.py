"""Dataset readers for three layouts.

* flat folder + ``labels.csv`` (``file,class_index[,...]``), as in the shared imagenet-sample;
* ImageFolder: one sub-folder per class, named by WordNet id (``n01440764/…``);
* an unlabelled folder of images, for calibration only.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path, PurePath

from edgebench.portable.errors import UsageError
from edgebench.portable.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

WNID = re.compile(r"^n\d{8}$")
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int | None


@dataclass
class Dataset:
    root: Path
    layout: str  # labels-csv | imagefolder | unlabelled
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        return self.layout != "unlabelled"

    def __len__(self) -> int:
        return len(self.samples)


def imagenet_synsets() -> list[str]:
    """The 1000 ImageNet-1k WordNet ids in class-index order (from timm's bundled list)."""
    text = (files("timm") / "data" / "_info" / "imagenet_synsets.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def open_dataset(root: str | Path, num_classes: int = NUM_CLASSES) -> Dataset:
    """Detect the layout of ``root`` and list its samples; UsageError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"data folder {root} does not exist or is not a folder")
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot read data folder {root}: {exc.strerror}") from None
    labels = root / "labels.csv"
    if labels.is_file():
        dataset = _read_labels_csv(root, labels, num_classes)
    elif any(p.is_dir() and WNID.match(p.name) for p in entries):
        dataset = _read_imagefolder(root, num_classes)
    else:
        dataset = Dataset(root, "unlabelled", [Sample(p, None) for p in _images_in(root)],
                          ["no labels.csv and no class sub-folders: calibration works, accuracy is skipped"])
    if not dataset.samples:
        raise UsageError(f"data folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for warning in dataset.warnings:  # the CLI shows each distinct warning once, however often a folder is read
        log.warning(warning)
    return dataset


def _read_labels_csv(root: Path, labels: Path, num_classes: int) -> Dataset:
    """Rows of ``file,class_index``; ``utf-8-sig`` reads the byte-order mark spreadsheet programs write."""
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{labels} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                         "save it as UTF-8 (CSV UTF-8)") from None
    samples, warnings = [], []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"file", "class_index"} <= set(reader.fieldnames):
        raise UsageError(f"{labels} must have the columns file,class_index (it has {', '.join(reader.fieldnames or [])})")
    bad_index = missing = folders = 0
    for row in reader:
        if not row["file"]:  # a row with an empty or missing file name
            missing += 1
            continue
        path = listed_path(root, labels, row["file"], reader.line_num)
        try:
            label = int(row["class_index"])
        except (TypeError, ValueError):
            label = -1
        if not 0 <= label < num_classes:
            bad_index += 1
        elif path.is_dir():
            folders += 1
        elif not path.is_file():
            missing += 1
        else:
            samples.append(Sample(path, label))
    if bad_index:
        warnings.append(f"{bad_index} rows of {labels.name} have a class index outside 0..{num_classes - 1}: skipped")
    if missing:
        warnings.append(f"{missing} files listed in {labels.name} do not exist: skipped")
    if folders:
        warnings.append(f"{folders} entries listed in {labels.name} are folders, not image files: skipped")
    return Dataset(root, "labels-csv", samples, warnings)


def listed_path(root: Path, labels: Path, name: str, line: int) -> Path:
    """``name`` from ``labels.csv`` inside ``root``; UsageError for an absolute path or one that climbs out
    with ``..``, which would read (and hash into the record) files outside the data folder. The check is on
    the listed name, so a data folder that links its images in from elsewhere still works."""
    listed = PurePath(name)
    if listed.is_absolute() or listed.drive or ".." in listed.parts:
        raise UsageError(f"{labels} line {line}: {name!r} is not inside the data folder; list images by their path "
                         f"relative to {root}")
    return root / listed


def _read_imagefolder(root: Path, num_classes: int) -> Dataset:
    index = {wnid: i for i, wnid in enumerate(imagenet_synsets()[:num_classes])}
    samples, unknown = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in index:
            unknown.append(folder.name)
            continue
        samples += [Sample(p, index[folder.name]) for p in _images_in(folder)]
    warnings = [f"{len(unknown)} sub-folders are not ImageNet WordNet ids: skipped ({', '.join(unknown[:3])})"] if unknown else []
    return Dataset(root, "imagefolder", samples, warnings)
