"""Pictures of what a detector found: the image with its boxes, labels and keypoints drawn (pillow)."""
from __future__ import annotations

import io
import os
import pathlib

from edgelite.converters.output.writing import atomic_write
from edgelite.runtime.tasks.annotate import annotate
from edgelite.runtime.tasks.preprocess import as_image


def picture_names(sources) -> dict[str, str]:
    """Each image's picture name: its file name's stem, with -2, -3... for a stem seen before in the run
    (a/photo.jpg and b/photo.jpg must not overwrite each other's picture)."""
    names: dict[str, str] = {}
    for source in map(os.fspath, sources):
        stem = pathlib.Path(source).stem
        name, n = stem, 2
        while source not in names and name in names.values():
            name, n = f"{stem}-{n}", n + 1
        names.setdefault(source, name)
    return names


def draw_detections(source, result, folder, name: str | None = None) -> pathlib.Path:
    """Writes ``folder/<name>.png`` (default: the image's stem) with every detection drawn; returns its path.
    Written atomically and never through a symlink or over anything but a regular file (the folder is the
    user's)."""
    image = annotate(as_image(source), result)
    out = pathlib.Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    image.save(png, "PNG")
    return atomic_write(out / ((name or pathlib.Path(os.fspath(source)).stem) + ".png"), png.getvalue())
