"""The refactor loop with a scripted model: what the model is shown, edits by cell id through the
agent tools (tools mode) or one fenced cell at a time (cells mode), and the guards."""

from __future__ import annotations

import nbformat
import pytest

from jupyter_devstral.agent.homes.file_home import FileNotebook
from jupyter_devstral.agent.refactor.cells import focus_terms, read_cell_reply, syntax_problem
from jupyter_devstral.agent.refactor.loop import RefactorLoop, plan_parts
from jupyter_devstral.agent.tools import REFACTOR_TOOLS
from jupyter_devstral.backends.base import BackendError, CancelToken, estimate_tokens
from jupyter_devstral.backends.scripted import ScriptedBackend

CELLS = [
    ("markdown", "# Load"),
    "import os",
    "target = os.path.join('data', 'x.csv')\nprint(target)",
    "values = [1, 2, 3]\ntotal = sum(values)",
    "# just a note\n%matplotlib inline",
]
INSTRUCTION = "use pathlib instead of os.path"


@pytest.fixture
def home(make_notebook):
    nb = make_notebook(CELLS)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="data/x.csv\n")]
    nb.cells[3].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=" * 400})
    ]
    return FileNotebook(nb)


def ids(home):
    return [c.id for c in home.cells()]


def edit(cell_id, source):
    return {"name": "edit_cell", "arguments": {"cell_id": cell_id, "source": source}}


def finish(summary="done"):
    return {"name": "finish", "arguments": {"summary": summary}}


def test_tools_mode_shows_cells_by_id_and_applies_edits(home):
    i = ids(home)
    new = "from pathlib import Path\npath = Path('data') / 'x.csv'\nprint(path)"

    def model(request):
        context = request.messages[1]["content"]
        assert request.tools == REFACTOR_TOOLS and request.tool_choice == "auto"
        assert context.startswith(f"Instruction: {INSTRUCTION}\n")
        for cell_id, (_, source) in zip(i, [c if isinstance(c, tuple) else ("code", c)
                                            for c in CELLS], strict=True):  # fmt: skip
            assert f"[id: {cell_id}]" in context and source in context
        assert "data/x.csv\n" not in context and "image/png" not in context  # no outputs
        return [edit(i[2], new), finish("1 cell")]

    backend = ScriptedBackend([model])
    result = RefactorLoop(backend, home, INSTRUCTION).run()
    assert result.mode == "tools" and result.error is None and result.summary == "1 cell"
    assert result.changed == {i[2]: (CELLS[2], new)}
    assert home.cell(i[2]).source == new and home.cell(i[2]).outputs  # outputs: the caller's job
    assert result.calls == 1 and result.usage["prompt_tokens"] > 0


def test_tools_mode_reads_inserts_deletes_and_hears_about_mistakes(home):
    i = ids(home)

    def second(request):
        results = [m["content"] for m in request.messages if m["role"] == "tool"]
        assert "values = [1, 2, 3]" in results[0]  # read_cell
        assert results[1].startswith("Error: no cell with id 'nope'")
        return [
            {
                "name": "insert_cell",
                "arguments": {
                    "before_cell_id": i[1],
                    "source": "from pathlib import Path",
                    "cell_type": "code",
                },
            },  # noqa: E501
            {"name": "delete_cell", "arguments": {"cell_id": i[4]}},
        ]

    backend = ScriptedBackend(
        [
            [{"name": "read_cell", "arguments": {"cell_id": i[3]}}, edit("nope", "x")],
            second,
            "All done.",
        ]
    )  # noqa: E501
    result = RefactorLoop(backend, home, INSTRUCTION).run()
    inserted = [cid for cid in result.changed if cid not in i]
    assert len(inserted) == 1 and result.changed[inserted[0]] == (None, "from pathlib import Path")
    assert result.changed[i[4]] == (CELLS[4], None)
    assert result.summary == "All done." and result.calls == 3
    assert [c.id for c in home.cells()][1] == inserted[0]


def test_an_edit_that_breaks_python_is_undone(home):
    i = ids(home)

    def model(request):
        return [edit(i[2], "path = os.path.join('data',"), finish()]

    backend = ScriptedBackend([model])
    result = RefactorLoop(backend, home, INSTRUCTION).run()
    assert result.changed == {} and home.cell(i[2]).source == CELLS[2]
    assert "not valid Python" in result.notes[0]
    assert syntax_problem("%timeit x = 1\n!ls\ny = 2") is None  # magics are not errors


def test_a_long_notebook_goes_in_parts_that_fit_the_budget(make_notebook):
    cells = [f"value_{n} = {n} * 2\nprint(value_{n})" for n in range(80)]
    cells[70] = "x = '" + "y" * 9000 + "'"  # too long to show at all
    home = FileNotebook(make_notebook(cells))
    contexts = []

    def model(request):
        contexts.append(request.messages[1]["content"])
        return [finish()]

    result = RefactorLoop(ScriptedBackend([model] * 20), home, "x", context_budget=800).run()
    assert 1 < len(contexts) == result.calls and "(part 1 of" in contexts[0]
    assert all(estimate_tokens(c) <= 800 for c in contexts)
    text = "".join(contexts)
    for cell in home.cells():  # every cell whole, in exactly one part, except the long one
        assert text.count(f"[id: {cell.id}]") == (0 if cell.index == 70 else 1)
        assert (cell.source in text) == (cell.index != 70)
    assert result.notes == [
        f"cell {home.cells()[70].id}: too long to show the model, left as it is"
    ]


def test_include_outputs_shows_bounded_text_never_images(home):
    [part], _ = plan_parts(home.cells(), estimate_tokens, 6000, include_outputs=True)
    text = "".join(part)
    assert "# output:\ndata/x.csv" in text and "[image/png output" in text
    assert "iVBORw0KGgo" not in text


def cells_backend(replies):
    backend = ScriptedBackend(replies)
    backend.capabilities = type(backend.capabilities)(native_tools=False, local=True)
    return backend


def test_cells_mode_asks_only_about_cells_the_instruction_names(home):
    assert focus_terms(INSTRUCTION, home.cells()) == {"os", "path"}

    def import_cell(request):
        assert INSTRUCTION in request.messages[0]["content"]  # same system prompt every time
        assert (
            request.tools is None and "```python\nimport os\n```" in request.messages[1]["content"]
        )
        return "```python\nfrom pathlib import Path\n```"

    def path_cell(request):
        assert "os.path.join('data', 'x.csv')" in request.messages[1]["content"]
        # the imports above, as edited so far: the cell can use what the last edit imported
        assert request.messages[1]["content"].startswith(
            "Imports of the cells above:\nfrom pathlib import Path\n\nCell [id: "
        )
        return "Sure:\n```python\ntarget = Path('data') / 'x.csv'\nprint(target)\n```"

    backend = cells_backend([import_cell, path_cell])
    result = RefactorLoop(backend, home, INSTRUCTION).run()
    i = ids(home)
    assert result.mode == "cells" and result.calls == 2  # not values, not the magic cell
    assert result.changed == {
        i[1]: ("import os", "from pathlib import Path"),
        i[2]: (CELLS[2], "target = Path('data') / 'x.csv'\nprint(target)"),
    }


def test_cells_mode_keeps_only_edits_within_the_instruction(home):
    i = ids(home)
    replies = [
        "UNCHANGED",  # import os
        "```python\nprint(target)\n```",  # the os.path cell: no longer defines `target`
    ]
    result = RefactorLoop(cells_backend(replies), home, INSTRUCTION).run()
    assert result.changed == {} and "no longer defines target" in result.notes[0]
    replies = [
        "```python\nimport os\nimport sys\n```",
        "```python\ntarget = 'data/x.csv'\nprint('target', target)\n```",
    ]  # noqa: E501
    result = RefactorLoop(cells_backend(replies), home, INSTRUCTION).run()
    assert list(result.changed) == [i[1]]  # adding a line to a cell that uses os is fine
    assert "changes a line the instruction is not about: 'print(target)'" in result.notes[0]
    # a rename may drop the old name
    home2 = FileNotebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELLS[3])]))
    replies = ["```python\nvalues = [1, 2, 3]\ngrand_total = sum(values)\n```"]
    result = RefactorLoop(cells_backend(replies), home2, "rename total to grand_total").run()
    assert len(result.changed) == 1 and result.notes == []


def test_cells_mode_skips_a_cell_whose_reply_was_cut_off(home):
    cut = BackendError("the model's reply was cut off at max_tokens", kind="bad_response")
    result = RefactorLoop(cells_backend([cut, "UNCHANGED"]), home, INSTRUCTION).run()
    assert result.error is None and result.calls == 1 and result.changed == {}
    assert "unusable reply" in result.notes[0]


def test_read_cell_reply():
    assert read_cell_reply("UNCHANGED", "x = 1") is None
    assert read_cell_reply("The cell is fine.", "x = 1") is None
    assert read_cell_reply("```python\nx = 1\n```", "x = 1") is None  # same code
    assert read_cell_reply("```python\nx = 2\n```", "\nx = 1\n") == "\nx = 2\n"  # layout kept
    assert read_cell_reply("```python\nx = 2\ny = 3", "x = 1") == "x = 2\ny = 3"  # unclosed
    assert read_cell_reply("x = 2\ny = 3", "x = 1") == "x = 2\ny = 3"  # bare code
    assert read_cell_reply("Here it is\nwith words", "x = 1") is None


def test_backend_errors_and_cancel_stop_with_a_reason(home):
    error = BackendError("cannot reach http://x: is the server running?", kind="connection")
    result = RefactorLoop(ScriptedBackend([error]), home, INSTRUCTION).run()
    assert (
        result.error.startswith("model error: cannot reach") and result.error_kind == "connection"
    )
    assert result.changed == {}
    cancel = CancelToken()
    cancel.cancel()
    result = RefactorLoop(ScriptedBackend([]), home, INSTRUCTION, cancel=cancel).run()
    assert (result.cancelled, result.error, result.calls) == (True, "cancelled", 0)


# -- a hostile model and redacted secrets -------------------------------------------------------
KEY = "sk-live-abcdefghijklmnopqrstuvwx"
SECRET_CELLS = ["import os", f'API_KEY = "{KEY}"\nurl = os.path.join(BASE, "v1")', "print(url)"]
KEPT = 'API_KEY = "<secret:API_KEY>"\nurl = str(Path(BASE) / "v1")'  # the model's copy, edited
REFUSED = "a placeholder for a secret the model never sees; it was not applied"


@pytest.fixture
def secret_home(make_notebook):
    return FileNotebook(make_notebook(SECRET_CELLS))


def test_tools_mode_refuses_an_edit_that_writes_a_placeholder(secret_home):
    i = ids(secret_home)

    def model(request):
        context = request.messages[1]["content"]
        assert KEY not in context and 'API_KEY = "<secret:API_KEY>"' in context  # redacted
        return [edit(i[0], 'import os\nAPI_KEY = "<secret:API_KEY>"'), edit(i[2], "x = 1")]

    backend = ScriptedBackend([model, [finish()]])
    result = RefactorLoop(backend, secret_home, INSTRUCTION).run()
    line = f"cell {i[0]}: the edit contains <secret:API_KEY>, {REFUSED}"
    assert result.refused == [line] and result.error == f"not written: {line}"
    assert result.error_kind == "secret" and result.changed == {} and result.calls == 1
    assert [c.source for c in secret_home.cells()] == SECRET_CELLS  # nothing applied


def test_tools_mode_refuses_a_placeholder_moved_into_a_new_line_or_cell(secret_home):
    i = ids(secret_home)
    moved = KEPT + '\nprint("<secret:API_KEY>")'
    result = RefactorLoop(ScriptedBackend([[edit(i[1], moved)]]), secret_home, "x").run()
    assert result.refused == [f"cell {i[1]}: the edit contains <secret:API_KEY>, {REFUSED}"]
    insert = {"name": "insert_cell", "arguments": {
        "before_cell_id": i[2], "source": 'key = "<secret:API_KEY>"', "cell_type": "code"}}  # fmt: skip
    backend = ScriptedBackend([[insert, finish()]])
    result = RefactorLoop(backend, secret_home, "x").run()
    assert result.refused == [f"new cell: the new cell contains <secret:API_KEY>, {REFUSED}"]
    assert result.error_kind == "secret" and result.summary == ""  # finish was not done
    assert [c.source for c in secret_home.cells()] == SECRET_CELLS


def test_tools_mode_puts_back_a_secret_line_the_model_kept(secret_home):
    i = ids(secret_home)
    backend = ScriptedBackend([[edit(i[1], KEPT), finish()]])
    result = RefactorLoop(backend, secret_home, INSTRUCTION).run()
    new = f'API_KEY = "{KEY}"\nurl = str(Path(BASE) / "v1")'
    assert result.error is None and result.refused == []
    assert result.changed == {i[1]: (SECRET_CELLS[1], new)} and secret_home.cell(i[1]).source == new


def test_cells_mode_refuses_placeholders_and_puts_back_kept_secret_lines(secret_home):
    i = ids(secret_home)
    written = ['```python\nimport os\nAPI_KEY = "<secret:API_KEY>"\n```']
    result = RefactorLoop(cells_backend(written), secret_home, INSTRUCTION).run()
    assert result.refused == [f"cell {i[0]}: the edit contains <secret:API_KEY>, {REFUSED}"]
    assert result.error_kind == "secret" and result.calls == 1  # it stops there
    moved = ["UNCHANGED", f'```python\n{KEPT}\nlog("<secret:API_KEY>")\n```']
    result = RefactorLoop(cells_backend(moved), secret_home, INSTRUCTION).run()
    assert result.refused == [f"cell {i[1]}: the edit contains <secret:API_KEY>, {REFUSED}"]
    assert [c.source for c in secret_home.cells()] == SECRET_CELLS
    copied = ["UNCHANGED", "```python\n" + SECRET_CELLS[1].replace(KEY, "<secret:API_KEY>")]
    result = RefactorLoop(cells_backend(copied), secret_home, INSTRUCTION).run()
    assert (result.error, result.changed, result.notes) == (None, {}, [])  # unchanged, as seen
    kept = ["UNCHANGED", f"```python\n{KEPT}\n```"]
    result = RefactorLoop(cells_backend(kept), secret_home, INSTRUCTION).run()
    new = f'API_KEY = "{KEY}"\nurl = str(Path(BASE) / "v1")'
    assert result.error is None and result.changed == {i[1]: (SECRET_CELLS[1], new)}
