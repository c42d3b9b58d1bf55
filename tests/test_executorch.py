"""The ExecuTorch (XNNPACK) backend: a real .pte from torch.export, run by executorch.runtime, its PT2E INT8 from
the shared calibration split, ETDump per-layer times, and export failures as one line.

Skipped, saying why, where the ``[executorch]`` extra is absent (``make setup-executorch``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, edgebench

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
MODEL = "mobilenet_v3_small"  # squeeze-excitation blocks and a Linear classifier: both left in float


def test_every_registered_backend_is_independent_of_the_others():
    """A new backend joins the import-linter independence contract (checked by test_architecture)."""
    from edgebench.backends import RUNTIMES
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    independent = next(c for c in contracts if c["type"] == "independence")["modules"]
    packages = {target.partition(":")[0].rpartition(".")[0] for target in RUNTIMES.values()}
    assert packages == set(independent)


def test_the_build_format_joins_only_executorchs_engine_keys():
    """ExecuTorch's lowering recipe changed (build_format 2): its programs are rebuilt, no other runtime's are."""
    from edgebench.backends import runtime_class
    from edgebench.build.keys import engine_key
    assert runtime_class("executorch").build_format == 2
    assert all(runtime_class(name).build_format == 0 for name in ("ort", "openvino", "trt"))
    assert engine_key("ab" * 32, "ort", "1.31.1", "fp32") == engine_key("ab" * 32, "ort", "1.31.1", "fp32",
                                                                       build_format=0)
    assert engine_key("ab" * 32, "executorch", "1.5.1", "fp32", build_format=2) != engine_key(
        "ab" * 32, "executorch", "1.5.1", "fp32")


def _usable() -> None:
    from edgebench.backends import runtime_class
    found = runtime_class("executorch").availability()
    if not found.usable:
        pytest.skip(f"executorch is not usable here ({found.reason}); `make setup-executorch` installs it")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    _usable()
    return tmp_path_factory.mktemp("executorch")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fp32_program_runs_with_threads_and_per_layer_profile(workdir):
    proc = edgebench("run", "--runtime", "executorch", "--model", MODEL, "--weights", "random", "--threads", "1",
                     "--profile", "--iterations", "20", "--min-seconds", "0", "--warmup", "2", "--retries", "0",
                     "--results", "r.jsonl", cwd=workdir, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((workdir / "artifacts" / MODEL / "manifest.json").read_text())
    entry = manifest["engines"]["executorch/fp32"]
    assert entry["files"] == ["fp32/executorch/model.pte", "fp32/executorch/operators.json"]
    assert entry["runtime_version"]
    build = entry["build"]
    assert build["batch_capacity"] >= 8  # verification runs batches of 8 and 1: the batch is dynamic
    # every compute op runs in XNNPACK; what stays outside is layout copies and the classifier's flatten
    assert build["delegation"]["delegated_nodes"] > 100
    assert set(build["delegation"]["not_delegated_ops"]) <= {"dim_order_ops__to_dim_order_copy_default",
                                                           "aten_view_copy_default"}, build["delegation"]
    figures = manifest["verification"]["executorch/fp32"]
    assert figures["passed"] and figures["rel_err"] < 1e-4 and figures["batch1"]["rel_err"] < 1e-4, figures

    record = _records(workdir / "r.jsonl")[-1]
    assert record["status"] == "ok" and record["runtime"]["name"] == "executorch"
    settings = record["runtime"]["settings"]
    assert settings["threads"] == 1 and settings["delegate"] == "XnnpackBackend"
    rows = settings["layer_profile"]
    kernels = {r["kernel"] for r in rows}
    assert any("F32" in k for k in kernels) and not any("QS8" in k for k in kernels), kernels
    assert {"Convolution", "Fully Connected"} <= {r["op"] for r in rows}
    _assert_fully_connected_rows_name_their_nodes(rows)


def _assert_fully_connected_rows_name_their_nodes(rows: list[dict]) -> None:
    """XNNPACK runs the 1x1 convs as "Fully Connected": the build's map tells them from the classifier's two Linear
    layers, so the op classes are dense/depthwise conv, squeeze-excitation and linear, as on ORT."""
    from edgebench.portable.layer_profile import DENSE, DW, LINEAR, SE
    from edgebench.results.reports.op_classes import class_shares
    fc = [r for r in rows if r["op"] == "Fully Connected"]
    assert fc and all("source" in r and r["node"] for r in fc), fc[:3]
    assert sum(r["source"] == "linear" for r in fc) == 2 and {r["node"] for r in fc if r["source"] == "linear"} == {
        "classifier.0", "classifier.3"}
    assert sum(r["source"] == "conv 1x1 on a 1x1 map" for r in fc) == 2 * 9  # fc1 and fc2 of 9 SE blocks
    assert {DENSE, DW, LINEAR, SE} <= set(class_shares("executorch", rows))


def test_a_timed_batch_above_the_programs_bound_is_one_line(workdir):
    """Verification and evaluation run above the bound in chunks; a timed batch never does (one execute each)."""
    capacity = json.loads((workdir / "artifacts" / MODEL / "manifest.json").read_text()
                          )["engines"]["executorch/fp32"]["build"]["batch_capacity"]
    proc = edgebench("run", "--runtime", "executorch", "--model", MODEL, "--weights", "random", "--batch",
                     str(capacity + 1), "--iterations", "2", "--min-seconds", "0", "--warmup", "0", "--retries", "0",
                     "--results", "r.jsonl", cwd=workdir, timeout=600)
    assert proc.returncode != 0
    record = _records(workdir / "r.jsonl")[-1]
    assert record["status"] == "failed" and f"takes batches up to {capacity}" in record["error"], record


def test_ab_gate_on_executorch(workdir):
    """The latency gate on ExecuTorch programs: the FP32 program against a byte-identical copy of its artifacts."""
    copy = workdir / "copy"
    shutil.copytree(workdir / "artifacts" / MODEL, copy, dirs_exist_ok=True)
    proc = edgebench("gate", "--baseline", MODEL, "--weights", "random", "--candidate", str(copy), "--runtime",
                     "executorch", "--threads", "1", "--rounds", "2", "--max-rounds", "2", "--round-seconds", "0.5",
                     "--json", "--results", "gate.jsonl", cwd=workdir, timeout=900)
    assert proc.returncode in (0, 3), proc.stderr[-2000:]  # A/A: never a regression of the byte-identical copy
    record = json.loads(proc.stdout)
    p50 = record["metrics"][0]
    assert p50["ci"][0] <= p50["ratio"] <= p50["ci"][1] and record["rounds_used"] == 2, record


def test_int8_program_from_the_calibration_split_measured_on_the_pte(workdir, data_dir):
    """PT2E on 16 real calibration photos; accuracy comes from running the INT8 .pte (QS8 kernels)."""
    photos = workdir / "photos"
    photos.mkdir(exist_ok=True)
    names = sorted(p.name for p in data_dir.glob("*.jpg"))[:40]
    for name in names:
        shutil.copy(data_dir / name, photos / name)
    rows = [line for line in (data_dir / "labels.csv").read_text().splitlines()[1:] if line.split(",")[0] in names]
    (photos / "labels.csv").write_text("file,class_index,wnid,name\n" + "\n".join(rows) + "\n")

    proc = edgebench("run", "--runtime", "executorch", "--model", MODEL, "--weights", "random", "--precision",
                     "int8", "--data", str(photos), "--num", "16", "--accuracy", "--profile", "--iterations", "10",
                     "--min-seconds", "0", "--warmup", "1", "--retries", "0", "--results", "int8.jsonl",
                     cwd=workdir, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((workdir / "artifacts" / MODEL / "manifest.json").read_text())
    build = manifest["engines"]["executorch/int8"]["build"]
    assert build["calibration_images"] == 16 == manifest["int8"]["calibration"]["used"]
    assert build["quantized_ops"].get("conv2d", 0) > 20, build["quantized_ops"]
    assert set(build["left_in_float"].values()) == {"squeeze-excitation block", "fully connected classifier"}
    assert "classifier.3" in build["left_in_float"]
    assert build["method"] == "auto" and "HistogramObserver" in build["activations"], build  # the measured default

    records = _records(workdir / "int8.jsonl")
    accuracy = next(r for r in records if r.get("kind") == "accuracy")
    assert accuracy["status"] == "ok" and accuracy["accuracy"]["images"] == 24, accuracy["accuracy"]
    assert accuracy["int8"]["calibration_hash"] == manifest["int8"]["calibration"]["calibration_hash"]
    int8_latency = accuracy["latency"]["int8/b1"]
    assert int8_latency["status"] == "ok" and int8_latency["engine"]["path"].endswith("int8/executorch/model.pte")
    rows = int8_latency["runtime"]["settings"]["layer_profile"]
    assert any("QS8" in r["kernel"] for r in rows), rows
    _assert_fully_connected_rows_name_their_nodes(rows)  # float SE blocks and classifier, quantized 1x1 convs


def test_max_drop_is_one_line_error(workdir, data_dir):
    proc = edgebench("run", "--runtime", "executorch", "--model", MODEL, "--weights", "random", "--precision",
                     "int8", "--data", str(workdir / "photos"), "--num", "16", "--max-drop", "1", "--retries", "0",
                     cwd=workdir, timeout=900)
    assert_one_line_error(proc, "--max-drop is not available for executorch")


def test_an_untraceable_model_is_one_line_naming_where():
    """A real torch.export failure (data-dependent control flow) becomes one line with the model's own frame."""
    _usable()
    import torch

    from edgebench.backends.executorch.export import failure

    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent: torch.export cannot trace it
                return x * 2
            return x

    try:
        torch.export.export(Branchy(), (torch.randn(2, 3),))
    except Exception as exc:  # noqa: BLE001
        error = failure("torch.export", "branchy", exc)
    else:
        pytest.fail("torch.export traced data-dependent control flow")
    line = str(error)
    assert "\n" not in line and line.startswith("branchy: torch.export failed: ")
    assert "data-dependent" in line.lower() or "guard" in line.lower(), line


def test_a_dynamic_program_that_fails_at_batch_1_gives_way_to_the_static_one(tmp_path):
    """shufflenet_v2's pattern in small: a channel split, a concat and a shuffle leave a delegate output static at
    the export example's batch of 2, so the dynamic program fails at batch 1 (found by the bench-report sweep)."""
    _usable()
    import torch
    from executorch.runtime import Runtime

    from edgebench.backends.executorch.export import lowered_program

    class SplitShuffle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.branch, self.head = (torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(4, 4, 1),
                                                 torch.nn.Conv2d(8, 8, 1))

        def forward(self, x):
            left, right = self.stem(x).chunk(2, dim=1)
            x = torch.cat((left, self.branch(right)), dim=1)
            b, c, h, w = x.size()
            x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, -1, h, w)
            return self.head(x).mean((2, 3))

    model, pte = SplitShuffle().eval(), tmp_path / "model.pte"
    built = lowered_program(model, (3, 16, 16), "split_shuffle", pte, lambda _msg: None)
    assert built["batch"]["dynamic"] is False and built["batch_capacity"] == 1, built["batch"]
    why = built["batch"]["why"]
    assert "execute at batch 1" in why and "Attempted to resize a static tensor" in why and "\n" not in why, why
    x = torch.randn(1, 3, 16, 16)
    out = Runtime.get().load_program(pte).load_method("forward").execute([x])[0]
    assert torch.allclose(out, model(x), atol=1e-5)


def test_quantized_zero_width_pads_are_dropped_so_xnnpack_loads_the_program(tmp_path):
    """swin_t's window padding in small: a zero-width pad after a quantized residual add. Kept, XNNPACK refuses the
    quantized program at init (StaticConstantPad, xnn_status_invalid_parameter); dropped, it loads and runs."""
    _usable()
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgebench.backends.executorch.export import export_program, lowered_program, quantizer_for

    class PadMerge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.mlp, self.merge = torch.nn.LayerNorm(16), torch.nn.Linear(16, 16), torch.nn.Linear(64, 8)

        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = torch.nn.functional.pad(x + self.mlp(self.norm(x)), (0, 0, 0, 0, 0, 0))
            return self.merge(torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1))

    exported, pads = export_program(PadMerge().eval(), (16, 8, 8), "pad_merge", lambda _msg: None)
    assert pads == 1 and not any("pad" in str(n.target) for n in exported.graph.nodes)
    prepared = prepare_pt2e(exported.module(), quantizer_for("auto", {})[0])
    prepared(torch.randn(4, 16, 8, 8))
    built = lowered_program(convert_pt2e(prepared), (16, 8, 8), "pad_merge", tmp_path / "model.pte", lambda _msg: None)
    assert built["batch_capacity"] >= 1 and (tmp_path / "model.pte").exists(), built


def test_the_operator_map_pairs_only_the_1x1_convs_xnnpack_runs_as_fully_connected(tmp_path):
    """Measured: XNNPACK runs an unstrided, unpadded 1x1 conv as "Fully Connected", a strided or padded one as a
    Convolution (IGEMM); the map the build writes pairs one to one with the real ETDump events."""
    _usable()
    import torch
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    from edgebench.backends.executorch.export import lowered_program, operator_map
    from edgebench.backends.executorch.runtime import _op_kernel, paired_fully_connected

    class OneByOnes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.pw = torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.Conv2d(16, 32, 1)
            self.down, self.padded = torch.nn.Conv2d(32, 64, 1, stride=2), torch.nn.Conv2d(64, 64, 1, padding=1)
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(self.padded(self.down(self.pw(self.stem(x)).relu())).mean((2, 3)))

    pte = tmp_path / "model.pte"
    built = lowered_program(OneByOnes().eval(), (3, 32, 32), "one_by_ones", pte, lambda _msg: None)
    assert [(o["node"], o["source"]) for o in built["fully_connected"]] == [("pw", "conv 1x1"), ("fc", "linear")]
    operator_map(pte, built["fully_connected"])
    program = Runtime.get().load_program(pte, enable_etdump=True)
    method = program.load_method("forward")
    for _ in range(3):
        method.execute([torch.randn(1, 3, 32, 32)])
    program.write_etdump_result_to_file(str(tmp_path / "run.etdp"), str(tmp_path / "debug.bin"))
    events = [e for block in Inspector(etdump_path=str(tmp_path / "run.etdp")).event_blocks if block.name == "Execute"
              for e in block.events if e.is_delegated_op]
    assert sum(e.name.startswith("Convolution") for e in events) == 3  # the 3x3 stem, the strided and padded 1x1s
    paired = paired_fully_connected(pte, [_op_kernel(e.name, e.is_delegated_op) for e in events])
    assert [(events[i].name.split(" (")[0], o["node"]) for i, o in sorted(paired.items())] == [
        ("Fully Connected", "pw"), ("Fully Connected", "fc")]
