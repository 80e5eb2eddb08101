"""Progress of long work: a tqdm bar on a terminal, plain periodic lines in a log file.

    for step in progress_bar(range(steps), desc="sft", total=steps):
        ...

A stage sets its label (``with labelled("sft_model")``, done by ``Context.build``) and every bar inside
names it first: ``sft_model train``, ``policy [dpo]``, ``generations [nll] generate``.
Work that ends within ``SHOW_AFTER_S`` shows nothing. When stderr is not a terminal (a log file,
a CI job) a redrawn bar would fill the file with carriage returns, so the state is written as one
ordinary line every ``LINE_EVERY_S`` seconds instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tqdm import tqdm

SHOW_AFTER_S = 5.0
LINE_EVERY_S = 30.0
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) {elapsed}<{remaining}{postfix}"


class _Lines:
    """A stream for tqdm that turns each redraw into one whole line."""

    def __init__(self, stream: Any):
        self.stream, self.last = stream, ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text and text != self.last:  # closing redraws the final state once more
            self.stream.write(text + "\n")
            self.last = text

    def flush(self) -> None:
        self.stream.flush()


_label: ContextVar[str | None] = ContextVar("progress_label", default=None)


@contextmanager
def labelled(label: str) -> Iterator[None]:
    """Bars made inside the block say which stage they belong to (an asset and its partition)."""
    token = _label.set(label)
    try:
        yield
    finally:
        _label.reset(token)


def _described(desc: str) -> str:
    label = _label.get()
    if label is None:
        return desc
    return label if desc in label else f"{label} {desc}"  # policy [dpo], not policy [dpo] dpo


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str,
    total: int | None = None,
    initial: int = 0,
    unit: str = "it",
    disable: bool = False,
    at_once: bool = False,
) -> tqdm:
    """A bar (terminal) or periodic lines (log file); ``at_once``: show it from the start, however short."""
    stream = sys.stderr
    # On a log file a redrawn bar would be carriage returns: one plain line every LINE_EVERY_S instead,
    # with the time checked on every update (tqdm's monitor thread would repeat a line with a stale count).
    terminal = stream.isatty()
    shown_after = SHOW_AFTER_S if terminal else LINE_EVERY_S
    return tqdm(
        iterable,
        desc=_described(desc),
        total=total,
        initial=initial,
        unit=unit,
        disable=disable,
        file=stream if terminal else _Lines(stream),
        mininterval=1.0 if terminal else LINE_EVERY_S,
        delay=0.0 if at_once else shown_after,
        **({} if terminal else {"miniters": 1, "bar_format": LINE_FORMAT}),
    )
