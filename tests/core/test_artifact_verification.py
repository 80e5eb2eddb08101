"""Artifacts are checked against the per-file sha256 in their meta.json before a stage reads them."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rlhf_core.config import ModelSource, TinyGPTConfig
from rlhf_core.errors import CorruptArtifactError
from rlhf_core.models.load import build_causal_lm, load_causal_lm, save_model, train_tokenizer
from rlhf_core.stages.base import TABLE, table
from rlhf_core.store import ArtifactStore, write_table
from rlhf_core.store_verify import sha256_file

ROWS = pd.DataFrame({"prompt": ["a b", "c d", "e f"], "completion": ["x", "y", "z"], "split": ["train"] * 3})


def table_artifact(store: ArtifactStore, asset: str = "sft_data"):
    return store.build("demo", asset, None, {"rows": 3}, lambda out, work: write_table(ROWS, out / TABLE) or {})


def model_artifact(store: ArtifactStore):
    tok = train_tokenizer(["a b c d e f x y z"] * 20, vocab_size=300, min_frequency=1)
    model = build_causal_lm(TinyGPTConfig(n_layer=1, n_head=2, n_embd=16, n_positions=32), tok, seed=0)
    return store.build("demo", "sft_model", None, {"m": 1}, lambda out, work: save_model(model, tok, out) or {})


def test_meta_records_a_sha256_per_file_and_where_it_came_from(tmp_path):
    ref = table_artifact(ArtifactStore(tmp_path))
    meta = json.loads((ref.dir / "meta.json").read_text())
    assert meta["files"] == {TABLE: sha256_file(ref.dir / TABLE)}
    assert meta["origin"] == {"task": "demo", "asset": "sft_data", "partition": None}
    assert table(ref).equals(ROWS)


def test_a_tampered_table_is_caught_before_use_naming_the_artifact(tmp_path):
    ref = table_artifact(ArtifactStore(tmp_path))
    table(ref)  # checked once and remembered for this file's mtime and size
    write_table(ROWS.assign(completion=["z", "y", "x"]), ref.dir / TABLE)  # same rows, other values
    with pytest.raises(CorruptArtifactError) as err:
        table(ref)
    assert str(ref.dir) in str(err.value) and TABLE in str(err.value)
    assert "rlhf run demo --rebuild sft_data" in str(err.value)


def test_a_truncated_model_file_is_caught_before_the_model_loads(tmp_path):
    ref = model_artifact(ArtifactStore(tmp_path))
    load_causal_lm(ModelSource(path=ref.path))
    weights = ref.dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptArtifactError, match="model.safetensors") as err:
        load_causal_lm(ModelSource(path=ref.path))
    assert str(ref.dir) in str(err.value) and "--rebuild sft_model" in str(err.value)


def test_a_deleted_file_is_caught(tmp_path):
    ref = table_artifact(ArtifactStore(tmp_path))
    (ref.dir / TABLE).unlink()
    with pytest.raises(CorruptArtifactError, match="is missing"):
        table(ref)


def test_rebuild_replaces_an_existing_artifact_and_starts_from_nothing(tmp_path):
    ref = table_artifact(ArtifactStore(tmp_path))
    (ref.dir / TABLE).write_bytes(b"garbage")
    assert ArtifactStore(tmp_path).previous("demo", "sft_data", None)
    store = ArtifactStore(tmp_path, rebuild={"sft_data"})
    assert store.previous("demo", "sft_data", None) == []  # nothing to reuse rows from
    again = table_artifact(store)
    assert not again.cached and again.path == ref.path and table(again).equals(ROWS)
    assert table_artifact(store).cached  # rebuilt once per process, not on every call


def test_the_stage_command_reports_a_corrupted_input_as_one_error_line(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    tok = model_artifact(store)  # a model artifact also holds its tokenizer
    data = table_artifact(store)
    (data.dir / TABLE).write_bytes((data.dir / TABLE).read_bytes()[:-10])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlhf_core.cli.stage",
            "sft_model",
            "--config",
            "configs/tasks/demo.yaml",
            "--out",
            str(tmp_path / "out"),
            "--input",
            f"tok={tok.path}",
            "--input",
            f"data={data.path}",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: artifact ") and TABLE in lines[0], out.stderr[-2000:]
