"""The artifact store on object storage (a real S3-protocol server, through s3fs), and builders that
race for one artifact, on a local path and on S3: it is built once or committed once, never torn.

The tests that start processes against S3 are marked ``scale`` (``make scale-check``): each costs
seconds of imports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlhf_core.errors import CorruptArtifactError, MissingInputError
from rlhf_core.store import ArtifactStore
from rlhf_core.store_remote import COMMIT_FILE, UPLOADS, ObjectStore
from tests.s3_server import child_env


def write(text: str, calls: list | None = None):
    def build(out, work):
        if calls is not None:
            calls.append(text)
        (out / "a.txt").write_text(text)
        (out / "sub").mkdir()
        (out / "sub" / "b.bin").write_bytes(text.encode() * 3)
        return {"chars": len(text)}

    return build


def uploads(url: str, rel: str) -> list[str]:
    remote = ObjectStore(url)
    try:
        return sorted(p.rsplit("/", 1)[-1] for p in remote.fs.ls(f"{remote.base}/{rel}/{UPLOADS}", refresh=True))
    except FileNotFoundError:
        return []


def test_an_artifact_built_on_one_machine_is_reused_on_another(bucket, tmp_path, monkeypatch):
    first = ArtifactStore(bucket).build("t", "asset", "p", {"x": 1}, write("hello"))
    assert not first.cached and Path(first.path).is_relative_to(tmp_path / "cache")
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "other-machine"))
    calls = []
    again = ArtifactStore(bucket).build("t", "asset", "p", {"x": 1}, write("never written", calls))
    assert calls == [] and again.cached and again.content_hash == first.content_hash
    assert Path(again.path).is_relative_to(tmp_path / "other-machine")
    assert (again.checked_dir() / "sub" / "b.bin").read_bytes() == b"hello" * 3
    assert again.meta()["metadata"] == {"chars": 5}
    assert ArtifactStore(bucket).previous("t", "asset", "p") == [again]


def test_a_damaged_object_is_refused_on_download(bucket, tmp_path, monkeypatch):
    ref = ArtifactStore(bucket).build("t", "asset", None, {"x": 1}, write("hello"))
    remote, rel = ObjectStore(bucket), f"t/asset/{ref.key}"
    record = remote.record(rel)
    remote.fs.pipe_file(f"{remote.base}/{rel}/{UPLOADS}/{record['upload']}/a.txt", b"jello")
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "fresh"))
    with pytest.raises(CorruptArtifactError, match="a.txt does not match"):
        ArtifactStore(bucket).build("t", "asset", None, {"x": 1}, write("never written"))
    assert not (tmp_path / "fresh" / "t").exists() or not any((tmp_path / "fresh").rglob(COMMIT_FILE))


def test_a_rebuild_replaces_the_commit_and_stale_caches_follow(bucket, tmp_path, monkeypatch):
    old = ArtifactStore(bucket).build("t", "asset", None, {"x": 1}, write("old"))
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "other-machine"))
    new = ArtifactStore(bucket, rebuild={"asset"}).build("t", "asset", None, {"x": 1}, write("new"))
    assert new.content_hash != old.content_hash
    assert uploads(bucket, f"t/asset/{new.key}") == [ObjectStore(bucket).record(f"t/asset/{new.key}")["upload"]]
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "cache"))  # the first machine's cache still holds "old"
    assert (old.dir / "a.txt").read_text() == "old"
    found = ArtifactStore(bucket).build("t", "asset", None, {"x": 1}, write("never written"))
    assert found.content_hash == new.content_hash and (found.dir / "a.txt").read_text() == "new"


BUILDER = """
import json, os, sys, time
from pathlib import Path
from rlhf_core.store import ArtifactStore

root, flag, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def build(folder, work):
    flag.with_name(flag.name + f".{os.getpid()}").write_text("building")
    deadline = time.time() + float(os.environ.get("HOLD_S", "0"))
    while time.time() < deadline and not flag.exists():  # hold until the test says go (or give up waiting)
        time.sleep(0.02)
    for i in range(int(os.environ.get("FILES", "1"))):
        (folder / f"weights-{i:02d}.bin").write_bytes(os.urandom(int(os.environ.get("SIZE", "1000"))))
    return {"pid": os.getpid()}

ref = ArtifactStore(root).build("t", "model", None, {"x": 1}, build)
out.write_text(json.dumps({"hash": ref.content_hash, "cached": ref.cached, "path": ref.path}))
"""


def start_builder(root: str, tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILDER, root, str(tmp_path / "go"), str(out)],
        env=child_env(env),
        stderr=(tmp_path / f"{name}.err").open("w"),
    )
    return proc, out


def wait_for(predicate, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def race(root: str, tmp_path: Path, caches: tuple[str, str]) -> list[dict]:
    """Two builder processes of one artifact, both held until each is building it or waiting for the other
    (on one machine: the lock's message); returns what each got back."""
    procs = [
        start_builder(root, tmp_path, f"b{i}", {"RLHF_CACHE": cache, "HOLD_S": "60"}) for i, cache in enumerate(caches)
    ]
    if caches[0] == caches[1]:
        wait_for(
            lambda: (
                any(tmp_path.glob("go.*"))
                and any("another process is building it" in (tmp_path / f"b{i}.err").read_text() for i in range(2))
            )
        )
    else:
        wait_for(lambda: len(list(tmp_path.glob("go.*"))) == 2)
    (tmp_path / "go").write_text("go")
    for proc, _ in procs:
        assert proc.wait(timeout=120) == 0
    return [json.loads(out.read_text()) for _, out in procs]


@pytest.mark.parametrize("where", ["local", pytest.param("s3", marks=pytest.mark.scale)])
def test_two_processes_on_one_machine_build_an_artifact_once(where, bucket, tmp_path):
    root = str(tmp_path / "store") if where == "local" else bucket
    cache = str(tmp_path / "cache")
    results = race(root, tmp_path, (cache, cache))
    assert len(list(tmp_path.glob("go.*"))) == 1  # one build_fn ran; the other process waited on the lock
    assert sorted(r["cached"] for r in results) == [False, True]
    assert results[0]["hash"] == results[1]["hash"] and results[0]["path"] == results[1]["path"]
    ArtifactStore(root).build("t", "model", None, {"x": 1}, lambda *_: pytest.fail("rebuilt")).checked_dir()


@pytest.mark.scale
def test_two_machines_building_one_artifact_commit_exactly_one(bucket, tmp_path):
    results = race(bucket, tmp_path, (str(tmp_path / "machine-a"), str(tmp_path / "machine-b")))
    assert len(list(tmp_path.glob("go.*"))) == 2  # no shared lock: both built (random bytes each)
    assert sorted(r["cached"] for r in results) == [False, True]  # one published, the other adopted it
    assert results[0]["hash"] == results[1]["hash"]
    key = Path(results[0]["path"]).name
    record = ObjectStore(bucket).record(f"t/model/{key}")
    assert record["content_hash"] == results[0]["hash"]
    assert uploads(bucket, f"t/model/{key}") == [record["upload"]]  # the loser's upload is gone
    for r in results:
        assert json.loads((Path(r["path"]) / "meta.json").read_text())["content_hash"] == record["content_hash"]


@pytest.mark.scale
def test_a_kill_during_upload_leaves_nothing_trusted_and_a_rerun_publishes(bucket, tmp_path):
    proc, _ = start_builder(
        bucket, tmp_path, "killed", {"RLHF_CACHE": str(tmp_path / "killed"), "FILES": "40", "SIZE": str(1 << 20)}
    )
    remote = ObjectStore(bucket)

    def uploading() -> bool:
        return bool(remote.fs.glob(f"{remote.base}/t/model/*/{UPLOADS}/*/weights-00.bin", refresh=True))

    wait_for(uploading)  # the first of 40 files is up: the rest, and the commit record, are still to come
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (key,) = [p.rsplit("/", 1)[-1] for p in remote.fs.ls(f"{remote.base}/t/model", refresh=True)]
    assert remote.record(f"t/model/{key}") is None  # killed before its commit: nothing a reader trusts
    (orphan,) = uploads(bucket, f"t/model/{key}")
    calls = []
    ref = ArtifactStore(bucket).build("t", "model", None, {"x": 1}, write("rerun", calls))
    assert calls == ["rerun"] and not ref.cached and ref.key == key
    assert uploads(bucket, f"t/model/{key}") == [remote.record(f"t/model/{key}")["upload"]] != [orphan]
    assert (ref.checked_dir() / "a.txt").read_text() == "rerun"


def test_a_machine_with_an_empty_cache_reads_refs_and_inputs_from_the_store(bucket, tmp_path, monkeypatch):
    store = ArtifactStore(bucket)
    ref = store.build("t", "asset", None, {"x": 1}, write("hello"))
    store.write_record("_refs/t/asset/__all__.json", ref.__dict__)
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "cache"))  # same path, emptied: a fresh pod
    shutil.rmtree(tmp_path / "cache")
    pod = ArtifactStore(bucket)
    assert pod.read_record("_refs/t/asset/__all__.json")["path"] == ref.path
    pod.localize(ref.path)
    assert (ref.checked_dir() / "a.txt").read_text() == "hello"
    with pytest.raises(MissingInputError, match="not a committed artifact"):
        pod.localize(Path(ref.path).with_name("0000000000000000"))


def test_a_launch_config_written_on_one_machine_is_read_on_another_in_its_own_order(bucket, tmp_path, monkeypatch):
    config = {"task": "t", "sources": {"zeta": 1, "alpha": 2}}  # the order of sources is meaningful
    path = ArtifactStore(bucket).write_record("_launch/t/abc.json", config)
    shutil.rmtree(tmp_path / "cache")  # a pod: the same cache path, empty
    ArtifactStore(bucket).localize_record(path)
    assert list(json.loads(path.read_text())["sources"]) == ["zeta", "alpha"]
    with pytest.raises(MissingInputError, match="nor in s3://"):
        ArtifactStore(bucket).localize_record(path.with_name("missing.json"))
