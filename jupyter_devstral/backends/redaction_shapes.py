"""Secrets in printed key files and tables, and string literals, for :mod:`.redaction`.

A notebook's outputs print what no assignment names: a ``.netrc`` (``machine h login u
password pw``), a ``.pgpass`` line (``host:port:db:user:password``), a DataFrame with a
``password`` or ``api_key`` column (its text repr, or its HTML table). These find the values;
``accept(strength, value)`` and ``secret_name(name)`` are the name rule's own (passed in, so
this module does not import the one that imports it), so a ``token`` column of ordinary words
stays as it is, as ``token = "apple"`` does.

The name rule's regexes see a string literal's value only up to a backslash or a quote; the
helpers at the end take it on to its real end (an escaped quote, triple quotes), say
whether it is an f-string, and pair a tuple assignment's targets with its values
(``user, password = "ada", "pw"``).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable

Hit = tuple[int, int, str, str, bool]  # start, end, value, name or kind, found by name
Accept = Callable[[str | None, str], bool]
SecretName = Callable[[str], str | None]

# -- key files ---------------------------------------------------------------------------------

# .netrc: "machine h login u password pw", on one line or one field a line (also in JSON text,
# where a newline is the two characters \n)
_SPACE = r"(?:\s|\\[nrt])+"
_FIELD = r"[^\s\"'`\\]+"
_NETRC = re.compile(
    rf"machine[ \t]+{_FIELD}(?P<f>(?:{_SPACE}(?:login|account|port)[ \t]+{_FIELD}){{0,3}})"
    rf"{_SPACE}password[ \t]+(?P<v>{_FIELD})(?P<after>{_SPACE}login[ \t])?"
)
_NETRC_DEFAULT = re.compile(
    rf"default{_SPACE}login[ \t]+{_FIELD}{_SPACE}password[ \t]+(?P<v>{_FIELD})"
)
# .pgpass: "host:port:database:user:password", exactly five fields, a numeric or * port
_PGPASS = re.compile(
    r":(?:\d{1,5}|\*):[^:\s]{1,256}:[^:\s]{1,256}:(?P<v>[^:\s]{1,1024})[ \t]*(?=[\r\n]|$)"
)
_HOST = re.compile(r"\*|[A-Za-z0-9_-]*[A-Za-z_.][A-Za-z0-9_.-]*")  # not a number: 12:30:45
_HEX_FIELDS = re.compile(r"[0-9a-f:]+")  # an IPv6 address has five hex fields too


def key_file_hits(text: str, lowered: str, accept: Accept) -> list[Hit]:
    """Passwords in a printed ``.netrc`` or ``.pgpass``."""
    hits: list[Hit] = []
    for regex in (_NETRC, _NETRC_DEFAULT):
        for m in regex.finditer(lowered):
            start = m.start()
            if start and (lowered[start - 1].isalnum() or lowered[start - 1] in "_-."):
                continue  # "automachine", "use_default"
            if regex is _NETRC and "login" not in m.group("f") and not m.group("after"):
                continue  # prose: "machine learning password manager"
            value = text[m.start("v") : m.end("v")]
            if accept("strong", value):
                hits.append((m.start("v"), m.end("v"), value, "netrc_password", False))
    if ":" not in text:
        return hits
    for m in _PGPASS.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        host = text[line_start : m.start()].strip()
        if not _HOST.fullmatch(host) or _HEX_FIELDS.fullmatch(text, line_start, m.end()):
            continue
        value = m.group("v")
        if accept("strong", value):
            hits.append((m.start("v"), m.end("v"), value, "pgpass_password", False))
    return hits


# -- tables ------------------------------------------------------------------------------------

# A DataFrame's header line in its text repr: indented (the index has no header), bare labels
# only, the whole line. It starts with the newline before it: a literal the regex engine skips
# to at C speed (the first line is matched apart). Also inside a JSON string (a tool result),
# where a line ends in the two characters \n.
_LABEL_CHARS = r"[^\s=()\[\]{}\"'<>,;:#\\]+"
_HEADER = r"[ \t]+" + _LABEL_CHARS + r"(?:[ \t]+" + _LABEL_CHARS + r")*[ \t]*"
_LINES = (  # (first line, any other line, a line's end)
    (
        re.compile(_HEADER + r"\\?(?=[\r\n]|$)"),  # a wide frame's header ends in \
        re.compile(r"\n" + _HEADER + r"\\?(?=[\r\n]|$)"),
        re.compile(r"\n"),
    ),
    (
        None,
        re.compile(r"(?:\\n|(?<!\\)\")" + _HEADER + r"(?=\\[rn]|\"|$)"),
        re.compile(r"\\n|(?<!\\)\""),
    ),
)
_LABEL = re.compile(r"\S+")
_KEYWORDS = frozenset(keyword.kwlist)
_MAX_ROWS = 500
# an HTML table's header cell, and any cell
_TH = re.compile(r"<th(?:\s[^>]*)?>\s*(?P<n>[^<\s][^<]{0,80}?)\s*</th>")
_CELL = re.compile(r"<t(?P<k>[hd])(?:\s[^>]*)?>(?P<v>[^\x00]{0,1024}?)</t(?P=k)>")


def table_hits(text: str, accept: Accept, secret_name: SecretName) -> list[Hit]:
    """The cells of a printed DataFrame under a header that is a secret name (``password``,
    ``api_key``), in its text repr and in its HTML table."""
    hits = _text_table_hits(text, accept, secret_name)
    if "<th" in text:
        hits += _html_table_hits(text, accept, secret_name)
    return hits


def _text_table_hits(text: str, accept: Accept, secret_name: SecretName) -> list[Hit]:
    """In pandas' text repr, labels and values are right-aligned: a column's cells end in
    the column its label ends in, and begin after the label before it (or the index)."""
    hits: list[Hit] = []
    for first_line, other_line, line_end in _LINES if "\\n" in text else _LINES[:1]:
        first = first_line.match(text) if first_line else None
        for m in ([first] if first else []) + list(other_line.finditer(text)):
            hits += _rows(text, m, line_end, accept, secret_name)
    return hits


def _rows(
    text: str,
    m: re.Match[str],
    line_end: re.Pattern[str],
    accept: Accept,
    secret_name: SecretName,
) -> list[Hit]:
    """The secret cells of the rows below the header line ``m``."""
    prefix = m.group()[:2]  # the line's start: after \n, the two characters \n, or "
    line_start = m.start() + (2 if prefix == "\\n" else prefix[:1] in ('"', "\n"))
    labels = [
        (x.start() - line_start, x.end() - line_start, x.group())
        for x in _LABEL.finditer(text, line_start, m.end())
    ]
    if any(label in _KEYWORDS for _, _, label in labels):
        return []  # code: "    assert not config.secrets"
    secret = [(i, secret_name(label)) for i, (_, _, label) in enumerate(labels)]
    secret = [(i, strength) for i, strength in secret if strength]
    hits: list[Hit] = []
    pos = m.end()
    for _ in range(_MAX_ROWS if secret else 0):
        sep = line_end.search(text, pos)
        if sep is None or sep.group() == '"':
            break
        row_start = sep.end()
        nxt = line_end.search(text, row_start)
        row_end = len(text) if nxt is None else nxt.start()
        row = text[row_start:row_end].rstrip("\r")
        if not row.strip() or "\x00" in row or row.startswith("["):
            break  # the table's end, the next text, "[5 rows x 3 columns]"
        if len(row) - len(row.lstrip()) >= labels[0][0]:
            break  # a row starts with its index, left of the labels; code stays indented
        for i, strength in secret:
            hit = _cell(row, row_start, labels, i)
            if hit is not None and accept(strength, hit[2]):
                hits.append((*hit, labels[i][2], True))
        pos = row_end
    return hits


def _cell(
    row: str, row_start: int, labels: list[tuple[int, int, str]], i: int
) -> tuple[int, int, str] | None:
    """The cell of ``row`` under label ``i``: right-aligned with it, after the cell before."""
    end = labels[i][1]
    if len(row) < end or row[end - 1].isspace() or (len(row) > end and not row[end].isspace()):
        return None
    if i:
        low = labels[i - 1][1]
    else:
        index = _LABEL.match(row, len(row) - len(row.lstrip()))
        low = index.end() if index else 0
    if low >= end or not row[low].isspace():
        return None  # misaligned: not a cell of this table
    start = low + len(row[low:end]) - len(row[low:end].lstrip())
    return row_start + start, row_start + end, row[start:end]


def _html_table_hits(text: str, accept: Accept, secret_name: SecretName) -> list[Hit]:
    """In an HTML table, the ``<td>`` at the position of a ``<th>`` that is a secret name,
    in every row after the header's, up to ``</table>``."""
    hits: list[Hit] = []
    for m in _TH.finditer(text):
        strength = secret_name(m.group("n"))
        if not strength:
            continue
        row_start = text.rfind("<tr", 0, m.start())
        header_end = text.find("</tr>", m.end())
        if row_start < 0 or header_end < 0:
            continue
        position = sum(1 for _ in _CELL.finditer(text, row_start, m.start()))
        table_end = text.find("</table>", header_end)
        table_end = len(text) if table_end < 0 else table_end
        pos = header_end
        while True:
            tr = text.find("<tr", pos, table_end)
            if tr < 0:
                break
            tr_end = text.find("</tr>", tr, table_end)
            tr_end = table_end if tr_end < 0 else tr_end
            cells = list(_CELL.finditer(text, tr, tr_end))
            if position < len(cells) and cells[position].group("k") == "d":
                cell = cells[position]
                value = cell.group("v").strip()
                if accept(strength, value):
                    start = cell.start("v") + cell.group("v").index(value)
                    hits.append((start, start + len(value), value, m.group("n"), True))
            pos = tr_end
    return hits


# -- string literals -------------------------------------------------------------------------

# A string literal's body after its opening delimiter: escapes (\" \\ \n) are part of it.
_BODIES = {
    '"': re.compile(r'(?:[^"\\\n\r]|\\.)*'),
    "'": re.compile(r"(?:[^'\\\n\r]|\\.)*"),
    '"""': re.compile(r'(?:[^"\\\n\r]|\\.|"(?!""))*'),
    "'''": re.compile(r"(?:[^'\\\n\r]|\\.|'(?!''))*"),
}
_OPENING = re.compile(r"([rbufRBUF]{0,2})(\"\"\"|'''|\"|')")


def literal_delimiter(text: str, start: int) -> str | None:
    """The quote that opens the literal whose value starts at ``start``; None for an escaped
    one (``\\"``, a string inside JSON text), where the value stays as the regex found it."""
    quote = text[start - 1 : start]
    if quote not in ('"', "'"):
        return None
    delimiter = quote * 3 if text[start - 3 : start] == quote * 3 else quote
    at = start - len(delimiter)
    return None if text[at - 1 : at] == "\\" else delimiter


def literal_end(
    text: str, delimiter: str | None, start: int, end: int, after: int
) -> tuple[int, int]:
    """The end of the value that starts at ``start`` and of its literal: over escaped quotes
    (``"Tr0ub4\\"dor"``) and the other quote (``"it's"``), up to the real delimiter."""
    if delimiter is None or text.startswith(delimiter, end):
        return end, after
    body = _BODIES[delimiter].match(text, start)
    if body is None or not text.startswith(delimiter, body.end()):
        return end, after  # unterminated on its line: as the regex found it
    if text[end : end + 1] != "\\" and any(c.isspace() for c in body.group()):
        return end, after  # .replace('KEY = "', 'TOKEN = "'): code in a string, not "it's"
    return body.end(), body.end() + len(delimiter)


def is_f_string(text: str, delimiter: str | None, start: int) -> bool:
    """Whether the literal whose value starts at ``start`` has an ``f`` prefix."""
    at = start - len(delimiter or "")
    return delimiter is not None and "f" in text[max(0, at - 2) : at].lower()


# user, password = "ada", "pw": the targets of a tuple assignment at a statement's start
_TARGET = re.compile(r"[A-Za-z_][\w.]*")
_TARGETS = re.compile(
    r"[ \t]*[(\[]?[ \t]*(?P<t>[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)+)[ \t]*,?[ \t]*"
    r"[)\]]?[ \t]*=(?!=)[ \t]*"
)


def unpacked_value(text: str, start: int, end: int) -> list[tuple[int, int, str]] | None:
    """When the name at ``start:end`` is one of a tuple assignment's targets: its value, if it
    is a string literal ([] if not); None when it is not such a target."""
    line_start = text.rfind("\n", 0, start) + 1
    m = _TARGETS.match(text, line_start)
    if m is None or not m.start("t") <= start < m.end("t"):
        return None
    targets = [t.end() for t in _TARGET.finditer(text, m.start("t"), m.end("t"))]
    if end not in targets:
        return None
    values = _tuple_values(text, m.end())
    if len(values) != len(targets):
        return []  # user, password = creds: not a literal per target
    value = values[targets.index(end)]
    return [] if value is None else [value]


def _tuple_values(text: str, pos: int) -> list[tuple[int, int, str] | None]:
    """The items of a tuple of values from ``pos`` to the end of the line: (start, end,
    value) for a string literal, None for any other expression."""
    eol = text.find("\n", pos)
    eol = len(text) if eol < 0 else eol
    items: list[tuple[int, int, str] | None] = []
    i = pos + (text[pos : pos + 1] in ("(", "["))
    while i < eol and len(items) < 64:
        while i < eol and text[i] in " \t":
            i += 1
        opening = _OPENING.match(text, i, eol)
        if opening:
            body = _BODIES[opening.group(2)].match(text, opening.end(), eol)
            close = body.end() if body else opening.end()
            if text.startswith(opening.group(2), close):
                items.append((opening.end(), close, text[opening.end() : close]))
                i = close + len(opening.group(2))
            else:
                return items + [None]
        else:
            i = _expression_end(text, i, eol)
            if i == -1:
                break
            items.append(None)
        while i < eol and text[i] in " \t":
            i += 1
        if i >= eol or text[i] != ",":
            break
        i += 1
    return items


def _expression_end(text: str, i: int, eol: int) -> int:
    """Where an expression that starts at ``i`` ends: a comma or closing bracket at depth
    0, a comment or the line's end; -1 for nothing (``a, b = )``)."""
    start, depth = i, 0
    while i < eol:
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if not depth:
                break
            depth -= 1
        elif (c == "," and not depth) or c == "#":
            break
        elif c in "\"'":
            body = _BODIES[c].match(text, i + 1, eol)
            i = body.end() if body else i
        i += 1
    return i if i > start else -1
