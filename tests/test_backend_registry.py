"""What each backend brings about itself, read from the registry: the build options a sweep defaults to, how
the figures draw it, and the OpenVINO-only cross-check beside the generic benchmark (bench/crosscheck.py)."""

from __future__ import annotations

import json

import pytest

from edgebench.backends import RUNTIMES, runtime_class


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_sweeps_default_build_options_are_the_backends_own(name):
    cls = runtime_class(name)
    options = cls.default_build_options((1, 8))
    assert options is None or isinstance(options, cls.build_options_class)


def test_tensorrt_plans_of_a_sweep_span_its_batches():
    """A plan built for batch 1 refuses batch 8: the sweep's default profile covers every batch it measures."""
    assert runtime_class("trt").default_build_options((1, 8)).batches == (1, 8)


def test_openvino_crosscheck_on_a_tiny_onnx(tmp_path):
    """edgebench's OpenVINO median against benchmark_app on the same IR: one crosscheck record."""
    import tiny_onnx

    from edgebench.bench.crosscheck import benchmark_app_path, crosscheck_openvino
    from edgebench.portable.errors import RuntimeUnavailable
    from edgebench.workflow.prepare import BuildRequest, ModelSource, prepare
    try:
        benchmark_app_path()
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    onnx = tiny_onnx.classifier(tmp_path / "tiny.onnx")
    artifacts = prepare(ModelSource(onnx=onnx), ("openvino",), "fp32", BuildRequest(out=tmp_path / "art"))
    results = tmp_path / "results.jsonl"
    summary = crosscheck_openvino(artifacts, 1, 1.0, 1, results)
    assert summary["kind"] == "crosscheck" and summary["ratio"] > 0
    assert [json.loads(line)["kind"] for line in results.read_text().splitlines()] == ["crosscheck"]


def test_every_backend_has_its_own_marker_and_colour():
    """The figures draw each runtime as the backend says; two alike would merge in the Pareto legend
    (ExecuTorch was once drawn as ONNX Runtime's grey circle)."""
    from matplotlib.colors import is_color_like
    from matplotlib.markers import MarkerStyle

    styles = {name: (runtime_class(name).colour, runtime_class(name).marker) for name in RUNTIMES}
    assert len({c for c, _ in styles.values()}) == len({m for _, m in styles.values()}) == len(RUNTIMES), styles
    for colour, marker in styles.values():
        assert is_color_like(colour)
        MarkerStyle(marker)  # raises on a marker matplotlib does not know
