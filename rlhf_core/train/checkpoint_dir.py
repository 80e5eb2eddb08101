"""Checkpoint folders that are whole or not used: the one scheme of the training engine's
``Engine.save_state`` (``loop.py``), which every trainer's checkpoints go through (online RL's too).

A checkpoint ``<name>`` is written into ``<name>.tmp``; ``publish`` flushes it to disk, writes the
``COMPLETE`` marker last and swaps it in, moving a previous ``<name>`` aside to ``<name>.old`` until
the swap is done. A kill at any point leaves at least one marked copy among the three names, and
``complete_copy`` finds it; an unmarked folder is never read.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMPLETE = "COMPLETE"
SUFFIXES = ("", ".tmp", ".old")  # the order complete_copy prefers: the published copy first


def staging(final: Path) -> Path:
    """The empty folder that the next ``final`` is written into."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def publish(tmp: Path, final: Path, step: int) -> None:
    """Mark ``tmp`` complete and put it in place of ``final``."""
    for path in tmp.rglob("*"):  # the marker must not reach the disk before the data it vouches for
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    (tmp / COMPLETE).write_text(str(step))
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def complete_copy(final: Path) -> Path | None:
    """The marked copy of checkpoint ``final`` (published, or left by a kill mid-swap), if any."""
    for suffix in SUFFIXES:
        path = final.with_name(final.name + suffix)
        if (path / COMPLETE).exists():
            return path
    return None


def base_name(path: Path) -> str:
    """``step-00000004`` for ``step-00000004``, ``step-00000004.tmp`` or ``step-00000004.old``."""
    return path.name.split(".")[0]
