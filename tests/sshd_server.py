"""A REAL OpenSSH server on 127.0.0.1 for the deploy and fleet tests: Debian's sshd on a free port, a
throwaway ed25519 host key, an authorized client key, logging in as the current user (root in CI)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgebench-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


def require_sshd() -> None:
    """Skip (with the reason) where a loopback sshd cannot run."""
    if not SSHD.is_file():
        pytest.skip(f"{SSHD} is missing: apt-get install openssh-server (.ci/run does this)")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is missing (openssh-client)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd test logs in as the current user and needs root (as in CI)")


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    dir: Path
    user: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill_tree(self) -> list[int]:
        """SIGKILL the server and every session under it (a device dropping off); the killed pids."""
        import psutil
        parent = psutil.Process(self.proc.pid)
        procs = [*parent.children(recursive=True), parent]
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(timeout=10)
        return [p.pid for p in procs]

    def sessions(self) -> list[list[str]]:
        """Command lines of the processes running under this server now."""
        import psutil
        found = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                found.append(child.cmdline())
            except psutil.NoSuchProcess:
                pass
        return found


def start_sshd(d: Path, client_pub: Path) -> Sshd:
    """sshd on a free port authorizing ``client_pub``, with its own host key and files in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    host_key = keygen(d / "host_ed25519")
    (d / "authorized_keys").write_text(Path(client_pub).read_text())
    port = free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no",
        "Subsystem sftp internal-sftp", "LogLevel ERROR", "MaxStartups 50",
        # A device's login shell, not this host's: bash sources ~/.bashrc for sshd sessions only at SHLVL 0.
        # Root's .bashrc here runs `pyenv rehash`, whose lock a killed session leaves behind; every later
        # command then waits 60 s for it (what timed out CI's fleet tests).
        "SetEnv SHLVL=1", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation directory
    with (d / "sshd.log").open("wb") as log:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {(d / 'sshd.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("sshd did not start listening")
    return Sshd(proc, port, d, os.environ.get("USER") or "root")
