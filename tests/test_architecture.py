"""The layers: the import contract holds and can fail; the portable core stands alone; the host and
the device runner preprocess bit-identically and write records with the same keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.is_file():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return subprocess.run([str(LINT_IMPORTS), "pyproject.toml", "--no-cache"], cwd=cwd,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


UPWARD = {  # module -> the forbidden import added to it
    "portable/protocol.py": "from edgebench.results import records  # noqa",  # layers: portable -> results
    "data/split.py": "from edgebench.workflow.prepare import prepare  # noqa",  # layers: data -> workflow
    "backends/onnxruntime/runtime.py": "from edgebench.backends.openvino import build  # noqa",  # backend -> backend
    "portable/hashing.py": "import torch  # noqa",  # the portable core -> torch
}


def test_each_contract_can_fail(tmp_path):
    """The contracts can fail: the same check on a copy with these forbidden imports breaks all three and names
    each importer (one lint-imports run for all; the suite's other is the real tree's, above)."""
    shutil.copytree(ROOT / "edgebench", tmp_path / "edgebench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, upward in UPWARD.items():
        target = tmp_path / "edgebench" / module
        target.write_text(target.read_text() + f"\n{upward}\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0 and "Contracts: 0 kept, 3 broken." in proc.stdout, proc.stdout
    for module in UPWARD:
        assert "edgebench." + module.removesuffix(".py").replace("/", ".") in proc.stdout, (module, proc.stdout)


_STANDALONE = r"""
import json, sys
sys.modules["edgebench"] = None  # any import of the rest of edgebench now fails
sys.path.insert(0, sys.argv[1])
import numpy as np
from portable import host, layer_profile, memory
from portable.hashing import sha256_json, verify_checksums
from portable.preprocess import Preprocess, preprocess
from portable.protocol import Protocol, measure
from portable.envelope import envelope
from portable.tensorrt import engine, rules
measured, times = measure(lambda: None, lambda: None, Protocol(0, 0.0, 5, 0.0), 1)
img = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
x = preprocess(img, Preprocess(224, 256, "bicubic"))
print(json.dumps({"keys": sorted(envelope("latency")), "n": measured["loop"]["iterations"], "shape": list(x.shape),
                  "profile": rules.profile_shapes([1, 8], (3, 224, 224))["max"], "cpu": host.host_info()["cpu"]}))
"""


def test_portable_imports_with_the_rest_of_edgebench_off_the_path(tmp_path):
    shutil.copytree(ROOT / "edgebench" / "portable", tmp_path / "portable",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-c", _STANDALONE, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["keys"] == ["edgebench", "host", "id", "kind", "schema", "timestamp"]
    assert found["n"] == 5 and found["shape"] == [3, 224, 224] and found["profile"] == [8, 3, 224, 224]


def test_device_runner_preprocesses_bit_identically_and_writes_the_same_keys(tmp_path, data_dir):
    """The runner shipped in a bundle decodes and preprocesses the sample photos exactly as the host does,
    and its records carry the library's envelope and the latency record's keys."""
    from edgebench.data import open_dataset
    from edgebench.data.loader import load_samples
    from edgebench.deploy.bundle import runner_files
    from edgebench.portable.preprocess import Preprocess
    from edgebench.results.records import LatencyRecord

    device = tmp_path / "device"
    for name, src in runner_files().items():
        (device / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, device / name)
    samples = open_dataset(data_dir).samples[:6]
    (device / "images").mkdir()
    for s in samples:
        shutil.copyfile(s.path, device / "images" / s.path.name)
    spec = Preprocess(240, 274, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    (device / "preprocess.json").write_text(json.dumps(spec.to_dict()))
    script = ("import json, sys, numpy as np; sys.modules['edgebench'] = None; sys.path.insert(0, sys.argv[1]); "
              "import runner; x, kind = runner.load_inputs({'input_shape': [3, 240, 240]}, 6); "
              "np.save(sys.argv[2], x); print(kind)")
    proc = subprocess.run([sys.executable, "-c", script, str(device), str(tmp_path / "device.npy")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "images", proc.stderr
    on_device = np.load(tmp_path / "device.npy")
    by_name = {s.path.name: s for s in samples}
    host = load_samples([by_name[p.name] for p in sorted((device / "images").iterdir())], spec).inputs
    assert on_device.dtype == host.dtype and on_device.shape == host.shape
    assert np.array_equal(on_device, host)  # bit-identical, not just close

    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); import runner, argparse; "
              "a = argparse.Namespace(precision='fp32', threads=2, warmup=1, warmup_seconds=0.0, iterations=5, "
              "min_seconds=0.0, max_seconds=10.0); (runner.HERE / 'model.onnx').write_bytes(b'x'); "
              "print(json.dumps(sorted(runner.make_record({'model': {'name': 'm'}, 'files': {'onnx': 'model.onnx'}}, "
              "a, {}, {}))))")
    proc = subprocess.run([sys.executable, "-c", script, str(device)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    device_keys = set(json.loads(proc.stdout))
    host_keys = set(LatencyRecord(model={"name": "m"}).to_dict())
    shared = {"schema", "id", "kind", "timestamp", "host", "edgebench", "status", "error", "model", "weights",
              "precision", "threads", "onnx_bytes", "protocol", "stability"}
    assert shared <= device_keys and shared <= host_keys
    assert device_keys - {"deploy"} <= host_keys  # the device adds only where it was deployed
