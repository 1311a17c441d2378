"""Shared fixtures: the committed models and real images from scikit-learn / scikit-image."""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from tests import skips
from tests.skips import elsewhere

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"
EXAMPLE_MODELS = ROOT / "examples" / "models"
DIGITS_INT8 = EXAMPLE_MODELS / "digits_int8.tflite"
DIGITS_FLOAT = EXAMPLE_MODELS / "digits_float.tflite"
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
# A fuzz run whose children load models with the same backend in the TensorFlow suite as in the LiteRT-only suite
# (ai_edge_litert; TensorFlow is never imported by the runtime) runs in the device suites only.
SAME_AS_LITERT_SUITE = elsewhere("litert", "the same backend as here (the runtime never imports TensorFlow)")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason=elsewhere("workstation", "needs TensorFlow (the convert extra)"))
    for item in items:
        if "tensorflow" in item.keywords and not HAS_TENSORFLOW:
            item.add_marker(skip)


_SKIPS: list[tuple[str, str]] = []  # (test id, reason) of every skip in this run


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        _SKIPS.append((report.nodeid, report.longrepr[2].removeprefix("Skipped: ")))


def _hidden() -> int:
    """How many of this run's skips hide a path (not planned, tests/skips.py)."""
    return sum(not skips.planned(reason) for _, reason in _SKIPS)


def pytest_sessionfinish(session, exitstatus):
    """On CI a skip that hides a path fails the run (tests/skips.py says which skips are planned)."""
    if skips.strict() and _hidden() and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    _list_documentation_not_run(terminalreporter)
    _list_skips(terminalreporter)


def _list_skips(terminalreporter) -> None:
    """Every skip at the end of the run, planned or not, one line each (scripts/test.sh gathers these lines)."""
    if not _SKIPS:
        return
    terminalreporter.section("skips")
    for nodeid, reason in _SKIPS:
        kind = "planned" if skips.planned(reason) else ("FAILS ON CI" if skips.strict() else "hides a path")
        terminalreporter.write_line(f"skipped ({kind}): {nodeid}: {reason}")
    hidden = _hidden()
    if skips.strict() and hidden:
        terminalreporter.write_line(f"this run fails: {hidden} skip{'s' * (hidden > 1)} hide{'s' * (hidden == 1)} "
                                    "a path CI must run (tests/skips.py)")


def real_photo_paths() -> list[pathlib.Path]:
    """Real photos shipped inside scikit-learn and scikit-image (JPEG and PNG)."""
    import skimage
    import sklearn
    sk = pathlib.Path(sklearn.__file__).parent / "datasets" / "images"
    ski = pathlib.Path(skimage.__file__).parent / "data"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg", "hubble_deep_field.jpg",
             "motorcycle_left.png"]
    return [sk / "china.jpg", sk / "flower.jpg"] + [ski / n for n in names if (ski / n).exists()]


@pytest.fixture(scope="session")
def photos() -> list[pathlib.Path]:
    return real_photo_paths()


@pytest.fixture(scope="session")
def jpeg_photos(photos) -> list[pathlib.Path]:
    return [p for p in photos if p.suffix == ".jpg"]


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's real digit scans as uint8 8x8 images and their labels."""
    from sklearn.datasets import load_digits
    data = load_digits()
    images = np.clip(np.rint(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, data.target


def cleanly(result) -> bool:
    """Whether a CliRunner run ended the way the CLI means to end, with its exit code and no exception escaping.
    Under CliRunner an escaping exception never reaches the output as a traceback (it is kept in
    ``result.exception``), so "Traceback" not in the output alone cannot fail."""
    return (result.exception is None or isinstance(result.exception, SystemExit)) and "Traceback" not in result.output


def saved_scans(folder: pathlib.Path, images: np.ndarray, count: int) -> pathlib.Path:
    """The first ``count`` digit scans as PNGs in ``folder`` (0000.png, 0001.png, ...)."""
    from PIL import Image
    for i, image in enumerate(images[:count]):
        Image.fromarray(image, "L").save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="session")
def heldout_digits(digits):
    """The 20% of digits the example model did not train on (same split as build_models.py)."""
    images, labels = digits
    order = np.random.default_rng(0).permutation(len(images))
    test = order[int(len(images) * 0.8):]
    return images[test], labels[test]


@pytest.fixture()
def digit_png(tmp_path, digits) -> pathlib.Path:
    from PIL import Image
    path = tmp_path / "seven.png"
    images, labels = digits
    Image.fromarray(images[list(labels).index(7)], "L").save(path)
    return path


def default_cpu_delegate() -> str:
    """What 'auto' runs on a plain model here: LiteRT and TensorFlow apply XNNPACK by default;
    tflite-runtime 2.14's XNNPACK takes none of the digits models' ops (seen in its execution plan)."""
    from edgelite.runtime.interpreter.backend import find_backend
    return "cpu" if find_backend().name == "tflite_runtime" else "xnnpack"


def can_write_metadata() -> bool:
    """Embedding a record needs the generated TFLite schema (ai-edge-litert or TensorFlow ship it)."""
    return any(importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tensorflow"))


needs_writer = pytest.mark.skipif(not can_write_metadata(), reason=elsewhere(
    "litert", "writing metadata needs the TFLite schema module ai-edge-litert or TensorFlow ship"))


@pytest.fixture()
def fake_compiler(tmp_path) -> pathlib.Path:
    """An executable stand-in for edgetpu_compiler (tests/fixtures/fake_edgetpu_compiler.py)."""
    script = tmp_path / "edgetpu_compiler"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fixtures" / "fake_edgetpu_compiler.py"}" "$@"\n')
    script.chmod(0o755)
    return script


@pytest.fixture(scope="session")
def rejecting_delegate(tmp_path_factory) -> pathlib.Path:
    """A real external-delegate plugin library whose Prepare rejects every model (built with gcc)."""
    import shutil
    import subprocess
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the stand-in delegate library (.ci/run installs it on CI)")
    out = tmp_path_factory.mktemp("delegate") / "librejecting_delegate.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(ROOT / "tests" / "fixtures" / "rejecting_delegate.c")],
                   check=True, capture_output=True, timeout=120)
    return out


def start_sshd(d: pathlib.Path):
    """A real OpenSSH server on 127.0.0.1 with throwaway keys in ``d``: (its details, its process); skips the test
    where there is no sshd binary or no device environment. The 'device' is .venv-runtime (no TensorFlow)."""
    import getpass
    import shutil
    import socket
    import subprocess
    import time
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if pathlib.Path("/usr/sbin/sshd").exists() else None)
    device_edgelite = ROOT / ".venv-runtime" / "bin" / "edgelite"
    if not sshd or not shutil.which("ssh"):
        pytest.skip("no OpenSSH server binary (sshd) on this machine; install openssh-server to run the "
                    "remote-profiling tests (.ci/run installs it on CI, service masked)")
    if not device_edgelite.exists():
        pytest.skip(".venv-runtime (the device environment) is not built; run scripts/test.sh")
    d.mkdir(parents=True, exist_ok=True)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n")
    pathlib.Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.time() + 15
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        server.kill()
        pytest.skip("sshd did not start: " + server.stderr.read().decode()[-300:])
    info = {"target": f"{getpass.getuser()}@127.0.0.1:{port}", "identity": str(d / "client_key"),
            "options": (f"UserKnownHostsFile={d / 'known_hosts'}", "StrictHostKeyChecking=accept-new"),
            "edgelite": str(device_edgelite), "port": port}
    return info, server


def stop_sshd(server) -> None:
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory):
    """One private sshd on loopback for the whole run (see start_sshd)."""
    info, server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield info
    stop_sshd(server)


def pytest_configure(config):
    """The sandbox's verdicts go to a folder of this run, so no run trusts a file because an earlier one did."""
    import os
    import tempfile
    os.environ.setdefault("EDGELITE_CACHE", tempfile.mkdtemp(prefix="edgelite-test-cache-"))


def start_ray(nodes: int = 2, env: dict | None = None):
    """A real Ray cluster of ``nodes`` nodes on 127.0.0.1, one CPU each (tests/fixtures/ray_cluster.py, in a process
    of its own, torn down by stop_ray; never `ray stop`, which would end every Ray of this user). Returns (the
    head's address, the launcher process); skips where Ray is not installed."""
    import importlib.util
    import os
    import subprocess
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed in this environment (the ray extra)")
    launcher = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fixtures" / "ray_cluster.py"), str(nodes)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, text=True, start_new_session=True)
    address = launcher.stdout.readline().strip()
    if not address:
        stop_ray(launcher)
        pytest.skip("the local Ray cluster did not start")
    return address, launcher


def stop_ray(launcher) -> None:
    import os
    import signal
    import subprocess
    try:
        launcher.stdin.close()
        launcher.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


@pytest.fixture(scope="session")
def ray_cluster():
    """A two-node Ray cluster on loopback for the whole run (see start_ray); its head's address."""
    address, launcher = start_ray(2)
    yield address
    stop_ray(launcher)


RAY_AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """(the head's address, an environment whose HOME holds the head's token) of a head `ray start` runs."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed in this environment (the ray extra)")
    # the `ray` command is this console script; run through this Python, as the environments here keep their
    # scripts in the shared environment's bin/
    ray = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    home = tmp_path_factory.mktemp("home")
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # Ray's socket paths must stay under 107 characters
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in RAY_AUTH}
    env.update(HOME=str(home), RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    # A machine where Ray has run before has ~/.ray/auth_token (any local ray.init() writes one), and `ray start`
    # then turns token authentication on; `ray get-auth-token --generate` is Ray's documented way to make one.
    subprocess.run([*ray, "get-auth-token", "--generate"], env=env, capture_output=True, check=True, timeout=120)
    log = open(home / "ray-start.log", "w")  # noqa: SIM115 - closed after the head ends
    head = subprocess.Popen([*ray, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                             "--temp-dir", temp, "--num-cpus", "2", "--include-dashboard", "false",
                             "--disable-usage-stats", "--block"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _listening(port) and head.poll() is None:
        time.sleep(0.5)
    try:
        if not _listening(port) or "Token authentication is enabled" not in (home / "ray-start.log").read_text():
            pytest.fail("`ray start --head` did not come up: " + (home / "ray-start.log").read_text()[-2000:])
        yield f"127.0.0.1:{port}", env
    finally:
        _end_group(head)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM to the head's process group (what Ctrl-C on `ray start --block` does), then SIGKILL to what is
    left of it after 30 s; its children (gcs_server, raylet, workers) share the group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            process.poll()  # reaps the head, so a zombie does not keep the group alive
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    process.wait()


def _list_documentation_not_run(terminalreporter) -> None:
    """The documentation's code blocks that do not run here, with their marks (tests/sdk/test_docs_examples.py)."""
    docs = next((m for name, m in list(sys.modules.items()) if name.endswith("test_docs_examples")), None)
    if docs is None and any(getattr(r, "nodeid", "").startswith("tests/sdk/test_docs_examples.py")
                            for reports in terminalreporter.stats.values() for r in reports):
        # under pytest-xdist the workers ran it; the controller never imported it
        import importlib
        docs = importlib.import_module("tests.sdk.test_docs_examples")
    if docs is None or not docs.NOT_RUN:
        return
    terminalreporter.section(f"documentation blocks not run here ({len(docs.NOT_RUN)}, by their marks)")
    for block in docs.NOT_RUN:
        terminalreporter.line(f"{block.id}: {block.kind}: {block.why}")
