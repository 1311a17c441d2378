"""Profiling across a fleet of boards at once: every model on every device, the devices side by side.

Each device is reached over the same SSH transport as ``--remote`` (``remote.Remote``: the system's
OpenSSH client, key authentication, no daemon on the device). The devices run at the same time, one
thread each (the work is on the boards; here each thread only waits on its ssh), so a fleet takes as
long as its slowest board, not the sum. A device that is down or answers with garbage is marked and
the others go on. Each device's start and end times are measured here and kept in the report, so the
overlap can be seen (and is checked by the tests and ``benchmarks/scale.py``).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.interpreter.profiler import ProfileResult
from edgelite.runtime.modelfile.files import describe, read_regular
from edgelite.scale.errors import DeviceUnreachableError, RemoteError
from edgelite.scale.remote import Remote

DEVICES_LIMIT = 256 * 1024   # a devices file is a few lines; anything this big is not one
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LABEL = NAME
# Every key a device entry may have, with what it must be: declared once, checked for each entry.
DEVICE_KEYS: dict[str, str] = {
    "name": "a name (letters, digits, '.', '-', '_')",
    "host": "user@host[:port]",
    "labels": "a list of labels such as pi5 or coral",
    "edgelite": "the edgelite command on the device",
    "identity": "a private key file for SSH",
    "ssh_options": "a list of ssh -o KEY=VALUE options",
}


@dataclass(frozen=True)
class Device:
    """One board: a name for the report, how to reach it, and labels to group by (``pi5``, ``coral``)."""

    name: str
    remote: Remote
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "host": self.remote.target, "labels": list(self.labels)}


@dataclass(frozen=True)
class DeviceRun:
    """What one device did: its results, its errors, and when it started and ended (epoch seconds, measured)."""

    device: Device
    status: str                     # ok, failed (answered, with errors) or down (never answered, or stopped answering)
    started: float
    finished: float
    version: str | None = None
    results: tuple[ProfileResult, ...] = ()
    errors: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {**self.device.to_dict(), "status": self.status, "edgelite": self.version,
                "started": self.started, "finished": self.finished, "seconds": round(self.finished - self.started, 3),
                "results": [r.to_dict() for r in self.results], "errors": list(self.errors)}


@dataclass(frozen=True)
class FleetReport:
    runs: tuple[DeviceRun, ...]

    @property
    def all_answered(self) -> bool:
        return all(r.status == "ok" for r in self.runs)

    @property
    def overlap_s(self) -> float:
        """How long every device was running at once (0 when any two never overlapped)."""
        if not self.runs:
            return 0.0
        return max(0.0, min(r.finished for r in self.runs) - max(r.started for r in self.runs))

    def to_dict(self) -> dict:
        return {"devices": [r.to_dict() for r in self.runs], "all_answered": self.all_answered,
                "overlap_s": round(self.overlap_s, 3)}


def read_devices(path, *, timeout: float = 600.0) -> tuple[Device, ...]:
    """The devices in a TOML file: ``[[device]]`` tables with a name and a host (see DEVICE_KEYS).

    Raises RemoteError naming the file and the entry for anything else: an unknown key, a bad host
    or name, a duplicate name, a file that is not TOML."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    name = describe(path)
    text = read_regular(path, "a devices file", DEVICES_LIMIT, RemoteError)
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RemoteError(f"{name}: not a TOML devices file ({exc})") from None
    extra = sorted(set(data) - {"device"})
    if extra:
        raise RemoteError(f"{name}: unknown key {extra[0]!r}; a devices file holds [[device]] tables only")
    entries = data.get("device")
    if not isinstance(entries, list) or not entries:
        raise RemoteError(f"{name}: no devices; add [[device]] tables with a name and a host")
    devices = tuple(_device(entry, i, name, timeout) for i, entry in enumerate(entries, 1))
    names = [d.name for d in devices]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RemoteError(f"{name}: the device name {twice[0]!r} is used twice; names must be unique")
    return devices


def _device(entry, index: int, file: str, timeout: float) -> Device:
    where = f"{file}: device {index}"
    if not isinstance(entry, dict):
        raise RemoteError(f"{where}: not a table")
    unknown = sorted(set(entry) - set(DEVICE_KEYS))
    if unknown:
        raise RemoteError(f"{where}: unknown key {unknown[0]!r}; a device has {', '.join(DEVICE_KEYS)}")
    for key in ("name", "host"):
        if key not in entry:
            raise RemoteError(f"{where}: no {key} ({DEVICE_KEYS[key]})")
    for key in ("name", "host", "edgelite", "identity"):
        if key in entry and not isinstance(entry[key], str):
            raise RemoteError(f"{where}: {key} must be {DEVICE_KEYS[key]}")
    for key in ("labels", "ssh_options"):
        if key in entry and not (isinstance(entry[key], list) and all(isinstance(v, str) for v in entry[key])):
            raise RemoteError(f"{where}: {key} must be {DEVICE_KEYS[key]}")
    if not NAME.fullmatch(entry["name"]):
        raise RemoteError(f"{where}: name {describe(entry['name'])} must be {DEVICE_KEYS['name']}")
    bad = [label for label in entry.get("labels", ()) if not LABEL.fullmatch(label)]
    if bad:
        raise RemoteError(f"{where}: label {describe(bad[0])} must be letters, digits, '.', '-' or '_'")
    try:
        remote = Remote(entry["host"], entry.get("edgelite", "edgelite"), entry.get("identity"),
                        tuple(entry.get("ssh_options", ())), timeout)
    except RemoteError as exc:
        raise RemoteError(f"{where} ({entry['name']}): {exc}") from None
    return Device(entry["name"], remote, tuple(entry.get("labels", ())))


def devices_from_hosts(remotes: Sequence[Remote]) -> tuple[Device, ...]:
    """``--remote`` given several times: each host is a device named by its address."""
    return tuple(Device(r.target, r) for r in remotes)


def profile_fleet(devices: Sequence[Device], models: Sequence[str], counts: Sequence[int | None], *,
                  on_event: Callable[[dict], None] | None = None, **options) -> FleetReport:
    """Every model at every thread count on every device, the devices at the same time.

    ``options`` go to ``Remote.profile`` (runs, warmup, delegate, duration_s). ``on_event`` is called (from the
    devices' threads) with ``{"event": "started"|"finished", "device": name, ...}`` for progress."""
    def one(device: Device) -> DeviceRun:
        started = time.time()
        if on_event:
            on_event({"event": "started", "device": device.name})
        run = _profile_device(device, models, counts, started, options)
        if on_event:
            on_event({"event": "finished", "device": device.name, "status": run.status})
        return run
    if not devices:
        return FleetReport(())
    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="edgelite-fleet") as pool:
        return FleetReport(tuple(pool.map(one, devices)))


def _profile_device(device: Device, models, counts, started: float, options: dict) -> DeviceRun:
    """One device's run: down if it does not answer, failed if it answers with something else or a model fails."""
    try:
        version = device.remote.check()
    except EdgeliteError as exc:
        return DeviceRun(device, "down" if isinstance(exc, DeviceUnreachableError) else "failed", started, time.time(),
                         errors=({"device": device.name, "error": str(exc)},))
    results, errors, down = device.remote.profile_each(models, counts, **options)
    status = "down" if down else "failed" if errors else "ok"
    return DeviceRun(device, status, started, time.time(), version, results,
                     tuple({"device": device.name, **e} for e in errors))


__all__ = ["Device", "DeviceRun", "FleetReport", "profile_fleet", "read_devices"]
