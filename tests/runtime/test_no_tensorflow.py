"""The device runtime must import and work where TensorFlow cannot be imported at all."""
import subprocess
import sys

from edgelite.runtime.version import __version__
from tests.conftest import DIGITS_INT8, ROOT

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
"""


def test_runtime_works_with_tensorflow_blocked(digit_png):
    code = BLOCK + f"""
import edgelite
import edgelite.runtime as rt
clf = edgelite.load({str(DIGITS_INT8)!r})
print(clf.classify({str(digit_png)!r}).top.label)
print(rt.profile({str(DIGITS_INT8)!r}, runs=3, warmup=0).results[0].backend)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    label, backend, leaked = out.stdout.strip().splitlines()
    assert label == "7" and backend != "tensorflow" and leaked == "[]"


def test_cli_works_with_tensorflow_blocked():
    code = BLOCK + "from edgelite.cli.commands import main\nmain()"
    out = subprocess.run([sys.executable, "-c", code, "inspect", str(DIGITS_INT8), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"edgelite_record"' in out.stdout


def test_convert_says_how_to_install_tensorflow(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"PK")
    code = BLOCK + "from edgelite.cli.commands import main\nmain()"
    out = subprocess.run([sys.executable, "-c", code, "convert", str(model), "-o", str(tmp_path / "o.tflite")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: converting needs TensorFlow (blocked for this test: tensorflow); install it: "
        f"pip install 'edgelite-{__version__}-py3-none-any.whl[convert]'"]
