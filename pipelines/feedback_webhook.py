"""Webhook mode of the feedback loop: Label Studio POSTs each created or updated annotation to a receiver
here, which writes the collection's batch at once, through the same code as the sensor's poll
(``resources.annotation_tool.collect``). The sensor still polls, and requests the table's run for every
batch newer than its cursor, whichever wrote it.

    python -m pipelines.feedback_webhook demo --profile human_feedback [--port 8090]

The receiver listens on 127.0.0.1 only and registers itself as a webhook of each collection's projects
(removed again when it stops). Label Studio sends a random secret header, made per start, that every call
must carry; the API token never travels in a webhook. Label Studio refuses webhooks to a local address
unless started with ``--webhooks`` (``python -m pipelines.annotate --webhooks``: its SSRF guard off).
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import queue
import secrets
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from resources import annotation_tool
from rlhf_core.config import TaskConfig, load_config, task_config_path

ACTIONS = ["ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"]
SECRET_HEADER = "X-Rlhf-Webhook"


class Receiver:
    """The running receiver: its URL, and each batch it wrote (``(collection, batch name, counts)``)."""

    def __init__(self, task: TaskConfig, projects: dict[int, str], secret: str):
        self.task, self.projects, self.secret = task, projects, secret
        self.written: list[tuple[str, str, dict[str, int]]] = []
        self.errors: list[str] = []
        self._events: queue.Queue[str | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, daemon=True)
        self._worker.start()

    def accept(self, headers, body: bytes) -> int:
        """The HTTP status of one call: the collection's batch is written after the answer, not before
        (Label Studio waits at most a second for it)."""
        if not hmac.compare_digest(headers.get(SECRET_HEADER, ""), self.secret):
            return 403
        try:
            event = json.loads(body)
        except ValueError:
            return 400
        project = event.get("project") if isinstance(event, dict) else None
        if not isinstance(project, dict):  # every annotation event names its project as an object
            return 400
        collection = self.projects.get(project.get("id"))
        if event.get("action") in ACTIONS and collection is not None:
            self._events.put(collection)
        return 204

    def _work(self) -> None:
        while (collection := self._events.get()) is not None:
            try:
                batch, counts = annotation_tool.collect(self.task, collection)
            except Exception as err:  # the next call retries; the message names no header
                self.errors.append(f"{collection}: {err}")
                print(f"error: {collection}: {err}", file=sys.stderr, flush=True)
            else:
                if batch is not None:
                    self.written.append((collection, batch.name, counts))
                    print(f"{collection}: batch {batch.name} {counts}", flush=True)
            self._events.task_done()

    def drain(self) -> None:
        """Wait until every accepted call has been handled."""
        self._events.join()

    def stop(self) -> None:
        self._events.put(None)
        self._worker.join()


@contextlib.contextmanager
def receiving(task: TaskConfig, port: int = 0) -> Iterator[tuple[str, Receiver]]:
    """Run the receiver on 127.0.0.1:``port`` (0: a free one) as a webhook of every collection's projects."""
    tool = annotation_tool.connect(task)
    projects = {
        pid: name
        for name in task.feedback.collections
        for pid in annotation_tool.project_ids(tool, task, name).values()
    }
    receiver = Receiver(task, projects, secrets.token_hex(20))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(receiver.accept(self.headers, body))
            self.end_headers()

        def log_message(self, *args) -> None:  # one line per batch is printed instead
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    hooks = []
    try:
        for pid in projects:
            hooks.append(tool.add_webhook(pid, url, {SECRET_HEADER: receiver.secret}, ACTIONS))
        yield url, receiver
    finally:
        for hook in hooks:
            with contextlib.suppress(Exception):  # the tool may be gone already
                tool.remove_webhook(hook)
        server.shutdown()
        server.server_close()
        receiver.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", help="a task under configs/tasks/ with feedback collections (demo)")
    parser.add_argument("--profile", help="e.g. human_feedback")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    task = load_config(task_config_path(args.task), args.set, profile=args.profile)
    if task.feedback is None:
        print(f"error: {args.task} has no feedback collections (try --profile human_feedback)", file=sys.stderr)
        return 2
    with receiving(task, args.port) as (url, _):
        print(f"receiving Label Studio's annotations on {url}; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
