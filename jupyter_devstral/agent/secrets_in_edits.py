"""A model's edit that carries a redacted secret's placeholder is never applied as it is.

Secrets never reach a model (:mod:`~jupyter_devstral.backends.redaction`): the model reads
``API_KEY = "<secret:API_KEY>"`` where the user wrote their key. So code the model writes can
hold a placeholder, and written into a notebook it would replace the user's key with the
placeholder's text (or, run, send that text where the key should go). Every place where model
output becomes notebook code (the fix loop's candidates, the batch refactor's edits, the chat
agent's edit and insert tools) applies one rule:

* a line of the edit that is a line of the original cell with secrets shown as placeholders
  (the model kept the user's line) is put back as the user wrote it
  (:func:`restore_secret_lines`);
* any placeholder left after that (a new line, a changed line, an inserted cell, code to run)
  refuses the whole edit: nothing is written or run, and the model and the user get one line
  (:func:`secret_refusal`) saying why.

Putting a line back only ever yields a line the user wrote, so the rule cannot be used to
make up code. This module imports only the redaction module and the notebook's error type:
the fix loop, the tools and the refactor loop all import it without an import circle.
"""

from __future__ import annotations

import re

from ..backends.redaction import PLACEHOLDER_RE
from .homes.notebook import NotebookError


class SecretInEdit(NotebookError):
    """A model's edit or code still holds a secret's placeholder: it is not applied."""


def restore_secret_lines(candidate: str, original: str) -> str:
    """Lines of ``candidate`` that are lines of ``original`` with secrets shown as
    placeholders, put back as the user wrote them (any other placeholder stays)."""
    if not PLACEHOLDER_RE.search(candidate):
        return candidate
    own = original.split("\n")
    out = []
    for line in candidate.split("\n"):
        if PLACEHOLDER_RE.search(line):
            parts = PLACEHOLDER_RE.split(line)
            if not "".join(parts).strip():
                out.append(line)  # nothing of the user's own line to recognise it by
                continue
            pattern = re.compile(".+?".join(re.escape(p) for p in parts) + r"\Z", re.S)
            match = next((o for o in own if pattern.match(o)), None)
            if match is not None:
                line = match
        out.append(line)
    return "\n".join(out)


def secret_refusal(source: str, what: str = "the edit", done: str = "applied") -> str | None:
    """The one line that refuses ``source`` when it holds a placeholder (None when not):
    ``the edit contains <secret:API_KEY>, a placeholder for a secret the model never sees;
    it was not applied``."""
    found = PLACEHOLDER_RE.search(source)
    if found is None:
        return None
    return (
        f"{what} contains {found.group(0)}, a placeholder for a secret the model never sees; "
        f"it was not {done}"
    )


def secure_edit(source: str, original: str = "", what: str = "the edit") -> str:
    """``source`` with the user's own secret lines of ``original`` put back; raises
    :class:`SecretInEdit` (its message is :func:`secret_refusal`'s line) when a placeholder
    is left. ``original`` is ``""`` for a new cell: every placeholder refuses it."""
    restored = restore_secret_lines(source, original) if original else source
    refusal = secret_refusal(restored, what)
    if refusal:
        raise SecretInEdit(refusal)
    return restored
