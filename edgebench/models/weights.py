"""Build a registered model with weights from a local file, a hub, or a seeded random init.

``--weights auto|pretrained|random|PATH``:

* ``auto``: a local file known for the model (``--weights-dir`` or ``EDGEBENCH_WEIGHTS``),
  else the hub cache (no download), else random weights with a warning;
* ``pretrained``: download through torchvision or timm;
* ``random``: seeded random init, made non-degenerate (see :func:`randomize`);
* ``PATH``: a ``.safetensors`` file, or a ``.pth``/``.pt`` loaded with ``weights_only=True``.

Preprocessing follows the weights: a file listed in its directory's ``index.csv`` with
input/resize/interpolation/mean/std is evaluated with those; anything else with the
model's registered preprocessing (that of its hub weights).
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from edgebench.models.registry import ModelSpec, Preprocess, WeightSource
from edgebench.portable.errors import UsageError, one_line
from edgebench.portable.hashing import sha256_file

log = logging.getLogger(__name__)

WEIGHTS_ENV = "EDGEBENCH_WEIGHTS"
RANDOM_SEED = 0
INDEX = "index.csv"
INDEX_PREPROCESS = ("input", "resize", "interpolation", "mean", "std")


@dataclass(frozen=True)
class WeightsInfo:
    """Provenance of the weights a model was built with and the preprocessing they take; goes into every result."""

    source: str  # local | file | torchvision | timm | random
    ref: str  # file path, weights enum, timm tag, or the random init recipe
    sha256: str | None
    trained: bool  # False for random weights: accuracy is then not meaningful
    preprocess: Preprocess
    preprocess_source: str  # "index.csv" (the file's row there) or "registry" (the spec's, = its hub weights')

    def to_dict(self) -> dict:
        return asdict(self)


def load_model(spec: ModelSpec, weights: str = "auto",
               weights_dir: str | os.PathLike | None = None) -> tuple[nn.Module, WeightsInfo]:
    """Build ``spec``'s model in eval mode with the requested weights."""
    if weights == "pretrained":
        return _pretrained(spec.build(), spec)
    info = weights_info(spec, weights, weights_dir)
    return build_model(spec, info), info


def weights_info(spec: ModelSpec, weights: str = "auto",
                 weights_dir: str | os.PathLike | None = None) -> WeightsInfo | None:
    """What :func:`load_model` would load, found without building the model: an export whose content key
    matches reuses its files and never builds it. None for ``pretrained``, known only after the download."""
    if weights == "pretrained":
        return None
    if weights == "random":
        return _random_info(spec)
    if weights == "auto":
        local = find_local_weights(spec, weights_dir)
        if local is not None:
            return _file_info(spec, local, source="local")
        cached = hub_cache_path(spec)
        if cached is not None:
            source, path = cached
            return WeightsInfo(source.kind, source.ref, sha256_file(path), True, spec.preprocess, "registry")
        log.warning("no trained weights for %s found locally or in the hub cache: using random "
                    "weights (accuracy is not meaningful; set --weights-dir or EDGEBENCH_WEIGHTS)",
                    spec.name)
        return _random_info(spec)
    path = Path(weights)
    if not path.is_file():
        raise UsageError(f"--weights must be auto, pretrained, random or a file; {weights!r} is none of these")
    return _file_info(spec, path, source="file")


def build_model(spec: ModelSpec, info: WeightsInfo) -> nn.Module:
    """``spec``'s model in eval mode with the weights ``info`` (from :func:`weights_info`) names."""
    if info.source == "random":
        return _random(spec)
    model = spec.build()
    if info.source in ("local", "file"):
        apply_state_dict(model, read_state_dict(Path(info.ref)), info.ref)
        return model.eval()
    cached = hub_cache_path(spec)
    if cached is None:
        raise UsageError(f"the {info.source} weights of {spec.name} ({info.ref}) left the hub cache")
    _load_hub_file(model, cached[1], cached[0])
    return model.eval()


def weights_directory(weights_dir: str | os.PathLike | None = None) -> Path | None:
    value = weights_dir or os.environ.get(WEIGHTS_ENV)
    return Path(value) if value else None


def _index_rows(directory: Path) -> list[dict[str, str]]:
    """The rows of ``directory``'s ``index.csv`` (none without one)."""
    index = directory / INDEX
    if not index.is_file():
        return []
    with index.open(newline="") as f:
        return list(csv.DictReader(f))


def find_local_weights(spec: ModelSpec, weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The local weights file for ``spec``: from the directory's ``index.csv`` (by
    architecture) when it has one, else ``<arch>.safetensors`` / ``.pth``."""
    directory = weights_directory(weights_dir)
    if directory is None or not directory.is_dir():
        return None
    rows = _index_rows(directory)
    for arch in (w.ref for w in spec.weights if w.kind == "local"):
        for row in rows:
            if row.get("architecture") == arch and (directory / row["file"]).is_file():
                return directory / row["file"]
        for suffix in (".safetensors", ".pth", ".pt"):
            if (directory / f"{arch}{suffix}").is_file():
                return directory / f"{arch}{suffix}"
    return None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or (with ``weights_only=True``) ``.pth``/``.pt``."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # noqa: PLC0415 - safetensors, only for the weights that need it
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise UsageError(f"cannot read weights file {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"weights file {path} does not hold a state dict")
    return state


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming the keys that do not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise UsageError(f"weights {origin} do not fit the architecture: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def _triple(text: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise ValueError(f"expected 3 comma-separated numbers, got {text!r}")
    return values  # type: ignore[return-value]


def _index_preprocess(spec: ModelSpec, path: Path) -> Preprocess | None:
    """The preprocessing the ``index.csv`` next to ``path`` gives for it; None if it gives none."""
    row = next((r for r in _index_rows(path.parent)
                if r.get("file") and (path.parent / r["file"]).resolve() == path.resolve()), None)
    if row is None or not all(row.get(k) for k in INDEX_PREPROCESS):
        return None
    where = f"{path.parent / INDEX}, row {row['file']}"
    try:
        found = Preprocess(int(row["input"]), int(row["resize"]), row["interpolation"],  # type: ignore[arg-type]
                           _triple(row["mean"]), _triple(row["std"]))
    except ValueError as exc:
        raise UsageError(f"{where}: unreadable preprocessing ({exc})") from None
    if found.interpolation not in ("bilinear", "bicubic", "nearest") or not found.resize >= found.input_size > 0:
        raise UsageError(f"{where}: bad preprocessing {found.to_dict()}")
    if found.input_size != spec.preprocess.input_size:
        raise UsageError(f"{where}: input {found.input_size} px, but {spec.name} is registered at "
                         f"{spec.preprocess.input_size} px")
    return found


def _file_info(spec: ModelSpec, path: Path, source: str) -> WeightsInfo:
    indexed = _index_preprocess(spec, path)
    preprocess, origin = (indexed, INDEX) if indexed is not None else (spec.preprocess, "registry")
    return WeightsInfo(source, str(path.resolve()), sha256_file(path), True, preprocess, origin)


def _hub_source(spec: ModelSpec) -> WeightSource | None:
    return next((w for w in spec.weights if w.kind in ("torchvision", "timm")), None)


def _torchvision_cache_path(ref: str) -> Path:
    from torchvision.models import get_weight  # noqa: PLC0415 - torchvision, only for the weights that need it
    url = get_weight(ref).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _timm_cache_path(tag: str) -> Path | None:
    import timm  # noqa: PLC0415 - timm, only for the weights that need it
    from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415 - huggingface_hub, only for the weights that need it
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is None or not cfg.hf_hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(cfg.hf_hub_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hub_cache_path(spec: ModelSpec) -> tuple[WeightSource, Path] | None:
    """The hub source of ``spec`` and its file in the local hub cache, if it was downloaded."""
    source = _hub_source(spec)
    if source is None:
        return None
    path = _torchvision_cache_path(source.ref) if source.kind == "torchvision" else _timm_cache_path(source.ref)
    return (source, path) if path is not None and path.is_file() else None


def _from_hub_cache(model: nn.Module, spec: ModelSpec) -> tuple[nn.Module, WeightsInfo] | None:
    cached = hub_cache_path(spec)
    if cached is None:
        return None
    source, path = cached
    _load_hub_file(model, path, source)
    return model.eval(), WeightsInfo(source.kind, source.ref, sha256_file(path), True, spec.preprocess, "registry")


def _load_hub_file(model: nn.Module, path: Path, source: WeightSource) -> None:
    if source.kind == "timm":
        from timm.models import load_checkpoint  # noqa: PLC0415 - timm, only for the weights that need it
        load_checkpoint(model, str(path), strict=True)
    else:
        apply_state_dict(model, read_state_dict(path), str(path))


def _pretrained(model: nn.Module, spec: ModelSpec) -> tuple[nn.Module, WeightsInfo]:
    source = _hub_source(spec)
    if source is None:
        raise UsageError(f"{spec.name} has no hub weights; pass --weights PATH or --weights random")
    try:
        if source.kind == "torchvision":
            from torchvision.models import get_weight  # noqa: PLC0415 - torchvision, only for the weights that need it
            get_weight(source.ref).get_state_dict(progress=False)  # downloads into the hub cache
        else:
            import timm  # noqa: PLC0415 - timm, only for the weights that need it
            hub_log = logging.getLogger("huggingface_hub")
            level = hub_log.level
            hub_log.setLevel(logging.ERROR)  # its retries log two warning lines each: the error below says it once
            try:
                timm.create_model(source.ref, pretrained=True)  # downloads into the HF cache
            finally:
                hub_log.setLevel(level)
    except Exception as exc:  # noqa: BLE001 - network failures come in many types
        raise UsageError(f"cannot download pretrained weights for {spec.name} ({source.kind} {source.ref}): "
                         f"{one_line(exc, 200)}; use --weights-dir / EDGEBENCH_WEIGHTS or --weights PATH") from None
    loaded = _from_hub_cache(model, spec)
    if loaded is None:
        raise UsageError(f"downloaded weights for {spec.name} not found in the hub cache")
    return loaded


def _random_info(spec: ModelSpec) -> WeightsInfo:
    return WeightsInfo("random", f"seed={RANDOM_SEED}; default init, zero heads re-drawn, BN recalibrated",
                       None, False, spec.preprocess, "registry")


@torch.no_grad()
def randomize(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """Make seeded random weights non-degenerate for export and runtime checks.

    torchvision's default init leaves classifier heads at zero (ViT, Mixer) and
    BatchNorm statistics that squash activations (MobileNetV3 logits ~1e-9).
    Zero weight tensors are re-drawn and BatchNorm running statistics are
    recalibrated on a few batches of seeded noise.
    """
    generator = torch.Generator().manual_seed(RANDOM_SEED)
    for module in model.modules():
        if isinstance(module, nn.Linear) and not module.weight.any():
            module.weight.normal_(0.0, 0.02, generator=generator)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(4):
            model(torch.randn(8, *spec.input_shape, generator=generator))
    return model.eval()


def _random(spec: ModelSpec) -> nn.Module:
    torch.manual_seed(RANDOM_SEED)
    return randomize(spec.build(), spec)
