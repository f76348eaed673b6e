"""``%%devstral fix`` in a real JupyterLab (token auth on, Debian's Chromium through
Playwright, the small real model in the kernel's worker): the cell runs, fails, is fixed and
its text replaced by the fixed code (the ``set_next_input`` payload; the magic line goes too), the output shows the diff and the result;
the labextension's "Restore original" (its renderer of our MIME type, ranked above the
ipywidgets view in the same bundle) puts the original text back. Screenshots land in
artifacts/ui/magic-*.png."""

from __future__ import annotations

import time

import pytest
from lab_harness import ARTIFACTS, CELLS, browser_page, cell_sources, open_notebook, wait_until

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

MAGIC = "%%devstral fix\ntotal = sum(prics)\nprint(total)"


def notebooks(model):
    """What the ``lab`` fixture (conftest.py) serves."""
    return {
        "magic.ipynb": [
            "%load_ext jupyter_devstral",
            f"%config DevstralConfig.model = {str(model)!r}",
            "prices = [3, 4, 5]",
            MAGIC,
        ]
    }


def prompt(cell) -> str:
    return cell.locator(".jp-InputPrompt").inner_text().strip()


def run_cell(page, index: int, timeout: float) -> None:
    """Shift+Enter in cell ``index``; wait until its prompt shows an execution count.

    Started means ``[*]`` or a count in the prompt, not just a changed prompt: right after
    the notebook opens, the prompt may still be rendering (empty, then ``[ ]:``)."""
    cell = page.locator(CELLS).nth(index)

    def started() -> bool:
        p = prompt(cell)
        return "*" in p or any(c.isdigit() for c in p)

    for _ in range(3):  # a keypress that lands before the editor has focus does nothing
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            wait_until(started, 10, f"cell {index} to start")
            break
        except AssertionError:
            page.screenshot(path=str(ARTIFACTS / f"magic-not-started-{index}.png"))
    wait_until(
        lambda: "*" not in (p := prompt(cell)) and any(c.isdigit() for c in p),
        timeout,
        f"cell {index} to run",
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")


def test_fix_magic_then_restore_original(lab):
    with browser_page(ARTIFACTS) as page:
        open_notebook(page, lab, "magic.ipynb")
        for i in range(3):
            run_cell(page, i, 180)  # a fresh kernel imports the extension; slow on a busy machine
        page.screenshot(path=str(ARTIFACTS / "magic-1-setup.png"))

        started = time.monotonic()
        run_cell(page, 3, 300)  # the run, the fix with the model, the replace payload
        cell = page.locator(CELLS).nth(3)
        output = cell.locator(".jp-OutputArea")
        wait_until(lambda: "prics" not in cell_sources(page)[3], 30, "the cell's new text")
        page.screenshot(path=str(ARTIFACTS / "magic-2-fixed.png"))
        source = cell_sources(page)[3]
        text = output.inner_text()
        # the fix replaces the whole cell, the magic line included (as fix.py's set_next_input)
        assert "sum(prices)" in source and not source.startswith("%%devstral"), source
        assert "--- a/cell" in text and "+++ b/cell" in text, text
        assert "-total = sum(prics)" in text, text
        assert "devstral: fixed after" in text and "the cell now holds the fix" in text, text
        assert "12" in text, text  # the fixed cell ran, for real
        print(f"fix took {time.monotonic() - started:.1f} s")

        # our renderer, not the ipywidgets view, drew the bundle that carries both
        restore = cell.locator(".jp-Devstral-restore")
        wait_until(lambda: restore.count() == 1, 30, "the Restore original button")
        assert cell.locator(".widget-button, .jupyter-widgets").count() == 0
        assert restore.inner_text() == "Restore original"
        preview = cell.locator(".jp-Devstral-restorePreview")
        assert preview.locator("pre").text_content() == MAGIC  # collapsed, text only
        assert preview.get_attribute("open") is None

        restore.click()
        wait_until(lambda: "sum(prics)" in cell_sources(page)[3], 30, "the original text")
        page.screenshot(path=str(ARTIFACTS / "magic-3-restored.png"))
        assert cell_sources(page)[3] == MAGIC
        assert restore.inner_text() == "Restored" and restore.is_disabled()
