"""Batch refactoring of notebooks: ``jupyter devstral refactor`` and :func:`refactor`.

>>> from jupyter_devstral.batch import refactor
>>> results = refactor("notebooks/", "use pathlib instead of os.path", write=True)  # doctest: +SKIP
"""

from .result import CellChange, NotebookResult, summary_table
from .runner import BatchInterrupted, expand_paths, refactor, refactor_notebook

__all__ = [
    "BatchInterrupted",
    "CellChange",
    "NotebookResult",
    "expand_paths",
    "refactor",
    "refactor_notebook",
    "summary_table",
]
