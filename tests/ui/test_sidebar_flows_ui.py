"""The sidebar's second wave end to end: a real JupyterLab (token auth on), Debian's Chromium
through Playwright, the OpenAI-compatible backend pointed at the scripted stub server
(tests/stub_server.py) so the model's replies are known, and the stub recording every
request.

- a chat outlives a page reload and a server restart; New chat starts another, the old one
  stays in the list and opens again;
- approval cards for a delete, a run and code run in the kernel: nothing happens before the
  click; Reject ends the turn with one message;
- a hostile model through Fix (candidates that delete and write files, spawn processes,
  open sockets, read os.environ): nothing of it runs, proposals show, and Run it is the
  user's approval; a "runs, review" fix is offered with Apply;
- a notebook with planted secrets: no secret value in any request the stub got, and "What
  was sent" shows the placeholders;
- no model configured: the header says what to set, Ask and Fix show it;
- Light and Dark screenshots in artifacts/ui/flows-*.png.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from lab_harness import ARTIFACTS, CELLS, SIDEBAR_TAB, Lab, browser_page, missing, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/stub_server.py

from stub_server import StubServer, Text, Tools  # noqa: E402

pytestmark = [pytest.mark.timeout(900)]

DONE = '.jp-Devstral-message[data-role="assistant"][data-done="true"]'
IDLE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']"
SETUP = "prices = [3, 4, 5]"
SECRETS = {
    "API_KEY": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "db_password": "hunter2-correct-horse",
    "token": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
}
PLANTED = "\n".join(f'{name} = "{value}"' for name, value in SECRETS.items())
HOSTILE_LINES = [
    "import shutil; shutil.rmtree('data')",
    "open('owned.txt', 'w').write('x')",
    "import subprocess; subprocess.run(['touch', 'spawned'])",
    "import socket; socket.create_connection(('127.0.0.1', 9))",
    "import os; print(os.environ)",
    "import os; os.remove('keep.txt')",
]
HOSTILE = [f"prics = prices\n{line}\ntotal = sum(prics)\nprint(total)" for line in HOSTILE_LINES]
NOTEBOOKS = {
    "keep.ipynb": [("keep-1", "x = 1")],
    "agent.ipynb": [
        ("agent-1", "x = 21"),
        ("agent-2", "y = x * 2\nprint(y)"),
        ("agent-3", "# scratch\nz = 0"),
    ],
    "hostile.ipynb": [("hostile-1", SETUP), ("hostile-2", "total = sum(prics)\nprint(total)")],
    "review.ipynb": [("review-1", SETUP), ("review-2", "mean = sum(prices) / count\nprint(mean)")],
    "secrets.ipynb": [("secrets-1", PLANTED), ("secrets-2", "print('ready')")],
}


def write_notebooks(root: Path, notebooks: dict) -> None:
    for name, cells in notebooks.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source, id=cell_id) for cell_id, source in cells]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, root / name)


@pytest.fixture(scope="module")
def stub():
    with StubServer(models=["stub-model"]) as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory, stub):
    reason = missing()
    if reason and os.environ.get("CI"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("flows") / "root"
    root.mkdir()
    write_notebooks(root, NOTEBOOKS)
    server = Lab(
        root,
        "stub-model",
        ARTIFACTS / "test_sidebar_flows_ui.log",
        backend="openai_compat",
        base_url=stub.base_url,
        run_timeout=20,
    )
    yield server
    server.stop()


def open_in(page, lab, name: str, workspace: str) -> None:
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{name}"))
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    page.set_viewport_size({"width": 1440, "height": 900})
    log = ARTIFACTS / "test_sidebar_flows_ui.console.log"
    page.on("console", lambda m: log.open("a").write(f"{m.type}: {m.text}\n"))
    page.wait_for_selector(SIDEBAR_TAB)
    if not page.locator(".jp-Devstral-panel").is_visible():
        page.click(SIDEBAR_TAB)
    page.wait_for_selector(".jp-Devstral-panel", state="visible")
    page.wait_for_selector(".jp-Devstral-status:has-text('ready')", timeout=30_000)


def run_cells(page, count: int) -> None:
    """Run the first ``count`` cells, each until its prompt shows a count (a key press that
    lands before the editor has focus is tried again)."""
    cells = page.locator(CELLS)
    for i in range(count):
        prompt = cells.nth(i).locator(".jp-InputPrompt")
        for _ in range(3):
            cells.nth(i).locator(".jp-InputArea-editor").click()
            time.sleep(0.2)
            page.keyboard.press("Control+Enter")
            try:
                started = lambda p=prompt: any(ch.isdigit() for ch in p.inner_text())  # noqa: E731
                wait_until(started, 10, "the run")
                break
            except AssertionError:
                continue
        page.wait_for_selector(IDLE)
        time.sleep(0.3)


def send(page, text: str, mode: str = "ask") -> None:
    page.click(f'.jp-Devstral-mode[data-mode="{mode}"]')
    page.fill(".jp-Devstral-input", text)
    page.click(".jp-Devstral-send")


def set_theme(page, name: str) -> None:
    page.click(".lm-MenuBar-item:has-text('Settings')")
    page.hover(".lm-Menu-item:has-text('Theme')")
    page.click(f".lm-Menu-item:has-text('{name}')")
    light = "true" if "Light" in name else "false"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
    time.sleep(1.0)


def both_themes(page, name: str, target=None) -> None:
    """artifacts/ui/flows-<name>-light.png and -dark.png (back to Light after)."""
    if target is not None:
        target.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"flows-{name}-light.png"))
    set_theme(page, "JupyterLab Dark")
    if target is not None:
        target.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"flows-{name}-dark.png"))
    set_theme(page, "JupyterLab Light")


def cell_sources(page) -> list[str]:
    return page.eval_on_selector_all(
        CELLS,
        "cells => cells.map(c => Array.from(c.querySelectorAll('.cm-line'))"
        ".map(l => l.textContent).join('\\n'))",
    )


def tool(name: str, **arguments) -> Tools:
    return Tools([(name, json.dumps(arguments))])


def test_a_chat_outlives_a_reload_and_a_restart_and_new_chat_keeps_it(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in(page, lab, "keep.ipynb", "keep")
        stub.queue(Text("Noted: the number is 7."))
        send(page, "Remember the number 7.")
        page.wait_for_selector(DONE, timeout=60_000)

        def shows_the_chat() -> bool:
            text = page.locator(".jp-Devstral-transcript").inner_text()
            return "Remember the number 7." in text and "Noted: the number is 7." in text

        page.reload()
        page.wait_for_selector(".jp-Devstral-panel", state="visible", timeout=60_000)
        try:
            wait_until(shows_the_chat, 30, "the chat after a reload")
        except AssertionError:
            page.screenshot(path=str(ARTIFACTS / "flows-reload-failed.png"))
            raise

        lab.restart()
        open_in(page, lab, "keep.ipynb", "keep")
        wait_until(shows_the_chat, 30, "the chat after a restart")
        assert page.locator(DONE).count() == 1
        page.screenshot(path=str(ARTIFACTS / "flows-restored-light.png"))

        page.click(".jp-Devstral-newChat")
        wait_until(lambda: page.locator(DONE).count() == 0, 20, "an empty new chat")
        stub.queue(Text("Fresh start."))
        before = len(stub.chat_requests)
        send(page, "What number did I say?")
        page.wait_for_selector(DONE, timeout=60_000)
        asked = json.dumps(stub.chat_requests[before].body["messages"])
        assert "Remember the number 7." not in asked  # a new chat starts empty
        chats = page.locator(".jp-Devstral-chats option")
        assert chats.count() == 2
        first = chats.nth(1).get_attribute("value")
        page.select_option(".jp-Devstral-chats", first)
        wait_until(shows_the_chat, 20, "the first chat again")
        assert "Fresh start." not in page.locator(".jp-Devstral-transcript").inner_text()


def test_approval_cards_for_a_delete_a_run_and_kernel_code(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in(page, lab, "agent.ipynb", "agent")
        run_cells(page, 1)
        stub.queue(
            tool("delete_cell", cell_id="agent-3"),
            tool("run_cell", cell_id="agent-2"),
            tool("run_code", code="print(x + 1)"),
            Text("All three done."),
        )
        send(page, "Delete the scratch cell, run cell 2 and check x.", "agent")
        cells = page.locator(CELLS)
        waiting = page.locator(".jp-Devstral-card[data-status='waiting']")

        waiting.wait_for(timeout=60_000)
        assert "delete cell 3" in waiting.inner_text()
        assert "deletes always ask" in waiting.inner_text()
        time.sleep(1.0)
        assert cells.count() == 3  # nothing happens before the click
        both_themes(page, "approve-delete", waiting)
        waiting.locator(".jp-Devstral-approve").click()
        wait_until(lambda: cells.count() == 2, 20, "the delete")

        waiting.wait_for(timeout=60_000)
        assert "run cell 2" in waiting.inner_text()
        # the code that would run (highlighted on the next frame)
        wait_until(lambda: "y = x * 2" in waiting.inner_text(), 10, "the cell's code")
        time.sleep(0.5)
        assert "42" not in cells.nth(1).locator(".jp-OutputArea").inner_text()
        waiting.locator(".jp-Devstral-approve").click()
        wait_until(lambda: "42" in cells.nth(1).locator(".jp-OutputArea").inner_text(), 30, "run")

        waiting.wait_for(timeout=60_000)
        assert "run code in the kernel" in waiting.inner_text()
        wait_until(lambda: "print(x + 1)" in waiting.inner_text(), 10, "the code")
        both_themes(page, "approve-code", waiting)
        waiting.locator(".jp-Devstral-approve").click()
        page.wait_for_selector(DONE, timeout=60_000)
        done = page.locator(DONE).last
        assert done.get_attribute("data-reason") == "answered"
        code_card = done.locator(".jp-Devstral-card[data-tool='run_code']")
        assert "22" in code_card.inner_text()

        # Reject: the turn ends with one message, the cell stays
        stub.queue(tool("delete_cell", cell_id="agent-1"), Text("never"))
        send(page, "Delete the first cell.", "agent")
        waiting.wait_for(timeout=60_000)
        waiting.locator(".jp-Devstral-reject").click()
        wait_until(lambda: page.locator(DONE).count() == 2, 30, "the rejected turn")
        done = page.locator(DONE).last
        assert done.get_attribute("data-reason") == "rejected"
        assert done.inner_text().count("you rejected: delete cell 1") == 1
        assert cells.count() == 2
        stub.replies.clear()


def test_a_hostile_model_through_fix_only_proposes(lab, stub):
    (lab.root / "data").mkdir(exist_ok=True)
    (lab.root / "data" / "x.csv").write_text("a,b\n1,2\n")
    (lab.root / "keep.txt").write_text("keep me")
    with browser_page(ARTIFACTS) as page:
        open_in(page, lab, "hostile.ipynb", "hostile")
        run_cells(page, 2)
        stub.queue(*[tool("edit_cell", cell_id="hostile-2", source=s) for s in HOSTILE])
        page.locator(".jp-Devstral-fixButton").click()
        page.wait_for_selector(DONE, timeout=120_000)
        done = page.locator(DONE).last
        assert done.get_attribute("data-label") == "needs approval", done.inner_text()
        assert page.locator(".jp-Devstral-card[data-status='waiting']").count() == 0
        result = done.locator(".jp-Devstral-result[data-label='needs approval']")
        assert "Needs your approval" in result.inner_text()
        proposals = result.locator(".jp-Devstral-proposal")
        assert proposals.count() >= 1
        assert "Fix tries candidates in a fork" in done.inner_text()
        assert "agent helper code in the kernel" in done.inner_text()
        # nothing of it happened
        assert (lab.root / "data" / "x.csv").exists() and (lab.root / "keep.txt").exists()
        assert not (lab.root / "owned.txt").exists() and not (lab.root / "spawned").exists()
        assert "sum(prics)" in cell_sources(page)[1]
        both_themes(page, "proposals", result)

        # Run it is the user's approval: the cell gets that source and runs once
        writes = proposals.filter(has_text="owned.txt")
        if writes.count():
            writes.first.locator(".jp-Devstral-runIt").click()
            wait_until(lambda: (lab.root / "owned.txt").exists(), 30, "the approved run")
            cell = page.locator(CELLS).nth(1)
            wait_until(lambda: "12" in cell.locator(".jp-OutputArea").inner_text(), 30, "output")
        stub.replies.clear()


def test_a_fix_that_needs_review_is_offered_with_apply(lab, stub):
    doubtful = "mean = sum(prices) / 7\nprint(mean)"
    failing = "mean = sum(prices) / cnt\nprint(mean)"
    with browser_page(ARTIFACTS) as page:
        open_in(page, lab, "review.ipynb", "review")
        run_cells(page, 2)
        stub.queue(
            *[
                tool("edit_cell", cell_id="review-2", source=s)
                for s in (doubtful, failing + " ", failing + "  ", failing + "   ")
            ]
        )
        page.locator(".jp-Devstral-fixButton").click()
        page.wait_for_selector(DONE, timeout=120_000)
        result = page.locator(".jp-Devstral-result[data-label='runs, review']")
        result.wait_for(timeout=10_000)
        assert result.locator(".jp-Devstral-reasons li").count() >= 1
        assert result.locator(".jp-Devstral-diffWord", has_text="7").count() >= 1
        assert "/ count" in cell_sources(page)[1]  # offered, not applied
        both_themes(page, "review", result)
        result.locator(".jp-Devstral-apply").click()
        wait_until(lambda: "/ 7" in cell_sources(page)[1], 10, "the applied edit")
        assert "Applied" in result.locator(".jp-Devstral-apply").inner_text()
        stub.replies.clear()


def test_planted_secrets_never_reach_the_model_and_what_was_sent_shows_placeholders(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in(page, lab, "secrets.ipynb", "secrets")
        stub.queue(Text("It sets credentials; move them out of the notebook."))
        before = len(stub.chat_requests)
        send(page, "What does this notebook set up?")
        page.wait_for_selector(DONE, timeout=60_000)
        bodies = json.dumps([r.body for r in stub.chat_requests[before:]])
        assert len(stub.chat_requests) > before
        for value in SECRETS.values():
            assert value not in bodies, value
        sent = page.locator(DONE).last.locator("details.jp-Devstral-sent")
        sent.locator("> summary").click()
        text = sent.locator(".jp-Devstral-sentText").last.inner_text()  # the latest is open
        assert "<secret:API_KEY>" in text and "<secret:db_password>" in text
        assert "to: http://127.0.0.1" in text and "model: stub-model" in text
        for value in SECRETS.values():
            assert value not in text
        assert sent.locator("pre b, pre script, pre img").count() == 0  # text, not HTML
        both_themes(page, "what-was-sent", sent)


def test_no_model_configured_is_one_visible_actionable_message(tmp_path):
    reason = missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path / "root"
    root.mkdir()
    write_notebooks(root, {"nomodel.ipynb": [("nm-1", "x = 1"), ("nm-2", "y = x +")]})
    lab = Lab(
        root,
        "",
        ARTIFACTS / "test_sidebar_flows_ui-nomodel.log",
        env={"DEVSTRAL_MODEL": None, "DEVSTRAL_BACKEND": None},
    )
    try:
        with browser_page(ARTIFACTS) as page:
            page.goto(lab.url("lab/workspaces/nomodel/tree/nomodel.ipynb"))
            page.wait_for_selector(IDLE, timeout=60_000)
            page.set_viewport_size({"width": 1440, "height": 900})
            if not page.locator(".jp-Devstral-panel").is_visible():
                page.click(SIDEBAR_TAB)
            setup = page.locator(".jp-Devstral-setup")
            setup.wait_for(timeout=30_000)
            assert "--DevstralConfig.model=/path/to/model.gguf" in setup.inner_text()
            assert "MISTRAL_API_KEY" in setup.inner_text()
            assert setup.is_visible()
            send(page, "Hello?")
            notice = page.locator(".jp-Devstral-notice[data-reason='no_model']")
            notice.first.wait_for(timeout=30_000)
            assert "--DevstralConfig.model=" in notice.first.inner_text()
            run_cells(page, 2)
            page.locator(".jp-Devstral-fixButton").click()
            wait_until(lambda: notice.count() == 2, 30, "the Fix notice")
            assert notice.nth(1).is_visible()
            both_themes(page, "no-model", setup)
    finally:
        lab.stop()
