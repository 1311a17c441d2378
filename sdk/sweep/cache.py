"""Built variants kept between sweeps: a variant is rebuilt only when the model, its options or the contents of
a data folder they name changed. Shared by the local build (run.py) and the Ray build (on_ray.py)."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib

PATH_OPTIONS = ("calibration", "eval_data", "train_data", "labels", "decoder")


def _digest(value) -> str | None:
    """The sha256 of a file's or a folder's contents, None for a value that is not an existing path."""
    from edgelite.converters.user_model import sha256_of
    if isinstance(value, (str, os.PathLike)) and os.path.exists(value):
        return sha256_of(os.fspath(value))
    return None


def variant_key(model, options: dict) -> str:
    """What a built variant depends on: the model's sha256, the options, and the contents of every data folder
    or file the options name (a folder whose images changed is a different variant)."""
    data = {k: _digest(options[k]) for k in PATH_OPTIONS if options.get(k) is not None}
    given = {k: v for k, v in options.items() if v is not None}  # an option left at None is its default
    return hashlib.sha256(json.dumps({"source": _digest(model), "options": given, "data": data}, sort_keys=True,
                                     default=str).encode()).hexdigest()


def cached(folder: pathlib.Path, name: str, model, options: dict) -> tuple[str, dict | None]:
    """The variant's key, and its result when a run before built it from the same key (else None). A record that
    cannot be read as one (cut short, edited, not JSON) is no record: the variant is built again and recorded anew."""
    key = variant_key(model, options)
    out, meta = folder / f"{name}.tflite", folder / f"{name}.json"
    if out.is_file() and meta.is_file():
        try:
            saved = json.loads(meta.read_text())
        except (OSError, ValueError):
            return key, None
        if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("result"), dict):
            return key, saved["result"]
    return key, None


def keep(folder: pathlib.Path, name: str, key: str, result: dict) -> None:
    """Records a built variant (its .tflite is already in the folder) so a rerun reuses it."""
    from edgelite.converters.output.writing import atomic_write
    atomic_write(folder / f"{name}.json", json.dumps({"key": key, "result": result}, default=str).encode())
