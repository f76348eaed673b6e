"""What the magics show in the cell output: live progress, the diff, the way back.

In a kernel with a front end (``ZMQInteractiveShell``) a fix shows one live box, updated in
place (status, tokens so far and the last lines of the model's text as it streams), above a
log of permanent lines (attempts, candidates tried). In plain IPython (a terminal, tests) the
same events print as lines, like ``jupyter devstral fix`` does on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ..agent.events import AgentEvent

PREFIX = "devstral: "
TEXT_LINES = 12
UPDATE_SECONDS = 0.1


def is_kernel(shell: Any) -> bool:
    """True in a Jupyter kernel (a front end renders display updates and widgets)."""
    return getattr(shell, "kernel", None) is not None


def say(text: str) -> None:
    """One line of the magic's own output."""
    print(PREFIX + text, flush=True)


class ProgressView:
    """Streams agent events and backend progress into the cell output."""

    def __init__(self, shell: Any) -> None:
        self.live = is_kernel(shell)
        self.start = time.perf_counter()
        self.status_text = "starting"
        self.text = ""
        self.tokens = 0
        self.candidates = 0
        self._handle: Any = None
        self._shown = 0.0
        self._mid_line = False

    # -- output primitives -------------------------------------------------------------------
    def line(self, text: str) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            self._mid_line = False
        say(text)

    def _refresh(self, force: bool = False) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if not force and now - self._shown < UPDATE_SECONDS:
            return
        self._shown = now
        tail = "\n".join(self.text.splitlines()[-TEXT_LINES:])
        head = f"[{now - self.start:5.1f}s] {self.status_text}"
        if self.tokens:
            head += f" · {self.tokens} tokens generated"
        bundle = {"text/plain": head + ("\n" + tail if tail else "")}
        try:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
        except Exception:
            self.live = False  # no display machinery: fall back to lines

    # -- sinks -------------------------------------------------------------------------------
    def status(self, text: str) -> None:
        """An agent status ("building context"): the live box, or a line without one."""
        self.status_text = text
        if self.live:
            self._refresh(force=True)
        else:
            self.line(text)

    def progress(self, text: str) -> None:
        """Backend progress (worker start, model loading): a permanent line."""
        self.line(text)
        self.status_text = text
        self._refresh(force=True)

    def event(self, event: AgentEvent) -> None:
        data = event.data
        if event.kind == "status":
            if data["text"].startswith("attempt"):
                self.line(data["text"])  # a permanent line: the log of the fix
                self.text = ""
                self.status_text = data["text"]
                self._refresh(force=True)
            else:
                self.status(data["text"])
        elif event.kind == "text":
            self.text += data["text"]
            if self.live:
                self._refresh()
        elif event.kind == "tool_call":
            self.candidates += 1
            self.status_text = f"trying candidate {self.candidates}"
            self._refresh(force=True)
        elif event.kind == "attempt":
            verdict = "runs" if data["ok"] else data["error"] or "fails"
            self.line(f"  candidate {data['iteration']}.{data['sample'] + 1}: {verdict}")
            self.text = ""
        elif event.kind == "usage":
            self.tokens += data.get("completion_tokens", 0)
        elif event.kind == "stopped":
            self.status_text = f"stopped: {data['reason']}"
            self.text = ""
            self._refresh(force=True)

    def stream_text(self, text: str) -> None:
        """A chat answer: written straight to the output as it comes."""
        sys.stdout.write(text)
        sys.stdout.flush()
        self._mid_line = not text.endswith("\n")

    def end_text(self) -> None:
        if self._mid_line:
            sys.stdout.write("\n")
            self._mid_line = False


def show_diff(diff: str) -> None:
    if diff:
        sys.stdout.write(diff if diff.endswith("\n") else diff + "\n")


RESTORE_MIME = "application/vnd.jupyter-devstral.restore+json"


def restore_data(original: str, cell_id: str | None) -> dict[str, Any]:
    """The data of :data:`RESTORE_MIME`: JupyterLab's renderer (the labextension) draws a
    "Restore original" button from it that sets the cell's source to ``original``."""
    return {"cell_id": cell_id, "original": original}


def offer_restore(shell: Any, original: str, cell_id: str | None) -> None:
    """A "Restore original" button where one renders; the original text everywhere else.

    The displayed bundle carries three forms: :data:`RESTORE_MIME` (the labextension renders
    it as a button in JupyterLab, ranked above the widget), the ipywidgets view (classic
    Notebook, VS Code) and text/plain, which *is* the original cell, so a front end with
    neither (terminal IPython, nbconvert) still shows what to paste back. ``%devstral
    restore`` puts it back through the same replace payload as the fix.
    """
    plain = "original cell (run %devstral restore to get it back):\n" + original
    if not is_kernel(shell):
        print(plain)
        return
    ours = {RESTORE_MIME: restore_data(original, cell_id)}
    try:
        import ipywidgets as widgets
        from IPython.display import Javascript, Markdown, display

        class RestoreBox(widgets.VBox):
            def _repr_mimebundle_(self, **kwargs: Any) -> Any:
                bundle = super()._repr_mimebundle_(**kwargs)
                if isinstance(bundle, dict):
                    bundle["text/plain"] = plain
                    bundle.update(ours)
                return bundle

        button = widgets.Button(
            description="Restore original",
            icon="undo",
            tooltip="Put the cell text from before the fix back",
        )
        out = widgets.Output()

        def restore(_: Any) -> None:
            with out:
                out.clear_output()
                display(Javascript(_restore_js(original, cell_id)))
                display(Markdown("Original cell (paste it back if it did not reappear):"))
                display(Markdown(f"```python\n{original}\n```"))

        button.on_click(restore)
        display(RestoreBox([button, out]))
    except Exception:  # no ipywidgets, no comm: our MIME type (JupyterLab) and the text
        try:
            from IPython.display import display

            display({**ours, "text/plain": plain}, raw=True)
        except Exception:
            print(plain)


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


def _restore_js(original: str, cell_id: str | None) -> str:
    """Best effort: front ends that expose their app object get the cell source set directly."""
    js = _RESTORE_JS.replace("ID", json.dumps(cell_id), 1)  # ids never contain "SRC"
    return js.replace("SRC", json.dumps(original), 1)
