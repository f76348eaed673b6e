"""Cell outputs and errors as short, model-readable text.

Everything here is bounded and single-pass: a 50 MB stream is sliced to its head and tail
before anything (ANSI stripping, carriage-return handling) looks at its characters. Rich
outputs (images, HTML, widgets...) are never sent; they become a one-line placeholder.
"""

from __future__ import annotations

import re
from typing import Any

from ..homes.notebook import ErrorInfo

__all__ = ["strip_ansi", "truncate", "trim_traceback", "render_outputs", "error_from_outputs"]

_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_PARTIAL_ANSI_RE = re.compile(r"\x1b[\[\]]?[0-?]*$")
_CR_RE = re.compile(r"[^\n\r]*\r(?!\n)")

#: Mime types whose value is text worth showing when there is no text/plain.
_TEXT_FALLBACKS = ("text/markdown", "text/latex", "application/json")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# Traceback shapes (after ANSI stripping).
_CELL_FRAME_RE = re.compile(r"(?:Cell In ?\[|Input In ?\[)")
_FILE_FRAME_RE = re.compile(r'File\s+"?(?P<path>[^"\n]+?)"?(?::\d+|,\s*line\s+\d+)')
_OLD_FRAME_RE = re.compile(r"(?P<path><ipython-input-[^>]*>|<[^>]+>|\S+\.(?:py|pyx|pxi)) in ")
_HEADER_RE = re.compile(r"Traceback \(most recent call last\)")
_SITE_RE = re.compile(r"[^\s\"']*?[/\\](?:site|dist)-packages[/\\](?P<pkg>[^/\\]+)")
_STDLIB_RE = re.compile(r"[^\s\"']*?[/\\]lib[/\\]python\d(?:\.\d+)?[/\\](?P<pkg>[^/\\]+)")
_ARROW_RE = re.compile(r"^\s*-+>")
_CARET_RE = re.compile(r"^\s*[\^~]+\s*$")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor moves, OSC links)."""
    if "\x1b" not in text:
        return text
    return _ANSI_RE.sub("", text)


def _clean(text: str) -> str:
    """Strip ANSI and collapse carriage-return progress updates to their final state."""
    text = strip_ansi(text)
    return _CR_RE.sub("", text) if "\r" in text else text


def truncate(
    text: str, max_chars: int, *, head_share: float = 0.4, total: int | None = None
) -> str:
    """Clean ``text`` and bound it to about ``max_chars``, keeping its head and tail.

    The raw text is sliced first, so the work done is proportional to ``max_chars``, not to
    ``len(text)``. Cuts snap to a nearby line break; the marker says how much was cut.
    ``total``: the real length when ``text`` is already just a head and a tail of it.
    """
    n = len(text) if total is None else total
    if n <= max_chars:
        return _clean(text)
    keep = max(max_chars - 40, 20)
    head_n = int(keep * head_share)
    tail_n = keep - head_n
    head, tail = text[:head_n], text[-tail_n:]
    nl = head.rfind("\n")
    if nl > head_n * 0.8:
        head = head[: nl + 1]
    nl = tail.find("\n")
    if 0 <= nl < tail_n * 0.2:
        tail = tail[nl + 1 :]
    head = _PARTIAL_ANSI_RE.sub("", head)
    cut = n - len(head) - len(tail)
    sep = "" if head.endswith("\n") else "\n"
    return f"{_clean(head)}{sep}[... {cut:,} characters cut ...]\n{_clean(tail)}"


def _bounded(value: Any, max_chars: int) -> str:
    """:func:`truncate` for an nbformat multiline string, which may be a list of lines.

    A long list is not joined: only the lines at its two ends are.
    """
    if isinstance(value, str):
        return truncate(value, max_chars)
    if not isinstance(value, list):
        return truncate(str(value), max_chars)
    try:
        total = sum(map(len, value))  # per line, not per character
    except TypeError:
        value = [str(v) for v in value]
        total = sum(map(len, value))
    lines: list[str] = value
    if total <= 2 * max_chars:
        return truncate("".join(lines), max_chars)
    ends = []
    for seq in (lines, reversed(lines)):
        kept, size = [], 0
        for line in seq:
            kept.append(line)
            size += len(line)
            if size >= max_chars:
                break
        ends.append(kept)
    text = "".join(ends[0]) + "".join(reversed(ends[1]))
    return truncate(text, max_chars, total=total)


def _size_of(value: Any) -> int:
    if isinstance(value, list):
        return sum(len(v) for v in value if isinstance(v, str))
    return len(value) if isinstance(value, (str, bytes)) else 0


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n // 1024} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _placeholder(mime: str, value: Any) -> str:
    size = _size_of(value)
    if mime.startswith(("image/", "video/", "audio/")) and mime != "image/svg+xml":
        size = size * 3 // 4  # base64
    if mime == _WIDGET_MIME:
        return "[widget output]"
    return f"[{mime} output, {_human(size)}]"


# --- tracebacks ---------------------------------------------------------------------------


def _frame_kind(first_line: str) -> tuple[str, str]:
    """Classify a traceback entry: ('user'|'lib'|'', package name for library frames)."""
    line = first_line.strip()
    if _CELL_FRAME_RE.match(line):
        return "user", ""
    m = _FILE_FRAME_RE.match(line) or _OLD_FRAME_RE.match(line)
    if not m:
        return "", ""
    path = m.group("path")
    if "ipython-input" in path or "ipykernel_" in path:
        return "user", ""
    lib = _SITE_RE.search(path) or _STDLIB_RE.search(path)
    if lib:
        return "lib", lib.group("pkg").split(".", 1)[0]
    if path.endswith((".pyx", ".pxi")) or path.startswith("<frozen"):
        name = path.strip("<>").replace("frozen ", "")
        return "lib", re.split(r"[/\\.]", name, maxsplit=1)[0]
    return "user", ""


def _short_lib_frame(block: str) -> str:
    """The raising library frame: its header, arrow and caret lines, paths shortened."""
    lines = block.splitlines()
    header = lines[0]
    for regex in (_SITE_RE, _STDLIB_RE):
        header = regex.sub(lambda m: ".../" + m.group("pkg"), header, count=1)
    arrows = [ln for ln in lines[1:] if _ARROW_RE.match(ln) or _CARET_RE.match(ln)]
    if not any(_ARROW_RE.match(ln) for ln in arrows):
        arrows = lines[1:4]  # plain Python / SyntaxError shape: code line and carets
    return "\n".join([header.strip(), *arrows])


def _collapse(pkgs: list[str]) -> str:
    names = ", ".join(dict.fromkeys(pkgs))
    n = len(pkgs)
    return f"  ... {n} frame{'s' if n > 1 else ''} in {names} ..."


def trim_traceback(error: ErrorInfo, max_chars: int = 3000) -> str:
    """The user's part of a traceback, ANSI-free, bounded, ending with ``ename: evalue``.

    Cell frames and frames in the user's own files are kept whole. Runs of library frames
    (site-packages, the standard library, Cython sources) collapse to one line, except the
    last frame of a run that raised the exception, whose arrow line is kept. SyntaxError
    blocks (file line, code, caret) pass through unchanged.
    """
    entry_cap = max(max_chars * 2, 2000)
    out: list[str] = []
    run: list[tuple[str, str]] = []  # pending library frames: (block, package)

    def flush(raised: bool) -> None:
        if not run:
            return
        if raised:
            if len(run) > 1:
                out.append(_collapse([p for _, p in run[:-1]]))
            out.append(_short_lib_frame(run[-1][0]))
        else:
            out.append(_collapse([p for _, p in run]))
        run.clear()

    entries = list(error.traceback)
    if len(entries) > 400:  # e.g. a RecursionError: keep the first and the last frames
        skipped = f"[... {len(entries) - 300:,} traceback entries cut ...]"
        entries = [*entries[:100], skipped, *entries[-200:]]
    for raw in entries:
        block = truncate(raw, entry_cap).rstrip()
        if not block.strip():
            continue
        first = block.lstrip("\n").split("\n", 1)[0]
        kind, pkg = _frame_kind(first)
        if kind == "lib":
            run.append((block.strip("\n"), pkg))
            continue
        if kind == "user":
            flush(raised=False)
            out.append(block.strip("\n"))
            continue
        flush(raised=True)
        stripped = block.strip()
        if set(stripped) <= {"-"} or _HEADER_RE.search(first):
            continue
        out.append(stripped)
    flush(raised=True)

    final = error.one_line()
    last = out[-1].rsplit("\n", 1)[-1].strip() if out else ""
    if not re.match(rf"(?:[\w.]+\.)?{re.escape(error.ename)}(?::|$)", last):
        out.append(final)
    return truncate("\n".join(out), max_chars, head_share=0.3)


def error_from_outputs(outputs: list[dict[str, Any]]) -> ErrorInfo | None:
    """The first error output of a cell as an :class:`ErrorInfo`, if any."""
    for out in outputs:
        if out.get("output_type") == "error":
            return ErrorInfo(
                str(out.get("ename", "")), str(out.get("evalue", "")), out.get("traceback") or []
            )
    return None


# --- outputs ------------------------------------------------------------------------------


def _render_data(data: dict[str, Any], cap: int) -> str:
    """One display_data / execute_result bundle."""
    if _WIDGET_MIME in data:
        return _placeholder(_WIDGET_MIME, None)
    rich = [m for m in data if m != "text/plain"]
    parts = [_placeholder(m, data[m]) for m in rich if m.startswith(("image/", "video/", "audio/"))]
    if "text/plain" in data:
        parts.append(_bounded(data["text/plain"], cap))
    elif not parts:
        for mime in _TEXT_FALLBACKS:
            if mime in data:
                value = data[mime]
                text = value if isinstance(value, (str, list)) else repr(value)[: cap * 2]
                parts.append(_bounded(text, cap))
                break
        else:
            parts = [_placeholder(m, data[m]) for m in rich[:3]]
    return "\n".join(parts)


def render_outputs(outputs: list[dict[str, Any]], max_chars: int = 2000) -> str:
    """nbformat outputs as text: streams, text/plain results, placeholders, trimmed errors.

    Each output is bounded to ``max_chars`` and so is the whole (head and tail kept).
    stderr is prefixed with ``[stderr]``; rich outputs become ``[image/png output, 34 KB]``.
    """
    parts: list[str] = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = _bounded(out.get("text", ""), max_chars).rstrip("\n")
            if text:
                parts.append(f"[stderr] {text}" if out.get("name") == "stderr" else text)
        elif kind in ("execute_result", "display_data"):
            text = _render_data(out.get("data") or {}, max_chars)
            if text:
                parts.append(text.rstrip("\n"))
        elif kind == "error":
            err = error_from_outputs([out])
            if err is not None:
                parts.append(trim_traceback(err, max_chars))
    joined = "\n".join(parts)
    return truncate(joined, max_chars) if len(joined) > max_chars else joined


# --- a plain traceback for small models ---------------------------------------------------

_IPY_FRAME_RE = re.compile(
    r"^\s*(?:Cell|Input) In ?\[(?P<count>\d*)\], line (?P<line>\d+)(?:, in (?P<func>[^\s(]+))?"
)
_PY_FRAME_RE = re.compile(
    r'^\s*File "?(?P<path>[^",\n]+?)"?(?::(?P<line1>\d+)|, line (?P<line2>\d+))'
    r"(?:, in (?P<func>[^\s(]+))?"
)
_CODE_ARROW_RE = re.compile(r"^\s*-*> ?(\d+)\s?(?P<code>.*)$")
_CONTEXT_LINE_RE = re.compile(r"^\s*\d+\s?(.*)$")
_CHAIN_RE = re.compile(r"^(The above exception was|During handling of the above exception)")
_EXC_LINE_RE = re.compile(
    r"^[\w.]*(?:Error|Exception|Warning|Interrupt|Exit)\b(?::.*|\s+Traceback.*)?$"
)
_COMPREHENSION = ("<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>")
_SYNTAX_SUFFIX_RE = re.compile(r"\s*\([^()]*\.py, line \d+\)$")


def _frames(lines: list[str]) -> list[dict[str, Any]]:
    """Frames of one exception's traceback lines: where, which function, the code line."""
    frames: list[dict[str, Any]] = []
    for line in lines:
        m = _IPY_FRAME_RE.match(line)
        if m:
            frames.append(
                {
                    "where": f"In[{m['count']}]",
                    "lib": "",
                    "line": int(m["line"]),
                    "func": m["func"] or "",
                    "code": None,
                    "plain": False,
                }
            )
            continue
        m = _PY_FRAME_RE.match(line)
        if m:
            kind, pkg = _frame_kind(line)
            path = m["path"]
            where = "cell" if path in ("<cell>", "<string>") else path
            if kind == "user" and ("ipykernel_" in path or "ipython-input" in path):
                where = "kernel:" + path
            frames.append(
                {
                    "where": where,
                    "lib": pkg if kind == "lib" else "",
                    "line": int(m["line1"] or m["line2"]),
                    "func": m["func"] or "",
                    "code": None,
                    "plain": True,
                }
            )
            continue
        if not frames or frames[-1]["code"] is not None or not line.strip():
            continue
        frame = frames[-1]
        arrow = _CODE_ARROW_RE.match(line)
        if arrow:
            frame["code"] = arrow["code"].strip()
        elif frame["plain"] and not _CARET_RE.match(line) and not _EXC_LINE_RE.match(line.strip()):
            frame["code"] = line.strip()
        elif (
            not frame["plain"]
            and not _CONTEXT_LINE_RE.match(line)
            and not _CARET_RE.match(line)
            and not _EXC_LINE_RE.match(line.strip())
        ):
            frame["code"] = line.strip()  # a SyntaxError block: the code line, no arrow
    return frames


def _last_frames(error: ErrorInfo) -> list[dict[str, Any]]:
    """The frames of the last exception of a chain, from the failing cell down (ANSI-free)."""
    text = _clean("\n".join(truncate(str(e), 4000) for e in error.traceback[-400:]))
    blocks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if _CHAIN_RE.match(line.strip()):
            blocks.append([])
        else:
            blocks[-1].append(line)
    frames = _frames(blocks[-1]) or _frames([ln for b in blocks for ln in b])
    if any(f["where"] == "cell" for f in frames):  # a trial run: frames above it are ours
        frames = frames[next(i for i, f in enumerate(frames) if f["where"] == "cell") :]
    return frames


def error_lines(error: ErrorInfo) -> list[int]:
    """Line numbers in the failing cell that the traceback goes through, innermost first."""
    frames = _last_frames(error)
    target = next((f["where"] for f in frames if not f["lib"]), None)
    lines = [f["line"] for f in frames if f["where"] == target and not f["lib"]]
    return list(dict.fromkeys(reversed(lines)))


def simple_traceback(error: ErrorInfo, max_chars: int = 1500) -> str:
    """The error as a small model reads it best: no ``Cell In[..]`` headers, arrows, context
    lines or ANSI (small models copy those into their fix), just ``line N: <code>`` for each
    step through the failing cell (``line N, in f: <code>`` inside its functions), one line
    for a function of an earlier cell or a library it went through, and ``Ename: message``.

    The failing cell is the first cell the traceback names; of chained exceptions only the
    last one counts (pandas raises a KeyError "from" its own).
    """
    frames = _last_frames(error)
    target = next((f["where"] for f in frames if not f["lib"]), None)
    out: list[str] = []
    libs: list[str] = []
    for frame in frames:
        if frame["lib"]:
            libs.append(frame["lib"])
            continue
        if libs:
            out.append(f"(inside {', '.join(dict.fromkeys(libs))})")
            libs = []
        func = frame["func"]
        code = frame["code"] or ""
        if func in _COMPREHENSION and out and out[-1].endswith(": " + code):
            continue
        if func in ("", "<module>") + _COMPREHENSION:
            where = f"line {frame['line']}"
        else:
            where = f"line {frame['line']}, in {func}"
        if frame["where"] != target:
            where = f"in {func or 'code'} (defined in an earlier cell)"
        out.append(f"{where}: {code}" if code else where)
    if libs:
        out.append(f"(inside {', '.join(dict.fromkeys(libs))})")
    evalue = error.evalue
    if error.ename in ("SyntaxError", "IndentationError", "TabError"):
        evalue = _SYNTAX_SUFFIX_RE.sub("", evalue)
    out.append(f"{error.ename}: {evalue}" if evalue else error.ename)
    if len(out) > 12:  # deep recursion: the first steps and the last ones
        out = [*out[:4], f"[... {len(out) - 11} steps cut ...]", *out[-7:]]
    return truncate("\n".join(out), max_chars, head_share=0.3)
