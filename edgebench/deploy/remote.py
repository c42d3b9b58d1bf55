"""Run a bundle on a device over SSH (paramiko) and bring its records home.

Every remote command is an argument list joined with :func:`shlex.quote`, never a shell
string built from raw user input. Results come back through a temporary file that is
validated (every line a JSON result record) before being appended, in one write, to the
local results file: an interrupted transfer leaves that file untouched.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgebench.portable.errors import EdgebenchError, RuntimeUnavailable, UsageError
from edgebench.portable.hashing import sha256_file
from edgebench.results.store import append_records

SUMMARY_PREFIX = "EDGEBENCH_DEPLOY "
RESULT_SCHEMA = "edgebench.result/1"
DEFAULT_KNOWN_HOSTS = Path.home() / ".edgebench" / "known_hosts"


class DeployError(EdgebenchError):
    """The device could not be reached, refused us, or could not run the bundle."""


@dataclass(frozen=True)
class Target:
    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, spec: str, port: int = 22) -> Target:
        user, sep, host = spec.rpartition("@")
        if not sep:
            user, host = os.environ.get("USER") or "root", spec
        if not user or not host or any(c.isspace() for c in spec):
            raise UsageError(f"--host must look like user@host, got {spec!r}")
        if not 1 <= port <= 65535:
            raise UsageError(f"--port must be 1..65535, got {port}")
        return cls(user, host, port)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


def command(*argv: str | Path) -> str:
    """One remote command line from an argument list, each argument shell-quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def connect(target: Target, key: Path | None, known_hosts: Path | None = None, timeout: float = 15.0):
    """An SSH client, or DeployError with one line saying why not.

    Host keys: known ones must match (a changed key is refused); an unknown host's key is
    accepted and remembered in ``known_hosts`` (like OpenSSH's StrictHostKeyChecking=accept-new).
    """
    import paramiko

    known_hosts = Path(known_hosts or DEFAULT_KNOWN_HOSTS)
    client = paramiko.SSHClient()
    try:
        client.load_system_host_keys()
    except OSError:
        pass
    if known_hosts.is_file():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    if key is not None and not Path(key).is_file():
        raise UsageError(f"SSH key {key} does not exist")
    sock = _ssh_socket(target, timeout)
    try:
        client.connect(target.host, port=target.port, username=target.user, sock=sock,
                       key_filename=str(key) if key else None, look_for_keys=key is None,
                       allow_agent=key is None, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
    except paramiko.BadHostKeyException as exc:
        raise DeployError(f"host key of {target.host} changed ({exc.key.get_name()}): refusing to connect; "
                          f"remove its line from {known_hosts} if the device was reinstalled") from None
    except paramiko.AuthenticationException as exc:
        raise DeployError(f"SSH authentication failed for {target}"
                          f"{f' with key {key}' if key else ''}: {exc}") from None
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        reasons = {str(e.strerror or e) for e in exc.errors.values()}
        raise DeployError(f"cannot connect to {target}: {'; '.join(sorted(reasons))}") from None
    except TimeoutError:
        raise DeployError(f"cannot connect to {target}: timed out after {timeout:.0f} s") from None
    except (OSError, paramiko.SSHException) as exc:
        raise DeployError(f"cannot connect to {target}: {type(exc).__name__}: {exc}") from None
    try:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(known_hosts))  # only the keys of this file plus the new one
    except OSError:
        pass
    return client


def _ssh_socket(target: Target, timeout: float) -> socket.socket:
    """A TCP connection on which the server has started to speak. A port that accepts and never answers
    (not an SSH server, or a hung one) is a time-out here; inside paramiko it surfaced, after two time-outs,
    as "No existing session"."""
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except TimeoutError:
        raise DeployError(f"cannot connect to {target}: timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise DeployError(f"cannot connect to {target}: {exc.strerror or exc}") from None
    try:
        if not sock.recv(1, socket.MSG_PEEK):
            raise DeployError(f"{target} closed the connection before sending an SSH banner: is it an SSH server?")
    except TimeoutError:
        sock.close()
        raise DeployError(f"{target} accepted the connection but sent no SSH banner in {timeout:.0f} s "
                          "(timed out): not an SSH server, or one that hangs") from None
    except OSError as exc:
        sock.close()
        raise DeployError(f"cannot connect to {target}: {exc.strerror or exc}") from None
    return sock


def run_remote(client, argv: list, timeout: float = 3600) -> tuple[int, str, str]:
    """Run one quoted command; (exit status, stdout, stderr), kept apart.

    Both streams are read as they come (a ``select`` on the channel, which wakes for either): reading all
    of stdout first deadlocked once the remote filled its stderr window and blocked writing to it.
    ``timeout``: seconds without any output before ``TimeoutError``, as paramiko's channel time-out was."""
    _stdin, stdout, _stderr = client.exec_command(command(*argv), timeout=timeout)
    channel = stdout.channel
    out, err = bytearray(), bytearray()
    quiet_since = time.monotonic()
    while True:
        got = False
        while channel.recv_ready():
            out += channel.recv(1 << 16)
            got = True
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(1 << 16)
            got = True
        if (channel.eof_received or channel.closed) and not channel.recv_ready() and not channel.recv_stderr_ready():
            break  # the remote closed both streams (EOF is per channel) and every byte is read
        if got:
            quiet_since = time.monotonic()
        left = timeout - (time.monotonic() - quiet_since)
        if left <= 0:
            raise TimeoutError(f"no output from `{command(*argv)[:80]}` in {timeout:.0f} s")
        select.select([channel], [], [], min(left, 5.0))
    return channel.recv_exit_status(), out.decode(errors="replace"), err.decode(errors="replace")


def device_power(client) -> dict:
    """``nvpmodel -q`` and ``jetson_clocks --show`` when the device has them (Jetson)."""
    found = {}
    for name, argv in (("nvpmodel", ["nvpmodel", "-q"]), ("jetson_clocks", ["jetson_clocks", "--show"])):
        code, _out, _err = run_remote(client, ["sh", "-c", 'command -v "$1" >/dev/null 2>&1', "sh", argv[0]], 30)
        if code != 0:
            found[name] = None
            continue
        code, out, err = run_remote(client, argv, 60)
        found[name] = out.strip() if code == 0 else f"failed (exit {code}): {err.strip()[:200]}"
    return found


def validate_records(path: Path) -> list[dict]:
    """Every non-empty line must be a JSON result record; else DeployError (nothing appended)."""
    records = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DeployError(f"the device's results line {n} is not JSON ({exc}); nothing was appended") from None
        if not isinstance(record, dict) or record.get("schema") != RESULT_SCHEMA or "latency_ms" not in record:
            raise DeployError(f"the device's results line {n} is not an edgebench result record; nothing was appended")
        records.append(record)
    return records


def deploy_run(target: Target, bundle: Path, results: Path | None, *, key: Path | None = None,
               known_hosts: Path | None = None, fallback: str = "none", python: str = "python3",
               remote_dir: str | None = None, runner_args: list[str] | None = None, connect_timeout: float = 15.0,
               status=lambda _m: None, on_connect=lambda _client: None, timeout: float = 3600) -> dict:
    """Upload, verify, run, fetch; return a summary with the appended records.

    ``results=None`` appends nothing (the fleet annotates the records first); ``on_connect`` gets the
    SSH client (the fleet closes it to stop a job); ``timeout``: seconds the runner may stay silent."""
    bundle = Path(bundle)
    if not bundle.is_file():
        raise UsageError(f"bundle {bundle} does not exist; make one with `edgebench deploy bundle`")
    digest = sha256_file(bundle)
    status(f"connecting to {target}")
    client = connect(target, key, known_hosts, connect_timeout)
    try:
        on_connect(client)
        sftp = client.open_sftp()
        home = sftp.normalize(".")
        base = remote_dir or f"{home}/edgebench-deploy"
        workdir = f"{base}/{digest[:16]}"
        archive = f"{workdir}/bundle.tar.gz"
        code, _o, err = run_remote(client, ["mkdir", "-p", workdir])
        if code:
            raise DeployError(f"cannot create {workdir} on {target.host}: {err.strip()[:200]}")
        status(f"uploading {bundle.name} ({bundle.stat().st_size / 2**20:.1f} MB)")
        sftp.put(str(bundle), archive)
        code, out, err = run_remote(client, ["sha256sum", archive])
        if code == 0 and out.split()[0] != digest:
            raise DeployError(f"upload to {target.host} is corrupt (sha256 {out.split()[0][:12]} != {digest[:12]})")
        code, _o, err = run_remote(client, ["tar", "-xzf", archive, "-C", workdir, "--no-same-owner"])
        if code:
            raise DeployError(f"cannot unpack the bundle on {target.host}: {err.strip().splitlines()[-1:]}")
        power = device_power(client)
        remote_results = f"{workdir}/results.{os.getpid()}.{digest[:8]}.jsonl"
        run_remote(client, ["rm", "-f", remote_results])
        status("verifying checksums and running the bundle on the device")
        argv = [python, f"{workdir}/runner.py", "--out", remote_results, "--fallback", fallback, *(runner_args or [])]
        code, out, err = run_remote(client, argv, timeout)
        summary = _summary(out)
        if summary is None:
            tail = (err.strip() or out.strip() or "no output").splitlines()[-1]
            if code == 127 or "not found" in tail:
                raise DeployError(f"{python} is not available on {target.host}: {tail[:200]}")
            raise DeployError(f"the runner failed on {target.host} (exit {code}): {tail[:300]}")
        if summary["status"] != "ok":
            tensorrt = (summary.get("tensorrt") or {}).get("reason")
            if code == 4 and tensorrt:
                raise RuntimeUnavailable(f"{tensorrt} (use --fallback ort to measure on ONNX Runtime instead)")
            raise DeployError(f"on {target.host}: {summary.get('error', 'runner failed')}")
        status("fetching the records")
        spool = Path(results).parent if results is not None else None
        if spool is not None:
            spool.mkdir(parents=True, exist_ok=True)
        prefix = f".{Path(results).name}." if results is not None else ".edgebench."
        fd, tmp = tempfile.mkstemp(dir=spool, prefix=prefix, suffix=".download")
        os.close(fd)
        try:
            sftp.get(remote_results, tmp)
            records = validate_records(Path(tmp))
            if len(records) != summary.get("records"):
                raise DeployError(f"expected {summary.get('records')} records from {target.host}, got {len(records)}")
            for record in records:
                record["deploy"] = {**record.get("deploy", {}), "host": target.host, "user": target.user,
                                    "port": target.port, "bundle_sha256": digest, "remote_dir": workdir,
                                    "nvpmodel": power["nvpmodel"], "jetson_clocks": power["jetson_clocks"]}
            if results is not None:
                append_records(records, results)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        sftp.close()
    finally:
        client.close()
    return {"summary": summary, "records": records, "device_power": power, "remote_dir": workdir,
            "runner_output": [line for line in out.splitlines() if line.startswith("[runner]")]}


def _summary(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(SUMMARY_PREFIX):
            try:
                return json.loads(line[len(SUMMARY_PREFIX):])
            except json.JSONDecodeError:
                return None
    return None
