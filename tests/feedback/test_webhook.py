"""Webhook mode against the real tool (``make feedback-check``): Label Studio POSTs each new annotation to the
local receiver, which writes the collection's batch through the sensor's own code; the sensor then requests
the table's run for that batch. Its own collection (``hooked``), so the demo test's projects are not touched.
"""

from __future__ import annotations

import json
import time

import dagster as dg
import requests

from assets.feedback import annotations_sensor, table_job
from pipelines.feedback_webhook import SECRET_HEADER, receiving
from resources import annotation_tool
from rlhf_core.config import load_config, task_config_path
from rlhf_core.feedback.batches import BALLOTS, batch_dirs
from rlhf_core.feedback.interfaces import build_items
from rlhf_core.feedback.label_studio import LabelStudio
from rlhf_core.stages.feedback import batch_folder

POLICIES = ["sft", "dpo", "pro"]
# one prompt, three answers (the policies' generations as build_items reads them)
ANSWERS = {p: {"7": ("Name a colour.", text)} for p, text in zip(POLICIES, ["Blue.", "Red, like a rose.", "Green"])}


def ranks(order: list[str]) -> list[dict]:
    """The ranking page's result: response k + 1 gets rank ``order[k]``."""
    return [
        {"id": f"r{k}", "from_name": f"rank_{k}", "to_name": "response_1", "type": "choices", "value": {"choices": [r]}}
        for k, r in enumerate(order, start=1)
    ]


def ballots(task) -> list[list[dict]]:
    return [
        [json.loads(line) for line in (b / BALLOTS).read_text().splitlines()]
        for b in batch_dirs(batch_folder(task, "hooked"))
    ]


def wait_for(receiver, n: int) -> None:
    for _ in range(60):  # the tool sends the call before it answers the annotation's POST; the write follows
        receiver.drain()
        if len(receiver.written) >= n:
            return
        time.sleep(0.5)
    raise AssertionError(f"{len(receiver.written)} batches written, expected {n}; errors: {receiver.errors}")


def test_a_new_annotation_reaches_its_batch_through_the_webhook(tool, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", tool["token"])
    task = load_config(
        task_config_path("demo"),
        [
            f"feedback.url={tool['url']}",
            f"feedback.folder={tmp_path / 'feedback'}",
            "feedback.collections.hooked={interface: crs_ranking, policies: [sft, dpo, pro]}",
        ],
        profile="human_feedback",
    )
    ls = LabelStudio(tool["url"], tool["token"])
    pid = annotation_tool.project_ids(ls, task, "hooked")["crs_ranking"]
    (item,) = build_items("hooked", "crs_ranking", ANSWERS, POLICIES, None, task.seed)
    ls.push(pid, [item])
    (task_id,) = [t["id"] for t in ls.tasks(pid)]
    by_response = [item["keys"][str(k)] for k in range(3)]  # the policy behind response k + 1

    with receiving(task) as (url, receiver):
        call = {"action": "ANNOTATION_CREATED", "project": {"id": pid}}
        for headers in ({}, {SECRET_HEADER: "not-the-secret"}):  # refused, and nothing written
            assert requests.post(url, json=call, headers=headers, timeout=10).status_code == 403
        ls.annotate(task_id, ranks(["2", "1", "3"]))
        wait_for(receiver, 1)
        second = ls.add_user("hooked@localhost")
        ls.annotate(task_id, ranks(["1", "2", "3"]), completed_by=second)
        wait_for(receiver, 2)
    assert receiver.errors == []
    # one batch per annotation, each holding only its new ballot: best first, by the ranks given
    (first,), (then,) = ballots(task)
    assert first["ranking"] == [by_response[1], by_response[0], by_response[2]]
    assert (first["annotator"], then["annotator"]) == (tool["username"], "hooked@localhost")
    assert then["ranking"] == by_response

    # the sensor finds nothing new in the tool, and requests the table's run for the webhook's latest batch
    sensor = annotations_sensor(task, "hooked", table_job(task, "hooked"))
    tick = sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral()))
    latest = batch_dirs(batch_folder(task, "hooked"))[-1].name
    assert isinstance(tick, dg.SensorResult) and [r.run_key for r in tick.run_requests] == [latest]
    assert isinstance(
        sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=latest)), dg.SkipReason
    )
    assert len(batch_dirs(batch_folder(task, "hooked"))) == 2

    # the receiver's webhooks are gone with it; the token is in no batch and no output
    hooks = requests.get(
        f"{tool['url']}/api/webhooks/",
        params={"project": pid},
        headers={"Authorization": f"Token {tool['token']}"},
        timeout=10,
    ).json()
    assert hooks == []
    out, err = capfd.readouterr()
    assert tool["token"] not in out + err
    for path in (tmp_path / "feedback").rglob("*"):
        assert path.is_dir() or tool["token"].encode() not in path.read_bytes(), path
