"""Every backend the same way (Polygraphy's runners): ``Runtime.input_metadata()`` says what a loaded engine takes,
every feed is checked against it in one line, and a missing library is worded alike with its install hint."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from tiny_onnx import SIZE, classifier

from edgebench.backends import RUNTIMES, RuntimeOptions, runtime_class
from edgebench.portable.errors import EngineMismatch


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from edgebench.backends.openvino.build import openvino_ir
    d = tmp_path_factory.mktemp("inputs")
    onnx = classifier(d / "tiny.onnx")
    ir = openvino_ir(onnx, d / "openvino" / "model.xml", "fp32")["files"][0]
    return {"ort": onnx, "openvino": ir}


@pytest.mark.parametrize(("runtime", "batches", "batch_range"), [
    ("ort", (1,), (1, None)), ("openvino", (2,), (1, 2)), ("openvino", (1, 4), (1, None))])
def test_input_metadata_and_every_feed_checked_alike(engines, runtime, batches, batch_range):
    with runtime_class(runtime)(engines[runtime], RuntimeOptions(batches=batches, threads=1)) as rt:
        meta = rt.input_metadata()
        assert (meta.name, meta.shape[1:], meta.dtype, meta.batch) == ("input", (3, SIZE, SIZE), "float32", batch_range)
        good = np.zeros((batches[0], 3, SIZE, SIZE), np.float32)
        assert rt.infer(good).shape == (batches[0], 10)
        wrong = [good.astype(np.float64), np.zeros((1, 3, SIZE // 2, SIZE), np.float32), good[0]]
        if batch_range[1] is not None:
            wrong.append(np.zeros((batch_range[1] + 1, 3, SIZE, SIZE), np.float32))
        for batch in wrong:
            for call in (rt.infer, rt.bind):
                with pytest.raises(EngineMismatch) as caught:
                    call(batch)
                message = str(caught.value)
                assert "\n" not in message and f"the {runtime} engine" in message, message
                assert f"takes float32 N x 3 x {SIZE} x {SIZE}" in message, message
                assert f"not {batch.dtype} {' x '.join(map(str, batch.shape))}" in message, message


def test_input_metadata_needs_an_active_engine(engines):
    rt = runtime_class("ort")(engines["ort"], RuntimeOptions())
    with pytest.raises(RuntimeError, match="before activate"):
        rt.input_metadata()


@pytest.mark.parametrize(("runtime", "module"), [
    ("ort", "onnxruntime"), ("openvino", "openvino"), ("torch", "torch"), ("executorch", "executorch.version")])
def test_a_missing_library_is_worded_alike_with_its_install_hint(monkeypatch, runtime, module):
    assert runtime in RUNTIMES
    monkeypatch.setitem(sys.modules, module, None)  # what Python does for a package that is not installed
    available = runtime_class(runtime).availability()
    assert not available.usable
    top = module.split(".")[0]
    assert re.fullmatch(rf"{top} is not installed \(.+\); pip install .+", available.reason), available.reason
    extra = {"ort": "ort", "openvino": "openvino", "executorch": "executorch"}.get(runtime)
    assert (f"pip install 'edgebench[{extra}]'" if extra else "core dependency") in available.reason
