"""The Devstral sidebar end to end: a real JupyterLab (token auth on), Debian's Chromium
through Playwright, the small real model. A failing cell gets "Fix with Devstral": the panel
streams the agent's steps, the cell is edited and re-run in the notebook's kernel, Undo
restores it; then a question in Ask mode gets a streamed answer. Screenshots land in
artifacts/ui/."""

from __future__ import annotations

import pytest
from lab_harness import ARTIFACTS, browser_page, cell_sources, open_notebook, run_all, wait_until

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

SETUP = "prices = [3, 4, 5]"
BROKEN = "total = sum(prics)\nprint(total)"
DONE = '.jp-Devstral-message[data-role="assistant"][data-done="true"]'


def notebooks(model):
    """What the ``lab`` fixture (conftest.py) serves."""
    return {"demo.ipynb": [SETUP, BROKEN]}


def test_status_endpoint_needs_the_token(lab):
    import urllib.error
    import urllib.request

    assert lab.api("devstral/status")["backend"] == "llama_cpp"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{lab.port}/devstral/status", timeout=10)
    assert info.value.code in (401, 403)


def test_fix_undo_and_ask(lab):
    with browser_page(ARTIFACTS) as page:
        open_notebook(page, lab, "demo.ipynb")
        page.wait_for_selector(
            ".jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id='devstral-sidebar']"
        )
        run_all(page)
        fix = page.wait_for_selector(".jp-Devstral-fixButton", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "1-failing-cell.png"))

        fix.click()
        page.wait_for_selector(".jp-Devstral-panel", state="visible")
        page.wait_for_selector(".jp-Devstral-card", timeout=120_000)  # steps stream in
        done = page.wait_for_selector(DONE, timeout=300_000)
        page.screenshot(path=str(ARTIFACTS / "2-fixed.png"))
        assert done.get_attribute("data-reason") == "fixed", done.inner_text()
        assert "prics" not in cell_sources(page)[1]  # edited in the browser (the model's words)
        output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(1)
        wait_until(
            lambda: "12" in output.locator(".jp-OutputArea").inner_text(), 30, "re-run output"
        )
        assert page.locator(".jp-Devstral-fixButton").count() == 0  # it runs now

        page.click(".jp-Devstral-undo")
        wait_until(lambda: "sum(prics)" in cell_sources(page)[1], 30, "undo")
        page.screenshot(path=str(ARTIFACTS / "3-undone.png"))

        page.click('.jp-Devstral-mode[data-mode="ask"]')
        page.fill(".jp-Devstral-input", "In one sentence: what does this notebook compute?")
        page.click(".jp-Devstral-send")
        wait_until(lambda: page.locator(DONE).count() == 2, 300, "the answer")
        answer = page.locator(DONE).nth(1)
        page.screenshot(path=str(ARTIFACTS / "4-answer.png"))
        assert answer.get_attribute("data-reason") == "answered"
        assert len(answer.inner_text().strip()) > 10
        assert page.locator(".jp-Devstral-usage").count() >= 1

        # Stop cancels a long answer as it streams: the turn ends "cancelled", and quickly
        page.fill(
            ".jp-Devstral-input", "Write a long, detailed essay about every cell, step by step."
        )
        page.click(".jp-Devstral-send")
        streaming = page.locator('.jp-Devstral-message[data-role="assistant"]').nth(2)
        wait_until(lambda: len(streaming.inner_text()) > 40, 120, "streamed text")
        page.click(".jp-Devstral-stop")
        wait_until(lambda: page.locator(DONE).count() == 3, 20, "the stop")
        assert page.locator(DONE).nth(2).get_attribute("data-reason") == "cancelled"
        page.screenshot(path=str(ARTIFACTS / "5-stopped.png"))
