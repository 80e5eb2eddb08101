"""Drive a Dagster UI the way a person does, through its GraphQL API: start it, click "Materialize all".

    with serve(env, log_path) as ui:                   # webserver and daemon, as `make ui` starts them
        backfill = ui.wait_for_backfill(ui.materialize_all(ui.task_assets("demo")), timeout_s=900)

``materialize_all`` sends exactly what the UI's button sends for a selection of assets with
several partitionings: one asset backfill over all partitions. The UI tests and
``benchmarks/bench_ui.py`` use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
  }
}"""
BACKFILL_STATUS = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      assetBackfillData {
        assetBackfillStatuses {
          __typename
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed
          }
          ... on UnpartitionedAssetStatus { assetKey { path } materialized failed }
        }
      }
    }
    ... on PythonError { message }
  }
}"""


@dataclass
class UI:
    url: str
    log: Path

    def gql(self, query: str, **variables) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            reply = json.loads(response.read())
        if "errors" in reply:
            raise RuntimeError(f"GraphQL errors: {reply['errors']}")
        return reply["data"]

    def task_assets(self, task: str, without_groups: tuple[str, ...] = ()) -> list[list[str]]:
        """A task's asset keys, as the UI's selection ``key:"<task>/*" and not group:...`` gives them."""
        nodes = self.gql("{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
        return sorted(
            n["assetKey"]["path"]
            for n in nodes
            if n["assetKey"]["path"][0] == task and n["groupName"] not in without_groups
        )

    def materialize_all(self, assets: list[list[str]]) -> str:
        """Launch one backfill of every partition of ``assets`` (the "Materialize all" button); its id."""
        params = {"assetSelection": [{"path": path} for path in assets], "allPartitions": True}
        launched = self.gql(LAUNCH, params=params)["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"the backfill was not launched: {launched}")
        return launched["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout_s: float) -> dict:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            backfill = self.gql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
            if backfill["__typename"] != "PartitionBackfill":
                raise RuntimeError(f"backfill {backfill_id}: {backfill}")
            if backfill["status"] in TERMINAL:
                return backfill
            time.sleep(2)
        raise TimeoutError(f"backfill {backfill_id} not finished after {timeout_s} s; see {self.log}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(env: dict[str, str], log: Path, timeout_s: float = 180) -> Iterator[UI]:
    """Run `make ui`'s webserver and daemon from the repo root with ``env`` until the block ends."""
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.ui", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = UI(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.time() + timeout_s
        while not _loaded(ui):
            if proc.poll() is not None:
                raise RuntimeError(f"the UI exited with {proc.returncode}; see {log}")
            if time.time() > deadline:
                raise TimeoutError(f"the UI did not load its code location in {timeout_s} s; see {log}")
            time.sleep(1)
        yield ui
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        # The code servers the webserver and daemon started are in the UI's process group, and outlive
        # a SIGTERM (left running, each kept a core busy on the 2-core box): nothing of the group stays.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _loaded(ui: UI) -> bool:
    try:
        return bool(ui.gql("{ assetNodes { id } }")["assetNodes"])
    except (OSError, RuntimeError):
        return False
