"""PyTorch eager: the reference every engine is compared with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgebench.backends.base import Availability, InputMetadata, Runtime, lazy_import
from edgebench.portable.errors import RuntimeUnavailable


class TorchRuntime(Runtime):
    """Loads the model an artifact manifest describes (name + weights) and runs it eagerly."""

    name = "torch"
    colour = "#7f7f7f"
    marker = "D"
    engine_kind = "torch"
    builds_engine = False

    @classmethod
    def availability_impl(cls) -> Availability:
        torch = lazy_import("torch", None)
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        return Availability(cls.name, True, torch.__version__, "", devices)

    def activate_impl(self) -> None:
        import torch

        from edgebench.models.rebuild import model_from_manifest  # noqa: PLC0415 - torch, as the line above
        options = self.options
        if options.threads:
            torch.set_num_threads(options.threads)
        self.device = options.device or "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeUnavailable("torch device cuda requested but no CUDA GPU is visible")
        manifest = json.loads(Path(self.engine).read_text())
        model = model_from_manifest(manifest)
        self._shape = (None, *manifest["input"]["shape"][1:])
        self.dtype = torch.float16 if options.precision == "fp16" and self.device != "cpu" else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self._torch = torch

    def input_metadata_impl(self) -> InputMetadata:
        return InputMetadata("input", self._shape, "float32")

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, self.dtype)
            out = self.model(x)
            if self.device != "cpu":
                torch.cuda.synchronize()
            return out.float().cpu().numpy()

    def settings(self) -> dict:
        return {"device": self.device, "num_threads": self._torch.get_num_threads(),
                "interop_threads": self._torch.get_num_interop_threads(), "dtype": str(self.dtype)}

    def effective_precision(self) -> str:
        return "fp16" if self.dtype == self._torch.float16 else "fp32"
