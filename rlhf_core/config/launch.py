"""Where a heavy stage's command runs : the ``launcher`` section.

    launcher: {kind: subprocess, processes: 2, accelerate_config: multi_gpu_ddp}

Where a stage runs is not what it computes, so no stage reads this section and no artifact key
depends on it: the engine makes N processes the same optimiser update as one, and an artifact
trained by any launcher is served to every other. ``RLHF_LAUNCHER`` (read by the Dagster
resources) overrides ``kind`` for one process without editing a config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlhf_core.config.parse import ConfigError
from rlhf_core.paths import accelerate_dir, project_root

LAUNCHER_KINDS = ("inprocess", "subprocess", "k8s")


@dataclass(frozen=True)
class K8sConfig:
    """One pod per stage command (``dagster_k8s.PipesK8sClient``), from a pod template in configs/deploy/;
    over several nodes, one indexed Job of such pods (resources/k8s_job.py)."""

    image: str = "rlhf-pipeline:latest"  # built from this repository (make setup inside it)
    namespace: str | None = None  # None: the current namespace in a cluster, else "default"
    pod_template: str = "configs/deploy/k8s_stage_pod.yaml"  # relative paths resolve from the project root
    artifact_claim: str = "rlhf-artifacts"  # the PersistentVolumeClaim holding the artifact store
    python: str = "/app/.venv/bin/python"  # the image's interpreter

    def template_path(self):
        return project_root() / self.pod_template


@dataclass(frozen=True)
class LauncherConfig:
    """``inprocess``: the stage runs inside the Dagster step (CPU, demo, tests). ``subprocess``: its
    command runs under ``accelerate launch`` (with ``accelerate_config``) or ``torchrun`` (without) on
    ``processes`` processes, through Dagster Pipes. ``k8s``: the same command in a GPU pod.

    ``nodes`` > 1: the command is one node's part of a run over several machines, which meet at
    ``rdzv_endpoint`` (``host:port``, torch's c10d rendezvous; the host is the machine of node 0);
    ``node_rank`` says which node this one is. Every node runs the same command otherwise. Under
    ``k8s`` the launcher starts every node itself, as the pods of one indexed Job: each pod's index
    is its node rank and node 0's DNS name the rendezvous, so neither is set here."""

    kind: Literal["inprocess", "subprocess", "k8s"] = "inprocess"
    processes: int = 1  # processes (GPUs) of one machine
    nodes: int = 1  # machines that run the command together
    node_rank: int = 0  # this machine's place among them (0: the one that hosts the rendezvous)
    rdzv_endpoint: str | None = None  # host:port where the nodes meet; needed when nodes > 1 (but k8s)
    accelerate_config: str | None = None  # configs/accelerate/<name>.yaml; None: torchrun
    cpu: bool = False  # ACCELERATE_USE_CPU: several CPU processes over gloo (tests, CPU boxes)
    k8s: K8sConfig = field(default_factory=K8sConfig)
    # the GPU kind its launches need (a100, l4): model assets run in the Dagster pool gpu-<class>, whose
    # limit is that class's GPUs (configs/deploy/pools.yaml); None: the pool gpu
    gpu_class: str | None = None

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ConfigError(f"launcher.processes must be >= 1, got {self.processes}")
        if self.nodes < 1 or not 0 <= self.node_rank < self.nodes:
            raise ConfigError(f"launcher.node_rank must be in [0, nodes), got {self.node_rank} of {self.nodes} nodes")
        # k8s finds node 0 by its pod's DNS name (resources/k8s_job.py); other kinds are told where it is
        if self.rdzv_endpoint is not None or (self.nodes > 1 and self.kind != "k8s"):
            host, _, port = (self.rdzv_endpoint or "").rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(
                    f"launcher.rdzv_endpoint: {self.nodes} nodes meet at a host:port, got {self.rdzv_endpoint!r}"
                )
        name = self.accelerate_config
        if name is not None and not (accelerate_dir() / f"{name}.yaml").exists():
            known = sorted(p.stem for p in accelerate_dir().glob("*.yaml"))
            raise ConfigError(f"accelerate_config {name!r} is not in configs/accelerate/; known: {known}")
