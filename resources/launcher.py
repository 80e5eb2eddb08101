"""Where a heavy stage's core command runs: the ``launcher`` resource.

    ref, meta = launcher.run(context, task, models.sft_model, tok, data)   # as models.sft_model(task, store, ...)

- ``inprocess`` calls the stage inside the Dagster step (CPU, the demo, tests).
- ``subprocess`` runs ``python -m rlhf_core.cli.stage`` (its flags from the stage's declaration)
  under ``accelerate launch`` (with the task's ``launcher.accelerate_config``) or ``torchrun``
  (without) on ``launcher.processes`` processes where the stage declares that it ``spreads``, through
  Dagster Pipes (``PipesSubprocessClient``): their stdout and stderr stream into the step's logs,
  and rank 0 logs into the run and reports the materialization.
- ``k8s`` runs the same command in one pod (``dagster_k8s.PipesK8sClient``, the ``k8s`` extra) built
  from ``configs/deploy/k8s_stage_pod.yaml``: ``nvidia.com/gpu`` per process, the artifact store
  mounted at the same path, so the pod reads the inputs and writes the artifact where Dagster finds it.
  Over ``launcher.nodes`` > 1 it runs one indexed Job of such pods, one per node, with a headless
  Service giving node 0 the DNS name where torchrun's rendezvous meets (resources/k8s_job.py).

Before a ``subprocess`` or ``k8s`` launch the launcher asks the store for the stage's artifact,
through the stage's own key computation (the stage called on a ``find_only`` store): when it is
there and its files match their hashes, that is the result and no process starts (a launch costs
seconds of imports before it could report "found"). ``--rebuild`` reaches the command too.

Either way the result is the stage's own ``(ref, meta)``: the ref read back from the artifact's
``meta.json`` (its content hash), the metadata the stage wrote there, overlaid with what rank 0
reported through Pipes (``processes``, the scalars). The task config goes to the command as a
resolved JSON under ``<store>/_launch/``, so the command computes the same artifact key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import string
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

import rlhf_core
from resources.artifacts import ArtifactStoreResource
from rlhf_core.cli.stage import artifact, command_args
from rlhf_core.config import ConfigError, TaskConfig, accelerate_dir, project_root, to_dict
from rlhf_core.config.launch import LAUNCHER_KINDS, LauncherConfig
from rlhf_core.stages.base import Result, Stage, done
from rlhf_core.store import ArtifactStore, NotInStore, hash_key


class LauncherResource(dg.ConfigurableResource):
    """Runs a heavy stage where ``kind`` (else the task's ``launcher.kind``) says."""

    artifacts: ArtifactStoreResource  # the store (its root is shared with the command: a volume in k8s)
    kind: str | None = None  # overrides every task's launcher.kind (RLHF_LAUNCHER)

    def run(self, context: dg.AssetExecutionContext, task: TaskConfig, stage: Stage, *args: Any) -> Result:
        """``stage(task, store, *args)`` where the launcher kind says; a stage that does not spread
        over processes runs as one wherever it is launched."""
        kind, name = self.kind or task.launcher.kind, stage.name
        if kind not in LAUNCHER_KINDS:
            raise ValueError(f"launcher kind {kind!r}: expected one of {LAUNCHER_KINDS}")
        store = self.artifacts.store()
        if kind == "inprocess":
            return stage(task, store, *args)
        found = stored(stage, task, store, args)
        if found is not None:
            context.log.info(f"{name}: found {found[0].path}; nothing to launch")
            return found
        cfg = task.launcher
        python = sys.executable if kind == "subprocess" else cfg.k8s.python
        stage_args = [
            "-m",
            "rlhf_core.cli.stage",
            name,
            "--config",
            str(resolved_config(store, task)),
            "--out",
            store.url,
            *command_args(stage, args),
            *(flag for asset in sorted(store.rebuild) for flag in ("--rebuild", asset)),
        ]
        spread = stage.spreads(task, *args)
        env = {"ACCELERATE_USE_CPU": "true"} if cfg.cpu else {}
        if kind == "k8s" and spread and cfg.nodes > 1:
            invocation = self.k8s_job(context, cfg, store, name, python, stage_args, env)
        else:
            command = launch_command(python, cfg, stage_args) if spread else [python, *stage_args]
            context.log.info(f"{name}: {kind} launch: {' '.join(command)}")
            if kind == "subprocess":
                code = str(Path(rlhf_core.__file__).resolve().parents[1])  # this checkout's rlhf_core, first
                env["PYTHONPATH"] = os.pathsep.join(p for p in (code, os.environ.get("PYTHONPATH")) if p)
                invocation = dg.PipesSubprocessClient(cwd=str(project_root())).run(
                    context=context, command=command, env=env
                )
            else:
                k8s_extra()  # the hint when the extra is missing
                from dagster_k8s import PipesK8sClient

                invocation = PipesK8sClient().run(
                    context=context,
                    image=cfg.k8s.image,
                    command=command,
                    namespace=cfg.k8s.namespace,
                    env=env,
                    base_pod_spec=pod_spec(cfg, store.root, cfg.processes if spread else 1),
                )
        return reported(invocation.get_materialize_result().metadata, name, kind)

    def k8s_job(
        self,
        context: dg.AssetExecutionContext,
        cfg: LauncherConfig,
        store: ArtifactStore,
        name: str,
        python: str,
        stage_args: list[str],
        env: dict[str, str],
    ) -> dg.PipesClientCompletedInvocation:
        """The stage over ``cfg.nodes`` pods of one indexed Job (resources/k8s_job.py), each pod one
        torchrun node: its index is its node rank, node 0's DNS name the rendezvous."""
        k8s_job = k8s_extra()
        job = k8s_job.job_name(context.run_id, name)
        command = launch_command(
            python, cfg, stage_args, node_rank=k8s_job.NODE_RANK, rdzv_endpoint=k8s_job.rdzv_endpoint(job)
        )
        context.log.info(f"{name}: k8s launch on {cfg.nodes} nodes: {' '.join(command)}")
        return k8s_job.run_job(
            context,
            name=job,
            image=cfg.k8s.image,
            namespace=cfg.k8s.namespace,
            command=command,
            env=env,
            base_pod_spec=pod_spec(cfg, store.root, cfg.processes),
            nodes=cfg.nodes,
        )


def k8s_extra():
    """resources.k8s_job, which imports dagster-k8s and kubernetes (the ``k8s`` extra)."""
    try:
        from resources import k8s_job
    except ImportError:
        raise RuntimeError("launcher kind k8s needs the k8s extra: pip install -e '.[k8s]'") from None
    return k8s_job


def stored(stage: Stage, task: TaskConfig, store: ArtifactStore, args: tuple[Any, ...]) -> Result | None:
    """The stage's result when the store already has its artifact, every file checked against its
    ``meta.json`` (a damaged one fails here, naming the command that rebuilds it); None when it must
    be built. The stage computes its own key: it runs up to its ``build`` call on a store that finds
    but never builds."""
    try:
        ref, meta = stage(task, ArtifactStore(store.url, store.rebuild, find_only=True), *args)
    except NotInStore:
        return None
    ref.checked_dir()
    return ref, meta


def resolved_config(store: ArtifactStore, task: TaskConfig) -> Path:
    """The task config as resolved JSON under the store (content-addressed), readable by the command."""
    data = to_dict(task)
    rel = f"_launch/{task.task}/{hash_key(data)}.json"
    if not (store.root / rel).exists():  # on an object store, a pod fetches it from there
        store.write_record(rel, data)
    return store.root / rel


def launch_command(
    python: str,
    cfg: LauncherConfig,
    stage_args: list[str],
    node_rank: int | str | None = None,
    rdzv_endpoint: str | None = None,
) -> list[str]:
    """``accelerate launch`` with the named config, ``torchrun`` for several plain processes, else python.

    The accelerate config's path is relative to the project root, the command's working directory
    (the repository in the image, for a pod). Over several nodes, each node's command joins torch's
    c10d rendezvous at ``rdzv_endpoint`` under an id made from the stage's arguments, the same on
    every node of one run. ``node_rank`` and ``rdzv_endpoint`` default to the config's; the k8s
    launcher passes its own (each pod's index as ``$(JOB_COMPLETION_INDEX)``, node 0's DNS name)."""
    node_rank = cfg.node_rank if node_rank is None else node_rank
    rdzv_endpoint = rdzv_endpoint or cfg.rdzv_endpoint
    if cfg.nodes > 1 and not rdzv_endpoint:
        raise ConfigError(f"launcher.rdzv_endpoint: {cfg.nodes} nodes meet at a host:port, got none")
    n = str(cfg.processes)
    if cfg.accelerate_config is not None:
        config_file = (accelerate_dir() / f"{cfg.accelerate_config}.yaml").relative_to(project_root())
        machines = []
        if cfg.nodes > 1:
            host, _, port = rdzv_endpoint.rpartition(":")
            machines = [
                "--num_machines",
                str(cfg.nodes),
                "--machine_rank",
                str(node_rank),
                "--main_process_ip",
                host,
                "--main_process_port",
                port,
                "--rdzv_backend",
                "c10d",
            ]
        return [
            python,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(config_file),
            "--num_processes",
            str(cfg.processes * cfg.nodes),
            *machines,
            *stage_args,
        ]
    if cfg.nodes > 1:
        run_id = hashlib.sha256("\0".join(stage_args).encode()).hexdigest()[:16]
        return [
            python,
            "-m",
            "torch.distributed.run",
            "--nnodes",
            str(cfg.nodes),
            "--node_rank",
            str(node_rank),
            "--nproc_per_node",
            n,
            "--rdzv_backend",
            "c10d",
            "--rdzv_endpoint",
            rdzv_endpoint,
            "--rdzv_id",
            run_id,
            *stage_args,
        ]
    if cfg.processes > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", n, *stage_args]
    return [python, *stage_args]


def pod_spec(cfg: LauncherConfig, store_root: Path, gpus: int) -> dict[str, Any]:
    """The pod template of ``launcher.k8s.pod_template`` with the GPU count and artifact volume filled in."""
    text = cfg.k8s.template_path().read_text()
    values = {"gpus": gpus, "artifact_root": store_root, "artifact_claim": cfg.k8s.artifact_claim}
    return yaml.safe_load(string.Template(text).substitute(values))


def reported(pipes_meta: dict[str, dg.MetadataValue], name: str, kind: str) -> Result:
    """The stage's ``(ref, meta)`` from what rank 0 reported through Pipes and the artifact it names."""
    if "artifact" not in pipes_meta:
        raise RuntimeError(f"{name}: the stage command reported no artifact through Pipes (see its logs)")
    values = {k: v.value for k, v in pipes_meta.items()}
    ref = dataclasses.replace(artifact(values["artifact"]), cached=bool(values["cached"]))
    return ref, {**done(ref)[1], **values, "launcher": kind}
