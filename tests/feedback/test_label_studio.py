"""Human feedback through the real annotation tool, end to end (``make feedback-check``).

The micro demo trains its policies under the human-feedback profile; their generations are pushed to Label
Studio; annotations are submitted through the tool's API (a fine-grained one with two spans and a correction, a
comparison, a 3-way ranking by two annotators, and a ranking with a shared rank); the sensor writes one batch, a
second poll nothing; the collections' tables and the RM files count exactly those rows; the four human reward
models retrain on them. In Chromium, a span marked on the fine-grained page reaches the R2 file. The API token
never shows in a log, a batch, an artifact or Dagster's records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from assets.feedback import annotations_sensor, table_job
from pipelines.cli import main
from pipelines.task_defs import build_task_definitions
from resources import annotation_tool, build_resources
from rlhf_core.config import load_config, task_config_path
from rlhf_core.data.loaders.qa_feedback import PAIRS
from rlhf_core.feedback.batches import batch_dirs
from rlhf_core.feedback.label_studio import LabelStudio
from rlhf_core.stages.feedback import batch_folder
from tests.dagster.test_pipeline import MICRO, micro_args, own_instance

# the profile's human RMs and the RM file each trains on
HUMAN_RMS = {
    "human_ranking": "ranks_human",
    "human_holistic": "human_pairs",
    "human_relevance": "human_rel_labels",
    "human_factuality": "human_fact_labels",
}
ALGORITHMS = "policy.algorithms=[nll, dpo, pro]"  # the policies the collections read, and no more
# enough steps that the three losses move the micro policies apart (one epoch of 40 rows barely moves them)
POLICY_TRAIN = "policy.train={epochs: 3, batch_size: 8, lr: 5.0e-3, max_length: 96}"


def feedback_overrides(tool: dict, root: Path) -> list[str]:
    return [
        ALGORITHMS,
        POLICY_TRAIN,
        f"feedback.url={tool['url']}",
        f"feedback.folder={root / 'feedback'}",
        "feedback.collections.qa_human.sample=4",
        "feedback.collections.ranks_human.sample=2",
    ]


@pytest.fixture(scope="module")
def demo(tool, tmp_path_factory):
    """The micro demo with the human-feedback profile, its policies built as README says (`rlhf run demo
    --profile human_feedback --select rl`: without the human RMs, which need labels first)."""
    root = tmp_path_factory.mktemp("feedback_demo")
    overrides = feedback_overrides(tool, root)
    with own_instance(root), pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABEL_STUDIO_API_KEY", tool["token"])
        flags = [*micro_args(), *(a for o in overrides for a in ("--set", o)), "--profile", "human_feedback"]
        assert main(["run", "demo", *flags, "--select", "rl"]) == 0
        task = load_config(task_config_path("demo"), MICRO + overrides, profile="human_feedback")
        assert not any(k.startswith("human_") for k in refs(root, "reward_model"))  # none trained yet
        yield task, root


def materialize(task, names: list[str]) -> dg.ExecuteInProcessResult:
    """Materialize the named assets of the task's graph; their parents are read from the store."""
    return dg.materialize(
        build_task_definitions(task).assets,
        resources=build_resources(),
        instance=dg.DagsterInstance.get(),
        selection=[dg.AssetKey([task.task, n]) for n in names],
    )


def refs(root: Path, asset: str) -> dict[str, dict]:
    """The refs of an asset under the task's configuration key (the only one this store holds), by partition."""
    (folder,) = (root / "artifacts" / "_refs" / "demo" / asset).iterdir()
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def table(root: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(Path(refs(root, name)["__all__"]["path"]) / "table.parquet")


def by_id(rows: pd.DataFrame, row_id: str) -> pd.DataFrame:
    return rows[rows["id"] == row_id]


def meta(result: dg.ExecuteInProcessResult, name: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == name]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def labels(choices: dict[str, str], to: str) -> list[dict]:
    return [
        {
            "id": n,
            "from_name": n,
            "to_name": to,
            "type": "choices",
            "value": {"choices": [c]},
        }
        for n, c in choices.items()
    ]


def project_tasks(ls: LabelStudio, task, collection: str, page: str) -> tuple[int, list[dict]]:
    pid = annotation_tool.project_ids(ls, task, collection)[page]
    return pid, sorted(ls.tasks(pid), key=lambda t: t["id"])


def word_span(text: str, first: int, last: int) -> tuple[int, int]:
    """Character offsets of words ``first..last`` (inclusive) of ``text``."""
    import re

    words = [m.span() for m in re.finditer(r"\S+", text)]
    return words[first][0], words[last][1]


def poll(task, collection: str, cursor: str | None = None):
    """One tick of the collection's sensor, after the tick that left ``cursor``."""
    sensor = annotations_sensor(task, collection, table_job(task, collection))
    return sensor(dg.build_sensor_context(instance=dg.DagsterInstance.get(), cursor=cursor))


def test_labels_from_the_tool_become_rm_files_and_retrain_a_reward_model(demo, tool, monkeypatch, capfd):
    task, root = demo
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", tool["token"])
    pushed = materialize(task, ["qa_human_items", "ranks_human_items"])
    assert meta(pushed, "qa_human_items")["fg_fine_grained_pushed"] == 4
    assert meta(pushed, "ranks_human_items")["crs_ranking_pushed"] == 2
    again = materialize(task, ["qa_human_items", "ranks_human_items"])  # a re-push never duplicates
    assert meta(again, "qa_human_items")["fg_comparison_already_there"] == 4
    assert meta(again, "ranks_human_items")["crs_ranking_pushed"] == 0

    ls = LabelStudio(tool["url"], tool["token"])
    second, third = ls.add_user("second@localhost"), ls.add_user("third@localhost")
    # [FG] fine-grained on one item: two spans (the first word Irrelevant, the last Unverifiable) and a correction
    _, fg_tasks = project_tasks(ls, task, "qa_human", "fg_fine_grained")
    fg1 = max(fg_tasks, key=lambda t: len(t["data"]["answer_1"].split()))  # the browser test takes the other
    answer = fg1["data"]["answer_1"]
    n_words = len(answer.split())
    assert n_words >= 2, answer  # the micro policies say little
    spans = [word_span(answer, 0, 0), word_span(answer, n_words - 1, n_words - 1)]
    result = [
        {
            "id": f"s{i}",
            "from_name": "errors",
            "to_name": "answer",
            "type": "labels",
            "value": {"start": a, "end": b, "text": answer[a:b], "labels": [label]},
        }
        for i, ((a, b), label) in enumerate(zip(spans, ["Irrelevant", "Unverifiable"]))
    ]
    result.append(
        {
            "id": "c",
            "from_name": "corrected",
            "to_name": "answer",
            "type": "textarea",
            "value": {"text": ["A corrected answer."]},
        }
    )
    ls.annotate(fg1["id"], result)
    # [FG] comparison of the same item: the first answer of each pair wins where the texts differ; a tie where
    # they are the same text (a pair of equal texts is no preference)
    _, cmp_tasks = project_tasks(ls, task, "qa_human", "fg_comparison")
    cmp1 = next(t for t in cmp_tasks if t["data"]["item_id"] == fg1["data"]["item_id"])
    texts = [cmp1["data"][f"answer_{k}"] for k in range(1, 5)]
    choices = {f"pair_{i + 1}_{j + 1}": "Equal" if texts[i] == texts[j] else f"Answer {i + 1}" for i, j in PAIRS}
    decided = sum(c != "Equal" for c in choices.values())
    assert decided > 0, texts  # the policies must differ somewhere for a pair to exist
    ls.annotate(cmp1["id"], labels(choices, "answer_1"))
    # [CRS] one item ranked by two annotators, and a ballot with a shared rank by a third
    _, (rk1, _) = project_tasks(ls, task, "ranks_human", "crs_ranking")
    ls.annotate(rk1["id"], labels({"rank_1": "1", "rank_2": "2", "rank_3": "3"}, "response_1"))
    ls.annotate(
        rk1["id"],
        labels({"rank_1": "2", "rank_2": "1", "rank_3": "3"}, "response_1"),
        completed_by=second,
    )
    ls.annotate(
        rk1["id"],
        labels({"rank_1": "1", "rank_2": "1", "rank_3": "3"}, "response_1"),
        completed_by=third,
    )

    for collection in ("qa_human", "ranks_human"):
        first = poll(task, collection)
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        assert isinstance(poll(task, collection, first.cursor), dg.SkipReason)  # re-polling changes nothing
        assert [b.name for b in batch_dirs(batch_folder(task, collection))] == [first.cursor]

    files = materialize(
        task,
        [
            "qa_human",
            "ranks_human",
            "human_rel_labels",
            "human_fact_labels",
            "human_pairs",
        ],
    )
    qa, ranks = meta(files, "qa_human"), meta(files, "ranks_human")
    assert (qa["kept_rows"], qa["quarantined_rows"]) == (1, 0)
    assert (
        ranks["kept_rows"],
        ranks["quarantined_rows"],
        ranks["dropped_merged_into_the_item_ranking"],
    ) == (1, 1, 1)
    assert meta(files, "human_pairs")["kept_rows"] == decided  # ties give no pair
    assert meta(files, "human_rel_labels")["kept_rows"] == 1 and meta(files, "human_fact_labels")["kept_rows"] == 1

    # every human RM retrains on its table: R1/R2 on the spans, holistic on the comparison, ranking on the ballots
    for name in HUMAN_RMS:
        trained = dg.materialize(
            build_task_definitions(task).assets,
            resources=build_resources(),
            instance=dg.DagsterInstance.get(),
            partition_key=name,
            selection=[dg.AssetKey(["demo", "reward_model"])],
        )
        assert trained.success, name
    # lineage: each RM's artifact is keyed by its table's content; the collection's lineage file names the annotations
    rms = refs(root, "reward_model")
    for name, data in HUMAN_RMS.items():
        rm_meta = json.loads((Path(rms[name]["path"]) / "meta.json").read_text())
        assert rm_meta["key_parts"]["parents"][f"data/{data}"] == refs(root, data)["__all__"]["content_hash"], name
    used = {
        c: json.loads((Path(refs(root, c)["__all__"]["path"]) / "lineage.json").read_text())["annotations_used"]
        for c in ("qa_human", "ranks_human")
    }
    assert len(used["ranks_human"]) == 2 and all(a.startswith("crs_ranking#") for a in used["ranks_human"])
    assert sorted(a.split("#")[0] for a in used["qa_human"]) == ["fg_comparison", "fg_fine_grained"]

    # the token: in no log, batch, artifact or Dagster record
    token = tool["token"]
    out, err = capfd.readouterr()
    assert token not in out + err
    for path in [
        *(root / "artifacts").rglob("*"),
        *(root / "feedback").rglob("*"),
        *(root / "dagster_home").rglob("*"),
    ]:
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    logs = dg.DagsterInstance.get().all_logs
    for run in dg.DagsterInstance.get().get_runs():
        assert token not in json.dumps([str(e) for e in logs(run.run_id)])


def test_a_missing_token_is_one_clear_error(demo, monkeypatch):
    task, _ = demo
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(Exception, match="set LABEL_STUDIO_API_KEY"):
        poll(task, "qa_human")


# ----------------------------------------------------------------------------- in the browser

CHROMIUM = shutil.which("chromium")
SHOTS = Path(__file__).resolve().parent.parent / "artifacts"
# the character range of words first..last of the answer's text on the page (Label Studio's rich text)
WORDS_ON_PAGE = """([answer, first, last]) => {
  const box = [...document.querySelectorAll('.lsf-htx-richtext')].find(e => e.textContent.includes(answer));
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let node; while ((node = walker.nextNode()) && !node.textContent.includes(answer)) {}
  const words = [...node.textContent.matchAll(/\\S+/g)];
  const range = document.createRange();
  range.setStart(node, words[first].index);
  range.setEnd(node, words[last].index + words[last][0].length);
  const rects = range.getClientRects(), a = rects[0], b = rects[rects.length - 1];
  return [a.left + 1, a.top + a.height / 2, b.right - 1, b.top + b.height / 2];
}"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_a_span_marked_in_the_browser_reaches_the_rm_files(demo, tool, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the ui extra)")
    task, root = demo
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", tool["token"])
    ls = LabelStudio(tool["url"], tool["token"])
    pid, fg_tasks = project_tasks(ls, task, "qa_human", "fg_fine_grained")
    todo = next(t for t in fg_tasks if not t["annotations"])
    answer = todo["data"]["answer_1"]
    last = min(len(answer.split()), 5) - 1
    SHOTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{tool['url']}/user/login/")
        page.fill("input[name=email]", tool["username"])
        page.fill("input[name=password]", tool["password"])
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        page.goto(f"{tool['url']}/projects/{pid}/data?task={todo['id']}")
        page.locator(".lsf-htx-richtext", has_text=answer).first.wait_for(timeout=120_000)
        page.screenshot(path=SHOTS / "feedback-1-fine-grained-page.png")
        regions = page.get_by_role("treeitem").filter(has_text="Unverifiable")
        assert regions.count() == 0  # a fresh item: no region, no draft
        page.get_by_text("Unverifiable", exact=True).first.click()  # the error type, then the span
        x0, y0, x1, y1 = page.evaluate(WORDS_ON_PAGE, [answer, 0, last])
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=10)
        page.mouse.up()
        # the new region is listed with its type in the Regions panel
        sync_api.expect(regions).to_have_count(1)
        page.screenshot(path=SHOTS / "feedback-2-span-marked.png")
        page.get_by_role("button", name="Submit").click()
        for _ in range(60):  # the tool has stored it
            if next(t for t in ls.tasks(pid) if t["id"] == todo["id"])["annotations"]:
                break
            page.wait_for_timeout(1000)
        page.wait_for_timeout(1000)
        page.screenshot(path=SHOTS / "feedback-3-submitted.png")
        browser.close()

    (before,) = batch_dirs(batch_folder(task, "qa_human"))  # the API test's
    tick = poll(task, "qa_human", before.name)
    assert isinstance(tick, dg.SensorResult) and tick.cursor > before.name
    files = materialize(task, ["qa_human", "human_fact_labels"])
    assert meta(files, "qa_human")["kept_rows"] == 2 and meta(files, "human_fact_labels")["kept_rows"] == 2
    person = f"{todo['data']['item_id']}/{tool['username']}"  # a row's id: the item and its annotator
    (row,) = by_id(table(root, "qa_human"), person).to_dict("records")
    start, end = word_span(answer, 0, last)
    assert json.loads(row["errors"]) == [{"error type": "Unverifiable", "start": start, "end": end}]
    # the row is in the R2 file: the answer's words after "answer:", the marked words' segment(s) F-ERR
    (r2,) = by_id(table(root, "human_fact_labels"), person).to_dict("records")
    words, tags = list(r2["text"]), list(r2["feedback_tags"])
    # the answer follows "answer:" and opens with its first segment's marker
    at = next(i for i in range(len(words) - 1) if words[i : i + 2] == ["answer:", "</s>"]) + 1
    assert [w for w in words[at:] if w != "</s>"] == answer.split()
    assert tags[at] == "F-ERR"  # the marked span starts at word 0: its segment is a factual error
