"""``%%devstral fix`` in a real JupyterLab (token auth on, Debian's Chromium through
Playwright, the small real model in the kernel's worker), configured only as README says (the
Lab started with ``--DevstralConfig.model``; the kernel gets it from the server, no
``%config``): the cell runs, fails, is fixed and
its text replaced by the fixed code (the ``set_next_input`` payload; the magic line goes
too). The output reads in one order: the progress and the original error folded, the diff in
colour, the fixed cell's own output, the result line last, then "Restore original" (the
labextension's renderer of our MIME type, ranked above the ipywidgets view in the same
bundle), which puts the original text back. A candidate that needs approval (a scripted
model here) is shown and never run until "Run it", which runs it once in the cell.
Screenshots, Light and Dark theme, land in artifacts/ui/magic-*.png."""

from __future__ import annotations

import re
import time

import pytest
from lab_harness import (
    ARTIFACTS,
    CELLS,
    accept_kernel_dialog,
    browser_page,
    cell_sources,
    open_notebook,
    wait_until,
)

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]

MAGIC = "%%devstral fix\ntotal = sum(prics)\nprint(total)"
CANDIDATE = (
    "biggest = max(prices)\n"
    "n = int(open('count.txt').read()) + 1 if os.path.exists('count.txt') else 1\n"
    "open('count.txt', 'w').write(str(n))\n"
    "os.remove('raw.csv')\n"
    "print(biggest)"
)
SCRIPTED = (  # a model that proposes CANDIDATE: it deletes a file the cell does not
    "import os, pathlib\n"
    "pathlib.Path('raw.csv').write_text('precious')\n"
    "from jupyter_devstral.backends.scripted import ScriptedBackend\n"
    "from jupyter_devstral.backends.base import Capabilities\n"
    f"_m = ScriptedBackend([{CANDIDATE + chr(10) + '```'!r}])\n"
    "_m.capabilities = Capabilities(native_tools=False, local=True, assistant_prefix=True)\n"
    "get_ipython().magics_manager.registry['DevstralMagics'].backend_override = _m"
)
APPROVAL = "%%devstral fix --samples 1 --max-iterations 1\nbiggest = max(pricez)\nprint(biggest)"


def notebooks(model):
    """What the ``lab`` fixture (conftest.py) serves."""
    # no %config: the kernel uses the model the Lab was started with (--DevstralConfig.model,
    # README's command), exported by the server to the kernels it starts
    return {
        "magic.ipynb": [
            "%load_ext jupyter_devstral",
            "from jupyter_devstral.config import DevstralConfig\nprint(DevstralConfig().model)",
            "prices = [3, 4, 5]",
            MAGIC,
            SCRIPTED,
            APPROVAL,
        ]
    }


def prompt(cell) -> str:
    return cell.locator(".jp-InputPrompt").inner_text().strip()


def run_cell(page, index: int, timeout: float) -> None:
    """Shift+Enter in cell ``index``; wait until its prompt shows an execution count.

    Started means ``[*]`` or a count in the prompt, not just a changed prompt: right after
    the notebook opens, the prompt may still be rendering (empty, then ``[ ]:``)."""
    cell = page.locator(CELLS).nth(index)
    before = prompt(cell)

    def started() -> bool:
        p = prompt(cell)
        return p != before and ("*" in p or any(c.isdigit() for c in p))

    for _ in range(3):  # a keypress that lands before the editor has focus does nothing
        accept_kernel_dialog(page, 0)
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


def set_theme(page, name: str) -> None:
    """Settings > Theme > ``name``, as a user would; wait until the theme is applied."""
    page.locator(".lm-MenuBar-itemLabel:text-is('Settings')").click()
    page.locator(".lm-Menu-itemLabel:text-is('Theme')").click()
    page.locator(f".lm-Menu-itemLabel:text-is('{name}')").click()
    wait_until(
        lambda: page.evaluate("document.body.dataset.jpThemeName") == name, 30, f"theme {name}"
    )
    time.sleep(0.5)  # the theme's stylesheet applies after the attribute


def outputs(cell) -> list[str]:
    """The texts of the cell's outputs, in order."""
    return cell.locator(".jp-OutputArea-output").all_inner_texts()


def background(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def shot(page, cell, name: str) -> None:
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"magic-{name}.png"))


def test_fix_magic_output_order_restore_and_run_it(lab):
    with browser_page(ARTIFACTS) as page:
        open_notebook(page, lab, "magic.ipynb")
        for i in range(3):
            run_cell(page, i, 180)  # a fresh kernel imports the extension; slow on a busy machine
        page.screenshot(path=str(ARTIFACTS / "magic-1-setup.png"))
        # the kernel sees the model the Lab was given, with no %config of its own
        shown = page.locator(CELLS).nth(1).locator(".jp-OutputArea-output").inner_text()
        assert shown.strip() == str(lab.model), shown

        started = time.monotonic()
        run_cell(page, 3, 300)  # the run, the fix with the model, the replace payload
        cell = page.locator(CELLS).nth(3)
        wait_until(lambda: "prics" not in cell_sources(page)[3], 30, "the cell's new text")
        restore = cell.locator(".jp-Devstral-restore")
        wait_until(lambda: restore.count() == 1, 30, "the Restore original button")
        print(f"fix took {time.monotonic() - started:.1f} s")
        shot(page, cell, "2-fixed-light")
        source = cell_sources(page)[3]
        # the fix replaces the whole cell, the magic line included (as fix.py's set_next_input)
        assert "sum(prices)" in source and not source.startswith("%%devstral"), source

        # one order: the fix's display, the fixed cell's own output, the result line, Restore
        texts = outputs(cell)
        assert len(texts) == 4, texts
        display, printed, result, offer = texts
        assert "-total = sum(prics)" in display and "+total = sum(prices)" in display
        assert printed.strip() == "12"  # the fixed cell ran, for real
        assert result.startswith("fixed after") and "the cell now holds the fix" in result
        assert offer.startswith("Restore original")
        assert cell.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        # the progress and the original error folded; the diff coloured
        progress = cell.locator("details.jp-Devstral-progress")
        assert re.match(r"\d+ candidates? tried", progress.locator("summary").inner_text())
        assert progress.get_attribute("open") is None
        error = cell.locator("details", has_text="original error")
        assert "NameError: name 'prics' is not defined" in error.locator("summary").inner_text()
        assert error.get_attribute("open") is None and not error.locator("pre").is_visible()
        added = cell.locator(".jp-Devstral-diff div", has_text="+total = sum(prices)")
        removed = cell.locator(".jp-Devstral-diff div", has_text="-total = sum(prics)")
        light = (background(added), background(removed))
        assert "rgba(0, 0, 0, 0)" not in light and light[0] != light[1], light

        set_theme(page, "JupyterLab Dark")
        shot(page, cell, "2-fixed-dark")
        dark = (background(added), background(removed))
        assert "rgba(0, 0, 0, 0)" not in dark, dark
        error.locator("summary").click()  # unfold the original error: the traceback
        progress.locator("summary").click()
        assert error.locator("pre").is_visible()
        shot(page, cell, "2-unfolded-dark")

        # our renderer, not the ipywidgets view, drew the bundle that carries both
        assert cell.locator(".widget-button, .jupyter-widgets").count() == 0
        preview = cell.locator(".jp-Devstral-restorePreview")
        assert preview.locator("pre").text_content() == MAGIC  # collapsed, text only
        assert preview.get_attribute("open") is None
        restore.click()
        wait_until(lambda: "sum(prics)" in cell_sources(page)[3], 30, "the original text")
        assert cell_sources(page)[3] == MAGIC
        assert restore.inner_text() == "Restored" and restore.is_disabled()

        # needs approval: shown, not run, until "Run it" runs it once in this cell
        run_cell(page, 4, 60)
        run_cell(page, 5, 120)
        cell = page.locator(CELLS).nth(5)
        run_it = cell.locator(".jp-Devstral-restore[data-action='run']")
        wait_until(lambda: run_it.count() == 1, 30, "the Run it button")
        shot(page, cell, "3-approval-dark")
        texts = outputs(cell)
        assert texts[-2].startswith("needs approval: it writes count.txt"), texts
        assert "deletes raw.csv" in texts[-2]
        assert "+os.remove('raw.csv')" in texts[0] and run_it.inner_text() == "Run it"
        assert (lab.root / "raw.csv").exists() and not (lab.root / "count.txt").exists()
        assert cell_sources(page)[5] == APPROVAL
        set_theme(page, "JupyterLab Light")
        shot(page, cell, "3-approval-light")

        run_it.click()
        wait_until(lambda: (lab.root / "count.txt").exists(), 60, "the approved run")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        wait_until(lambda: outputs(cell) == ["5\n"] or outputs(cell) == ["5"], 30, "its output")
        shot(page, cell, "4-approved-light")
        assert cell_sources(page)[5] == CANDIDATE
        assert (lab.root / "count.txt").read_text() == "1"  # once
        assert not (lab.root / "raw.csv").exists()
