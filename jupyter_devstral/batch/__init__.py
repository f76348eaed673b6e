"""Batch refactoring of notebooks: ``jupyter devstral refactor`` and :func:`refactor`.

>>> from jupyter_devstral.batch import refactor
>>> results = refactor("notebooks/", "use pathlib instead of os.path", write=True)  # doctest: +SKIP
"""

from .notebook_paths import FoundNotebook, expand_paths, find_notebooks
from .result import CellChange, NotebookResult, summary_table
from .runner import BatchInterrupted, refactor, refactor_notebook

__all__ = [
    "BatchInterrupted",
    "CellChange",
    "FoundNotebook",
    "NotebookResult",
    "expand_paths",
    "find_notebooks",
    "refactor",
    "refactor_notebook",
    "summary_table",
]
