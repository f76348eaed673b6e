"""The agent's notebook tools against a hostile model: an edit, insert or code that holds a
redacted secret's placeholder is never done (the user's own lines are put back)."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.homes.file_home import FileNotebook
from jupyter_devstral.agent.homes.notebook import NotebookError
from jupyter_devstral.agent.tools import plan_step, run_tool
from jupyter_devstral.backends.base import ToolCall

KEY = "sk-live-abcdefghijklmnopqrstuvwx"
SECRET_CELL = f'API_KEY = "{KEY}"\nclient = make_client(API_KEY)'
REFUSED = "a placeholder for a secret the model never sees; it was not applied"


@pytest.fixture
def home(make_notebook, monkeypatch):
    home = FileNotebook(make_notebook(["import os", SECRET_CELL, "print(client)"]))

    def no_run(*args, **kwargs):
        raise AssertionError("nothing may run")

    monkeypatch.setattr(home, "run_cell", no_run)
    monkeypatch.setattr(home, "run_model_code", no_run, raising=False)
    return home


def call(name, **arguments):
    return ToolCall("call_1", name, arguments)


def sources(home):
    return [c.source for c in home.cells()]


def test_an_edit_that_writes_a_placeholder_is_refused_and_nothing_changes(home):
    first = home.cells()[0].id
    before = sources(home)
    hostile = call("edit_cell", cell_id=first, source='import os\nAPI_KEY = "<secret:API_KEY>"')
    result = run_tool(home, hostile)
    assert result == f"Error: the edit contains <secret:API_KEY>, {REFUSED}"
    assert sources(home) == before
    with pytest.raises(NotebookError, match="the edit contains <secret:API_KEY>"):
        plan_step(home, hostile)  # refused before a home that asks shows it for approval


def test_a_placeholder_moved_into_a_new_line_or_a_new_cell_is_refused(home):
    secret = home.cells()[1].id
    before = sources(home)
    moved = 'API_KEY = "<secret:API_KEY>"\nclient = make_client("<secret:API_KEY>")'
    assert REFUSED in run_tool(home, call("edit_cell", cell_id=secret, source=moved))
    inserted = call(
        "insert_cell", position="end", source='send("<secret:API_KEY>")', cell_type="code"
    )
    assert run_tool(home, inserted) == f"Error: the new cell contains <secret:API_KEY>, {REFUSED}"
    code = run_tool(home, call("run_code", code='print("<secret:API_KEY>")'))
    assert code.startswith("Error: the code contains <secret:API_KEY>") and code.endswith("not run")
    assert sources(home) == before


def test_a_secret_line_kept_unchanged_is_put_back_as_the_user_wrote_it(home):
    secret = home.cells()[1].id
    kept = 'API_KEY = "<secret:API_KEY>"\nclient = make_client(API_KEY, timeout=5)'
    step = plan_step(home, call("edit_cell", cell_id=secret, source=kept))
    restored = f'API_KEY = "{KEY}"\nclient = make_client(API_KEY, timeout=5)'
    assert step.ops[0] == ("replace_source", {"cell_id": secret, "source": restored})
    assert "<secret:" not in step.diff and "-client = make_client(API_KEY)" in step.diff
    markdown = FileNotebook(home.nb)  # no run for a markdown cell: run_tool does the edit
    cell = markdown.insert_cell(0, f"token: {KEY}", "markdown")
    kept_line = call("edit_cell", cell_id=cell, source="token: <secret:API_KEY>")
    assert run_tool(markdown, kept_line) == "Edited."
    assert markdown.cell(cell).source == f"token: {KEY}"
