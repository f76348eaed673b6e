"""What a list of nbformat outputs shows, read for a tolerant comparison: text lines with what
differs between runs or library versions made equal, numbers as tokens with their printed
precision, images and figures by kind and axes, the first error."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...context.outputs import strip_ansi

MAX_TEXT = 20_000  # characters of one side's text looked at

_IMAGES = {"image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg", "image/gif": "gif"}

_FIGURE = re.compile(r"^<Figure size [\d.]+x[\d.]+ with (\d+) Axes>$")
_MARKER = re.compile(r"^(?:<(image/[\w.+-]+)>|\[(image/[\w.+-]+) output, [^\]]*\])$")
_CUT = re.compile(r"^\[\.\.\. (?:cut|[\d,]+ characters cut|\d+ more outputs? cut) \.\.\.\]$")
_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
_NOISE = re.compile(
    r"^(?:.*\d+%\|.*\|.*|.*\d+it/s\]?|.*s/it\]?"  # tqdm bars
    r"|The slowest run took .*|This could mean that an intermediate result is being cached\.?"
    r"|\[rich output\])$"
)
_TIMING = re.compile(
    r"^(?:CPU times: .*|Wall time: .*"
    r"|[\d.]+ [nuµm]?s ± [\d.]+ [nuµm]?s per loop \(mean ± std\. dev\. of .*\)"
    r"|[\d.]+ [nuµm]?s [+-]- [\d.]+ [nuµm]?s per loop .*)$"
)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{4,}\b")
_AXES = re.compile(r"<(?:matplotlib\.axes\._\w+\.)?(?:Axes|AxesSubplot)\b[^<>]*>")
_NP_SCALAR = re.compile(
    r"\bnp\.(?:float\d*|int\d*|uint\d*|complex\d*|bool_?|str_|bytes_|longdouble|intp|uintp)"
    r"\(([^()]*)\)"
)
_NP_BOOL = re.compile(r"\bnp\.(True|False)_\b")
_NAN = re.compile(r"(?<![\w<])(?:nan|NaN|<NA>)(?![\w>])")
_DTYPE = re.compile(r"\bdtype(: |=')(?:object|str|string(?:\[\w+\])?)\b")
_LAST_DTYPE = re.compile(r"(?<=\s)(?:str|string(?:\[\w+\])?)$")
_NUM = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w])")
FOOTER = re.compile(r"^\[(\d+) rows x (\d+) columns\]$")


def _normalise(line: str) -> str:
    """One line with what differs between runs or library versions made equal."""
    line = line.rstrip()
    timing = _TIMING.match(line.strip())
    if timing:  # every run times differently: only which kind of timing line counts
        return timing.group().split(":")[0] if ":" in timing.group()[:12] else "<timeit>"
    line = _ADDRESS.sub("0x?", line)
    line = _AXES.sub("<Axes>", line)  # matplotlib 3.7 prints <Axes: ...> for <AxesSubplot:...>
    line = _NP_SCALAR.sub(r"\1", _NP_BOOL.sub(r"\1", line))
    line = _DTYPE.sub(lambda m: f"dtype{m.group(1)}object", _NAN.sub("NaN", line))
    return _LAST_DTYPE.sub("object", line)


@dataclass
class Token:
    """A word or a number of a line, where it stands in the line."""

    text: str
    start: int
    end: int
    value: float | None = None  # numbers
    half_ulp: float = 0.0  # half a unit of the last printed digit


def tokens(line: str) -> list[Token]:
    """The words and numbers of a line, in order."""
    out: list[Token] = []

    def words(begin: int, end: int) -> None:
        for m in re.finditer(r"\S+", line[begin:end]):
            out.append(Token(m.group(), begin + m.start(), begin + m.end()))

    at = 0
    for m in _NUM.finditer(line):
        words(at, m.start())
        text = m.group()
        mantissa, _, exp = text.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        if exp:
            half = 0.5 * 10.0 ** max(-300, min(300, int(exp) - decimals))
        else:
            half = 0.5 * 10.0**-decimals if decimals else 0.0
        out.append(Token(text, m.start(), m.end(), float(text), half))
        at = m.end()
    words(at, len(line))
    return out


@dataclass
class Shown:
    """What an output list shows: text lines (per output chunk), images, an error."""

    lines: list[tuple[str, int]] = field(default_factory=list)  # (normalised line, chunk)
    visuals: list[tuple[str, int | None]] = field(default_factory=list)  # (kind, axes)
    error: tuple[str, str] | None = None
    cut: bool = False


def _text(value: Any) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _add_text(shown: Shown, text: str, chunk: int, size: list[int]) -> None:
    text = strip_ansi(text)
    if "\r" in text:
        text = re.sub(r"[^\n\r]*\r(?!\n)", "", text)
    if size[0] + len(text) > MAX_TEXT:
        text, shown.cut = text[: max(0, MAX_TEXT - size[0])], True
    size[0] += len(text)
    skip_code = False
    for raw in text.split("\n"):
        line = raw.strip()
        if skip_code:  # the source line a warning quotes
            skip_code = False
            if raw[:1].isspace():
                continue
        if not line or _NOISE.match(line):
            continue
        if _WARNING.match(raw):
            skip_code = True
            continue
        if _CUT.match(line):
            shown.cut = True
            break
        figure, marker = _FIGURE.match(line), _MARKER.match(line)
        if figure or marker:
            kind = _IMAGES.get((marker.group(1) or marker.group(2)) if marker else "", "")
            axes = int(figure.group(1)) if figure else None
            last = shown.visuals[-1] if shown.visuals else None
            # a marker and its figure's text, in either order, are one figure
            if last and shown.lines[-1:] == [("\0", chunk)]:
                if (not last[0] or not kind) and (last[1] is None or axes is None):
                    shown.visuals[-1] = (last[0] or kind, last[1] if axes is None else axes)
                    continue
            shown.visuals.append((kind, axes))
            shown.lines.append(("\0", chunk))  # a placeholder, dropped below
            continue
        shown.lines.append((_normalise(raw), chunk))


def shown_in(outputs: list[dict[str, Any]]) -> Shown:
    """What ``outputs`` show: stdout and text results (not stderr), images, the first error."""
    shown, size = Shown(), [0]
    for chunk, out in enumerate(outputs or []):
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") != "stderr":
            _add_text(shown, _text(out.get("text")), chunk, size)
        elif kind in ("execute_result", "display_data"):
            data = out.get("data") or {}
            text = _text(data.get("text/plain"))
            plain = text.strip()
            images = [_IMAGES[m] for m in data if m in _IMAGES]
            figure = _FIGURE.match(plain)
            if images or figure:
                shown.visuals.append((images[0] if images else "", figure and int(figure[1])))
            elif plain:
                _add_text(shown, text, chunk, size)
        elif kind == "error" and shown.error is None:
            shown.error = (str(out.get("ename", "")), str(out.get("evalue", "")))
    shown.lines = [(line, chunk) for line, chunk in shown.lines if line != "\0"]
    return shown
