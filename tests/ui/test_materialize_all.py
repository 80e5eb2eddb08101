""" "Materialize all" over the demo's assets, sent to a running UI exactly as the UI sends it.

The UI's button, with assets of several partitionings selected, launches one asset backfill over
all partitions (``launchPartitionBackfill`` with ``allPartitions: true``). Its runs carry
partition-range tags, not a partition key, so this is what checks that every partitioned asset
writes and reads one ref per partition.
"""

import json

import pandas as pd
import pytest

# A whole backfill through the webserver and daemon: minutes, so it runs in `make ui-check`, not `make test`.
pytestmark = pytest.mark.ui

PARTITIONS = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { partitionKeys }
  }
}"""


@pytest.fixture(scope="module")
def backfill(ui):
    ui, root = ui
    assets = ui.task_assets("demo", without_groups=("demo_incoming",))
    backfill = ui.wait_for_backfill(ui.materialize_all(assets), timeout_s=900)
    return ui, root / "artifacts", assets, backfill


def test_one_backfill_materializes_every_asset_and_partition(backfill):
    _, _, assets, result = backfill
    assert result["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), result
    statuses = result["assetBackfillData"]["assetBackfillStatuses"]
    assert sorted(s["assetKey"]["path"] for s in statuses) == assets
    for s in statuses:
        name = "/".join(s["assetKey"]["path"])
        if s["__typename"] == "UnpartitionedAssetStatus":
            assert s["materialized"] and not s["failed"], name
        else:
            assert s["numPartitionsMaterialized"] == s["numPartitionsTargeted"] > 0, name
            assert s["numPartitionsFailed"] == 0, name


def store_partition(asset: str, partition: str) -> str | None:
    """Where the store keeps an asset partition's artifact, as a path fragment (None: a pass-through)."""
    if asset == "annotated_responses":
        scorer, shard = partition.split("|")
        return f"/annotated_responses/{scorer}/shard-{shard}/"
    if asset == "policy" and partition == "sft":
        return None  # the sft partition is the SFT model itself
    return f"/{asset}/{partition}/"


def test_every_partition_has_its_own_ref_pointing_at_its_own_artifact(backfill):
    ui, artifacts, assets, _ = backfill
    refs = artifacts / "_refs"
    for path in assets:
        (folder,) = refs.joinpath(*path).iterdir()  # one configuration: one configuration key
        partitions = ui.gql(PARTITIONS, path=path)["assetNodeOrError"]["partitionKeys"]
        if not partitions:
            assert [f.name for f in folder.iterdir()] == ["__all__.json"], path
            continue
        assert sorted(f.stem for f in folder.glob("*.json")) == sorted(partitions), path
        for partition in partitions:
            ref = json.loads((folder / f"{partition}.json").read_text())
            fragment = store_partition(path[-1], partition)
            assert fragment is None or fragment in ref["path"], (path, partition, ref["path"])


def test_the_leaderboard_is_written(backfill):
    _, artifacts, _, _ = backfill
    board = pd.read_csv(artifacts / "demo" / "leaderboard.csv")
    assert sorted(board["algorithm"]) == ["a_lol", "dpo", "fg_ppo", "grpo", "nll", "ppo", "pro", "sft"]
    assert board["gold"].notna().all()
