"""Artifacts are content-addressed and atomic: a failed build leaves nothing behind."""
import pytest

from rlhf_core.store import ArtifactStore, hash_key


def write(text):
    def build(out, work):
        (out / "a.txt").write_text(text)
        return {"chars": len(text)}
    return build


def test_same_key_is_built_once_and_then_found(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.build("t", "asset", None, {"x": 1}, write("hello"))
    again = store.build("t", "asset", None, {"x": 1}, write("never written"))
    assert (first.cached, again.cached) == (False, True)
    assert again.path == first.path and again.content_hash == first.content_hash
    assert again.meta()["metadata"] == {"chars": 5}


def test_a_changed_key_builds_a_new_artifact(tmp_path):
    store = ArtifactStore(tmp_path)
    a = store.build("t", "asset", "p1", {"x": 1}, write("a"))
    b = store.build("t", "asset", "p1", {"x": 2}, write("b"))
    assert a.path != b.path and a.content_hash != b.content_hash


def test_a_crash_mid_build_leaves_no_artifact(tmp_path):
    store = ArtifactStore(tmp_path)

    def crash(out, work):
        (out / "half.bin").write_bytes(b"12")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.build("t", "asset", None, {"x": 1}, crash)
    leftovers = [p.name for p in (tmp_path / "t" / "asset").iterdir()]
    assert all(name.endswith(".work") for name in leftovers)  # only the resumable scratch dir
    assert not store.build("t", "asset", None, {"x": 1}, write("ok")).cached


def test_table_metadata_survives_a_reload(tmp_path):
    import pandas as pd

    def build(out, work):
        (out / "x").write_text("x")
        return {"preview": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})}

    ref = ArtifactStore(tmp_path).build("t", "asset", None, {}, build)
    assert ref.meta()["metadata"]["preview"].equals(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))


KILLED_BUILD = """
import sys, time
from pathlib import Path
from rlhf_core.store import ArtifactStore, hash_key

def build(out, work):
    (out / "half.bin").write_bytes(b"12")
    Path(sys.argv[2]).write_text("started")
    time.sleep(60)

ArtifactStore(sys.argv[1]).build("t", "asset", None, {"x": 1}, build)
"""


def test_temporary_directories_of_a_killed_run_are_removed(tmp_path):
    import os
    import subprocess
    import sys
    import time

    root, started = tmp_path / "store", tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(root), str(started)],
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    while not started.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup runs in the child
    proc.wait()
    asset = root / "t" / "asset"
    assert [p.name for p in asset.glob(".tmp-*")]  # what kill -9 leaves behind today
    live = asset / f".tmp-{hash_key({'x': 1})}-{os.getpid()}-abcd1234"  # a live builder's directory stays
    live.mkdir()
    assert not ArtifactStore(root).build("t", "asset", None, {"x": 1}, write("ok")).cached
    assert [p.name for p in asset.glob(".tmp-*")] == [live.name]


def test_a_table_in_metadata_keeps_its_column_order_across_meta_json(tmp_path):
    """meta.json sorts mapping keys; a leaderboard's columns (algorithm, the ranking column, ...) keep theirs."""
    import pandas as pd

    from rlhf_core.store import ArtifactStore

    rows = pd.DataFrame({"algorithm": ["dpo", "sft"], "gold": [0.5, 0.25], "completeness": [1.0, 0.0]})
    ref = ArtifactStore(tmp_path).build("t", "board", None, {"k": 1}, lambda out, work: {"table": rows})
    back = ref.meta()["metadata"]["table"]
    assert list(back.columns) == ["algorithm", "gold", "completeness"] and back.equals(rows)
