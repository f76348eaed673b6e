"""``FixView``: one display, updated in place, whose final form is the folded progress, the
original error (folded unless the cell is still broken), the coloured diff; the result line
after it; text/plain beside every HTML form; plain lines without a kernel."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from jupyter_devstral.agent.events import AgentEvent
from jupyter_devstral.magics.fix_view import FixView, diff_html

KERNEL = SimpleNamespace(kernel=object())
TRACEBACK = "\x1b[31mKeyError\x1b[39m Traceback\n----> 1 total = df['revnue']\n\x1b[31mKeyError\x1b[39m: 'revnue'"
DIFF = "--- a/cell\n+++ b/cell\n@@ -1 +1 @@\n-total = df['revnue']\n+total = df['revenue']\n"


class Handle:
    def __init__(self, log):
        self.log = log

    def update(self, bundle, **kw):
        self.log.append(("update", bundle, kw))


@pytest.fixture
def shown(monkeypatch):
    """Every display() and handle.update(): ("display" | "update", bundle, kwargs)."""
    import IPython.display

    log = []

    def display(obj, **kw):
        log.append(("display", obj, kw))
        return Handle(log) if kw.get("display_id") else None

    monkeypatch.setattr(IPython.display, "display", display)
    return log


def events(view):
    for event in [
        AgentEvent("status", {"text": "building context"}),
        AgentEvent("status", {"text": "attempt 1/3"}),
        AgentEvent("text", {"text": "total = df['revenu']"}),
        AgentEvent("tool_call", {"name": "edit_cell", "arguments": {}}),
        AgentEvent("attempt", {"iteration": 1, "sample": 0, "ok": False, "error": "KeyError"}),
        AgentEvent(
            "attempt",
            {
                "iteration": 1,
                "sample": 1,
                "ok": False,
                "error": "needs approval: it deletes x",
                "status": "proposed",
            },
        ),
        AgentEvent("status", {"text": "attempt 2/3"}),
        AgentEvent("usage", {"completion_tokens": 12}),
        AgentEvent("attempt", {"iteration": 2, "sample": 0, "ok": True, "error": ""}),
        AgentEvent("stopped", {"reason": "fixed", "label": "fixed"}),
    ]:
        view.event(event)


def test_one_display_updated_in_place_then_the_result_after_it(shown):
    view = FixView(KERNEL, TRACEBACK)
    events(view)
    live = [b for kind, b, _ in shown if kind == "update"]
    assert shown[0][0] == "display" and shown[0][2]["display_id"] is True
    assert all(kind == "update" for kind, _, _ in shown[1:])  # one display, in place
    # the reply as it streams, under a live line
    assert any("total = df['revenu']" in b["text/plain"] for b in live)
    assert any("trying candidate 1" in b["text/html"] for b in live)
    assert "⏳" in live[-1]["text/html"] and "attempt 2/3" in live[-1]["text/plain"]
    view.finish(DIFF)
    view.result(
        "fixed after 2 attempts: the change looks safe; the cell now holds the fix",
        "fixed",
        ["a note"],
    )
    final, result = shown[-2][1], shown[-1][1]
    assert shown[-2][0] == "update" and shown[-1][0] == "display"
    for bundle in (final, result):
        assert set(bundle) == {"text/html", "text/plain"}
    page = final["text/html"]
    # the progress folded under its summary, in order
    assert re.search(
        r"<details[^>]*><summary[^>]*>2 candidates tried, 1 held back in 2 "
        r"rounds \(\d+ s\)</summary>",
        page,
    )
    assert page.index("attempt 1/3") < page.index("KeyError") < page.index("attempt 2/3")
    # the original error folded (closed), without ANSI codes; then the diff, coloured
    assert "<details><summary" in page and "original error: " in page
    assert "\x1b" not in page and "KeyError: &#x27;revnue&#x27;" in page
    assert page.index("original error") < page.index("jp-Devstral-diff")
    assert "color-mix(in srgb, var(--jp-success-color1, #4caf50) 22%" in page
    assert "var(--jp-error-color1, #f44336)" in page
    # text/plain: the same order, the unified diff as it is
    text = final["text/plain"]
    assert text.index("attempt 1/3") < text.index("original error:") < text.index(DIFF.strip())
    assert result["text/plain"] == (
        "devstral: note: a note\n"
        "devstral: fixed after 2 attempts: the change looks safe; the cell now holds the fix"
    )
    assert (
        '<b style="color: var(--jp-success-color1, #4caf50);">fixed</b> after'
        in (result["text/html"])
    )
    assert result["text/html"].index("a note") < result["text/html"].index("after 2 attempts")


def test_a_cell_still_broken_keeps_its_error_open(shown):
    view = FixView(KERNEL, TRACEBACK)
    view.finish(error_open=True)
    view.result("not fixed: the model proposed no new edit", "not fixed")
    assert "<details open><summary" in shown[-2][1]["text/html"]
    assert "no candidate ran (" in shown[-2][1]["text/plain"]
    assert (
        '<b style="color: var(--jp-error-color1, #f44336);">not fixed</b>'
        in (shown[-1][1]["text/html"])
    )


def test_markup_in_the_code_or_the_error_stays_text(shown):
    view = FixView(KERNEL, "ValueError: <img src=x onerror=alert(1)>")
    view.event(AgentEvent("status", {"text": "attempt 1/1"}))
    view.event(
        AgentEvent(
            "attempt",
            {"iteration": 1, "sample": 0, "ok": False, "error": "<script>alert(1)</script>"},
        )
    )
    view.finish("--- a/cell\n+++ b/cell\n@@ -1 +1 @@\n-x\n+print('<b>hi</b>')\n")
    page = shown[-1][1]["text/html"]
    assert "<script" not in page and "<img" not in page and "<b>hi" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page


def test_without_a_kernel_the_lines_print_in_the_final_order(capsys, shown):
    view = FixView(SimpleNamespace(), TRACEBACK)
    view.progress("starting the model worker")
    events(view)
    view.finish(DIFF)
    print("6.5")  # the fixed cell's own output, shown by the caller
    view.result("fixed after 2 attempts", "fixed")
    out = capsys.readouterr().out
    assert not shown
    lines = out.splitlines()
    assert lines[:6] == [
        "devstral: starting the model worker",
        "devstral: attempt 1/3",
        "devstral:   candidate 1.1: KeyError",
        "devstral:   candidate 1.2: needs approval: it deletes x",
        "devstral: attempt 2/3",
        "devstral:   candidate 2.1: runs",
    ]
    assert re.match(r"devstral: 2 candidates tried, 1 held back in 2 rounds \(\d+ s\)", lines[6])
    assert out.index("original error:") < out.index(DIFF) < out.index("6.5")
    assert lines[-1] == "devstral: fixed after 2 attempts"


def test_when_display_fails_the_view_falls_back_to_lines(capsys, monkeypatch):
    import IPython.display

    def broken(*objs, **kw):
        raise RuntimeError("no display machinery")

    monkeypatch.setattr(IPython.display, "display", broken)
    view = FixView(KERNEL, TRACEBACK)
    events(view)
    view.finish(DIFF)
    view.result("fixed after 2 attempts", "fixed")
    out = capsys.readouterr().out
    assert out.index("attempt 1/3") < out.index("original error:") < out.index(DIFF)
    assert out.splitlines()[-1] == "devstral: fixed after 2 attempts"


def test_diff_lines_are_coloured_by_kind():
    page = diff_html(DIFF)
    rows = re.findall(r'<div style="([^"]*)">([^<]*)</div>', page)
    kinds = {text: style for style, text in rows}
    assert "success" in kinds["+total = df[&#x27;revenue&#x27;]"]
    assert "error" in kinds["-total = df[&#x27;revnue&#x27;]"]
    assert "font-color2" in kinds["--- a/cell"] and "font-color2" in kinds["@@ -1 +1 @@"]
