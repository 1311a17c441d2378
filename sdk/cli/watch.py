"""The ``stream`` command's loop: each result to a JSON line, an annotated video and the live page, a status line
on a terminal, and the summary at the end (also after Ctrl-C, which ends the run cleanly)."""
from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass

import click

from edgelite.cli.limits import VIEWERS
from edgelite.runtime.tasks.annotate import annotate
from edgelite.runtime.video.stream import FrameResult, Stream, StreamSummary


@dataclass(frozen=True)
class Outputs:
    """Where results go besides the summary."""

    jsonl: bool = False
    draw: str | None = None        # an annotated video file
    serve: str | None = None       # HOST:PORT of the live page
    token: str | None = None
    viewers: int = VIEWERS         # video viewers the page serves at once


FIGURES_EVERY = 0.5  # seconds: the live figures are recomputed this often, not per frame


class LiveFigures:
    """The summary so far, as the live page, the annotated video and the status line show it. A summary sorts
    every latency of the run, so it is recomputed every FIGURES_EVERY seconds, not for every frame (a ten-minute
    run would otherwise sort a growing list 18,000 times)."""

    def __init__(self, stream: Stream):
        self.stream, self.at = stream, -FIGURES_EVERY
        self.figures: dict = {}
        self.newest: FrameResult | None = None

    def saw(self, result: FrameResult) -> None:
        """Keeps the newest result; what it showed (``headline``) is worked out only when the figures are."""
        self.newest = result

    def current(self) -> tuple[dict, bool]:
        """(the figures, whether they were just recomputed)."""
        if time.monotonic() - self.at < FIGURES_EVERY:
            return self.figures, False
        data = self.stream.summary().to_dict()
        self.figures = {k: data[k] for k in ("source", "mode", "frames_read", "processed", "dropped", "skipped",
                                             "fps", "latency_ms", "stages_ms")}
        self.figures.update(state=self.stream.state, recent=self.stream.recent(),
                            current=headline(self.newest.result) if self.newest is not None else {})
        self.at = time.monotonic()
        return self.figures, True


def headline(result) -> dict:
    """What one frame showed, in a few words: a detector's labels and how many of each, a classifier's best class
    and its score; nothing for an embedding or raw outputs."""
    if result.task == "detect":
        return dict(Counter(d.label if d.label is not None else f"class {d.label_id}" for d in result.detections))
    if result.task == "classify" and result.top is not None:
        return {result.top.label if result.top.label is not None else f"class {result.top.id}":
                round(result.top.score, 3)}
    return {}


def status_line(figures: dict) -> str:
    latency = figures["latency_ms"]
    return (f"{figures['fps']:.1f} fps, latency p50 {latency['p50']} ms p95 {latency['p95']} ms, "
            f"{figures['processed']} processed, {figures['dropped']} dropped")


def summary_text(s: StreamSummary) -> str:
    lat = s.latency_ms
    stages = ", ".join(f"{k} {v:.2f}" for k, v in s.stages_ms.items())
    return (f"{s.source} ({s.mode}): {s.frames_read} frames read, {s.processed} processed, {s.dropped} dropped, "
            f"{s.skipped} skipped; {s.fps:.1f} fps over {s.seconds:.1f} s; latency p50 {lat['p50']} ms, p95 "
            f"{lat['p95']} ms, p99 {lat['p99']} ms; stages (median ms): {stages}; ended: {s.ended}"
            + (f"; reconnected {s.reconnects} times, {s.gap_s:.1f} s without frames"
               + (f" (~{s.frames_missed} frames missed)" if s.frames_missed else "") if s.reconnects else "")
            + (f"; callback errors {s.callback_errors} (first: {s.first_callback_error})" if s.callback_errors else ""))


def check_outputs(outputs: Outputs) -> None:
    """Refuses, before the model loads, what cannot be served or written: --serve's address and token and
    --draw's file type (click.UsageError, exit 2), --draw's folder (ConversionError, exit 1)."""
    from edgelite.cli import live_page, video_out
    from edgelite.converters.output.writing import check_writable
    try:
        if outputs.serve:
            live_page.parse_address(outputs.serve, outputs.token)
        if outputs.draw:
            video_out.container_for(outputs.draw)
    except (live_page.UsageError, video_out.UsageError) as exc:
        raise click.UsageError(str(exc)) from None
    if outputs.draw:
        check_writable(outputs.draw)


def watch(stream: Stream, outputs: Outputs) -> StreamSummary:
    """Runs the stream to its end (or Ctrl-C), sending every result where ``outputs`` say."""
    from edgelite.cli.live_page import LivePage
    page = LivePage(outputs.serve, outputs.token, stream.source.name, outputs.viewers) if outputs.serve else None
    video = None
    if outputs.draw:
        from edgelite.cli.video_out import AnnotatedVideo
        video = AnnotatedVideo(outputs.draw)
    if page is not None:
        click.echo(f"live page: {page.address}" + (" (open it with ?token=YOUR_TOKEN)" if outputs.token else ""),
                   err=True)
    terminal, figures = sys.stderr.isatty() and not outputs.jsonl, LiveFigures(stream)
    previous = signal.signal(signal.SIGTERM, lambda *_: stream.stop())  # systemd's stop: the same clean end
    finished = False  # a failure of our own (not the source's) throws the unfinished video away
    try:
        for result in stream:
            _emit(result, figures, outputs, video, page)
            now, fresh = figures.current()
            if terminal and fresh:
                click.echo("\r" + status_line(now), err=True, nl=False)
        finished = True
    except KeyboardInterrupt:
        stream.stop()
        finished = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        stream.close()
        if terminal:
            click.echo("", err=True)
        if video is not None:
            video.close(keep=finished)
        if page is not None:
            page.close()
    return stream.summary()


def _emit(result: FrameResult, figures: LiveFigures, outputs: Outputs, video, page) -> None:
    figures.saw(result)
    if outputs.jsonl:
        click.echo(json.dumps(result.to_dict()))
    if video is None and page is None:
        return
    now, _ = figures.current()
    picture = annotate(result.image, result.result, status_line(now))
    if video is not None:
        video.write(picture, result.time_ms)
    if page is not None:
        page.publish(picture, now)
