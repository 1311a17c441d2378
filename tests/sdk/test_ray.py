"""Batch prediction on a real Ray cluster (two nodes on loopback, started by the tests), and --ray's bad input."""
import json
import os
import time

import pytest
from click.testing import CliRunner
from PIL import Image

from edgelite.cli.commands import main
from tests.conftest import DIGITS_INT8, start_ray, stop_ray


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory, digits):
    """300 of scikit-learn's real digit scans as PNGs in class-less subfolders, and one file that is no image."""
    images, _ = digits
    folder = tmp_path_factory.mktemp("digits")
    for i, image in enumerate(images[:300]):
        sub = folder / f"part{i % 3}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(image, "L").save(sub / f"{i:04d}.png")
    (folder / "part1" / "0001x.png").write_bytes(b"not a png at all")
    return folder


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_ray_data_prediction_equals_local_predict_image_for_image(ray_cluster, digit_folder):
    args = ["predict", str(DIGITS_INT8), str(digit_folder), "--jsonl", "--top-k", "3", "--threads", "1"]
    local = CliRunner().invoke(main, args)
    remote = CliRunner().invoke(main, [*args, "--ray", ray_cluster, "--workers", "2"])
    assert local.exit_code == remote.exit_code == 1, remote.output  # the one bad file, on both
    here, there = _lines(local.stdout), _lines(remote.stdout)
    assert len(here) == len(there) == 301
    assert [r["source"] for r in here] == [r["source"] for r in there]
    bad = [r for r in there if "error" in r]
    assert [r["source"] for r in bad] == [str(digit_folder / "part1" / "0001x.png")]
    assert bad[0]["error"].startswith(str(digit_folder / "part1" / "0001x.png") + ": not an image")
    for a, b in zip(here, there):
        if "error" in a:
            continue
        assert [c["label"] for c in a["classes"]] == [c["label"] for c in b["classes"]], a["source"]
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a["classes"], b["classes"])) <= 1e-6


def test_ray_json_header_names_the_cluster(ray_cluster, digit_folder):
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(digit_folder / "part0"), "--json",
                                       "--ray", ray_cluster])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ray"]["nodes"] == 2 and data["ray"]["cpus"] == 2 and data["ray"]["address"] == ray_cluster
    assert len(data["results"]) == 100 and data["task"] == "classify"


def test_unreachable_ray_address_is_one_line_within_seconds():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    t0 = time.monotonic()
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(DIGITS_INT8), "--ray", f"127.0.0.1:{closed}"])
    assert time.monotonic() - t0 < 30
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert f"cannot reach the Ray cluster at 127.0.0.1:{closed}" in result.stderr


def test_an_address_that_answers_but_is_not_ray_is_one_line_within_seconds():
    """A port where something else answers (here an HTTP server saying 404): one line, not Ray's retry log."""
    import http.server
    import threading
    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # not onto the stderr the test reads
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(DIGITS_INT8), "--ray",
                                           f"127.0.0.1:{server.server_address[1]}"])
        elapsed = time.monotonic() - t0
    finally:
        server.shutdown()
    assert elapsed < 30 and result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "answers, but not as a Ray head" in result.stderr, result.stderr


@pytest.mark.parametrize(("address", "message"), [
    ("-p 6379", "not a Ray address"),
    ("head:99999", "not a Ray address"),
    ("auto", "RAY_ADDRESS is not set"),
])
def test_bad_ray_addresses(address, message, monkeypatch, digit_png):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(digit_png), "--ray", address])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and message in result.stderr, result.output


def test_workers_without_ray_is_a_usage_error(digit_png):
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(digit_png), "--workers", "2"])
    assert result.exit_code == 2 and "--ray" in result.stderr


def test_a_cluster_whose_workers_run_another_edgelite_is_named(tmp_path, digit_png):
    """The workers import an edgelite of another version (first on their PYTHONPATH): one line naming both."""
    fake = tmp_path / "fake" / "edgelite"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "0.0.1"\n')
    address, launcher = start_ray(1, env={"PYTHONPATH": str(fake.parent)})
    try:
        result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(digit_png), "--ray", address])
    finally:
        stop_ray(launcher)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "has edgelite 0.0.1, this machine edgelite" in result.stderr and "install the same version" in result.stderr
    assert os.environ.get("RAY_ADDRESS") is None


def test_ray_local_starts_a_private_ray_for_the_run(digit_folder, ray_cluster):
    """--ray local: a Ray of this run's own, stopped after (the same path as a cluster, on this machine's cores),
    even with another cluster running on this machine (the tests' two-node one), which it must not join."""
    import ray
    result = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(digit_folder / "part2"), "--json",
                                       "--ray", "local", "--workers", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ray"]["address"] == "local" and len(data["results"]) == 100
    assert data["ray"]["nodes"] == 1     # its own node, not the two of the cluster already running
    assert not ray.is_initialized()
