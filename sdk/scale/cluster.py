"""Reaching a Ray cluster (``--ray ADDRESS``): checked before Ray is asked, versions checked on every node.

Ray is imported only here and only when ``--ray`` is given: with no cluster named, everything runs in
this process as before. ``local`` starts a private Ray for this run (on 127.0.0.1, torn down after);
``auto`` reads ``RAY_ADDRESS``; anything else is ``host:port`` of a running cluster's head (its GCS
port, 6379 by default). Ray's own ``ray.init`` on an address nobody serves waits about 80 s before it
gives up, so the address is checked here first with a plain TCP connection (a few seconds).

Nothing assumes a shared filesystem: what a task needs (the model, the images, the data folders)
travels through Ray's object store, and results come back the same way.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from edgelite.runtime.modelfile.files import describe
from edgelite.scale.errors import ClusterError

CONNECT_TIMEOUT_S = 5.0
GCS_RETRIES = 5   # seconds a reachable address may take to answer as a Ray head
ADDRESS = re.compile(r"(?P<host>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")
INSTALL = "pip install 'edgelite[ray]' (and [litert] for prediction, [convert] for sweeps) on every node"


@dataclass(frozen=True)
class Cluster:
    """A connected cluster: where it is, its CPUs and GPUs, and the edgelite version every node runs."""

    address: str
    cpus: int
    gpus: int
    nodes: int
    edgelite: str

    def to_dict(self) -> dict:
        return {"address": self.address, "cpus": self.cpus, "gpus": self.gpus, "nodes": self.nodes,
                "edgelite": self.edgelite}


def resolve(address: str) -> str | None:
    """The ``host:port`` to join, or None for a private local cluster. ClusterError for anything else."""
    if address == "local":
        return None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise ClusterError("--ray auto: RAY_ADDRESS is not set; give the head's host:port, or --ray local")
    found = ADDRESS.fullmatch(address)
    if not found or not 0 < int(found["port"]) < 65536:
        raise ClusterError(f"--ray {describe(address)}: not a Ray address; give the head's host:port (e.g. "
                           "10.0.0.2:6379), auto (RAY_ADDRESS) or local")
    return address


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """The head's port must answer, and answer as a gRPC server (Ray's GCS speaks HTTP/2): a wrong address fails
    in seconds, not after Ray's own retries (80 s when nothing answers, minutes when something else does)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as conn:
            conn.sendall(H2_PREFACE + H2_EMPTY_SETTINGS)
            answer = _read_up_to(conn, 9)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({reason}); is `ray start --head` running "
                           "there, and is this its GCS port?") from None
    if len(answer) < 9 or answer[3] != 0x04:  # an HTTP/2 server's first frame is its SETTINGS
        raise ClusterError(f"{address} answers, but not as a Ray head (no gRPC there); give the head's GCS port "
                           "(6379 unless `ray start --head --port` said otherwise)")


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _read_up_to(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def connect(address: str) -> Iterator[Cluster]:
    """Joins (or starts, for ``local``) a cluster for the length of the block, after checking that every
    node runs this edgelite version. Ray is shut down after, and a private cluster with it."""
    from edgelite import __version__
    target = resolve(address)
    if target is not None:
        check_reachable(target)
    if target is None or target.startswith("127."):
        # A cluster on this machine only: keep Ray's driver on the loopback address (Ray otherwise rewrites
        # 127.0.0.1 to the machine's network address, where a loopback cluster does not listen). Read by Ray
        # when it is imported, so set first.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Read by Ray when it is imported: its C++ client retries a head that answers but is not Ray once a second,
    # 20 times by default, each with a warning on stderr; here a few quiet seconds, then one line.
    os.environ.setdefault("RAY_NUM_REDIS_GET_RETRIES", str(GCS_RETRIES))
    # Ray's C++ logs (an actor's arguments put in the object store, ...) are Ray's business, not the user's;
    # EDGELITE_RAY_LOGS=1 keeps them.
    if os.environ.get("EDGELITE_RAY_LOGS") != "1":
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # this one is logged at "error" level
    token = token_source(os.environ) if target is not None else None
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray here: pip install 'edgelite[ray]' ({INSTALL})") from None
    said: list[bytes] = []
    try:
        _joined(ray, target, token, said)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; each becomes one line
        raise ClusterError(_join_failure(target, exc, token, said)) from None
    try:
        yield _checked(ray, target or "local", __version__)
    finally:
        ray.shutdown()


TOKEN_HELP = ("copy the head's token (`ray get-auth-token` there, or its ~/.ray/auth_token) to ~/.ray/auth_token "
              "here, or set RAY_AUTH_TOKEN")


def token_file(env) -> pathlib.Path:
    """Where Ray reads a cluster's token from when RAY_AUTH_TOKEN is not set: RAY_AUTH_TOKEN_PATH, else
    ~/.ray/auth_token (Ray's token authentication, on by default for clusters ``ray start`` makes)."""
    return pathlib.Path(env.get("RAY_AUTH_TOKEN_PATH") or pathlib.Path.home() / ".ray" / "auth_token")


def token_source(env) -> str | None:
    """Where this driver's token comes from ("RAY_AUTH_TOKEN" or the file Ray reads), None if it has none."""
    if env.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    return str(token_file(env)) if token_file(env).is_file() else None


def _joined(ray, target: str | None, token: str | None, said: list[bytes]) -> None:
    """``ray.init``, joined again in token mode when the head refused a driver without one. A head ``ray start``
    made on a machine with a token requires it, and Ray's driver sends it only with RAY_AUTH_MODE=token, which
    Ray sets itself only for a cluster it finds locally, never for an explicit address. Token mode is not set
    up front: a driver in token mode asks the cluster's workers for the token too, and a cluster without one
    then cannot start its actors (measured on Ray's test cluster). RAY_AUTH_MODE set by the user is left alone."""
    try:
        with _native_stderr_kept(said):
            _init(ray, target)
        return
    except Exception:
        if not (token and target and "RAY_AUTH_MODE" not in os.environ and _refused(said)):
            raise
    ray.shutdown()
    from ray._private.authentication.authentication_token_setup import _enable_token_auth
    _enable_token_auth()  # Ray's own switch: RAY_AUTH_MODE=token, and its configuration read again
    said.clear()
    with _native_stderr_kept(said):
        _init(ray, target)


def _refused(said: list[bytes]) -> bool:
    """Whether Ray's client logged that the head refused its token (or its lack of one)."""
    text = b"".join(said)
    return b"InvalidAuthToken" in text or b"Unauthenticated" in text


def _join_failure(target: str | None, exc: BaseException, token: str | None, said: list[bytes]) -> str:
    """One line for a failed ``ray.init``. Ray's exception says only "Failed to connect"; its client's own log
    (``said``, what it wrote to stderr while joining) says InvalidAuthToken when the head refused this driver's
    token or its lack of one: then the line says which token to provide and where."""
    where = target or "local"
    if _refused(said) or isinstance(exc, _auth_error()):
        if token is None:
            return f"cannot join the Ray cluster at {where}: it requires a token and this machine has none; {TOKEN_HELP}"
        return f"cannot join the Ray cluster at {where}: it refused the token from {token}; {TOKEN_HELP}"
    return f"cannot join the Ray cluster at {where}: {_first_line(exc)}"


def _auth_error() -> type:
    try:
        from ray.exceptions import AuthenticationError
    except ImportError:  # a Ray before token authentication
        return type(None)
    return AuthenticationError


def _init(ray, target: str | None) -> None:
    if target is None:
        # address="local": a new Ray of this run's own. Without it, ray.init() joins a cluster already running on
        # this machine (found through /tmp/ray), which is not what --ray local promises.
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.ERROR,
                 log_to_driver=False)
    else:
        ray.init(address=target, logging_level=logging.ERROR, log_to_driver=False)


@contextlib.contextmanager
def _native_stderr_kept(said: list[bytes]):
    """Ray's C++ client logs each retry to the process's stderr (fd 2), below Python: while joining, that goes to
    a file whose first 64 KiB are handed back in ``said`` (to tell a refused token from other failures), then
    dropped. A failure is the one line ClusterError makes."""
    import tempfile
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            said.append(held.read(1 << 16))


def _checked(ray, address: str, version: str) -> Cluster:
    """Runs one small task on every alive node: each must import edgelite at this version."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0, max_retries=0)
    def report() -> str:
        try:
            import edgelite
        except ImportError:
            return "none"
        return edgelite.__version__

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {n["NodeManagerAddress"]: report.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote() for n in nodes}
    try:
        found = {node: ray.get(ref, timeout=120) for node, ref in refs.items()}
    except Exception as exc:  # noqa: BLE001
        raise ClusterError(f"the Ray cluster at {address} did not run a version check: {_first_line(exc)}") from None
    for node, theirs in sorted(found.items()):
        if theirs != version:
            have = "no edgelite" if theirs == "none" else f"edgelite {theirs}"
            raise ClusterError(f"the Ray cluster at {address}: node {node} has {have}, this machine edgelite "
                               f"{version}; install the same version on every node ({INSTALL})")
    resources = ray.cluster_resources()
    return Cluster(address, int(resources.get("CPU", 0)), int(resources.get("GPU", 0)), len(nodes), version)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


__all__ = ["Cluster", "connect"]
