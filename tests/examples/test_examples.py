"""The examples run as documented."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.tensorflow
@pytest.mark.slow  # README command 1 (scripts/setup.sh -> examples/quickstart.sh) runs this script to the end
def test_train_and_convert(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_and_convert.py"), "--out", str(tmp_path),
                          "--epochs", "3"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "top-1 on 360 held-out scans: float" in out.stdout
    assert (tmp_path / "digits_int8.tflite").stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_device_app_classifies_new_images_survives_bad_ones_and_stops_on_sigterm(tmp_path, digits):
    import json
    import signal
    import time

    from PIL import Image

    from tests.conftest import DIGITS_INT8
    watched = tmp_path / "incoming"
    watched.mkdir()
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    # Block TensorFlow in the app's process: it must run on the runtime alone.
    code = ("import sys\nclass B:\n def find_spec(self, n, p=None, t=None):\n"
            "  if n.split('.')[0] in ('tensorflow','keras','tf_keras'): raise ImportError(n)\n"
            "sys.meta_path.insert(0, B())\nsys.argv[0] = 'device_app'\n"
            f"exec(open({str(ROOT / 'examples' / 'device_app.py')!r}).read())")
    app = subprocess.Popen([sys.executable, "-c", code, str(DIGITS_INT8), "--watch", str(watched), "--interval", "0.05"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []

    def next_event():
        line = app.stdout.readline()
        assert line, app.stderr.read()
        lines.append(json.loads(line))
        return lines[-1]

    assert next_event()["event"] == "started"
    assert next_event()["event"] == "watching"
    images, labels = digits
    Image.fromarray(images[list(labels).index(3)], "L").save(watched / "a_three.png")
    (watched / "b_broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (watched / "c_notes.txt").write_text("ignored")
    first, second = next_event(), next_event()
    assert first["event"] == "result" and first["classes"][0]["label"] == "3" and first["latency_ms"]["invoke"] > 0
    assert second["event"] == "error" and second["source"] == "b_broken.jpg"
    time.sleep(0.1)
    app.send_signal(signal.SIGTERM)
    assert app.wait(timeout=30) == 0
    stopped = next_event()
    assert (stopped["event"], stopped["classified"], stopped["errors"]) == ("stopped", 1, 1)
