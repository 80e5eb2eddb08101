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

    from rlhf_core.store import building_in, remove_abandoned, work_dir

    root, started = tmp_path / "store", tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(root), str(started)], env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    while not started.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup runs in the child
    proc.wait()
    asset = root / "t" / "asset"
    assert [p.name for p in asset.glob(".tmp-*")]  # what kill -9 leaves behind
    other = hash_key({"x": 2})
    live = asset / f".tmp-{other}-{os.getpid()}-abcd1234"  # a live build of another key: its directory stays
    live.mkdir()
    with building_in(work_dir(asset / other, rebuild=False)):
        assert not ArtifactStore(root).build("t", "asset", None, {"x": 1}, write("ok")).cached
        assert [p.name for p in asset.glob(".tmp-*")] == [live.name]
    remove_abandoned(asset)  # once its builder is gone
    assert not list(asset.glob(".tmp-*"))


def checkpointing(seen: list):
    """A build that notes what its scratch folder held when it started, then leaves a checkpoint there."""

    def build(out, work):
        seen.append(sorted(p.name for p in work.iterdir() if not p.name.startswith(".")))
        (work / "step-1").write_text("checkpoint")
        (out / "a.txt").write_text("a")
        return {}

    return build


def crashing(out, work):
    (work / "step-1").write_text("checkpoint")
    raise KeyboardInterrupt


def test_a_rebuild_resumes_its_own_checkpoints_only(tmp_path, monkeypatch):
    """An interrupted plain build's checkpoints are not a rebuild's; an interrupted rebuild, run
    again, finds its own; a rebuild after a completed one (in a new process) starts from nothing."""
    import rlhf_core.store as store_module

    first = ArtifactStore(tmp_path).build("t", "asset", None, {"x": 1}, write("a"))
    (tmp_path / "t" / "asset" / f"{first.key}.work").mkdir()  # as a killed plain build of the key would leave it
    rebuild = ArtifactStore(tmp_path, rebuild=["asset"])
    with pytest.raises(KeyboardInterrupt):
        rebuild.build("t", "asset", None, {"x": 1}, crashing)
    seen = []
    rebuild.build("t", "asset", None, {"x": 1}, checkpointing(seen))  # the same command again
    assert seen == [["step-1"]]
    assert not list((tmp_path / "t" / "asset").glob("*.work"))  # its own and the plain build's: both done with
    monkeypatch.setattr(store_module, "_rebuilt", set())  # a new process
    ArtifactStore(tmp_path, rebuild=["asset"]).build("t", "asset", None, {"x": 1}, checkpointing(seen))
    assert seen[-1] == []


def test_a_scratch_folder_is_swept_only_when_no_build_will_resume_it_and_no_builder_holds_it(tmp_path):
    from rlhf_core.store import building_in, remove_abandoned, work_dir

    store = ArtifactStore(tmp_path)
    done = store.build("t", "asset", None, {"x": 1}, write("a"))
    folder = tmp_path / "t" / "asset"
    killed = work_dir(folder / hash_key({"x": 2}), rebuild=False)  # a killed build: the same command resumes it
    finished = work_dir(folder / done.key, rebuild=False)  # its artifact is complete: nothing resumes it
    replaced = folder / f"{done.key}.rebuild-0badc0de.work"  # a rebuild of an artifact since replaced
    for work in (killed, finished, replaced):
        work.mkdir()
    with building_in(finished):  # a live builder (a concurrent run of the same key) holds it
        remove_abandoned(folder)
        assert finished.exists() and killed.exists() and not replaced.exists()
    remove_abandoned(folder)
    assert not finished.exists() and killed.exists()


def test_a_table_in_metadata_keeps_its_column_order_across_meta_json(tmp_path):
    """meta.json sorts mapping keys; a leaderboard's columns (algorithm, the ranking column, ...) keep theirs."""
    import pandas as pd

    from rlhf_core.store import ArtifactStore

    rows = pd.DataFrame({"algorithm": ["dpo", "sft"], "gold": [0.5, 0.25], "completeness": [1.0, 0.0]})
    ref = ArtifactStore(tmp_path).build("t", "board", None, {"k": 1}, lambda out, work: {"table": rows})
    back = ref.meta()["metadata"]["table"]
    assert list(back.columns) == ["algorithm", "gold", "completeness"] and back.equals(rows)
