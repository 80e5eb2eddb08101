"""One stage command on several Kubernetes nodes: an indexed Job and a headless Service.

    name = job_name(context.run_id, "sft_model")
    command = launch_command(python, cfg, stage_args, node_rank=NODE_RANK, rdzv_endpoint=rdzv_endpoint(name))
    invocation = run_job(context, name=name, image=..., namespace=..., command=command, env=env,
                         base_pod_spec=pod_spec(...), nodes=cfg.nodes)

The Job (``batch/v1``, ``completionMode: Indexed``) starts ``nodes`` pods at once, one per node of
the torchrun launch; the Job controller gives each pod its index, which the command reads as its
node rank (``$(JOB_COMPLETION_INDEX)``, expanded by the kubelet from the container's environment).
The Service has no cluster IP and selects the Job's pods: it exists only to give each pod a DNS name,
``<job>-<index>.<service>``, so every node finds the rendezvous that node 0's torchrun hosts at
``<job>-0.<service>:29500``. Addresses are published before the pods are ready, because node 0 must
resolve its own name to know that it is the host.

Each pod is the single-pod launcher's pod (``dagster_k8s.pipes.build_pod_body`` over the same
template: GPUs per node, the artifact volume, the Pipes environment), so environment and secrets are
handled the same way: values only from the launcher's own ``env`` and the template, secrets through
the template's ``secretKeyRef`` / ``envFrom`` or the pod's service account, never as values here.
Node 0 is rank 0: it reports through Pipes, so its log is the one read; the Job's status says when
every node is done or which node failed.
"""

from __future__ import annotations

import os
import random
import re
import string
import time
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import kubernetes
from dagster_k8s.client import DagsterKubernetesClient
from dagster_k8s.pipes import PipesK8sPodLogsMessageReader, build_pod_body
from dagster_k8s.utils import apply_no_proxy_env_workaround, detect_current_namespace
from kubernetes.client import (
    V1ContainerPort,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodTemplateSpec,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
)

RDZV_PORT = 29500  # torchrun's c10d rendezvous, hosted by node 0's agent
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"  # set on each pod by the Job controller
INDEX_ENV = "JOB_COMPLETION_INDEX"
NODE_RANK = f"$({INDEX_ENV})"  # in a container's command, the kubelet puts the pod's index here
LAUNCH_LABEL = "rlhf-pipeline/launch"  # the Service selects the Job's pods by it
KEEP_FAILED_S = 86400  # a failed Job (its pods and logs) stays a day for inspection, then goes


class JobFailed(RuntimeError):
    pass


def job_name(run_id: str, stage: str) -> str:
    """A DNS label for the Job and its Service, unique per launch; ``<name>-<index>`` is each pod's hostname."""
    clean = re.sub("[^a-z0-9-]", "", stage.lower().replace("_", "-"))[:20].strip("-")
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    return f"rlhf-{clean}-{run_id[:8]}-{suffix}"


def rdzv_endpoint(name: str) -> str:
    """Node 0's address: its hostname under the Service of the same name (within the Job's namespace)."""
    return f"{name}-0.{name}:{RDZV_PORT}"


def manifests(
    name: str,
    image: str,
    command: Sequence[str],
    env: Mapping[str, str],
    base_pod_spec: Mapping[str, Any],
    nodes: int,
) -> tuple[V1Service, V1Job]:
    """The headless Service and the indexed Job of one launch over ``nodes`` nodes."""
    pod = build_pod_body(name, image, command, env, None, base_pod_spec)
    labels = {**pod.metadata.labels, LAUNCH_LABEL: name}
    container = pod.spec.containers[0]
    # The Job controller sets this variable too (Kubernetes >= 1.21); declared here, the command's
    # $(JOB_COMPLETION_INDEX) refers to a variable the manifest itself defines.
    index = V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=f"metadata.annotations['{INDEX_ANNOTATION}']"))
    container.env = [*container.env, V1EnvVar(name=INDEX_ENV, value_from=index)]
    container.ports = [*(container.ports or []), V1ContainerPort(name="rdzv", container_port=RDZV_PORT)]
    pod.spec.subdomain = name  # with an indexed Job, the pod's hostname is <job>-<index>: <job>-<index>.<name>
    job = V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(name=name, labels=labels),
        spec=V1JobSpec(
            completion_mode="Indexed",
            completions=nodes,
            parallelism=nodes,  # every node at once: the rendezvous waits for all of them
            # No retries: a node that failed has broken the others' collectives, so the launch failed.
            # Per index (Kubernetes >= 1.29), the Job's status names the index that failed.
            backoff_limit=0,
            backoff_limit_per_index=0,
            max_failed_indexes=0,
            ttl_seconds_after_finished=KEEP_FAILED_S,
            template=V1PodTemplateSpec(metadata=V1ObjectMeta(labels=labels), spec=pod.spec),
        ),
    )
    service = V1Service(
        api_version="v1",
        kind="Service",
        metadata=V1ObjectMeta(name=name, labels=labels),
        spec=V1ServiceSpec(
            cluster_ip="None",  # headless: DNS names for the pods, no load-balanced address
            selector={LAUNCH_LABEL: name},
            publish_not_ready_addresses=True,  # node 0 resolves its own name before it is ready
            ports=[V1ServicePort(name="rdzv", port=RDZV_PORT, target_port=RDZV_PORT)],
        ),
    )
    return service, job


def owned_by(job: V1Job) -> V1OwnerReference:
    """The Job as the Service's owner: deleting the Job (or its TTL) deletes the Service too."""
    return V1OwnerReference(api_version="batch/v1", kind="Job", name=job.metadata.name, uid=job.metadata.uid)


def job_finished(job: V1Job) -> bool:
    """True once every node's command succeeded, False while any runs; raises ``JobFailed`` as soon as
    the controller has decided the Job failed (one node's failure is enough: no retries)."""
    status = job.status
    conditions = {c.type: c for c in status.conditions or [] if c.status == "True"}
    # FailureTarget (Kubernetes >= 1.31) comes first, Failed once the pods have terminated
    failed = conditions.get("FailureTarget") or conditions.get("Failed")
    if failed is not None or status.failed_indexes:
        nodes = f"node(s) {status.failed_indexes}" if status.failed_indexes else f"{status.failed or 0} pod(s)"
        reason = f"{failed.reason}: {failed.message}" if failed is not None else "failed"
        raise JobFailed(f"Job {job.metadata.name}: {nodes} failed ({reason})")
    return "Complete" in conditions


def rank0_pod(pods: list[V1Pod]) -> V1Pod | None:
    """The pod of index 0 (torchrun's node 0, rank 0, the one that reports through Pipes), once created."""
    zero = [p for p in pods if (p.metadata.annotations or {}).get(INDEX_ANNOTATION) == "0"]
    return max(zero, key=lambda p: p.metadata.creation_timestamp, default=None)


def run_job(
    context: dg.AssetExecutionContext,
    *,
    name: str,
    image: str,
    namespace: str | None,
    command: Sequence[str],
    env: Mapping[str, str],
    base_pod_spec: Mapping[str, Any],
    nodes: int,
    poll_s: float = 10.0,
) -> dg.PipesClientCompletedInvocation:
    """Create the Service and the Job, stream node 0's log into Dagster Pipes, wait for every node."""
    load_kube_config()
    client = DagsterKubernetesClient.production_client()
    reader = PipesK8sPodLogsMessageReader()
    with dg.open_pipes_session(
        context=context, context_injector=dg.PipesEnvContextInjector(), message_reader=reader
    ) as session:
        namespace = namespace or detect_current_namespace(None) or "default"
        service, job = manifests(
            name, image, command, {**session.get_bootstrap_env_vars(), **env}, base_pod_spec, nodes
        )
        client.core_api.create_namespaced_service(namespace, service)  # first: node 0 must resolve its name
        try:
            created = client.batch_api.create_namespaced_job(namespace, job)
        except Exception:
            client.core_api.delete_namespaced_service(name, namespace)
            raise
        keep = False
        try:
            owner = {"metadata": {"ownerReferences": [owned_by(created)]}}
            client.core_api.patch_namespaced_service(name, namespace, owner)
            context.log.info(f"k8s: Job {name}, {nodes} nodes in {namespace}, rendezvous at {rdzv_endpoint(name)}")
            pod = wait_for_rank0(client, name, namespace, poll_s)
            reader.consume_pod_logs(context, client.core_api, pod, namespace)  # until node 0's command ends
            while not job_finished(client.batch_api.read_namespaced_job_status(name, namespace)):
                time.sleep(poll_s)
        except JobFailed:
            keep = True
            context.log.error(f"k8s: Job {name} kept for a day: kubectl logs -n {namespace} -l job-name={name}")
            raise
        finally:  # done, or the step was stopped: the pods and (owned by the Job) the Service go
            if not keep:
                client.batch_api.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
    return dg.PipesClientCompletedInvocation(session)


def wait_for_rank0(client: DagsterKubernetesClient, name: str, namespace: str, poll_s: float) -> str:
    """The name of node 0's pod once its container has started (its log can be read), failing early
    when another node failed first."""
    while True:
        job_finished(client.batch_api.read_namespaced_job_status(name, namespace))
        pod = rank0_pod(client.get_pods_in_job(name, namespace))
        if pod is not None and pod.status.phase in ("Running", "Succeeded", "Failed"):
            return pod.metadata.name
        time.sleep(poll_s)


def load_kube_config() -> None:
    """In a pod: its service account; elsewhere: the kubeconfig (as ``PipesK8sClient`` loads it)."""
    if os.getenv("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()
    else:
        kubernetes.config.load_kube_config()
    apply_no_proxy_env_workaround()
