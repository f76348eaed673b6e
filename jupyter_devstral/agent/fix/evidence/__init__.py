"""Judging a candidate that runs by evidence: does it still compute what the cell computed?

A cell that runs is not a cell that is fixed: a small model makes ``data.fillna(method=
'ffill')`` run as ``data.fillna(data.mean())``, which computes something else. A notebook on
disk usually holds the outputs of its last good run: sometimes the failing cell's own, and
those of the cells below it. The fix loop runs a candidate, then the later cells that read
what it defines, in the same fork of the kernel, and compares what they print with what the
notebook stored (:func:`compare_outputs`), tolerantly: addresses, timings, progress bars,
printed precision and pandas/numpy repr changes do not count, images count by number only.
:class:`Evidence` gathers what one candidate showed; :func:`label` turns it (and the
:func:`describe_doubts` of the change itself) into what the user reads: "fixed" or
"runs, review".

Its modules: :mod:`.output_text` (what stored outputs show) and :mod:`.output_match` (the
comparison), :mod:`.downstream` (the later cells run in the trial), :mod:`.verdict` (the
evidence, the names, the label) and :mod:`.doubts` (the change in words).
"""

from .doubts import describe_doubts
from .downstream import MAX_LATER, DownstreamRun, Readers, downstream_cells, unsafe_reason
from .output_match import REL_TOL, OutputMatch, Verdict, compare_outputs, compare_run
from .output_text import MAX_TEXT
from .verdict import Evidence, Label, compare_names, label

__all__ = [
    "OutputMatch",
    "DownstreamRun",
    "Evidence",
    "compare_outputs",
    "compare_run",
    "compare_names",
    "downstream_cells",
    "Readers",
    "unsafe_reason",
    "label",
    "describe_doubts",
    "Label",
    "Verdict",
    "MAX_LATER",
    "MAX_TEXT",
    "REL_TOL",
]
