"""Secrets never reach a model: keys, tokens and passwords become ``<secret:NAME>`` placeholders.

:meth:`Backend.chat <jupyter_devstral.backends.base.Backend.chat>` runs :func:`redact_messages`
on every request, for every backend (hosted, embedded, the model worker, the scripted one), so
no path to a model skips it. Two rules find a secret, in any text of the messages (contents,
tool-call arguments, tool results):

* the **name rule**: the value of an assignment, keyword argument, dict key or ``NAME=value``
  env line whose name has a secret word as a word part (``API_KEY``, ``db_password``,
  ``authToken``; not ``keys``, ``monkey``, ``author``, ``tokenizer`` or ``max_tokens``).
  Unambiguous words (password, secret, credential, api key, access token...) take any string
  of 4+ characters; ambiguous ones alone (``key``, ``token``, ``session``: ``key = "region"``,
  ``pad_token = "[PAD]"``) only a value that looks random (see :func:`_looks_random`);
* the **pattern rule**: well-known key shapes (AWS, ``sk-``, GitHub, Slack, Google, Stripe,
  Hugging Face, JWTs, PEM private keys, passwords in URLs, ``Bearer``/``Authorization``).

A value found either way (8+ characters, or 5+ not all letters) is then replaced *everywhere*
in the messages, so a key assigned in one cell and printed in another's output gets the same
placeholder; other values only where they were found (``password = "test"`` must not eat every
"test"), and a short value only between non-alphanumerics (``12345`` is not in ``123456``). The
values of ``known_secrets`` (the process's own secret-looking environment variables, see
:func:`env_secrets`) are replaced wherever they appear. A placeholder names the variable
(``<secret:API_KEY>``), else the pattern's kind (``<secret:github_token>``).

The output is a pure function of the input (the local model's KV-cache reuse depends on byte
identical prompts) and redacting twice changes nothing. Speed: all texts are scanned as one
string, each key shape and each secret word is its own regex that starts with a literal (the
engine skips to it at C speed), and the found values are then replaced with ``str.find``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

PLACEHOLDER_RE = re.compile(r"<secret:[\w.-]{1,80}>")
"""A placeholder: the agent rejects a candidate edit that contains one."""

GLOBAL_MIN = 8  # values this long are replaced wherever they occur (and in known_secrets)


def _everywhere(value: str) -> bool:
    """Whether a found value is replaced wherever it occurs, not only where it was found:
    8+ characters, or 5+ that are not all letters (``hunter2`` yes, ``test`` no)."""
    return len(value) >= GLOBAL_MIN or (len(value) >= 5 and not value.isalpha())


# -- the name rule -----------------------------------------------------------------------------

_STRONG = frozenset(
    "password passwd passphrase pwd secret secrets credential credentials creds apikey "
    "dsn bearer privatekey accesskey secretkey authtoken".split()
)
_WEAK = frozenset("key token auth session private cookie pass".split())
_QUALIFIERS = frozenset(
    "api access secret private auth refresh session signing encryption master client bearer "
    "bot app id oauth csrf jwt ssh db database admin root hf github gh gitlab slack stripe aws "
    "gcp azure openai mistral anthropic huggingface deploy service webhook".split()
)
_PART_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@lru_cache(maxsize=4096)
def secret_name(name: str) -> str | None:
    """Whether ``name`` says its value is a secret: "strong", "weak" or None.

    Word parts split on ``_``, ``-``, ``.``, digits and camelCase. Strong: a strong word
    (``password``, ``secret``...) or a weak word after a qualifier (``API_KEY``,
    ``access_token``, ``authToken``, ``GITHUB_TOKEN``). Weak: a weak word alone (``key``,
    ``token``, ``sort_key``, ``pad_token``).
    """
    parts = [p.lower() for p in _PART_RE.findall(name)]
    weak = False
    for i, part in enumerate(parts):
        if part in _STRONG:
            return "strong"
        if part in _WEAK:
            if i and parts[i - 1] in _QUALIFIERS:
                return "strong"
            weak = True
    lowered = name.lower()
    if "password" in lowered or "passwd" in lowered or "apikey" in lowered:
        return "strong"  # mypassword, dbpasswd, xapikey
    return "weak" if weak else None


def _looks_random(value: str) -> bool:
    """A credential-like value for a weak name: no spaces, not a path or URL, 10+ chars with
    2+ digits and 2+ letters, or 24+ chars of anything."""
    if len(value) < 10 or value[0] in "/~." or "://" in value or any(c.isspace() for c in value):
        return False
    if len(value) >= 24:
        return True
    digits = sum(c.isdigit() for c in value)
    return digits >= 2 and sum(c.isalpha() for c in value) >= 2


def _mixed(value: str) -> bool:
    """A digit, or upper and lower case: random keys have them, words in prose do not."""
    return any(c.isdigit() for c in value) or (value.lower() != value and value.upper() != value)


def _accept(strength: str | None, value: str) -> bool:
    if strength is None or len(value) < 4 or "<secret:" in value:
        return False
    if value.strip("*xX") == "" or value.lower() in ("none", "null", "changeme", "<redacted>"):
        return False
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value) and secret_name(value):
        return False  # the *name* of a variable (api_key_env = "MISTRAL_API_KEY")
    return strength == "strong" or _looks_random(value)


_VALUE = r"[^\"'\\\n\r]{4,1024}"
_BARE = r"[^\s\"'`()\[\]{},;\\]"
_AFTER_NAME = (  # the rest of the name, an operator and a value (one group of v1..v4 matches)
    r"[\w-]*"
    r"(?:\\?[\"']\s*(?:\]\s*=|:|,)\s*[rbu]{0,2}\\?[\"'](?P<v1>" + _VALUE + r")\\?[\"']"
    r"|\s*(?::[^=\n]{1,60}?)?=\s*[rbu]{0,2}\\?[\"'](?P<v2>" + _VALUE + r")\\?[\"']"
    r"|=(?P<v3>" + _BARE + r"{4,1024})[ \t]*(?=[\r\n]|$)"
    r"|:[ \t]+(?P<v4>" + _BARE + r"{8,1024})[ \t]*(?=[\r\n]|$))"
)
# One regex per secret word, each starting with its literal, so that the regex engine skips to
# the word at C speed (one alternation of the words is no faster: it stops at every k, t, s,
# p...). They run on the lower-cased text; the offsets are those of the original.
_NAME_RES = [
    re.compile(word + _AFTER_NAME)
    for word in "key token secret pass pwd cred auth dsn private bearer session cookie".split()
]
_NAME_CHARS = re.compile(r"[\w-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")
_LINE_PREFIXES = ("", "export", "%env", "%set_env", "!export", "set", "-", "#")

# -- the pattern rule --------------------------------------------------------------------------
# (kind, regex, needs a word boundary before it). Every regex starts with a literal, so the
# regex engine skips to it at C speed: a scan costs about what a ``str.find`` does.

_WORDY = frozenset({"openai_key", "bearer_token", "authorization"})  # shapes words can take
_B64 = r"[A-Za-z0-9+/=\s]|\\[nr]"  # a PEM body, also as a string literal's \n escapes
_PATTERNS = [
    (kind, re.compile(regex), boundary)
    for kind, regex, boundary in (
        (
            "private_key",
            r"-----BEGIN[A-Z0-9 ]{0,24}PRIVATE KEY-----"
            r"(?:[^\x00]*?-----END[A-Z0-9 ]{0,24}PRIVATE KEY-----|(?:" + _B64 + r")*)",
            False,
        ),
        ("password_in_url", r"://[^\s:/@\"'<>{}$]*:(?P<v>[^\s@/\"'<>{}$]+)@(?=[\w\[])", False),
        ("aws_access_key_id", r"AKIA[0-9A-Z]{16}(?![0-9A-Za-z])", True),
        ("aws_access_key_id", r"ASIA[0-9A-Z]{16}(?![0-9A-Za-z])", True),
        ("openai_key", r"sk-[A-Za-z0-9_-]{20,}", True),
        ("stripe_key", r"sk_(?:live|test)_[0-9A-Za-z]{16,}", True),
        ("stripe_key", r"rk_(?:live|test)_[0-9A-Za-z]{16,}", True),
        ("github_token", r"gh[pousr]_[A-Za-z0-9]{30,}", True),
        ("github_token", r"github_pat_[A-Za-z0-9_]{30,}", True),
        ("slack_token", r"xox[abposr]-[A-Za-z0-9-]{10,}", True),
        ("google_api_key", r"AIza[0-9A-Za-z_-]{35}", True),
        ("huggingface_token", r"hf_[A-Za-z0-9]{30,}", True),
        ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}", True),
    )
]
_AWS_SECRET = r"[\w\s\"'\\:=,-]{0,40}?(?<![a-z0-9/+])(?P<v>[a-z0-9/+]{40})(?![a-z0-9/+=])"
_LOWER_PATTERNS = [  # case-insensitive ones, run on the lower-cased text
    (kind, re.compile(regex), boundary)
    for kind, regex, boundary in (
        ("bearer_token", r"bearer\s+(?P<v>[a-z0-9._~+/-]{12,}=*)", True),
        (
            "authorization",
            r"authorization[\"']?\s*[:=]\s*[\"']?(?:basic|token)\s+(?P<v>[a-z0-9._~+/-]{8,}=*)",
            False,
        ),
        ("aws_secret_access_key", "aws" + _AWS_SECRET, False),
        ("aws_secret_access_key", "secret" + _AWS_SECRET, False),
    )
]

Hit = tuple[int, int, str, str, bool]  # start, end, value, name or kind, found by name


def _boundary_ok(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_-")


def _line_prefix(text: str, start: int) -> str:
    """What precedes ``start`` on its line: ``NAME=value`` and ``Name: value`` count only at
    the start of a line, or after export, %env..."""
    return text[text.rfind("\n", 0, start) + 1 : start].strip()


def _find(text: str) -> list[Hit]:
    """Every secret in ``text`` (name rule, then pattern rule), as spans of ``text``."""
    hits: list[Hit] = []
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: keep offsets
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    for regex in _NAME_RES:
        for m in regex.finditer(lowered):
            hit = _named(text, m)
            if hit is not None:
                hits.append(hit)
    for patterns, haystack in ((_PATTERNS, text), (_LOWER_PATTERNS, lowered)):
        for kind, regex, boundary in patterns:
            for m in regex.finditer(haystack):
                if boundary and not _boundary_ok(text, m.start()):
                    continue
                start, end = m.span("v") if "v" in regex.groupindex else m.span()
                value = text[start:end]
                if kind in _WORDY and not _mixed(value):
                    continue  # "sk-learn-compatible-estimator", "bearer authentication"
                if "<secret:" not in value and not _masked(value):
                    hits.append((start, end, value, kind, False))
    return hits


def _named(text: str, m: re.Match[str]) -> Hit | None:
    """The name rule's verdict on one match: (span, value, name) or None."""
    start = m.start()
    while start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1  # the regex matched from the secret word: the name may start earlier
    name = _NAME_CHARS.match(text, start).group()  # type: ignore[union-attr]
    group = m.lastgroup or "v1"
    value = text[m.start(group) : m.end(group)]
    if group in ("v3", "v4"):
        prefix = _line_prefix(text, start)
        if prefix not in _LINE_PREFIXES:
            return None
        if not prefix and _IDENTIFIER.fullmatch(value) and not _looks_random(value):
            return None  # a bare password=db_password may be Python: a variable, not a value
    if not _accept(secret_name(name), value):
        return None
    return (m.start(group), m.end(group), value, name, True)


def _masked(value: str) -> bool:
    return value.strip("*xX.") == "" or value in ("%s", "password", "PASSWORD")


# -- walking the messages ----------------------------------------------------------------------


def _walk(obj: Any, fn: Any) -> Any:
    """``obj`` with ``fn`` applied to every string in it (dict keys excepted); the same object
    where nothing changed, a new one otherwise (the caller's is never mutated)."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        new = {k: _walk(v, fn) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    if isinstance(obj, list | tuple):
        items = [_walk(v, fn) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else type(obj)(items)
    return obj


def _arguments(args: Any, fn: Any) -> Any:
    """Tool-call arguments: a dict, or JSON text (parsed, so escaped quotes do not hide a
    value; dumped again only when something changed), or plain text."""
    if isinstance(args, str) and args.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(args)
        except ValueError:
            return fn(args)
        new = _walk(parsed, fn)
        return args if new is parsed else json.dumps(new)
    return _walk(args, fn)


def _message(message: dict[str, Any], fn: Any) -> dict[str, Any]:
    new = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        new["content"] = fn(content)
    elif isinstance(content, list | dict):  # content parts; a tool result left as data
        new["content"] = _walk(content, fn)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        out = []
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and "arguments" in function:
                args = _arguments(function["arguments"], fn)
                if args is not function["arguments"]:
                    call = {**call, "function": {**function, "arguments": args}}
            out.append(call)
        new["tool_calls"] = out
    return new


# -- the entry point ---------------------------------------------------------------------------


def redact_messages(
    messages: list[dict[str, Any]],
    *,
    known_secrets: Mapping[str, str] | Iterable[str] = (),
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """New messages with every secret replaced by a placeholder, and placeholder -> kind.

    ``known_secrets``: values to hide wherever they appear, as ``{name: value}`` (the
    placeholder is ``<secret:name>``) or plain values (``<secret:known_secret>``). The kinds
    are a pattern's kind (``openai_key``, ``password_in_url``...), ``secret_variable`` for the
    name rule and ``known_secret``; never a value.
    """
    texts: dict[str, None] = {}

    def collect(text: str) -> str:
        texts.setdefault(text)
        return text

    for message in messages:
        _message(message, collect)
    unique = [t for t in texts if len(t) >= 4]
    if not unique:
        return [dict(m) for m in messages], {}
    # All texts are scanned as one string: one regex pass each, not one per text.
    sep = _SEP if not any("\x00" in t for t in unique) else None
    chunks = [_SEP.join(unique)] if sep else unique
    found = [_find(chunk) for chunk in chunks]
    known = [(n, v) for n, v in _known(known_secrets) if "\x00" not in v]
    labels = _labels(found, known)
    if not labels:
        return [dict(m) for m in messages], {}
    long_values = sorted((v for v in labels if _everywhere(v)), key=lambda v: (-len(v), v))
    used: dict[str, str] = {}
    new_chunks = [
        _replace(c, h, long_values, labels, used) for c, h in zip(chunks, found, strict=True)
    ]
    new_texts = new_chunks[0].split(_SEP) if sep else new_chunks
    mapping = dict(zip(unique, new_texts, strict=True))
    return [_message(m, lambda t: mapping.get(t, t)) for m in messages], used


_SEP = "\n\x00\n"  # between texts scanned together: no pattern matches across it


def _replace(
    text: str,
    hits: list[Hit],
    long_values: list[str],
    labels: dict[str, tuple[str, str]],
    used: dict[str, str],
) -> str:
    """``text`` with each found value replaced where it was found, and the values of
    ``long_values`` wherever they occur."""
    spans = [(s, e, v) for s, e, v, _, _ in hits if not _everywhere(v)]
    for value in long_values:  # str.find: faster than a regex alternation of the values
        start, short = text.find(value), len(value) < GLOBAL_MIN
        while start >= 0:
            end = start + len(value)
            if not short or not (_alnum_at(text, start - 1) or _alnum_at(text, end)):
                spans.append((start, end, value))
            start = text.find(value, end)
    if not spans:
        return text
    spans.sort(key=lambda s: (s[0], -s[1]))
    out, pos = [], 0
    for start, end, value in spans:
        if start < pos:
            continue
        placeholder, kind = labels[value]
        used[placeholder] = kind
        out += (text[pos:start], placeholder)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _alnum_at(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isalnum()


def _known(known: Mapping[str, str] | Iterable[str]) -> list[tuple[str, str]]:
    pairs = (
        sorted(known.items())
        if isinstance(known, Mapping)
        else [("known_secret", v) for v in known]
    )
    return [(n, v) for n, v in pairs if isinstance(v, str) and len(v) >= GLOBAL_MIN]


def _labels(found: list[list[Hit]], known: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """value -> (placeholder, kind): named values first (in order of first occurrence), then
    pattern matches, then known secrets; a label already taken by another value gets _2..."""
    named: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for hits in found:
        for _, _, value, label, by_name in sorted(hits, key=lambda h: h[0]):
            if by_name:
                named.setdefault(value, label)
            else:
                kinds.setdefault(value, label)
    taken: dict[str, str] = {}
    result: dict[str, tuple[str, str]] = {}

    def add(value: str, label: str, kind: str) -> None:
        if value in result:
            return
        base = re.sub(r"[^\w.-]", "_", label)[:60] or "secret"
        label, n = base, 1
        while taken.get(label, value) != value:
            n += 1
            label = f"{base}_{n}"
        taken[label] = value
        result[value] = (f"<secret:{label}>", kind)

    for value, name in named.items():
        add(value, name, kinds.get(value, "secret_variable"))
    for value, kind in kinds.items():
        add(value, kind, kind)
    for name, value in known:
        add(value, name, "known_secret")
    return result


def env_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment's secrets: variables whose names look secret (weak names only with a
    random-looking value), 8+ characters, not paths. ``{name: value}``, sorted by name."""
    environ = os.environ if environ is None else environ
    out = {}
    for name, value in sorted(environ.items()):
        if len(value) < GLOBAL_MIN or value[0] in "/~." or "://" in value:
            continue
        strength = secret_name(name)
        if strength == "strong" or (strength == "weak" and _looks_random(value)):
            out[name] = value
    return out
