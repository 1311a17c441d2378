"""Every code block in the README and the documentation runs as written, or says why it cannot run here.

Each fenced block of ``README.md`` and ``docs/*.md`` is one test. A block runs unless the line before it is a
mark, ``<!-- example: KIND: why -->``, with KIND one of ``MARKS`` below:

- ``bash`` blocks are ``edgelite`` commands, run through the CLI (in this process, so TensorFlow is imported
  once) in a folder holding what the docs' names mean (``WORKSPACE``: real digit scans, real photos, MediaPipe's
  face detector, the example models, a short video); each must exit 0, and ``> FILE`` must leave output there.
- ``python`` blocks are executed there, as a user would paste them.
- ``toml`` blocks are devices files, read by :func:`edgelite.scale.fleet.read_devices`.
- ``output`` blocks are compared with what the command their mark names (`` `edgelite doctor` ``), or else the
  block before them, printed here: each documented line must be a printed line (numbers as wildcards,
  spacing collapsed; a line ending in "..." its beginning); an abridged block may leave lines out, not
  change them.

A camera this machine lacks has a stand-in (``STAND_INS``: the test video plays it), and port 8080 becomes a
free one. Blocks that need TensorFlow (a Keras model) run where it is installed (the workstation suite); every other
block runs in the two device suites (in the workstation suite it would run on the same backend as in the LiteRT-only
suite). Blocks that cannot run here at all are listed with their marks at the end of the run
(``pytest_terminal_summary`` in conftest).
"""
from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import socket

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, HAS_TENSORFLOW, ROOT, real_photo_paths
from tests.skips import elsewhere

MARKS = {
    "hardware": "needs hardware this machine lacks",
    "network": "needs the network or a service outside this machine",
    "ci": "the project's own setup and test commands: CI runs them (.ci/run), setup first",
    "benchmark": "a benchmark, minutes long: run by hand, its figures kept in docs/benchmarks/",
    "tested": "run by the named test on the real model it needs",
    "slow": "minutes long: runs with -m slow",
    "output": "what the block before it prints: its shape is checked against that block's real output",
}
BLOCK = re.compile(r"(?:^[ ]*<!-- example: (?P<kind>[\w-]+)(?:: (?P<why>[^>]*?))? -->\n)?^(?P<indent>[ ]*)```(?P<lang>\w*)\n"
                   r"(?P<body>.*?)^(?P=indent)```$", re.S | re.M)  # a fence may be indented (inside a tab)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclasses.dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    body: str
    kind: str | None
    why: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def needs_tensorflow(self) -> bool:
        """A Keras model is converted (an output block goes with the block it shows the output of)."""
        if self.kind == "output" and not re.search(r"`edgelite [^`]*`", self.why or ""):
            return self.previous.needs_tensorflow
        return ".keras" in self.body + (self.why or "")  # the block, or the command an output mark names

    @property
    def previous(self) -> Block:
        return [b for b in BLOCKS if b.page == self.page and b.line < self.line][-1]


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("lang")) + 1
            body = "".join(line_[len(m["indent"]):] for line_ in m["body"].splitlines(keepends=True))
            found.append(Block(str(page.relative_to(ROOT)), line, m["lang"], body, m["kind"], m["why"]))
    return found


BLOCKS = blocks()
NOT_RUN = [b for b in BLOCKS if b.kind in MARKS and b.kind not in ("output", "slow")]
printed: dict[str, str] = {}  # block id -> what it printed here, for the output block after it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STAND_INS = {"/dev/video0": "street.mp4"}  # no camera here: the test video plays it (docs/live-video.md: a file)


def test_every_block_is_found_and_every_mark_is_known():
    assert len(BLOCKS) >= 40, "the pattern no longer finds the docs' code blocks"
    fences = sum(len(re.findall(r"^[ ]*```", p.read_text(), flags=re.M)) for p in PAGES)
    assert 2 * len(BLOCKS) == fences, "a fence the pattern did not pair (a block with no closing fence?)"
    for b in BLOCKS:
        if b.kind is not None:
            assert b.kind in MARKS, f"{b.id}: unknown mark '{b.kind}' (one of {sorted(MARKS)})"
            assert b.why, f"{b.id}: a mark says why the block does not run here"
        if b.kind == "tested":
            assert (ROOT / b.why.split()[0].split("::")[0]).is_file(), f"{b.id}: no test file {b.why}"
        if b.kind is None:
            assert b.lang in ("bash", "python", "toml"), f"{b.id}: a '{b.lang or 'plain'}' block needs a mark"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, digits):
    """The names the docs use, made real: digits for 'images/', photos for 'photo.jpg', the face detector..."""
    from PIL import Image
    here = tmp_path_factory.mktemp("docs")
    images, labels = digits
    for name, count in (("images", 60), ("photos", 12), ("train", 800), ("val", 120), ("archive", 20)):
        for i in range(count):
            scan = (i * 7 + len(name)) % len(images)
            folder = here / name / (str(labels[scan]) if name in ("train", "val") else "")  # the scan's own class
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[scan], "L").save(folder / f"{i:03d}.png")
    (here / "labels.txt").write_text("".join(f"{d}\n" for d in range(10)))
    photos = real_photo_paths()
    for name, source in (("photo.jpg", photos[0]), ("cat.jpg", photos[2]), ("a.jpg", photos[1]),
                         ("b.jpg", photos[3])):
        Image.open(source).convert("RGB").save(here / name)
    for j, source in enumerate(photos[:4]):
        Image.open(source).convert("RGB").save(here / "photos" / f"photo{j}.jpg")
    shutil.copy(next(p for p in photos if p.name == "astronaut.png"), here / "astronaut.png")
    for name, model in (("model.tflite", DIGITS_INT8), ("model_int8.tflite", DIGITS_INT8), ("a.tflite", DIGITS_INT8),
                        ("b.tflite", DIGITS_FLOAT), ("embedder.tflite", DIGITS_FLOAT), ("new.tflite", DIGITS_INT8),
                        ("field.tflite", DIGITS_FLOAT)):
        shutil.copy(model, here / name)
    (here / "examples").symlink_to(ROOT / "examples")
    decoder = ROOT / "examples" / "decoders" / "face_detection_short_range.json"
    for name in ("face.json", "face_decoder.json"):
        shutil.copy(decoder, here / name)
    face = face_model_path()
    if face is not None:
        for name in ("face_detection_short_range.tflite", "face.tflite"):
            shutil.copy(face, here / name)
    street_video(here / "street.mp4")
    if not HAS_TENSORFLOW:  # the Quickstart's device steps: its example folders, and a digits model for its own
        from edgelite.examples.digits import write_folders
        write_folders(here / "work")
        shutil.copy(DIGITS_INT8, here / "work" / "digits_int8.tflite")
    if HAS_TENSORFLOW:
        from tests.converters.conftest import train_digits
        # trained far enough to be a model worth converting: the documented output is a conversion that holds
        train_digits((here / "train", None), epochs=15).save(here / "model.keras")
    cwd = os.getcwd()
    os.chdir(here)
    yield here
    os.chdir(cwd)


def face_model_path() -> pathlib.Path | None:
    import subprocess

    from tests.runtime.test_detection import mediapipe_python
    python = mediapipe_python()
    if not python:
        return None
    where = subprocess.run([python, "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
                           capture_output=True, text=True, timeout=120)
    path = pathlib.Path(where.stdout.strip()) / "modules" / "face_detection" / "face_detection_short_range.tflite"
    return path if where.returncode == 0 and path.is_file() else None


def street_video(path: pathlib.Path) -> None:
    """Two seconds of the astronaut photo drifting at 640x480, 15 frames/s (PyAV, the video extra)."""
    av = pytest.importorskip("av", reason="the docs' video examples need PyAV (the video extra)")
    import skimage.data
    from PIL import Image
    photo = Image.fromarray(skimage.data.astronaut())
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=15)
        video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
        for i in range(30):
            canvas = Image.new("RGB", (640, 480), (30, 30, 40))
            canvas.paste(photo.resize((320, 320)), (40 + 6 * i, 60))
            for packet in video.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)


def commands(body: str) -> list[list[str]]:
    """The block's commands, each as the shell would split it (continuations joined, comments dropped)."""
    out = []
    for line in body.replace("\\\n", " ").splitlines():
        for old, new in STAND_INS.items():
            line = line.replace(old, new)
        words = shlex.split(line, comments=True)
        if words:
            out.append(words)
    return out


def run_command(words: list[str], block: Block) -> str:
    from edgelite.cli.commands import main
    program, *args = words
    assert pathlib.Path(program).name == "edgelite", (
        f"{block.id}: '{program}' is not an edgelite command; mark the block (one of {sorted(MARKS)})")
    target = None
    if ">" in args:
        at = args.index(">")
        args, target = args[:at], args[at + 1]
    args = [match for a in args for match in (sorted(glob.glob(a)) if "*" in a else [a])]
    args = [a.replace("127.0.0.1:8080", f"127.0.0.1:{free_port()}") for a in args]
    if "--ray" in args:  # a Ray session of its own, as a user's command has: not this process's (the tests' cluster)
        import subprocess
        import sys
        done = subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", *args],
                              capture_output=True, text=True, timeout=300)
        code, stdout, output = done.returncode, done.stdout, done.stdout + done.stderr
    else:
        result = CliRunner().invoke(main, args)
        code, stdout, output = result.exit_code, result.stdout, result.output
    assert code == 0, f"{block.id}: edgelite {shlex.join(args)} exited {code}:\n{output}"
    if target:
        pathlib.Path(target).write_text(stdout)
        assert pathlib.Path(target).stat().st_size > 0, f"{block.id}: nothing went to {target}"
    return output


def shape(line: str) -> str:
    """A line with its numbers as wildcards and its spacing collapsed: what the docs promise about a printed line."""
    line = re.sub(r"(?<![\w.])-?\d+(\.\d+)?|\d+(\.\d+)?|…", "#", line.strip())  # a sign belongs to its number;
    # the docs write a measured number as … (scripts/docs_hooks.py refuses it typed)
    return re.sub(r"\s+", " ", line)


def printed_as(line: str, shown: set[str]) -> bool:
    """Whether a documented line is one of the printed ones: the same shape, or for a line the docs cut short
    with "..." at its end, the same beginning."""
    documented = shape(line)
    if documented.endswith("..."):
        return any(s.startswith(documented[:-3].rstrip(" ,")) for s in shown)
    return documented in shown


def check_output(block: Block, before: str) -> None:
    shown = {shape(line) for line in before.splitlines() if line.strip()}
    missing = [line for line in block.body.splitlines() if line.strip() and not printed_as(line, shown)]
    assert not missing, (f"{block.id}: documented output lines that nothing printed here matches: {missing}\n"
                         f"printed:\n{before}")


# Each block runs where its path lives: a Keras model's in the workstation suite (TensorFlow), every other block in the
# two device suites (the workstation suite would run those on the same backend as the LiteRT-only suite).
RUN_HERE = [b for b in BLOCKS if b.kind in (None, "output", "slow") and b.needs_tensorflow == HAS_TENSORFLOW]


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.kind == "slow" else [])
                                   for b in RUN_HERE])
def test_the_block_runs_as_documented(block, workspace, capsys):
    if ("face" in block.body) and not (workspace / "face.tflite").exists():
        pytest.skip("needs MediaPipe's face detector (the metadata environment scripts/setup.sh builds)")
    if block.kind == "output" and "ai_edge_litert" in block.body and importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip(elsewhere("litert", "documents what a machine with ai-edge-litert prints"))
    if block.kind == "output":
        named = re.search(r"`(edgelite [^`]*)`", block.why or "")
        if named:  # the output of the command the mark names
            check_output(block, run_command(shlex.split(named.group(1)), block))
            return
        assert block.previous.id in printed, f"{block.previous.id} did not run before the output it shows"
        check_output(block, printed[block.previous.id])
        return
    if block.lang == "bash":
        printed[block.id] = "".join(run_command(words, block) for words in commands(block.body))
    elif block.lang == "python":
        code = block.body
        for old, new in STAND_INS.items():
            code = code.replace(old, new)
        exec(compile(code, block.id, "exec"), {"__name__": "__docs__"})  # noqa: S102 - the docs' own example
        printed[block.id] = capsys.readouterr().out
    elif block.lang == "toml":
        from edgelite.scale.fleet import read_devices
        name = block.body.splitlines()[0].lstrip("# ").strip()
        (workspace / name).write_text(block.body)
        devices = read_devices(workspace / name)
        assert len(devices) == block.body.count("[[device]]")
