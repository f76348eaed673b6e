"""Comparing a fresh run's outputs with those a notebook stored: :func:`compare_outputs`, and
what differs in words (a DataFrame's column, a Series' value, a line, a figure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from ...homes.notebook import RunResult
from .output_text import FOOTER, Token, shown_in, tokens

Verdict = Literal["same", "different", "no_evidence"]
REL_TOL = 1e-6


@dataclass
class OutputMatch:
    """How a fresh output compares with the stored one; ``detail``: one line for the user.
    ``weak``: "same" only because both are empty."""

    verdict: Verdict
    detail: str
    weak: bool = False

    def reproduces(self, weak: bool = False) -> bool:
        """The stored output came out again: a non-empty one (``weak``: an empty one)."""
        return self.verdict == "same" and self.weak == weak


def _same_token(a: Token, b: Token, rel: float) -> bool:
    if a.value is None or b.value is None:
        return a.text == b.text
    if a.value == b.value:
        return True
    # a number printed with fewer digits (a display precision, a "%.2f") matches a longer one
    # within half its last digit; a short one ("0.9", "2.5", "1e+22") is what it says
    ulps = [t.half_ulp for t in (a, b) if _significant(t.text) >= 3 or _decimals(t.text) >= 2]
    tol = max([rel * max(abs(a.value), abs(b.value)), *ulps])
    return abs(a.value - b.value) <= tol * (1 + 1e-9)


#: an object's default repr, ``<pandas.io.formats.style.Styler at 0x?>``: no content
_OBJECT_REPR = re.compile(r"^<[\w.]+(?: object)?(?: at 0x\?)?>$")


def _significant(text: str) -> int:
    """Significant digits of a printed number (``0.00123`` has 3, ``120`` has 3)."""
    digits = text.lower().split("e")[0].lstrip("+-").replace(".", "").lstrip("0")
    return len(digits)


def _decimals(text: str) -> int:
    return len(text.lower().split("e")[0].partition(".")[2])


def plural(n: int, word: str) -> str:
    """``1 line``, ``2 lines``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _visuals_phrase(visuals: list[tuple[str, int | None]]) -> str:
    figures = sum(1 for kind, axes in visuals if axes is not None or not kind)
    images = len(visuals) - figures
    parts = ([plural(figures, "figure")] if figures else []) + (
        [plural(images, "image")] if images else []
    )
    return " and ".join(parts)


def _compare_visuals(stored: list, fresh: list) -> str | None:
    """Why the images differ (by number, type or axes only), or None."""
    if len(stored) != len(fresh):
        if not fresh:
            what = (
                _visuals_phrase(stored)
                .replace("1 figure", "a figure")
                .replace("1 image", "an image")
            )
            return f"the earlier output had {what}; this one has none"
        return f"shows {_visuals_phrase(fresh)}; before it showed {_visuals_phrase(stored)}"
    for (kind_a, axes_a), (kind_b, axes_b) in zip(stored, fresh, strict=True):
        if kind_a and kind_b and kind_a != kind_b:
            return f"an image is now {kind_b}; before it was {kind_a}"
        if axes_a is not None and axes_b is not None and axes_a != axes_b:
            return f"a figure has {axes_b} axes; before it had {axes_a}"
    return None


def _column_of(lines: list[str], row: int, token: Token) -> str | None:
    """The header above a table cell whose text ends in the cell's column (pandas aligns
    cells right): the top of the run of lines that have a token ending there."""
    top, skipped = None, False
    for j in range(row - 1, max(-1, row - 80), -1):
        ends = {t.end: t for t in tokens(lines[j])}
        if token.end in ends:
            top = ends[token.end]
            continue
        words = lines[j].split()
        if top is None or skipped or len(words) != 1 or lines[j][:1].isspace():
            break
        skipped = True  # the index name's line under the header
    if top is not None and top.value is None:
        return top.text
    return None


def _describe_difference(stored: list[str], i: int, a: Token, b: Token, k: int) -> str:
    line = stored[i]
    change = f"{a.text} -> {b.text}" if a.value is not None else f"{a.text!r} -> {b.text!r}"
    footer = FOOTER.match(line.strip())
    if footer:
        return f"the DataFrame's shape differs: {line.strip()} before"
    words = [t.text for t in tokens(line)]
    if words and (words[0] in ("dtype:", "Name:") or "dtype:" in words):
        label = words[max((j for j in range(k + 1) if words[j].endswith(":")), default=0)]
        return f"the Series' {label.rstrip(':').lower()} differs: {change}"
    if line.lstrip().startswith(("array(", "[", "masked_array(")):
        return f"the array differs: {change}"
    ahead = (ln.lstrip() for ln in stored[i + 1 : i + 80])
    if k > 0 and any(ln.startswith(("Name:", "dtype:", "Length:")) for ln in ahead):
        return f"the Series' value at {line.split()[0]} differs: {change}"
    column = _column_of(stored, i, a) if k > 0 else None
    if column is not None:
        return f"the DataFrame's column {column!r} differs: {change}"
    below = tokens(stored[i + 1]) if i + 1 < len(stored) else []
    if a.value is None and any(t.end == a.end for t in below) and k > 0:
        return f"the DataFrame's columns differ: {change}"
    return f"line {i + 1} differs: {change}"


_SET_REPR = re.compile(r"^\s*(?:(?:frozen)?set\(\{|\{)(?P<items>[^{}:]*)\}\)?\s*$")


def _same_set(line_a: str, line_b: str) -> bool:
    """Two reprs of one set of strings or numbers, in another order (string hashes differ
    between processes, so a set of strings prints in a new order on every run)."""
    a, b = _SET_REPR.match(line_a), _SET_REPR.match(line_b)
    if a is None or b is None or line_a.split("{")[0].strip() != line_b.split("{")[0].strip():
        return False
    items = [sorted(x.strip() for x in m.group("items").split(",")) for m in (a, b)]
    return items[0] == items[1]


def _compare_text(stored: list[str], fresh: list[str], rel: float) -> str | None:
    """Why the text differs, or None."""
    shapes = [[m.group() for m in map(FOOTER.match, lines) if m] for lines in (stored, fresh)]
    if shapes[0] != shapes[1] and len(shapes[0]) == len(shapes[1]):
        for was, now in zip(*shapes, strict=True):
            if was != now:
                return f"the DataFrame is now {now.strip('[]')}; before it was {was.strip('[]')}"
    for i, (line_a, line_b) in enumerate(zip(stored, fresh, strict=False)):
        if line_a != line_b and _same_set(line_a, line_b):
            continue
        a, b = tokens(line_a), tokens(line_b)
        for k, (x, y) in enumerate(zip(a, b, strict=False)):
            if not _same_token(x, y, rel):
                return _describe_difference(stored, i, x, y, k)
        if len(a) != len(b):
            return f"line {i + 1} differs: {line_a.strip()[:60]!r} -> {line_b.strip()[:60]!r}"
    if len(stored) == len(fresh):
        return None
    n = len(fresh) - len(stored)
    extra = fresh[len(stored)] if n > 0 else stored[len(fresh)]
    last = stored[min(len(stored), len(fresh)) - 1] if stored and fresh else ""
    if last and {t.end for t in tokens(extra)} == {t.end for t in tokens(last)}:
        what = "more row" if n > 0 else "row"
        return f"the table has {plural(abs(n), what)}{'' if n > 0 else ' fewer'} than before"
    what = plural(n, "more line") if n > 0 else plural(-n, "line") + " fewer"
    return f"it prints {what} than before ({extra.strip()[:60]!r})"


def _unwrapped(lines: list[str]) -> list[str]:
    """A frame pandas printed in blocks (the header of every block but the last ends in
    ``\\``; each block repeats the index) put back as one block, row by row: each row's
    blocks joined, the index repeated by a later block dropped. Lines of another shape are
    returned as they are."""
    heads = [i for i, line in enumerate(lines) if line.endswith("\\")]
    if not heads or heads[0] != 0:
        return lines
    n_blocks = len(heads) + 1
    if len(lines) % n_blocks:
        return lines
    size = len(lines) // n_blocks
    if heads != [k * size for k in range(len(heads))]:
        return lines
    blocks = [lines[k * size : (k + 1) * size] for k in range(n_blocks)]
    rows = []
    for j in range(size):
        first = blocks[0][j].rstrip("\\").rstrip()
        words = first.split()
        for block in blocks[1:]:
            more = block[j].rstrip("\\").rstrip().split()
            common = 0
            while common < min(len(words), len(more)) and j > 0 and words[common] == more[common]:
                common += 1
            first += "  " + " ".join(more[common:])
        rows.append(first)
    return rows


def compare_outputs(
    stored: list[dict[str, Any]],
    fresh: list[dict[str, Any]],
    *,
    rel: float = REL_TOL,
    images: bool = True,
) -> OutputMatch:
    """Compare a cell's stored nbformat outputs with those of a fresh run, tolerantly (see
    the module docstring). ``images=False``: the fresh run could not show images (they are
    not compared). stderr (warnings) never counts; an error where there was none does."""
    s, f = shown_in(stored), shown_in(fresh)
    if s.error is not None:
        if f.error is not None and f.error[0] == s.error[0]:
            return OutputMatch("no_evidence", f"it fails as it did before ({f.error[0]})")
        return OutputMatch("no_evidence", "the earlier output was an error")
    if f.error is not None:
        ename, evalue = f.error
        return OutputMatch("different", f"it now fails: {ename}: {evalue}"[:200])
    if not images:
        s.visuals, f.visuals = [], []
    if not s.lines and not s.visuals:
        if not f.lines and not f.visuals:
            return OutputMatch("same", "prints nothing, as before", weak=True)
        return OutputMatch("no_evidence", "there was no earlier output to compare with")
    why = _compare_visuals(s.visuals, f.visuals)
    if why:
        return OutputMatch("different", why)
    a, b = [line for line, _ in s.lines], [line for line, _ in f.lines]
    cut = s.cut or f.cut
    if cut:  # compare what both show; the last line of a cut side may be partial
        n = max(0, min(len(a) - s.cut, len(b) - f.cut))
        a, b = a[:n], b[:n]
        if not a and not s.visuals:
            return OutputMatch("no_evidence", "the output is too long to compare")
    why = _compare_text(a, b, rel)
    if why is not None:  # a wide frame wrapped in other blocks: compare it row by row, whole
        a2, b2 = _unwrapped(a), _unwrapped(b)
        if (a2, b2) != (a, b):
            why = _compare_text(a2, b2, rel)
            if why is None:
                return OutputMatch(
                    "same", "the same values as before (the table wraps differently)"
                )
        return OutputMatch("different", why)
    lines = f"{'the first ' if cut else 'prints '}{plural(len(a), 'line')}{' match' if cut else ''}"
    parts = [lines] if a else []
    parts += [f"shows {_visuals_phrase(s.visuals)}"] if s.visuals else []
    # weak: what matched says little (only figures, only default object reprs) or only the
    # start of a longer output was compared
    weak = cut or not any(not _OBJECT_REPR.match(line) for line in a)
    return OutputMatch("same", f"{' and '.join(parts)} as before", weak=weak)


def compare_run(
    stored: list[dict[str, Any]], run: RunResult, *, images: bool = True
) -> OutputMatch:
    """:func:`compare_outputs` for a :class:`RunResult` (its error counts as an output)."""
    if run.timed_out:
        return OutputMatch("no_evidence", "it ran out of time")
    fresh = list(run.outputs)
    if run.error is not None and not any(o.get("output_type") == "error" for o in fresh):
        fresh.append({"output_type": "error", "ename": run.error.ename, "evalue": run.error.evalue})
    return compare_outputs(stored, fresh, images=images)
