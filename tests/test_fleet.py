"""`edgebench fleet` against REAL labgrid and OpenSSH on 127.0.0.1.

The fixture starts labgrid's gRPC `labgrid-coordinator` on a free port, one loopback sshd per place,
and a real `labgrid-exporter` publishing each sshd as a `NetworkService`; the places are made with
labgrid's client API (AddPlace / AddPlaceMatch / SetPlaceTags, what `labgrid-client create`,
`add-match` and `set-tags` send). The sweeps run the real CLI in a subprocess; the devices measure
four tiny ONNX classifiers with the runner's ONNX Runtime fallback. Held places are checked with a
separate labgrid session, and another user is a real `labgrid-client` with another LG_USERNAME.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from sshd_server import Sshd, free_port, keygen, require_sshd, start_sshd

pytest.importorskip("labgrid", reason="labgrid is not installed: pip install -e '.[fleet]'")
BIN = Path(sys.executable).parent
FAST = ["--warmup", "2", "--warmup-seconds", "0", "--iterations", "20", "--min-seconds", "0.2"]
PLACES = ("orin-1", "orin-2", "orin-3")
WIDTHS = (4, 8, 12, 16)  # four distinct tiny classifiers


@dataclass
class Lab:
    address: str
    servers: dict[str, Sshd]
    key: Path
    dir: Path
    coordinator_log: Path
    pdu: list[str]  # the requests orin-3's power switch received


def _power_switch() -> tuple[ThreadingHTTPServer, list[str]]:
    """orin-3's power switch: labgrid's `simplerest` NetworkPowerPort protocol (GET /relay/INDEX/VALUE) on
    loopback. The one stand-in here: the PDU is hardware; labgrid's driver and labgrid-client are real."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _exported(session) -> set[str]:
    return {group for groups in session.resources.values() for group, res in groups.items()
            if any(r.cls == "NetworkService" and r.avail for r in res.values())}


async def _make_places(address: str) -> None:
    from labgrid.remote.client import ClientSession
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
    session = ClientSession(address, asyncio.get_running_loop())
    await session.start()
    deadline = time.monotonic() + 30
    while not set(PLACES) <= _exported(session):
        assert time.monotonic() < deadline, "the exporter did not publish its NetworkServices"
        await asyncio.sleep(0.1)
    for name in PLACES:
        await session.stub.AddPlace(pb2.AddPlaceRequest(name=name))
        await session.stub.AddPlaceMatch(pb2.AddPlaceMatchRequest(placename=name, pattern=f"rack/{name}/NetworkService"))
        await session.stub.SetPlaceTags(pb2.SetPlaceTagsRequest(placename=name, tags={"board": "loopback"}))
    await session.stub.AddPlaceMatch(pb2.AddPlaceMatchRequest(placename="orin-3", pattern="rack/orin-3/NetworkPowerPort"))
    await session.stub.AddPlace(pb2.AddPlaceRequest(name="bare-1"))  # no NetworkService
    await session.sync_with_coordinator()
    await session.stop()
    await session.close()


async def _holders(address: str) -> dict[str, str | None]:
    from labgrid.remote.client import ClientSession
    session = ClientSession(address, asyncio.get_running_loop())
    await session.start()
    try:
        return {name: place.acquired for name, place in session.places.items()}
    finally:
        await session.stop()
        await session.close()


def holders(lab: Lab) -> dict[str, str | None]:
    """Who holds each place, as the coordinator reports it to a fresh labgrid session."""
    return asyncio.run(_holders(lab.address))


def _wait_for(path: Path, pattern: str, timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text()) if path.exists() else None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in {path}: {path.read_text() if path.exists() else 'missing'}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_sshd()
    d = tmp_path_factory.mktemp("lab")
    key = keygen(d / "client_ed25519")
    servers = {name: start_sshd(d / name, d / "client_ed25519.pub") for name in PLACES}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    (d / "coordinator").mkdir()  # it keeps places.yaml in its working folder
    log = d / "coordinator.log"
    with log.open("wb") as out:
        coordinator = subprocess.Popen([str(BIN / "labgrid-coordinator"), "--listen", "127.0.0.1:0"],
                                       cwd=d / "coordinator", stdout=out, stderr=subprocess.STDOUT, env=env)
    procs = [coordinator]
    try:
        port = _wait_for(log, r"listening on 127\.0\.0\.1:(\d+)").group(1)
        address = f"127.0.0.1:{port}"
        pdu, seen = _power_switch()
        (d / "exporter.yaml").write_text("".join(
            f"{name}:\n  NetworkService:\n    address: 127.0.0.1\n    username: {server.user}\n    port: {server.port}\n"
            for name, server in servers.items()) + "  NetworkPowerPort:\n    model: simplerest\n    host: "
            f"'http://127.0.0.1:{pdu.server_address[1]}/relay/{{index}}/{{value}}'\n    index: 0\n")
        with (d / "exporter.log").open("wb") as out:
            procs.append(subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", address, "-n", "rack",
                                           str(d / "exporter.yaml")], stdout=out, stderr=subprocess.STDOUT, env=env))
        asyncio.run(_make_places(address))
        yield Lab(address, servers, key, d, log, seen)
        pdu.shutdown()
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=15)
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory) -> list[Path]:
    import torch
    d = tmp_path_factory.mktemp("models")
    paths = []
    for width in WIDTHS:
        torch.manual_seed(width)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, stride=2), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                    torch.nn.Linear(width, 10)).eval()
        path = d / f"tiny{width}.onnx"
        torch.onnx.export(model, torch.randn(1, 3, 32, 32), str(path), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def bundles(onnx_models, tmp_path_factory) -> list[Path]:
    """The four bundles, built once with the sweep's own builder."""
    from edgebench.deploy.fleet import build_bundles
    from edgebench.workflow.prepare import ModelSource
    d = tmp_path_factory.mktemp("bundles")
    built = build_bundles([ModelSource(None, p) for p in onnx_models], ("fp32",), None, d / "artifacts", d)
    return [path for path, _meta in built]


def sweep_args(lab: Lab, places: str, tmp: Path, results: Path, *extra: str) -> list[str]:
    return ["fleet", "sweep", "--coordinator", lab.address, "--places", places, "--fallback", "ort",
            "--python", sys.executable, "--key", str(lab.key), "--known-hosts", str(tmp / "known_hosts"),
            "--remote-dir", str(tmp / "device" / "{place}"), "--results", str(results), "--json", *extra]


def spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgebench.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real CLI in this process (Click's runner): the CLI's start-up (torch, timm) is paid once."""
    from click.testing import CliRunner

    from edgebench.cli import main
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def records_of(results: Path) -> list[dict]:
    return [json.loads(line) for line in results.read_text().splitlines()]  # every line must be valid JSON


def assert_released(lab: Lab) -> None:
    assert all(holder is None for holder in holders(lab).values()), holders(lab)


def test_sweep_four_models_over_two_places(lab, onnx_models, tmp_path):
    results = tmp_path / "results.jsonl"
    proc = cli(*sweep_args(lab, "orin-[12]", tmp_path, results, *FAST, *[f"--onnx={p}" for p in onnx_models],
                           "--artifacts", str(tmp_path / "artifacts")))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    summary = json.loads(proc.stdout)
    records = records_of(results)
    jobs = {r["fleet"]["job"] for r in records}
    assert len(records) == len(jobs) == 4 == summary["jobs"]["done"] == summary["records"]  # one record per job
    assert {r["model"]["name"] for r in records} == {f"tiny{w}" for w in WIDTHS}
    assert {r["place"] for r in records} == {"orin-1", "orin-2"}  # both places were used
    for r in records:
        assert r["runtime"]["name"] == "ort" and r["deploy"]["fallback"] == "ort"
        assert r["device"]["fingerprint"] and r["device"]["hostname"] and r["device"]["tensorrt"] is None
        assert r["deploy"]["port"] == lab.servers[r["place"]].port  # measured through that place's NetworkService
    assert summary["unhealthy"] == {}
    assert_released(lab)
    listed = cli("fleet", "places", "--coordinator", lab.address, "--results", str(results), "--json")
    assert listed.returncode == 0, listed.stderr
    places = {p["name"]: p for p in json.loads(listed.stdout)}
    assert places["orin-1"]["tags"] == {"board": "loopback"} and places["orin-1"]["acquired"] is None
    assert places["orin-1"]["device"]["fingerprint"] == records[0]["device"]["fingerprint"]
    assert places["orin-3"]["device"] is None and places["orin-3"]["power"] == "NetworkPowerPort"
    assert places["bare-1"]["service"] is None
    table = cli("fleet", "places", "--coordinator", lab.address, "--results", str(results))
    assert table.returncode == 0 and "orin-1" in table.stdout and "loopback" in table.stdout, table.stdout


def test_killed_sshd_requeues_its_job_and_sets_the_place_aside(lab, bundles, tmp_path):
    results = tmp_path / "results.jsonl"
    victim = lab.servers["orin-3"]
    proc = spawn(sweep_args(lab, "orin-1,orin-3", tmp_path, results, *FAST, "--power-cycle",
                            *[f"--bundle={b}" for b in bundles]), tmp_path)
    deadline = time.monotonic() + 120
    while not any("runner.py" in " ".join(cmd) for cmd in victim.sessions()):  # orin-3's first job is running
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    victim.kill_tree()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (out, err)
    summary = json.loads(out)
    records = records_of(results)
    assert sorted(r["fleet"]["job"] for r in records) == sorted({r["fleet"]["job"] for r in records})
    assert len(records) == 4 and {r["place"] for r in records} == {"orin-1"}  # all completed on the other place
    requeued = [j for j in summary["job_list"] if j["failed_on"] == ["orin-3"]]
    assert requeued and all(j["state"] == "done" and j["place"] == "orin-1" for j in requeued)
    assert "orin-3" in summary["unhealthy"] and "2 failures in a row" in summary["unhealthy"]["orin-3"]
    assert "orin-3: set aside as unhealthy; power cycled" in err
    assert {p["place"]: p["power"] for p in summary["places"]}["orin-3"] == "power cycled"
    assert lab.pdu == ["/relay/0/0", "/relay/0/1"]  # off, then on, through labgrid's NetworkPowerDriver
    assert_released(lab)


def gated_python(folder: Path) -> tuple[Path, Path]:
    """A device Python whose first runner goes ahead and whose later ones wait until the test creates the
    returned release file: the sweep is held open until the test's signal arrives, instead of racing it."""
    folder.mkdir(parents=True, exist_ok=True)
    release = folder / "release"
    wrapper = folder / "python"
    wrapper.write_text(f"""#!/bin/sh
if ! mkdir "{folder}/first" 2>/dev/null; then
  while [ ! -e "{release}" ]; do sleep 0.05; done
fi
exec "{sys.executable}" "$@"
""")
    wrapper.chmod(0o755)
    return wrapper, release


def test_ctrl_c_releases_every_place_and_resume_finishes_without_repeats(lab, bundles, tmp_path):
    results = tmp_path / "results.jsonl"
    python, release = gated_python(tmp_path / "gate")
    args = sweep_args(lab, "orin-[12]", tmp_path, results, *FAST, *[f"--bundle={b}" for b in bundles])
    args[args.index("--python") + 1] = str(python)
    proc = spawn(args, tmp_path)
    _wait_for(results, r"\n", timeout=120)  # the first job is in; every other one waits for the release file
    deadline = time.monotonic() + 60
    while sum(any("runner.py" in " ".join(cmd) for cmd in lab.servers[p].sessions()) for p in ("orin-1", "orin-2")) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()  # both places hold a job
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "interrupted: every acquired place was released" in err
    assert_released(lab)
    for server in (lab.servers["orin-1"], lab.servers["orin-2"]):  # the jobs in flight were stopped on the devices
        assert not any("runner.py" in " ".join(cmd) for cmd in server.sessions())
    before = records_of(results)  # valid and complete up to the interruption
    assert len(before) == 1, before
    release.touch()
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    summary = json.loads(resumed.stdout)
    assert summary["jobs"]["skipped"] == 1 and summary["jobs"]["done"] == 3
    after = records_of(results)
    assert after[:1] == before
    assert sorted(r["fleet"]["job"] for r in after) == sorted({r["fleet"]["job"] for r in after})  # no repeats
    assert len(after) == 4
    assert_released(lab)


def test_place_held_by_another_user_is_waited_for_never_taken(lab, bundles, tmp_path):
    alice = {**os.environ, "LG_USERNAME": "alice"}
    client = [str(BIN / "labgrid-client"), "-x", lab.address, "-p", "orin-2"]
    subprocess.run([*client, "acquire"], env=alice, check=True, capture_output=True, timeout=60)
    results = tmp_path / "results.jsonl"
    proc = spawn(sweep_args(lab, "orin-[12]", tmp_path, results, *FAST, "--batch", "1,2",
                            *[f"--bundle={b}" for b in bundles]), tmp_path)
    try:
        _wait_for(results, r"\n", timeout=120)  # orin-1 has finished a job while alice holds orin-2
        assert holders(lab)["orin-2"].endswith("/alice")
        released = subprocess.run([*client, "release"], check=False, env=alice, capture_output=True, text=True, timeout=60)
    finally:
        out, err = proc.communicate(timeout=300)
    assert released.returncode == 0 and "released place orin-2" in released.stdout, released  # still alice's
    assert proc.returncode == 0, (out, err)
    assert re.search(r"orin-2: held by \S+/alice: waiting \(never taken from its user\)", err), err
    records = records_of(results)
    assert len(records) == 8 == len({r["fleet"]["job"] for r in records})
    events = re.findall(r"orin-2: place (acquired by \S+|released)", lab.coordinator_log.read_text())
    alices = max(i for i, event in enumerate(events) if event.endswith("/alice"))
    assert events[alices + 1:alices + 3] == ["released", events[alices + 2]] and \
        not events[alices + 2].endswith("/alice"), events  # alice released it herself; then the sweep took it
    assert "orin-2" in {r["place"] for r in records}  # used once alice let it go
    assert_released(lab)


def test_a_job_past_its_timeout_is_stopped_retried_elsewhere_then_given_up(lab, bundles, tmp_path):
    results = tmp_path / "results.jsonl"
    proc = cli(*sweep_args(lab, "orin-[12]", tmp_path, results, *FAST[:-1], "120", "--job-timeout", "4",
                           "--retries", "1", f"--bundle={bundles[0]}"))
    assert proc.returncode == 4, (proc.stdout, proc.stderr)  # a failed job: not a regression, not a usage error
    assert "error: 1 of 1 jobs failed on every place tried" in proc.stderr and "timed out after 4 s" in proc.stderr
    assert "Traceback" not in proc.stderr and not results.exists()
    for name in ("orin-1", "orin-2"):  # tried once on each place, and stopped there
        assert re.search(rf"{name}: tiny4 fp32 b1 failed: timed out after 4 s", proc.stderr), proc.stderr
        assert not any("runner.py" in " ".join(cmd) for cmd in lab.servers[name].sessions())
    assert_released(lab)


def test_an_error_mid_sweep_still_releases_every_place(lab, bundles, tmp_path):
    (tmp_path / "blocker").write_text("a file where the results folder should be")
    args = sweep_args(lab, "orin-[12]", tmp_path, tmp_path / "blocker" / "results.jsonl", *FAST,
                      *[f"--bundle={b}" for b in bundles])
    assert_one_line_error(cli(*args), "results file", "Not a directory")
    assert_released(lab)


def test_bad_input_is_one_line_and_exit_2(lab, bundles, tmp_path):
    nowhere = f"127.0.0.1:{free_port()}"
    proc = cli("fleet", "sweep", "--coordinator", nowhere, f"--bundle={bundles[0]}")
    assert_one_line_error(proc, f"cannot reach the labgrid coordinator at {nowhere}")
    proc = cli(*sweep_args(lab, "jetson-*", tmp_path, tmp_path / "r.jsonl", f"--bundle={bundles[0]}"))
    assert_one_line_error(proc, "--places 'jetson-*' matches no place", "orin-1")
    proc = cli(*sweep_args(lab, "bare-*", tmp_path, tmp_path / "r.jsonl", f"--bundle={bundles[0]}"))
    assert_one_line_error(proc, "place bare-1 has no NetworkService resource")
    assert not (tmp_path / "r.jsonl").exists()
    assert_released(lab)


@pytest.mark.slow
def test_loopback_speedup_one_place_vs_two(lab, bundles, tmp_path):
    """Evidence, not a gate: the same 8 jobs on one place, then on two (`pytest -m slow -s -k speedup`)."""
    walls, overheads = {}, {}
    for places in ("orin-1", "orin-[12]"):
        results = tmp_path / f"{len(walls)}.jsonl"
        proc = cli(*sweep_args(lab, places, tmp_path, results, *FAST, "--batch", "1,2",
                               *[f"--bundle={b}" for b in bundles]))
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        loops = {r["fleet"]["job"]: r["loop"]["seconds"] for r in records_of(results)}
        assert summary["jobs"]["done"] == len(loops) == 8
        walls[places] = summary["wall_s"]
        overheads[places] = [j["seconds"] - loops[j["key"]] for j in summary["job_list"]]
    for places, wall in walls.items():
        per_job = sorted(overheads[places])
        print(f"\n{places}: 8 jobs in {wall:.1f} s; per-job overhead (job wall - timed loop) median "
              f"{per_job[len(per_job) // 2]:.2f} s, min {per_job[0]:.2f} s, max {per_job[-1]:.2f} s")
    print(f"speed-up with two places: {walls['orin-1'] / walls['orin-[12]']:.2f}x")
