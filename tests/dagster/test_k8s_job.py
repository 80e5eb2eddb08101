"""The k8s launcher over several nodes: the indexed Job and headless Service it sends, and how it reads
the Job's status. No cluster: the manifests are built with dagster-k8s's pod builder and the
kubernetes client's models and serialized as the client sends them; the status logic is fed the
client's own ``V1Job`` objects in the states a cluster reports."""

import datetime as dt
import json
import re

import pytest

pytest.importorskip("dagster_k8s", reason="the k8s extra: pip install -e '.[k8s]'")

from dagster_k8s.pipes import build_pod_body  # noqa: E402
from kubernetes.client import (  # noqa: E402
    ApiClient,
    V1Job,
    V1JobCondition,
    V1JobStatus,
    V1ObjectMeta,
    V1Pod,
)

from resources.k8s_job import (  # noqa: E402
    INDEX_ANNOTATION,
    NODE_RANK,
    RDZV_PORT,
    JobFailed,
    job_finished,
    job_name,
    manifests,
    owned_by,
    rank0_pod,
    rdzv_endpoint,
)
from resources.launcher import launch_command, pod_spec  # noqa: E402
from rlhf_core.config import ConfigError, load_config, task_config_path  # noqa: E402

NODES, GPUS = 3, 4
K8S = ["launcher.kind=k8s", f"launcher.processes={GPUS}", f"launcher.nodes={NODES}"]
STAGE_ARGS = ["-m", "rlhf_core.cli.stage", "sft_model", "--config", "/store/_launch/demo/k.json"]
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def built(tmp_path, overrides=()):
    """(name, command, env, base pod spec, service dict, job dict) for one launch, as sent to the API."""
    cfg = load_config(task_config_path("demo"), K8S + list(overrides)).launcher
    name = job_name("0f3c9a2e-5b1d-4c7e-9d7a-1b2c3d4e5f60", "sft_model")
    command = launch_command(cfg.k8s.python, cfg, STAGE_ARGS, node_rank=NODE_RANK, rdzv_endpoint=rdzv_endpoint(name))
    env = {"DAGSTER_PIPES_CONTEXT": "ctx", "DAGSTER_PIPES_MESSAGES": "msgs", "ACCELERATE_USE_CPU": "true"}
    base = pod_spec(cfg, tmp_path / "artifacts", cfg.processes)
    service, job = manifests(name, cfg.k8s.image, command, env, base, cfg.nodes)
    serialize = ApiClient().sanitize_for_serialization
    return name, command, env, base, serialize(service), serialize(job)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_an_indexed_job_runs_one_torchrun_node_per_pod(tmp_path):
    name, command, _, _, _, job = built(tmp_path)
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == ("batch/v1", "Job", name)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == NODES
    # one failed node fails the launch, at once, with no retry
    assert spec["backoffLimit"] == spec["backoffLimitPerIndex"] == spec["maxFailedIndexes"] == 0
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == command
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(GPUS)  # GPUs per node (a quantity)
    assert flag(command, "--nnodes") == str(NODES) and flag(command, "--nproc_per_node") == str(GPUS)
    assert flag(command, "--rdzv_backend") == "c10d"
    # each pod's node rank is its completion index, which the Job controller writes on the pod
    assert flag(command, "--node_rank") == "$(JOB_COMPLETION_INDEX)"
    index = {e["name"]: e for e in container["env"]}["JOB_COMPLETION_INDEX"]
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{INDEX_ANNOTATION}']"
    # the kubelet expands $(VAR) only from the container's own env; anything else stays verbatim
    defined = {e["name"] for e in container["env"]}
    assert {ref for arg in command for ref in re.findall(r"\$\((\w+)\)", arg)} <= defined


def test_the_headless_service_gives_node_0_the_rendezvous_address(tmp_path):
    name, command, _, _, service, job = built(tmp_path)
    template = job["spec"]["template"]
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["spec"]["clusterIP"] == "None"  # headless: one DNS record per pod
    assert service["spec"]["publishNotReadyAddresses"] is True  # node 0 resolves itself before it is ready
    # the Service selects exactly the Job's pods, and the pods live under it
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert template["spec"]["subdomain"] == service["metadata"]["name"]
    # an indexed Job's pod i is <job>-i, so node 0's name under the Service is <job>-0.<service>
    host, _, port = flag(command, "--rdzv_endpoint").rpartition(":")
    assert host == f"{job['metadata']['name']}-0.{template['spec']['subdomain']}"
    (svc_port,) = service["spec"]["ports"]
    (container,) = template["spec"]["containers"]
    (pod_port,) = [p for p in container["ports"] if p["name"] == "rdzv"]
    assert int(port) == svc_port["port"] == svc_port["targetPort"] == pod_port["containerPort"] == RDZV_PORT
    # every pod hostname and the Service name are DNS labels (RFC 1123, at most 63 characters)
    for label in (name, f"{name}-{NODES - 1}"):
        assert DNS_LABEL.match(label) and len(label) <= 63, label


def test_each_pod_is_the_single_pod_launch_s_pod_with_its_index_and_port(tmp_path):
    """Env, secrets, volumes and GPUs come from the same builder and template as a one-pod launch."""
    name, command, env, base, _, job = built(
        tmp_path, ["launcher.k8s.pod_template=configs/deploy/k8s_stage_pod_s3.yaml"]
    )
    serialize = ApiClient().sanitize_for_serialization
    single = serialize(build_pod_body(name, "rlhf-pipeline:latest", command, env, None, base))["spec"]
    pod = json.loads(json.dumps(job["spec"]["template"]["spec"]))
    assert pod.pop("subdomain") == name
    (container,) = pod["containers"]
    assert container.pop("ports") == [{"name": "rdzv", "containerPort": RDZV_PORT}]
    assert container["env"].pop()["name"] == "JOB_COMPLETION_INDEX"
    assert pod == single
    assert {"name": "RLHF_CACHE", "value": "/cache"} in container["env"]  # the template's own env


def test_job_names_are_unique_dns_labels():
    names = {job_name("0f3c9a2e-5b1d", "reference_value_of_a_long_stage_name") for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert name.startswith("rlhf-reference-value-of-") and name.count("0f3c9a2e") == 1
        assert DNS_LABEL.match(name) and len(f"{name}-99") <= 63


def status(**fields) -> V1Job:
    return V1Job(metadata=V1ObjectMeta(name="rlhf-sft-model-0f3c9a2e-ab12c"), status=V1JobStatus(**fields))


def condition(kind: str, state: str = "True", reason: str = "", message: str = "") -> V1JobCondition:
    return V1JobCondition(type=kind, status=state, reason=reason, message=message)


def test_a_job_is_finished_when_complete_and_still_running_before():
    assert job_finished(status(active=2)) is False  # pods starting
    assert job_finished(status(active=1, succeeded=1, completed_indexes="0")) is False  # node 1 still runs
    complete = [condition("SuccessCriteriaMet"), condition("Complete")]
    assert job_finished(status(succeeded=2, completed_indexes="0,1", conditions=complete)) is True
    # a condition that is not (yet) true decides nothing
    assert job_finished(status(active=2, conditions=[condition("Failed", "False")])) is False


def test_any_failed_node_fails_the_launch_with_its_index():
    """Per index (Kubernetes >= 1.29) the status names the node; FailureTarget comes before Failed."""
    target = condition("FailureTarget", reason="MaxFailedIndexesExceeded", message="Job has exceeded maxFailedIndexes")
    with pytest.raises(JobFailed, match=r"node\(s\) 1 failed \(MaxFailedIndexesExceeded"):
        job_finished(status(active=1, failed=1, failed_indexes="1", conditions=[target]))
    with pytest.raises(JobFailed, match=r"node\(s\) 0,2 failed"):  # recorded before any condition
        job_finished(status(active=1, failed=2, failed_indexes="0,2"))
    # a cluster without per-index limits counts failed pods only
    backoff = condition("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
    with pytest.raises(JobFailed, match=r"1 pod\(s\) failed \(BackoffLimitExceeded: Job has reached"):
        job_finished(status(failed=1, succeeded=1, completed_indexes="0", conditions=[backoff]))


def pod(name: str, index: str, minute: int) -> V1Pod:
    created = dt.datetime(2025, 1, 1, 12, minute, tzinfo=dt.UTC)
    return V1Pod(metadata=V1ObjectMeta(name=name, annotations={INDEX_ANNOTATION: index}, creation_timestamp=created))


def test_node_0_is_the_pod_of_index_0():
    assert rank0_pod([]) is None
    assert rank0_pod([pod("j-1-x", "1", 0)]) is None
    assert rank0_pod([pod("j-1-x", "1", 0), pod("j-0-a", "0", 1), pod("j-0-b", "0", 2)]).metadata.name == "j-0-b"


def test_the_service_is_owned_by_the_job():
    created = V1Job(metadata=V1ObjectMeta(name="rlhf-sft-model-0f3c9a2e-ab12c", uid="5d1c6f0e-uid"))
    ref = ApiClient().sanitize_for_serialization(owned_by(created))
    assert ref == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "rlhf-sft-model-0f3c9a2e-ab12c",
        "uid": "5d1c6f0e-uid",
    }


def test_only_k8s_finds_node_0_by_itself():
    k8s = load_config(task_config_path("demo"), K8S).launcher
    assert k8s.rdzv_endpoint is None
    with pytest.raises(ConfigError, match="rdzv_endpoint"):  # the same config, launched as subprocess
        launch_command("py", k8s, ["-m", "x"])
    with pytest.raises(ConfigError, match="rdzv_endpoint"):
        load_config(task_config_path("demo"), ["launcher.kind=subprocess", "launcher.nodes=2"])
