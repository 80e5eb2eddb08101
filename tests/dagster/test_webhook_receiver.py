"""The webhook receiver's answers to calls that are not an annotation event of a known project, without the tool:
each is refused or ignored before any batch is written (tests/feedback/test_webhook.py drives the real tool)."""

import json

import pytest

from pipelines.feedback_webhook import SECRET_HEADER, Receiver
from rlhf_core.config import load_config, task_config_path


@pytest.fixture
def receiver():
    task = load_config(task_config_path("demo"), profile="human_feedback")
    receiver = Receiver(task, {7: "rankings"}, "s3cret")
    yield receiver
    receiver.stop()


@pytest.mark.parametrize(
    "body,status",
    [
        (b"not json", 400),
        (b"[1, 2]", 400),  # JSON, but not an event
        (json.dumps({"action": "ANNOTATION_CREATED", "project": 7}).encode(), 400),  # a project that is no object
        (json.dumps({"action": "ANNOTATION_CREATED"}).encode(), 400),
        (json.dumps({"action": "ANNOTATION_CREATED", "project": {"id": 8}}).encode(), 204),  # another project
        (json.dumps({"action": "PROJECT_UPDATED", "project": {"id": 7}}).encode(), 204),  # not an annotation
    ],
)
def test_a_call_that_is_no_known_annotation_event_writes_nothing(receiver, body, status):
    assert receiver.accept({SECRET_HEADER: "s3cret"}, body) == status
    receiver.drain()
    assert receiver.written == [] and receiver.errors == []


def test_a_call_without_the_secret_is_refused(receiver):
    event = json.dumps({"action": "ANNOTATION_CREATED", "project": {"id": 7}}).encode()
    assert receiver.accept({SECRET_HEADER: "guess"}, event) == 403
    assert receiver.accept({}, event) == 403
    receiver.drain()
    assert receiver.written == [] and receiver.errors == []
