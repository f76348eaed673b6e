"""What the magics show in the cell output, besides a fix's own display (:mod:`.fix_view`):
one-line messages, a chat answer as it streams, and the offers under a fix.

An offer is a button where one renders, its text everywhere else: "Restore original" (the
cell before a fix), "Apply fix" (an edit that runs but waits for review) and "Run it" (a
candidate that needs approval: running it once, for real, is the approval). Each displayed
bundle carries three forms: our MIME type (the labextension renders it in JupyterLab, ranked
above the widget view), an ipywidgets view (classic Notebook, VS Code) and text/plain that
holds the code and the ``%devstral`` verb doing the same (terminal IPython, nbconvert).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

PREFIX = "devstral: "
RESTORE_MIME = "application/vnd.jupyter-devstral.restore+json"
OFFER_MIME = "application/vnd.jupyter-devstral.offer+json"


def is_kernel(shell: Any) -> bool:
    """True in a Jupyter kernel (a front end renders display updates and widgets)."""
    return getattr(shell, "kernel", None) is not None


def say(text: str) -> None:
    """One line of the magic's own output."""
    print(PREFIX + text, flush=True)


class ProgressView:
    """A chat answer streamed into the cell output, and backend progress as lines."""

    def __init__(self, shell: Any) -> None:
        self._mid_line = False

    def progress(self, text: str) -> None:
        """Backend progress (worker start, model loading): a permanent line."""
        self.end_text()
        say(text)

    def stream_text(self, text: str) -> None:
        """A chat answer: written straight to the output as it comes."""
        sys.stdout.write(text)
        sys.stdout.flush()
        self._mid_line = not text.endswith("\n")

    def end_text(self) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            self._mid_line = False


# -- offers ----------------------------------------------------------------------------------
def restore_data(original: str, cell_id: str | None) -> dict[str, Any]:
    """The data of :data:`RESTORE_MIME`: JupyterLab's renderer (the labextension) draws a
    "Restore original" button from it that sets the cell's source to ``original``."""
    return {"cell_id": cell_id, "original": original}


def offer_data(action: str, source: str, cell_id: str | None) -> dict[str, Any]:
    """The data of :data:`OFFER_MIME`: ``apply`` (the renderer's "Apply fix" sets the cell's
    source) or ``run`` ("Run it" sets it and runs the cell, once). ``id``: this offer's own,
    which the renderer records in the cell's metadata once taken (never offered again)."""
    return {"id": uuid.uuid4().hex[:12], "cell_id": cell_id, "action": action, "source": source}


def offer_restore(shell: Any, original: str, cell_id: str | None) -> None:
    """A "Restore original" button; ``%devstral restore`` does the same through the replace
    payload of the fix."""
    _offer(
        shell,
        "original cell (run %devstral restore to get it back):\n" + original,
        {RESTORE_MIME: restore_data(original, cell_id)},
        ("Restore original", "undo", "Put the cell text from before the fix back"),
        lambda button: _set_cell(original, cell_id, "Original cell", button, "Restored"),
    )


def offer_apply(shell: Any, source: str, cell_id: str | None) -> None:
    """An "Apply fix" button for an edit that runs but was not applied: it puts the edit into
    this cell (it does not run it); ``%devstral apply`` does the same."""
    _offer(
        shell,
        "the edit, not applied (%devstral apply puts it into a cell):\n" + source,
        {OFFER_MIME: offer_data("apply", source, cell_id)},
        ("Apply fix", "check", "Put the edit into this cell (it does not run it)"),
        lambda button: _set_cell(source, cell_id, "The edit", button, "Applied"),
    )


def offer_run(
    shell: Any, source: str, cell_id: str | None, run: Callable[[], bool] | None = None
) -> None:
    """A "Run it" button for a candidate that needs approval: clicking it is the approval.

    In JupyterLab the renderer sets the cell's source and runs the cell. The widget (classic
    Notebook, VS Code) calls ``run`` in the kernel (the candidate runs once, for real, its
    output under the button) and, when it worked, sets the cell's text. ``%devstral approve``
    does the same from a cell.
    """

    def click(button: Any) -> None:
        button.disabled = True  # once, whatever happens
        if run is not None and run():
            _set_cell(source, cell_id, "The approved candidate", button, "Ran")
        else:
            button.description = "Ran"

    _offer(
        shell,
        "the candidate, not run (%devstral approve runs it once, for real):\n" + source,
        {OFFER_MIME: offer_data("run", source, cell_id)},
        ("Run it", "play", "Approve: run this candidate once, for real, in this kernel"),
        click,
    )


def _offer(
    shell: Any,
    text: str,
    ours: dict[str, Any],
    button_args: tuple[str, str, str],
    on_click: Callable[[Any], None],
) -> None:
    if not is_kernel(shell):
        print(text)
        return
    for stream in (sys.stdout, sys.stderr):  # streams first: they are sent on a timer
        stream.flush()
    try:
        import ipywidgets as widgets
        from IPython.display import display

        class OfferBox(widgets.VBox):
            def _repr_mimebundle_(self, **kwargs: Any) -> Any:
                bundle = super()._repr_mimebundle_(**kwargs)
                if isinstance(bundle, dict):
                    bundle["text/plain"] = text
                    bundle.update(ours)
                return bundle

        description, icon, tooltip = button_args
        button = widgets.Button(description=description, icon=icon, tooltip=tooltip)
        out = widgets.Output()

        def click(_: Any) -> None:
            with out:
                out.clear_output()
                on_click(button)

        button.on_click(click)
        display(OfferBox([button, out]))
    except Exception:  # no ipywidgets, no comm: our MIME type (JupyterLab) and the text
        try:
            from IPython.display import display

            display({**ours, "text/plain": text}, raw=True)
        except Exception:
            print(text)


def _set_cell(source: str, cell_id: str | None, what: str, button: Any, done: str) -> None:
    """In a widget's callback: set the cell's text through the front end's JavaScript, and
    show the text to paste where that cannot work (VS Code runs no JavaScript outputs)."""
    from IPython.display import Javascript, Markdown, display

    display(Javascript(_restore_js(source, cell_id)))
    display(Markdown(f"{what} (paste it in if the cell did not change):"))
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", source)), default=0))
    display(Markdown(f"{fence}python\n{source}\n{fence}"))
    button.description = done


_RESTORE_JS = (
    "(function(){var src=SRC,id=ID;"
    "var app=window.jupyterapp||window.jupyterlab;"
    "if(app&&app.shell&&app.shell.currentWidget&&app.shell.currentWidget.content){"
    "var cells=app.shell.currentWidget.content.widgets||[];"
    "for(var i=0;i<cells.length;i++){var m=cells[i].model;"
    "if(m&&m.id===id){m.sharedModel.setSource(src);return;}}}"
    "if(window.Jupyter&&Jupyter.notebook){var cs=Jupyter.notebook.get_cells();"
    "for(var j=0;j<cs.length;j++){if(cs[j].id===id){cs[j].set_text(src);return;}}}"
    "})();"
)


def _restore_js(source: str, cell_id: str | None) -> str:
    """Best effort: front ends that expose their app object get the cell source set directly."""
    js = _RESTORE_JS.replace("ID", json.dumps(cell_id), 1)  # ids never contain "SRC"
    return js.replace("SRC", json.dumps(source), 1)
