"""The offers (``offer_restore``, ``offer_apply``, ``offer_run``): the bundle JupyterLab's
renderer reads (our MIME types), the widget for classic Notebook and VS Code (whose "Run it"
runs the candidate once, in the kernel, only when clicked), and text/plain everywhere; no
kernel, no widgets: still text."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from jupyter_devstral.magics import view
from jupyter_devstral.magics.view import RESTORE_MIME, offer_restore

ORIGINAL = "%%devstral fix\ntotal = sum(prics)\nprint(total)"
KERNEL = SimpleNamespace(kernel=object())  # is_kernel: a shell with a kernel


@pytest.fixture
def shown(monkeypatch):
    """What display() was given: (object, kwargs) pairs."""
    import IPython.display

    calls = []
    monkeypatch.setattr(
        IPython.display, "display", lambda *objs, **kw: calls.extend((obj, kw) for obj in objs)
    )
    return calls


def test_outside_a_kernel_the_original_is_printed(capsys, shown):
    offer_restore(SimpleNamespace(), ORIGINAL, "c1")
    out = capsys.readouterr().out
    assert out == f"original cell (run %devstral restore to get it back):\n{ORIGINAL}\n"
    assert not shown


def test_the_widget_bundle_carries_our_mime_type_and_the_text(shown):
    pytest.importorskip("ipywidgets")
    offer_restore(KERNEL, ORIGINAL, "c1")
    assert len(shown) == 1
    bundle = shown[0][0]._repr_mimebundle_()
    assert bundle[RESTORE_MIME] == {"cell_id": "c1", "original": ORIGINAL}
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].endswith("\n" + ORIGINAL)


def test_without_ipywidgets_a_raw_bundle_is_displayed(monkeypatch, capsys, shown):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    offer_restore(KERNEL, ORIGINAL, None)
    assert capsys.readouterr().out == ""
    [(bundle, kwargs)] = shown
    assert kwargs == {"raw": True}
    assert bundle == {
        RESTORE_MIME: {"cell_id": None, "original": ORIGINAL},
        "text/plain": f"original cell (run %devstral restore to get it back):\n{ORIGINAL}",
    }


def test_when_nothing_displays_the_text_is_printed(monkeypatch, capsys):
    import IPython.display

    def broken(*objs, **kw):
        raise RuntimeError("no display machinery")

    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    monkeypatch.setattr(IPython.display, "display", broken)
    offer_restore(KERNEL, ORIGINAL, "c1")
    assert ORIGINAL in capsys.readouterr().out
    assert view.restore_data(ORIGINAL, "c1") == {"cell_id": "c1", "original": ORIGINAL}


CANDIDATE = "total = sum(prices)\nos.remove('raw.csv')"


@pytest.mark.parametrize(
    "offer, action, text",
    [
        (view.offer_apply, "apply", "the edit, not applied (%devstral apply puts it into a cell):"),
        (
            view.offer_run,
            "run",
            "the candidate, not run (%devstral approve runs it once, for real):",
        ),
    ],
)
def test_offers_carry_our_mime_type_the_widget_and_the_verb(shown, offer, action, text):
    pytest.importorskip("ipywidgets")
    offer(KERNEL, CANDIDATE, "c1")
    bundle = shown[0][0]._repr_mimebundle_()
    data = dict(bundle[view.OFFER_MIME])
    assert len(data.pop("id")) == 12  # its own id: the renderer records it once taken
    assert data == {"cell_id": "c1", "action": action, "source": CANDIDATE}
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == f"{text}\n{CANDIDATE}"


def test_offers_outside_a_kernel_are_their_text(capsys, shown):
    view.offer_run(SimpleNamespace(), CANDIDATE, "c1", lambda: pytest.fail("ran unasked"))
    view.offer_apply(SimpleNamespace(), CANDIDATE, "c1")
    out = capsys.readouterr().out
    assert "%devstral approve runs it once" in out and "%devstral apply puts it" in out
    assert not shown


def test_the_run_widget_runs_the_candidate_once_then_sets_the_cell(shown):
    pytest.importorskip("ipywidgets")
    from IPython.display import Javascript

    runs = []
    view.offer_run(KERNEL, CANDIDATE, "c1", lambda: runs.append(1) or True)
    button = shown[0][0].children[0]
    assert button.description == "Run it" and not runs  # displaying it runs nothing
    button.click()
    assert runs == [1] and button.disabled and button.description == "Ran"
    scripts = [obj for obj, _ in shown if isinstance(obj, Javascript)]
    assert len(scripts) == 1 and '"c1"' in scripts[0].data
    assert "\"total = sum(prices)\\nos.remove('raw.csv')\"" in scripts[0].data


def test_a_failed_approval_sets_nothing(shown):
    pytest.importorskip("ipywidgets")
    from IPython.display import Javascript

    view.offer_run(KERNEL, CANDIDATE, "c1", lambda: False)
    button = shown[0][0].children[0]
    button.click()
    assert button.disabled
    assert not [obj for obj, _ in shown if isinstance(obj, Javascript)]


def test_the_apply_widget_sets_the_cell_and_runs_nothing(shown):
    pytest.importorskip("ipywidgets")
    from IPython.display import Javascript, Markdown

    view.offer_apply(KERNEL, "x = '```'\n", "c1")
    button = shown[0][0].children[0]
    button.click()
    assert button.description == "Applied"
    assert [type(obj) for obj, _ in shown[1:]] == [Javascript, Markdown, Markdown]
    assert shown[-1][0].data.startswith("````python\n")  # a fence longer than any inside
