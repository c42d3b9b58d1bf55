"""The labgrid coordinator as the fleet sees it: places, their NetworkService, acquire and release.

labgrid 24+ talks gRPC to ``labgrid-coordinator`` (the crossbar/WAMP coordinator of older releases
is gone); this module uses only labgrid's client API: a :class:`labgrid.remote.client.ClientSession`
receives every place and resource update, and its stub sends ``AcquirePlace`` / ``ReleasePlace``.
The coordinator acquires atomically and refuses a place someone holds, so a held place is never
taken from its user: it is waited for. A release names us as ``fromuser``, so it can never drop
another user's hold either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from edgebench.portable.errors import UsageError, one_line

DEFAULT_PORT = 20408
CONNECT_TIMEOUT_S = 10.0
# power resources labgrid-client's `power` command drives (labgrid.remote.client.ClientSession.power)
POWER_RESOURCES = ("NetworkPowerPort", "NetworkUSBPowerPort", "NetworkSiSPMPowerPort", "PDUDaemonPort",
                   "TasmotaPowerPort", "NetworkYKUSHPowerPort")


def run(coroutine):
    """``asyncio.run`` for the fleet's labgrid sessions. gRPC's poller delivers a closed channel's late events
    to the loop that made them; when that loop is gone it raises "Event loop is closed" inside its reader
    callback, and asyncio printed that with a traceback before edgebench's own one-line error (an unreachable
    coordinator, under load). Only that exception is dropped; every other one reaches asyncio's handler."""
    async def main():
        asyncio.get_running_loop().set_exception_handler(_quiet_closed_loop)
        return await coroutine
    return asyncio.run(main())


def _quiet_closed_loop(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    exc = context.get("exception")
    if isinstance(exc, RuntimeError) and "Event loop is closed" in str(exc) \
            and "PollerCompletionQueue" in repr(context.get("handle")):
        logging.getLogger(__name__).debug("gRPC poller: an event for a closed loop dropped")
        return
    loop.default_exception_handler(context)


class _QuietLabgrid(logging.Filter):
    """labgrid logs a lost coordinator on the root logger; the fleet reports it as its own one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "labgrid" + os.sep + "remote" not in record.pathname


@dataclass(frozen=True)
class PlaceInfo:
    """One place as the coordinator last described it."""

    name: str
    tags: dict = field(default_factory=dict)
    comment: str = ""
    acquired: str | None = None  # "host/user" of the holder
    service: dict | None = None  # the matched NetworkService: address, username, port (password never kept)
    service_avail: bool = False
    power: str | None = None  # the class of a matched power resource

    def to_dict(self) -> dict:
        return {"name": self.name, "tags": self.tags, "comment": self.comment, "acquired": self.acquired,
                "service": self.service, "service_avail": self.service_avail, "power": self.power}


class Lab:
    """A connected labgrid client session."""

    def __init__(self, session, address: str):
        self.session = session
        self.address = address
        self.me = f"{session.gethostname()}/{session.getuser()}"

    @classmethod
    async def connect(cls, address: str, timeout: float = CONNECT_TIMEOUT_S) -> Lab:
        """A session with the coordinator's places and resources loaded, or UsageError in one line."""
        from labgrid.remote.client import ClientSession
        from labgrid.util.proxy import proxymanager

        logging.getLogger().addFilter(_QuietLabgrid())
        grpc_address = proxymanager.get_grpc_address(address, default_port=DEFAULT_PORT)
        session = ClientSession(grpc_address, asyncio.get_running_loop())
        try:
            await asyncio.wait_for(session.start(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            await _close(session)
            raise UsageError(f"cannot reach the labgrid coordinator at {address}: no answer in {timeout:.0f} s") from None
        except Exception as exc:  # noqa: BLE001 - labgrid's ServerError, grpc errors
            await _close(session)
            raise UsageError(f"cannot reach the labgrid coordinator at {address} ({one_line(exc, 200)}); "
                             "is labgrid-coordinator running there?") from None
        return cls(session, address)

    async def close(self) -> None:
        await _close(self.session)

    # ---------------------------------------------------------------- what the coordinator says

    def describe(self, name: str) -> PlaceInfo:
        place = self.session.places[name]
        service, avail, power = None, False, None
        for exporter, groups in sorted(self.session.resources.items()):
            for group_name, group in sorted(groups.items()):
                for resource_name, resource in sorted(group.items()):
                    if "cls" not in resource.data or not place.hasmatch((exporter, group_name, resource.cls,
                                                                          resource_name)):
                        continue
                    if resource.cls == "NetworkService" and service is None:
                        service = {k: v for k, v in resource.args.items() if k != "password"}
                        avail = resource.avail
                    elif resource.cls in POWER_RESOURCES and power is None:
                        power = resource.cls
        return PlaceInfo(name, dict(place.tags), place.comment, place.acquired, service, avail, power)

    def places(self) -> list[PlaceInfo]:
        return [self.describe(name) for name in sorted(self.session.places)]

    def match(self, patterns: str) -> list[PlaceInfo]:
        """The places whose name or alias matches one of the comma-separated globs; UsageError if none."""
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        found = [info for info in self.places()
                 if any(fnmatchcase(info.name, g) or any(fnmatchcase(a, g) for a in self.session.places[info.name].aliases)
                        for g in globs)]
        if not found:
            known = ", ".join(sorted(self.session.places)) or "none"
            raise UsageError(f"--places {patterns!r} matches no place on {self.address} (places: {known})")
        return found

    def holder(self, name: str) -> str | None:
        return self.session.places[name].acquired

    # ---------------------------------------------------------------- acquire / release

    async def acquire(self, name: str) -> bool:
        """True when we now hold ``name``; False when another user holds it (it is left to them)."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        if self.holder(name) not in (None, self.me):
            return False
        try:
            await self.session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=name))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED):
                await self.session.sync_with_coordinator()
                return False  # taken between our look and our request, or reserved for someone else
            raise UsageError(f"labgrid coordinator refused to acquire {name}: {exc.details()}") from None
        await self.session.sync_with_coordinator()
        return self.holder(name) == self.me

    async def release(self, name: str) -> None:
        """Release ``name`` if we hold it (``fromuser``: never another user's hold)."""
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        await self.session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=name, fromuser=self.me))
        await self.session.sync_with_coordinator()

    async def power_cycle(self, name: str, timeout: float = 120.0) -> str:
        """Cycle the place's power with labgrid's own ``labgrid-client power cycle`` (any power driver it has)."""
        exe = Path(sys.executable).with_name("labgrid-client")
        proc = await asyncio.create_subprocess_exec(
            str(exe) if exe.is_file() else "labgrid-client", "-x", self.address, "-p", name, "power", "cycle",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            proc.kill()
            return f"power cycle timed out after {timeout:.0f} s"
        text = out.decode(errors="replace").strip().splitlines()
        return "power cycled" if proc.returncode == 0 else f"power cycle failed: {(text or ['?'])[-1][:200]}"



async def _close(session) -> None:
    with contextlib.suppress(Exception):  # already gone
        await asyncio.wait_for(session.stop(), 5)
    with contextlib.suppress(Exception):
        await session.close()
