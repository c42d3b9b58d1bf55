"""`edgebench deploy` end to end against a REAL OpenSSH server on 127.0.0.1.

The fixture starts Debian's sshd on a free port with a throwaway ed25519 host key and an
authorized client key in tmp_path; `deploy run` uploads the bundle over SFTP, the bundle's
runner verifies its checksums, finds no TensorRT here, and measures on ONNX Runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile

import pytest
from conftest import assert_one_line_error, edgebench
from sshd_server import free_port as _free_port
from sshd_server import keygen, require_sshd, start_sshd

FAST = ["--warmup", "2", "--warmup-seconds", "0", "--iterations", "20", "--min-seconds", "0.2"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    require_sshd()
    d = tmp_path_factory.mktemp("sshd")
    client_key, other_key = keygen(d / "client_ed25519"), keygen(d / "other")
    server = start_sshd(d, d / "client_ed25519.pub")
    yield {"port": server.port, "key": client_key, "other_key": other_key, "user": server.user, "dir": d}
    server.stop()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, data_dir):
    import torch
    d = tmp_path_factory.mktemp("bundle")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    torch.onnx.export(model, torch.randn(1, 3, 64, 64), str(d / "tiny.onnx"), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17, dynamo=False)
    out = d / "bundle.tar.gz"
    proc = edgebench("deploy", "bundle", "--onnx", str(d / "tiny.onnx"), "--out", str(out), "--artifacts",
                     str(d / "artifacts"), "--data", str(data_dir), cwd=d, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_bundle_is_self_contained_with_checksums(bundle, tmp_path):
    from edgebench.deploy.bundle import extract_bundle
    root = extract_bundle(bundle, tmp_path)
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert {"model.onnx", "preprocess.json", "labels.csv", "bundle.json", "runner.py", "portable/__init__.py",
            "portable/tensorrt/engine.py", "portable/tensorrt/rules.py", "portable/tensorrt/api.py",
            "portable/tensorrt/cuda_compat.py", "portable/tensorrt/layers.py", "portable/layer_profile.py",
            "portable/preprocess.py", "portable/envelope.py", "SHA256SUMS"} <= names
    assert any(n.startswith("images/") for n in names)
    listed = {line.split("  ", 1)[1] for line in (root / "SHA256SUMS").read_text().splitlines()}
    assert listed == names - {"SHA256SUMS"}
    # the runner checks them itself, with the system-independent sha256sum format
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=root, check=False).returncode == 0
    (root / "model.onnx").write_bytes(b"tampered")
    proc = subprocess.run([sys.executable, str(root / "runner.py"), "--verify-only"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 3 and "model.onnx: checksum mismatch" in proc.stdout


@pytest.mark.system
def test_deploy_run_over_real_ssh_falls_back_to_ort(sshd, bundle, tmp_path):
    results = tmp_path / "results" / "results.jsonl"
    results.parent.mkdir()
    results.write_text('{"kept": "an older line"}\n')
    proc = edgebench("deploy", "run", "--host", f"{sshd['user']}@127.0.0.1", "--port", str(sshd["port"]),
                     "--key", str(sshd["key"]), "--bundle", str(bundle), "--fallback", "ort", "--batch", "1,2",
                     *FAST, "--python", sys.executable, "--remote-dir", str(tmp_path / "device"),
                     "--known-hosts", str(tmp_path / "known_hosts"), "--results", str(results), cwd=tmp_path,
                     timeout=300)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    with tarfile.open(bundle) as tar:
        listed = len(tar.extractfile("SHA256SUMS").read().decode().splitlines())
    assert f"checksums verified on device: {listed} files" in proc.stdout
    assert "TensorRT: TensorRT not installed on device: No module named 'tensorrt'" in proc.stdout
    lines = results.read_text().splitlines()
    assert lines[0] == '{"kept": "an older line"}'
    records = [json.loads(line) for line in lines[1:]]
    assert [r["batch"] for r in records] == [1, 2]
    for r in records:
        assert r["schema"] == "edgebench.result/1" and r["status"] == "ok" and r["kind"] == "latency"
        assert r["runtime"]["name"] == "ort" and r["runtime"]["settings"]["fallback"] is True
        assert r["runtime"]["settings"]["inputs"] == "images"  # the bundled photos, preprocessed with OpenCV
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert r["loop"]["iterations"] >= 20
        own = r["memory"]  # the device runner records the engine's own memory and the steal too (issue 23)
        assert own["method"] == "clear_refs" and own["load_mb"] > 0 and own["run_mb"] >= 0
        assert own["engine_mb"] == pytest.approx(own["load_mb"] + own["run_mb"], abs=0.15)
        assert own["process_peak_mb"] == r["memory_mb"]["peak"]
        assert own["engine_files_mb"] == round(r["engine"]["bytes"] / 2**20, 2)
        assert "steal_share" in r["load"] and r["stability"]["verdict"] in ("not-probed", "contended")
        assert r["deploy"]["checksums_verified"] is True and r["deploy"]["checksum_files"] == listed
        assert r["deploy"]["tensorrt_reason"] == "TensorRT not installed on device: No module named 'tensorrt'"
        assert r["deploy"]["host"] == "127.0.0.1" and r["deploy"]["nvpmodel"] is None
    assert (tmp_path / "known_hosts").read_text().strip()  # the new host key was remembered
    assert not list(results.parent.glob(".*download"))  # the temporary download is gone


@pytest.mark.system
def test_deploy_run_without_fallback_reports_missing_tensorrt(sshd, bundle, tmp_path):
    results = tmp_path / "results.jsonl"
    proc = edgebench("deploy", "run", "--host", f"{sshd['user']}@127.0.0.1", "--port", str(sshd["port"]),
                     "--key", str(sshd["key"]), "--bundle", str(bundle), *FAST, "--python", sys.executable,
                     "--remote-dir", str(tmp_path / "device"), "--known-hosts", str(tmp_path / "known_hosts"),
                     "--results", str(results), cwd=tmp_path, timeout=300)
    assert_one_line_error(proc, "TensorRT not installed on device: No module named 'tensorrt'", "--fallback ort")
    assert not results.exists()


def test_connection_refused_is_one_line(bundle, tmp_path):
    port = _free_port()  # nothing listens there
    proc = edgebench("deploy", "run", "--host", "root@127.0.0.1", "--port", str(port), "--bundle", str(bundle),
                     "--known-hosts", str(tmp_path / "kh"), "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path,
                     timeout=120)
    assert_one_line_error(proc, f"cannot connect to root@127.0.0.1:{port}", "refused")
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.system
def test_bad_key_is_one_line(sshd, bundle, tmp_path):
    proc = edgebench("deploy", "run", "--host", f"{sshd['user']}@127.0.0.1", "--port", str(sshd["port"]),
                     "--key", str(sshd["other_key"]), "--bundle", str(bundle), "--known-hosts",
                     str(tmp_path / "kh"), "--results", str(tmp_path / "r.jsonl"), cwd=tmp_path, timeout=120)
    assert_one_line_error(proc, "SSH authentication failed", str(sshd["other_key"]))
    assert not (tmp_path / "r.jsonl").exists()


def test_invalid_records_are_never_appended(tmp_path):
    from edgebench.deploy.remote import DeployError, append_records, validate_records
    download = tmp_path / "download.jsonl"
    download.write_text('{"schema": "edgebench.result/1", "latency_ms": {}}\n{"schema": "edgebench.res')  # cut off
    with pytest.raises(DeployError, match="line 2 is not JSON"):
        validate_records(download)
    results = tmp_path / "results.jsonl"
    download.write_text('{"schema": "edgebench.result/1", "latency_ms": {"p50": 1}}\n')
    append_records(validate_records(download), results)
    assert json.loads(results.read_text())["latency_ms"] == {"p50": 1}


def test_remote_commands_are_quoted():
    from edgebench.deploy.remote import Target, command
    assert command("python3", "/x/runner.py", "--out", "a b; rm -rf /") == "python3 /x/runner.py --out 'a b; rm -rf /'"
    with pytest.raises(Exception, match="user@host"):
        Target.parse("root@host name")
    assert str(Target.parse("pi@jetson", 2222)) == "pi@jetson:2222"


def test_bundle_tar_has_no_unsafe_members(bundle):
    with tarfile.open(bundle) as tar:
        assert all(m.isfile() and not m.name.startswith("/") and ".." not in m.name for m in tar.getmembers())


def test_a_remote_command_that_fills_stderr_finishes(sshd, tmp_path):
    """8 MB on stderr, more than paramiko's 2 MB channel window: reading all of stdout first used to block
    until the time-out (the remote stuck writing stderr); both streams now come back, apart and whole."""
    from edgebench.deploy.remote import Target, connect, run_remote
    client = connect(Target(sshd["user"], "127.0.0.1", sshd["port"]), sshd["key"], tmp_path / "known_hosts")
    try:
        code = ("import sys\n"
                "for i in range(64):\n"
                "    sys.stderr.write('e' * 125_000)\n"
                "    if i % 16 == 0:\n"
                "        sys.stdout.write(f'out {i}\\n'); sys.stdout.flush()\n"
                "sys.stderr.flush()\n"
                "print('done')\n"
                "sys.exit(3)\n")
        status, out, err = run_remote(client, [sys.executable, "-c", code], timeout=60)
    finally:
        client.close()
    assert status == 3
    assert out.splitlines() == ["out 0", "out 16", "out 32", "out 48", "done"]
    assert err == "e" * 8_000_000
