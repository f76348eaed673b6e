"""The one rule for a model's edit that carries a secret's placeholder: the user's own lines
are put back, any other placeholder refuses the edit in one line."""

from __future__ import annotations

import pytest

from jupyter_devstral.agent.homes.notebook import NotebookError
from jupyter_devstral.agent.secrets_in_edits import (
    SecretInEdit,
    restore_secret_lines,
    secret_refusal,
    secure_edit,
)
from jupyter_devstral.backends.redaction import redact_messages

KEY = "sk-live-abcdefghijklmnopqrstuvwx"
CELL = f'import requests\nAPI_KEY = "{KEY}"\nr = requests.get(URL, headers={{"k": API_KEY}})'


def as_the_model_sees(source: str) -> str:
    [message], _ = redact_messages([{"role": "user", "content": source}])
    return message["content"]


def test_the_model_sees_a_placeholder_where_the_key_was():
    seen = as_the_model_sees(CELL)
    assert KEY not in seen and 'API_KEY = "<secret:API_KEY>"' in seen


def test_a_secret_line_kept_unchanged_is_put_back_as_the_user_wrote_it():
    edit = as_the_model_sees(CELL).replace("r = requests.get", "response = requests.get")
    assert secure_edit(edit, CELL) == CELL.replace("r = requests.get", "response = requests.get")
    assert restore_secret_lines(edit, CELL).count(KEY) == 1
    assert secure_edit("x = 1", CELL) == "x = 1"  # no placeholder: as it is


def test_a_placeholder_written_or_moved_into_a_new_line_refuses_the_edit():
    written = 'API_KEY = "<secret:API_KEY>"'  # a cell that never held the key
    with pytest.raises(SecretInEdit) as refused:
        secure_edit(written, "API_KEY = os.environ['API_KEY']")
    assert str(refused.value) == (
        "the edit contains <secret:API_KEY>, a placeholder for a secret the model never sees; "
        "it was not applied"
    )
    assert isinstance(refused.value, NotebookError)  # every tool reports it as an error line
    moved = as_the_model_sees(CELL) + '\nprint("<secret:API_KEY>")'  # copied into a new line
    with pytest.raises(SecretInEdit):
        secure_edit(moved, CELL)
    changed = as_the_model_sees(CELL).replace('API_KEY = "', 'TOKEN = "')  # a changed line
    with pytest.raises(SecretInEdit):
        secure_edit(changed, CELL)
    with pytest.raises(SecretInEdit, match="^the new cell contains <secret:API_KEY>"):
        secure_edit(as_the_model_sees(CELL), what="the new cell")  # no original: refused
    assert secret_refusal("print(1)") is None
    assert secret_refusal("f('<secret:db.pass-1>')", "the code", "run") == (
        "the code contains <secret:db.pass-1>, a placeholder for a secret the model never "
        "sees; it was not run"
    )


def test_a_line_that_is_only_a_placeholder_is_not_restored_to_some_other_line() -> None:
    original = 'import os\nAPI_KEY = "sk-live-abcdefghijklmnopqrstuvwx"'
    assert restore_secret_lines("<secret:API_KEY>", original) == "<secret:API_KEY>"
    with pytest.raises(SecretInEdit):
        secure_edit("<secret:API_KEY>\nprint(1)", original)
