"""The UI in a real browser, as a new user drives it: the demo's lineage, "Materialize all", the leaderboard.

Uses the system Chromium from Debian's ``chromium`` package (Playwright's own browser download
is not reachable here); skipped without it. ``make ui-check`` installs both and runs this file.
Screenshots go to tests/artifacts/. Marked ``ui`` too: a backfill through the UI is for ``make ui-check``, never
``make test``, whether or not the machine has Chromium.
"""

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.ui,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (make ui-check)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (make ui-check)")

SHOTS = Path(__file__).resolve().parent.parent / "artifacts"
# The README's link: the demo's assets without its incoming group, every group expanded.
DEMO_LINEAGE = "/asset-groups~key%3A%22demo%2F*%22%20and%20not%20group%3Ademo_incoming?expanded=" + "%2C".join(
    f"global%40global%3Ademo_{g}" for g in ("data", "models", "reward_models", "annotation", "rl")
)
BACKFILLS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id } } } }"


@pytest.fixture
def page(ui):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1600, "height": 1000})
        browser.close()


def test_materialize_all_from_the_lineage_page_then_read_the_leaderboard(ui, page):
    ui, _ = ui
    SHOTS.mkdir(exist_ok=True)
    page.goto(ui.url + DEMO_LINEAGE)
    page.get_by_text("reward_model", exact=True).first.wait_for()  # groups are expanded: assets show
    assert page.get_by_text("Join the Dagster community").count() == 0  # nux is off
    page.screenshot(path=SHOTS / "1-demo-lineage.png")

    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog")
    sync_api.expect(dialog).to_contain_text("All partitions")
    page.screenshot(path=SHOTS / "2-launch-backfill.png")
    dialog.get_by_role("button", name="Launch backfill").click()
    sync_api.expect(page.get_by_text("Created backfill").first).to_be_visible()

    (backfill,) = ui.gql(BACKFILLS)["partitionBackfillsOrError"]["results"]
    result = ui.wait_for_backfill(backfill["id"], timeout_s=900)
    page.goto(f"{ui.url}/runs/b/{backfill['id']}")
    # The backfill's per-asset table renders only the rows near its scroll position (a virtual list), so
    # the demo's later assets, the leaderboard among them, are not in the page until scrolled to.
    page.locator("a", has_text="demo / ").first.wait_for()
    page.screenshot(path=SHOTS / "3-backfill-done.png", full_page=True)
    assert result["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), result

    read_the_leaderboard(page, ui.url)


def read_the_leaderboard(page, url: str) -> None:
    """``demo/leaderboard``'s latest materialization: the typed table inline on the asset page (its
    schema, with each column's meaning, one click away) and the plot one click away. Screenshots 4-6."""
    page.goto(f"{url}/assets/demo/leaderboard")
    table_row = page.locator("tr").filter(has=page.get_by_text("table", exact=True))
    table = table_row.locator("table:has(th:text-is('gold'))")
    table.first.wait_for(timeout=60_000)  # a typed table, shown on the page itself
    for algorithm in ("sft", "nll", "a_lol", "dpo", "pro", "ppo", "grpo", "fg_ppo"):
        sync_api.expect(table.first.locator(f"td:text-is('{algorithm}')")).to_have_count(1)
    legend = page.locator("tr").filter(has=page.get_by_text("legend", exact=True))
    sync_api.expect(legend.locator("td:text-is('gold')").first).to_be_visible()
    table.first.scroll_into_view_if_needed()
    page.screenshot(path=SHOTS / "4-leaderboard.png", full_page=True)
    table_row.get_by_text("Show schema").click()  # one click: each column's type and meaning
    schema = page.get_by_role("dialog")
    sync_api.expect(schema).to_contain_text("the ranking column (rows best first)")
    page.screenshot(path=SHOTS / "5-leaderboard-schema.png")
    schema.get_by_role("button", name="Close").click()
    sync_api.expect(schema).to_be_hidden()
    plot_row = page.locator("tr").filter(has=page.get_by_text("plot", exact=True))
    plot_row.get_by_text("[Show Markdown]").click()  # one click: the bar chart
    plot = page.get_by_role("dialog").locator("img[alt='plot']")
    sync_api.expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 100")  # the PNG decoded
    page.wait_for_timeout(1000)  # the dialog's fade-in
    page.screenshot(path=SHOTS / "6-leaderboard-plot.png")
