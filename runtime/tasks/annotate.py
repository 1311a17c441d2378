"""What a task found, drawn on its image (pillow): boxes, labels and keypoints for detections, the top classes
for a classifier. Pure: an image in, a new image out; the picture files, videos and the live page use it."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

COLORS = ("#ff3b30", "#34c759", "#007aff", "#ffcc00", "#af52de", "#ff9500")


def annotate(image, result, caption: str | None = None) -> Image.Image:
    """``image`` (a pillow image or RGB uint8 array, the one the result's coordinates refer to) with ``result``
    drawn on a copy, and ``caption`` (e.g. the live figures) in the top-left corner."""
    picture = (Image.fromarray(image) if isinstance(image, np.ndarray) else image).convert("RGB").copy()
    canvas = ImageDraw.Draw(picture)
    width = max(2, round(min(picture.size) / 200))
    for d in result.detections:
        color = COLORS[d.label_id % len(COLORS)]
        canvas.rectangle(d.box, outline=color, width=width)
        label = d.label if d.label is not None else str(d.label_id)
        canvas.text((d.box[0] + width, max(0, d.box[1] - 12)), f"{label} {d.score:.2f}", fill=color)
        for x, y in d.keypoints:
            r = width + 1
            canvas.ellipse((x - r, y - r, x + r, y + r), fill=color)
    lines = [f"{c.label if c.label is not None else c.id} {c.score:.2f}" for c in result.classes[:3]]
    if caption:
        lines.insert(0, caption)
    for i, line in enumerate(lines):
        canvas.text((6, 6 + 14 * i), line, fill="#ffffff", stroke_width=2, stroke_fill="#000000")
    return picture
