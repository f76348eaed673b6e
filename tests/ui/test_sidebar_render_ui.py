"""The sidebar's answers and Fix flow look and behave like JupyterLab, end to end: a real
JupyterLab (token auth on), Debian's Chromium through Playwright at 1440x900, and the
OpenAI-compatible backend pointed at the scripted stub server (tests/stub_server.py) so the
model's replies are known.

- an answer's markdown renders as elements (heading, list, table, link in a new tab), code
  blocks are highlighted like cells and can be inserted once complete, and hostile HTML in a
  reply runs nothing and loads nothing;
- Fix sits in the cell toolbar and on the error itself, on screen; a fix shows one card per
  attempt with its candidates folded and no internal fields, and a readable diff;
- the transcript follows new text unless the user scrolled up ("Jump to latest");
- the Light and the Dark theme: screenshots in artifacts/ui/render-*.png, fix-card-*.png.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from lab_harness import (
    ARTIFACTS,
    CELLS,
    SIDEBAR_TAB,
    Lab,
    browser_page,
    missing,
    wait_until,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/stub_server.py

from stub_server import StubServer, Text, Tools  # noqa: E402

pytestmark = [pytest.mark.timeout(600)]

SETUP = "prices = [3, 4, 5]"
BROKEN = "total = sum(prics)\nprint(total)"
BROKEN_ID = "broken-cell"
DONE = '.jp-Devstral-message[data-role="assistant"][data-done="true"]'
TRANSCRIPT = ".jp-Devstral-transcript"
IDLE = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']"

ANSWER = """## Findings

The second cell fails because of a **typo**:

- `prics` is not defined
- `prices` is

| name | defined |
|------|---------|
| prices | yes |
| prics | no |

The total is $\\sum_i p_i$. See [the tutorial](https://docs.python.org/3/tutorial/) for more.
<img src=x onerror="window.__devstralPwned = 'img'"><script>window.__devstralPwned = 'script'</script>

```python
total = sum(prices)
print(total)
```"""


@pytest.fixture(scope="module")
def stub():
    with StubServer(models=["stub-model"]) as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory, stub):
    """``jupyter lab`` whose Devstral backend is the stub: openai_compat at its base URL."""
    reason = missing()
    if reason and os.environ.get("CI"):  # CI installs all of it: a gap there is a failure
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("render-lab") / "root"
    root.mkdir()
    for name in ("ask.ipynb", "fix.ipynb", "agent.ipynb"):  # each test edits its own
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(SETUP),
            nbformat.v4.new_code_cell(BROKEN, id=BROKEN_ID),
        ]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, root / name)
    server = Lab(
        root,
        "stub-model",
        ARTIFACTS / "test_sidebar_render_ui.log",
        backend="openai_compat",
        base_url=stub.base_url,
    )
    yield server
    server.stop()


def open_in_new_workspace(page, lab, name: str, workspace: str) -> None:
    """``open_notebook`` in a workspace of its own: no tab or panel of another test comes back."""
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{name}"))
    page.wait_for_selector(".jp-NotebookPanel", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)


def open_sidebar(page) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    log = ARTIFACTS / "test_sidebar_render_ui.console.log"
    page.on("console", lambda m: log.open("a").write(f"{m.type}: {m.text}\n"))
    page.wait_for_selector(SIDEBAR_TAB)
    if not page.locator(".jp-Devstral-panel").is_visible():  # the workspace may have it open
        page.click(SIDEBAR_TAB)
    page.wait_for_selector(".jp-Devstral-panel", state="visible")
    # chats are kept per notebook (on the server): each test starts a new one
    page.wait_for_selector(".jp-Devstral-status:has-text('ready')", timeout=30_000)
    if page.locator(".jp-Devstral-newChat").is_enabled():
        page.click(".jp-Devstral-newChat")
        wait_until(lambda: page.locator(".jp-Devstral-message").count() == 0, 20, "a new chat")


def ask(page, text: str) -> None:
    page.click('.jp-Devstral-mode[data-mode="ask"]')
    page.fill(".jp-Devstral-input", text)
    page.click(".jp-Devstral-send")


def set_theme(page, name: str) -> None:
    """Settings → Theme → ``name`` (the menu runs ``apputils:change-theme``)."""
    page.click(".lm-MenuBar-item:has-text('Settings')")
    page.hover(".lm-Menu-item:has-text('Theme')")
    page.click(f".lm-Menu-item:has-text('{name}')")
    light = "true" if "Light" in name else "false"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
    time.sleep(1.0)  # the theme's CSS applies


# the element's text and its effective background (translucent layers composited on a canvas)
LUMINANCE = """el => {
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = getComputedStyle(n).backgroundColor;
    layers.push(bg);
    const probe = document.createElement('canvas').getContext('2d');
    probe.fillStyle = bg;
    probe.fillRect(0, 0, 1, 1);
    if (probe.getImageData(0, 0, 1, 1).data[3] === 255) break;
  }
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 1, 1);
  for (const bg of layers.reverse()) { ctx.fillStyle = bg; ctx.fillRect(0, 0, 1, 1); }
  const lum = d => (0.2126 * d[0] + 0.7152 * d[1] + 0.0722 * d[2]) / 255;
  const background = lum(ctx.getImageData(0, 0, 1, 1).data);
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = getComputedStyle(el).color;
  ctx.fillRect(0, 0, 1, 1);
  return {text: lum(ctx.getImageData(0, 0, 1, 1).data), background};
}"""


def check_contrast(locator, dark: bool) -> None:
    lum = locator.evaluate(LUMINANCE)
    assert abs(lum["text"] - lum["background"]) > 0.45, lum
    assert (lum["background"] < 0.3) == dark, lum


def test_answer_renders_as_jupyterlab_markdown_with_highlighted_code(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in_new_workspace(page, lab, "ask.ipynb", "render")
        open_sidebar(page)
        stub.queue(Text(ANSWER, delay_per_chunk=0.05))
        ask(page, "Why does the second cell fail?")

        code = page.locator(".jp-Devstral-code").first
        page.wait_for_selector(DONE, timeout=60_000)
        answer = page.locator(DONE).first
        assert answer.get_attribute("data-reason") == "answered"

        # markdown as elements, through JupyterLab's renderer
        md = answer.locator(".jp-Devstral-markdown.jp-RenderedHTMLCommon")
        wait_until(lambda: answer.locator("h2").count() == 1, 10, "the heading")
        assert answer.locator("h2").inner_text().strip() == "Findings"
        assert answer.locator("ul > li").count() == 2
        assert answer.locator("li code").first.inner_text() == "prics"
        assert answer.locator("strong").inner_text() == "typo"
        assert answer.locator("table td").count() == 4
        link = answer.locator("a", has_text="the tutorial")
        assert link.get_attribute("target") == "_blank"
        assert "noopener" in link.get_attribute("rel")
        assert "##" not in md.first.inner_text() and "|---" not in answer.inner_text()
        # math through JupyterLab's LaTeX typesetter (MathJax)
        wait_until(lambda: answer.locator("mjx-container").count() == 1, 20, "typeset math")

        # hostile HTML: sanitized, nothing ran, the remote image became a link
        time.sleep(0.5)
        assert page.evaluate("window.__devstralPwned") is None
        assert answer.locator("script, img, [onerror]").count() == 0

        # the code block: highlighted with CodeMirror's token classes, complete, insertable
        assert code.get_attribute("data-complete") == "true"
        tokens = code.locator(".jp-Devstral-highlight span[class]")
        wait_until(lambda: tokens.count() >= 3, 10, "highlighted tokens")
        assert code.locator(".jp-Devstral-highlight").inner_text() == (
            "total = sum(prices)\nprint(total)"
        )
        insert = code.locator(".jp-Devstral-insert")
        assert insert.is_enabled() and code.locator(".jp-Devstral-replace").is_enabled()
        answer.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "render-light.png"))

        check_contrast(code.locator(".jp-Devstral-highlight"), dark=False)
        set_theme(page, "JupyterLab Dark")
        check_contrast(code.locator(".jp-Devstral-highlight"), dark=True)
        check_contrast(answer.locator("li").first, dark=True)
        page.screenshot(path=str(ARTIFACTS / "render-dark.png"))
        set_theme(page, "JupyterLab Light")

        cells = page.locator(CELLS)
        before = cells.count()
        page.locator(CELLS).nth(0).locator(".jp-InputArea-editor").click()
        insert.click()
        wait_until(lambda: cells.count() == before + 1, 10, "the inserted cell")
        assert "sum(prices)" in cells.nth(1).inner_text()


def test_last_block_without_closing_fence_is_complete_when_the_answer_ends(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in_new_workspace(page, lab, "ask.ipynb", "last-block")
        open_sidebar(page)
        # while a block streams it cannot be inserted; its closing fence completes it
        stub.queue(Text("```python\na = 1\nb = 2\nc = 3\n```", delay_per_chunk=0.5))
        ask(page, "Three variables?")
        code = page.locator(".jp-Devstral-code").first
        code.wait_for(timeout=60_000)
        assert code.get_attribute("data-complete") == "false"
        assert code.locator(".jp-Devstral-insert").is_disabled()
        assert code.locator(".jp-Devstral-copy").is_enabled()
        page.wait_for_selector(DONE, timeout=60_000)
        assert code.locator(".jp-Devstral-insert").is_enabled()

        # cut off by max_tokens inside the block: the fence never comes
        stub.queue(Text("Try:\n```python\nx = [1, 2,\n 3]", finish_reason="length"))
        ask(page, "Give me a list.")
        wait_until(lambda: page.locator(DONE).count() == 2, 60, "the second answer")
        code = page.locator(DONE).last.locator(".jp-Devstral-code")
        assert code.get_attribute("data-complete") == "true"
        assert code.locator(".jp-Devstral-insert").is_enabled()
        assert code.locator(".jp-Devstral-highlight").inner_text() == "x = [1, 2,\n 3]"


def test_transcript_follows_unless_scrolled_up(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in_new_workspace(page, lab, "ask.ipynb", "follow")
        open_sidebar(page)
        long_text = "\n\n".join(f"Paragraph {i} of a long answer." for i in range(120))
        stub.queue(Text(long_text, delay_per_chunk=0.03))
        ask(page, "Write a lot.")
        transcript = page.locator(TRANSCRIPT)
        metrics = "n => [n.scrollTop, n.scrollHeight, n.clientHeight]"

        def at_bottom() -> bool:
            top, height, client = transcript.evaluate(metrics)
            return height - top - client < 40

        def overflow() -> int:
            _, height, client = transcript.evaluate(metrics)
            return height - client

        wait_until(lambda: overflow() > 500, 60, "a long streamed answer")
        assert at_bottom()  # it followed the text
        transcript.evaluate("n => n.scrollBy(0, -400)")  # the user scrolls up to read
        jump = page.locator(".jp-Devstral-jump")
        jump.wait_for(timeout=10_000)
        top, height, _ = transcript.evaluate(metrics)
        time.sleep(1.0)  # more text streams in: the view stays where the user put it
        top2, height2, _ = transcript.evaluate(metrics)
        assert height2 > height and abs(top2 - top) < 5, (top, height, top2, height2)
        page.screenshot(path=str(ARTIFACTS / "render-jump.png"))
        jump.click()
        wait_until(at_bottom, 10, "the jump")
        page.wait_for_selector(DONE, timeout=60_000)
        wait_until(at_bottom, 10, "following to the end")
        assert jump.count() == 0


def error_output(page):
    cell = page.locator(CELLS).nth(1)
    return cell, cell.locator(".jp-OutputArea-child:has([data-mime-type*='stderr'])").first


def test_fix_from_the_cell_toolbar_and_the_error_shows_compact_cards(lab, stub):
    with browser_page(ARTIFACTS) as page:
        open_in_new_workspace(page, lab, "fix.ipynb", "fix")
        open_sidebar(page)
        cells = page.locator(CELLS)
        for i in range(2):
            cells.nth(i).locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+Enter")
            page.wait_for_selector(IDLE)
            time.sleep(0.3)

        # on the error, at its top, on screen without scrolling
        cell, error = error_output(page)
        button = cell.locator(".jp-Devstral-fixButton")
        button.wait_for(timeout=30_000)
        box, area = button.bounding_box(), error.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= 900, box
        assert box["y"] - area["y"] < 30, (box, area)  # beside the traceback's first line
        assert button.is_visible()

        # in the cell toolbar of the (active) code cell
        cell.locator(".jp-InputArea-editor").click()
        item = cell.locator(".jp-cell-toolbar [data-command='devstral:fix-cell']")
        item.wait_for(timeout=10_000)
        assert item.is_visible() and "Fix" in item.inner_text()
        page.screenshot(path=str(ARTIFACTS / "fix-button-light.png"))

        # attempt 1 proposes a wrong fix, attempt 2 the right one
        def edit(source: str) -> Tools:
            return Tools([("edit_cell", json.dumps({"cell_id": BROKEN_ID, "source": source}))])

        stub.queue(
            edit("total = sum(price)\nprint(total)"), edit("total = sum(prices)\nprint(total)")
        )
        item.click()
        page.wait_for_selector(DONE, timeout=120_000)
        done = page.locator(DONE).last
        assert done.get_attribute("data-reason") == "fixed", done.inner_text()
        wait_until(lambda: "12" in cell.locator(".jp-OutputArea").inner_text(), 30, "re-run")
        assert page.locator(".jp-Devstral-fixButton").count() == 0

        attempts = done.locator(".jp-Devstral-card[data-tool='attempt']")
        assert attempts.count() == 2
        assert attempts.nth(0).get_attribute("data-status") == "failed"
        assert attempts.nth(1).get_attribute("data-status") == "ok"
        assert "Attempt 1 of" in attempts.nth(0).inner_text()
        details = done.locator("details.jp-Devstral-candidates")
        assert details.count() == 2 and not details.first.evaluate("d => d.open")
        text = done.inner_text()
        for internal in ("cell_id", BROKEN_ID, "timeout", "edit_cell"):
            assert internal not in text, (internal, text)
        applied = done.locator(".jp-Devstral-card[data-tool='replace_source']")
        assert applied.count() == 1
        assert "edit cell 2 and run it" in applied.inner_text()
        diff = applied.locator(".jp-Devstral-diff")
        assert diff.locator(".jp-Devstral-diffWord", has_text="prices").count() == 1
        assert diff.evaluate("d => d.scrollWidth <= d.clientWidth + 1")  # nothing cut off
        assert diff.locator(".jp-Devstral-diffNo").first.inner_text().strip() == "1"
        done.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "fix-card-light.png"))
        details.first.locator("> summary").click()  # the candidates of attempt 1
        assert "sum(price)" in details.first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "fix-card-candidates-light.png"))
        check_contrast(diff.locator("[data-op='add'] .jp-Devstral-diffText"), dark=False)

        set_theme(page, "JupyterLab Dark")
        check_contrast(diff.locator("[data-op='add'] .jp-Devstral-diffText"), dark=True)
        check_contrast(diff.locator("[data-op='del'] .jp-Devstral-diffText"), dark=True)
        done.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "fix-card-dark.png"))
        set_theme(page, "JupyterLab Light")


def test_agent_step_is_one_card_with_its_approval(lab, stub):
    """An agent's edit_cell: the edit (auto), the run (asks first), and the result the model
    read, all on one card; Approve still works."""
    with browser_page(ARTIFACTS) as page:
        open_in_new_workspace(page, lab, "agent.ipynb", "agent")
        open_sidebar(page)
        cells = page.locator(CELLS)
        cells.nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")  # prices exists for the agent's run
        page.wait_for_selector(IDLE)
        args = json.dumps({"cell_id": BROKEN_ID, "source": "total = sum(prices)\nprint(total)"})
        stub.queue(Tools([("edit_cell", args)]), Text("I fixed the typo: `prices`."))
        page.click('.jp-Devstral-mode[data-mode="agent"]')
        page.fill(".jp-Devstral-input", "Fix the second cell.")
        page.click(".jp-Devstral-send")

        card = page.locator(".jp-Devstral-card[data-tool='edit_cell']")
        page.wait_for_selector(".jp-Devstral-card[data-status='waiting']", timeout=60_000)
        assert card.count() == 1 and card.get_attribute("data-status") == "waiting"
        assert card.locator(".jp-Devstral-diffWord", has_text="prices").count() == 1
        assert "edit cell 2 and run it" in card.inner_text()
        page.screenshot(path=str(ARTIFACTS / "agent-step-light.png"))
        card.locator(".jp-Devstral-approve").click()
        page.wait_for_selector(DONE, timeout=60_000)
        assert card.count() == 1
        assert card.get_attribute("data-ops") == "replace_source run_cell"
        assert card.get_attribute("data-status") == "ok"
        text = page.locator(DONE).inner_text()
        assert BROKEN_ID not in text and "cell_id" not in text and "timeout" not in text
        assert page.locator(DONE).locator("code", has_text="prices").count() == 1
        wait_until(lambda: "12" in cells.nth(1).locator(".jp-OutputArea").inner_text(), 30, "run")
