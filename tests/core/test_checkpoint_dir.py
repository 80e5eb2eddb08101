"""Checkpoint folders are whole or not used, whatever moment a run is killed at."""

from __future__ import annotations

import os

from rlhf_core.train.checkpoint_dir import COMPLETE, complete_copy, publish, staging


def _write(final, step):
    tmp = staging(final)
    (tmp / "weights").write_text(f"step {step}")
    return tmp


def test_publish_replaces_the_previous_copy(tmp_path):
    final = tmp_path / "checkpoint"
    publish(_write(final, 1), final, 1)
    publish(_write(final, 2), final, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert (final / "weights").read_text() == "step 2" and (final / COMPLETE).read_text() == "2"


def test_a_kill_at_each_point_leaves_one_complete_copy(tmp_path):
    final = tmp_path / "checkpoint"
    publish(_write(final, 1), final, 1)
    tmp = _write(final, 2)  # killed while writing: the unmarked step 2 is not used
    assert complete_copy(final) == final and (complete_copy(final) / "weights").read_text() == "step 1"
    (tmp / COMPLETE).write_text("2")
    os.rename(final, final.with_name("checkpoint.old"))  # killed between the two renames
    assert complete_copy(final) == tmp and (tmp / "weights").read_text() == "step 2"
    (tmp / COMPLETE).unlink()  # ... had the marker not been written yet, the old copy is found
    assert (complete_copy(final) / "weights").read_text() == "step 1"


def test_nothing_marked_means_no_checkpoint(tmp_path):
    _write(tmp_path / "checkpoint", 1)
    assert complete_copy(tmp_path / "checkpoint") is None
