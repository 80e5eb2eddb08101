"""The launcher resource: a heavy stage through Dagster Pipes on 2 real processes, and the k8s pod spec.

The subprocess test materializes the demo's ``sft_model`` (micro config) with
``launcher: {kind: subprocess, processes: 2, cpu: true}``: ``torchrun`` starts 2 CPU processes of
``python -m rlhf_core.cli.stage sft_model`` that train over gloo; rank 0 writes the artifact and
reports it through Pipes. Materialized again, it is found in the store and nothing is launched.
"""

import dataclasses
import shutil

import dagster as dg
import pytest
import torch

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from resources.launcher import launch_command, pod_spec, stored
from rlhf_core.config import ConfigError, ModelSource, load_config, task_config_path
from rlhf_core.errors import CorruptArtifactError
from rlhf_core.models.load import load_causal_lm
from rlhf_core.stages import models
from rlhf_core.store import ArtifactStore, hash_dir
from tests.dagster.test_pipeline import MICRO

TWO_CPU_PROCESSES = ["launcher.kind=subprocess", "launcher.processes=2", "launcher.cpu=true"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    root = tmp_path_factory.mktemp("launcher")
    mp = pytest.MonkeyPatch()
    (root / "dagster_home").mkdir()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    mp.delenv("RLHF_LAUNCHER", raising=False)
    task = load_config(task_config_path("demo"), MICRO + TWO_CPU_PROCESSES)
    resources = build_resources(str(root / "artifacts"))
    key = dg.AssetKey(["demo", "sft_model"])
    result = dg.materialize(
        build_task_definitions(task).assets,
        selection=dg.AssetSelection.assets(key).upstream(),
        resources=resources,
        instance=dg.DagsterInstance.get(),
    )
    yield task, resources, result
    mp.undo()


def test_a_stage_on_two_processes_reports_through_pipes(launched):
    task, resources, result = launched
    assert result.success
    (mat,) = result.asset_materializations_for_node("demo__sft_model")
    meta = {k: v.value for k, v in mat.metadata.items()}
    # Reported by rank 0 of the torchrun launch through Pipes: no in-process run has these.
    assert meta["processes"] == 2 and meta["launcher"] == "subprocess" and meta["cached"] is False
    logs = [e.user_message for e in dg.DagsterInstance.get().all_logs(result.run_id)]
    assert any("sft_model: started on 2 process(es)" in m for m in logs), logs[-20:]
    # The asset's ref is the artifact's: its content hash is the one in meta.json, recomputed here.
    ref = result.output_for_node("demo__sft_model")
    assert ref.path == meta["artifact"] and ref.content_hash == hash_dir(ref.dir) == meta["content_hash"]
    assert meta["steps"] > 0 and meta["val_nll_per_token"] > 0  # the stage's own metadata came back too
    model = load_causal_lm(ModelSource(path=ref.path))
    assert model.config.n_layer == 1 and all(torch.isfinite(p).all() for p in model.parameters())


def test_the_launched_artifact_has_the_in_process_key(launched):
    """The command computed the same key: an in-process call finds the artifact instead of training."""
    task, resources, result = launched
    tok, data = (result.output_for_node(f"demo__{name}") for name in ("tokenizer", "sft_data"))
    ref, _ = models.sft_model(task, ArtifactStore(resources["artifacts"].root), tok, data)
    assert ref.cached and ref.path == result.output_for_node("demo__sft_model").path


def test_a_stored_artifact_is_found_before_any_launch(launched):
    """A second materialization asks the store first: the artifact is there and whole, no process starts."""
    task, resources, first = launched
    again = dg.materialize(
        build_task_definitions(task).assets,
        selection=[dg.AssetKey(["demo", "sft_model"])],
        resources=resources,
        instance=dg.DagsterInstance.get(),
    )
    assert again.success
    (mat,) = again.asset_materializations_for_node("demo__sft_model")
    assert mat.metadata["cached"].value is True and "processes" not in mat.metadata
    assert again.output_for_node("demo__sft_model").path == first.output_for_node("demo__sft_model").path
    logs = [e.user_message for e in dg.DagsterInstance.get().all_logs(again.run_id)]
    assert any("sft_model: found " in m and "nothing to launch" in m for m in logs), logs[-20:]
    assert not any("launch: " in m or "started on" in m for m in logs)


def test_the_store_lookup_keys_as_the_stage_does_and_defers_to_a_rebuild_or_a_damaged_artifact(launched, tmp_path):
    task, resources, result = launched
    tok, data = (result.output_for_node(f"demo__{name}") for name in ("tokenizer", "sft_data"))
    sft = result.output_for_node("demo__sft_model")
    root = resources["artifacts"].root
    ref, meta = stored(models.sft_model, task, ArtifactStore(root), (tok, data))
    assert ref.path == sft.path and ref.cached and meta["steps"] > 0
    assert stored(models.sft_model, task, ArtifactStore(root, rebuild=["sft_model"]), (tok, data)) is None
    assert stored(models.sft_model, task, ArtifactStore(tmp_path), (tok, data)) is None  # another store: absent
    copy = ArtifactStore(tmp_path).root / sft.dir.relative_to(ArtifactStore(root).root)
    shutil.copytree(sft.dir, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(CorruptArtifactError, match="rlhf run demo --rebuild sft_model"):
        stored(models.sft_model, task, ArtifactStore(tmp_path), (tok, data))


def test_launch_commands():
    cfg = load_config(task_config_path("demo"), TWO_CPU_PROCESSES).launcher
    assert launch_command("py", cfg, ["-m", "x"]) == [
        "py",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "x",
    ]
    ddp = load_config(task_config_path("demo"), ["launcher.accelerate_config=multi_gpu_ddp", "launcher.processes=8"])
    command = launch_command("py", ddp.launcher, ["-m", "x"])
    assert command[:4] == ["py", "-m", "accelerate.commands.launch", "--config_file"]
    assert command[4:] == ["configs/accelerate/multi_gpu_ddp.yaml", "--num_processes", "8", "-m", "x"]
    assert launch_command("py", load_config(task_config_path("demo")).launcher, ["-m", "x"]) == ["py", "-m", "x"]


def test_the_k8s_pod_template_renders_into_a_valid_gpu_pod(tmp_path):
    """Rendered from configs/deploy/ and built by dagster_k8s's own pod builder (kubernetes models), no cluster."""
    pytest.importorskip("dagster_k8s", reason="the k8s extra: pip install -e '.[k8s]'")
    from dagster_k8s.pipes import build_pod_body

    cfg = load_config(task_config_path("demo"), ["launcher.kind=k8s", "launcher.processes=4"]).launcher
    pod = build_pod_body(
        "rlhf-sft",
        cfg.k8s.image,
        ["python", "-m", "rlhf_core.cli.stage"],
        {"A": "1"},
        None,
        pod_spec(cfg, tmp_path / "artifacts", cfg.processes),
    )
    (container,) = pod.spec.containers
    assert str(container.resources.limits["nvidia.com/gpu"]) == "4"
    assert container.image == cfg.k8s.image and container.command == ["python", "-m", "rlhf_core.cli.stage"]
    (mount,) = [m for m in container.volume_mounts if m.name == "artifacts"]
    assert mount.mount_path == str(tmp_path / "artifacts")
    (volume,) = [v for v in pod.spec.volumes if v.name == "artifacts"]
    assert volume.persistent_volume_claim.claim_name == cfg.k8s.artifact_claim
    assert pod.spec.restart_policy == "Never"


def test_launch_commands_for_several_nodes():
    nodes = ["launcher.nodes=2", "launcher.node_rank=1", "launcher.rdzv_endpoint=10.0.0.5:29400"]
    cfg = load_config(task_config_path("demo"), TWO_CPU_PROCESSES + nodes).launcher
    command = launch_command("py", cfg, ["-m", "x", "--config", "c.json"])
    assert command[:-4] == [
        "py",
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--node_rank",
        "1",
        "--nproc_per_node",
        "2",
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        "10.0.0.5:29400",
        "--rdzv_id",
        command[-5],
    ]
    # every node of one run gets the same id; another stage command, another id
    node0 = launch_command("py", dataclasses.replace(cfg, node_rank=0), ["-m", "x", "--config", "c.json"])
    assert node0[-5] == command[-5] != launch_command("py", cfg, ["-m", "y", "--config", "c.json"])[-5]
    ddp = load_config(
        task_config_path("demo"), ["launcher.accelerate_config=multi_gpu_ddp", "launcher.processes=8", *nodes]
    ).launcher
    command = launch_command("py", ddp, ["-m", "x"])
    assert command[4:] == [
        "configs/accelerate/multi_gpu_ddp.yaml",
        "--num_processes",
        "16",
        "--num_machines",
        "2",
        "--machine_rank",
        "1",
        "--main_process_ip",
        "10.0.0.5",
        "--main_process_port",
        "29400",
        "--rdzv_backend",
        "c10d",
        "-m",
        "x",
    ]
    with pytest.raises(ConfigError, match="rdzv_endpoint"):
        load_config(task_config_path("demo"), ["launcher.nodes=2"])
    with pytest.raises(ConfigError, match="node_rank must be in"):
        load_config(
            task_config_path("demo"), ["launcher.nodes=2", "launcher.node_rank=2", "launcher.rdzv_endpoint=h:1"]
        )


def test_the_s3_pod_template_caches_on_the_pod_s_own_disk(tmp_path, monkeypatch):
    """With the store on S3 the pod needs no shared volume: its cache is an emptyDir at the cache path."""
    pytest.importorskip("dagster_k8s", reason="the k8s extra: pip install -e '.[k8s]'")
    from dagster_k8s.pipes import build_pod_body

    monkeypatch.setenv("RLHF_CACHE", "/cache")
    store = ArtifactStore("s3://bucket/artifacts")
    cfg = load_config(
        task_config_path("demo"),
        ["launcher.kind=k8s", "launcher.processes=2", "launcher.k8s.pod_template=configs/deploy/k8s_stage_pod_s3.yaml"],
    ).launcher
    pod = build_pod_body("rlhf-sft", cfg.k8s.image, ["python"], {}, None, pod_spec(cfg, store.root, cfg.processes))
    (container,) = pod.spec.containers
    assert str(container.resources.limits["nvidia.com/gpu"]) == "2"
    assert {e.name: e.value for e in container.env}["RLHF_CACHE"] == "/cache"
    (mount,) = [m for m in container.volume_mounts if m.name == "cache"]
    assert mount.mount_path == str(store.root) and mount.mount_path.startswith("/cache/")
    (volume,) = [v for v in pod.spec.volumes if v.name == "cache"]
    assert volume.empty_dir is not None and volume.persistent_volume_claim is None
