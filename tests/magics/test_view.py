"""``offer_restore``: the bundle JupyterLab's renderer reads (our MIME type), the widget for
classic Notebook and VS Code, and text/plain everywhere; no kernel, no widgets: still text."""

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
