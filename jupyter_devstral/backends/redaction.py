"""Secrets never reach a model: keys, tokens and passwords become ``<secret:NAME>`` placeholders.

:meth:`Backend.chat <jupyter_devstral.backends.base.Backend.chat>` runs :func:`redact_messages`
on every request, for every backend (hosted, embedded, the model worker, the scripted one), so
no path to a model skips it. These rules find a secret, in any text of the messages (contents,
tool-call arguments, tool results):

* the **name rule**: the value of an assignment, keyword argument, dict key or ``NAME=value``
  env line whose name has a secret word as a word part (``API_KEY``, ``db_password``,
  ``authToken``; not ``keys``, ``monkey``, ``author``, ``tokenizer`` or ``max_tokens``).
  Unambiguous words (password, secret, credential, api key, access token...) take any string
  of 4+ characters; ambiguous ones alone (``key``, ``token``, ``session``: ``key = "region"``,
  ``pad_token = "[PAD]"``) only a value that looks random (see :func:`_looks_random`). A
  value is any string literal (f-strings, triple quotes, escaped quotes, ``:=``); of a tuple
  assignment, the value in the name's position (``user, password = "ada", "pw"``);
* the **pattern rule**: well-known key shapes (AWS, ``sk-``, ``sk-ant-``, GitHub, GitLab,
  Slack, Google, Stripe, Hugging Face, npm, PyPI, SendGrid, Twilio, Azure storage, JWTs, PEM
  private keys, passwords in URLs, ``Bearer``/``Authorization``);
* printed key files and tables (:mod:`.redaction_shapes`): ``.netrc`` and ``.pgpass``
  passwords, and a DataFrame's cells under a secret-named column (text repr and HTML).

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

from jupyter_devstral.backends.redaction_shapes import (
    is_f_string,
    key_file_hits,
    literal_delimiter,
    literal_end,
    table_hits,
    unpacked_value,
)

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


# A string literal's value, as far as the regex sees it: it stops at a backslash or the other
# quote, and :func:`~.redaction_shapes.literal_end` goes on over escapes to the closing delimiter.
_VALUE = r"[^\"'\\\n\r]{0,1024}"
_OPEN = r"[rbuf]{0,2}\\?[\"'](?:\"\"|'')?"  # f-strings too; triple quotes
_CLOSE = r"(?:\\?[\"']|(?=\\))"
_BARE = r"[^\s\"'`()\[\]{},;\\]"
_LITERAL_AHEAD = r"(?=\s*[rbuf]{0,2}\\?[\"'])"
_AFTER_NAME = (  # the rest of the name, an operator and a value (one group of v1..v9 matches)
    r"[\w-]*"
    r"(?:\\?[\"']\s*(?:\]\s*=|:|,)\s*" + _OPEN + r"(?P<v1>" + _VALUE + r")" + _CLOSE + "|"
    # a triple-quoted value (over several lines too)
    r"\s*(?::[^=\n]{0,60}?)?=\s*[rbuf]{0,2}(?P<q>\"\"\"|\'\'\')(?P<v9>[^\x00]{4,4096}?)(?P=q)|"
    # = value, : type = value, := value (walrus)
    r"\s*(?::[^=\n]{0,60}?)?=\s*" + _OPEN + r"(?P<v2>" + _VALUE + r")" + _CLOSE + "|"
    # a value in parentheses: string literals concatenated over lines ("sk-live-abc" "def")
    r"(?:\\?[\"']\s*:|\s*(?::[^=\n]{0,60}?)?=)\s*(?P<v5>\()" + _LITERAL_AHEAD + "|"
    r"=(?P<v3>" + _BARE + r"{4,1024})[ \t]*(?=[\r\n]|$)"
    r"|:[ \t]+(?P<v4>" + _BARE + r"{8,1024})[ \t]*(?=[\r\n]|$)"
    # the value on the next line: YAML ``password:`` / ``password: |``, shell ``PASSWORD=\``
    r"|:[ \t]*(?:[|>][-+]?[ \t]*)?\r?\n[ \t]*[\"']?(?P<v6>" + _BARE + r"{4,1024})[\"']?"
    r"[ \t]*(?=[\r\n]|$)"
    r"|=\\\r?\n[ \t]*(?P<v7>" + _BARE + r"{4,1024})[ \t]*(?=[\r\n]|$)"
    # one of several targets: password, user = "pw", "ada" (see :func:`~.redaction_shapes.unpacked_value`)
    r"|(?P<v8>[ \t]*(?:[,)\]][^=\n(){}]{0,200}?)?=(?!=)[^\n]{0,400}?[\"']))"
)
# one string literal of a concatenation, and what may separate two (in parentheses: any
# whitespace, comments and +; outside: spaces, + and backslash-newlines)
_PART = r"[rbufRBUF]{0,2}\\?([\"'])(?P<part>[^\"'\\\n\r]{0,1024})\\?\1"
_PARTS_IN_PARENS = re.compile(r"(?:\s|\\[nrt]|\+|#[^\n]*)*" + _PART)
_PARTS_CONTINUED = re.compile(r"(?:[ \t]|\\\r?\n|\+)+" + _PART)
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
        ("anthropic_key", r"sk-ant-[A-Za-z0-9_-]{20,}", True),
        ("openai_key", r"sk-[A-Za-z0-9_-]{20,}", True),
        ("stripe_key", r"sk_(?:live|test)_[0-9A-Za-z]{16,}", True),
        ("stripe_key", r"rk_(?:live|test)_[0-9A-Za-z]{16,}", True),
        ("github_token", r"gh[pousr]_[A-Za-z0-9]{30,}", True),
        ("github_token", r"github_pat_[A-Za-z0-9_]{30,}", True),
        ("slack_token", r"xox[abposr]-[A-Za-z0-9-]{10,}", True),
        ("google_api_key", r"AIza[0-9A-Za-z_-]{35}", True),
        ("huggingface_token", r"hf_[A-Za-z0-9]{30,}", True),
        ("gitlab_token", r"glpat-[0-9A-Za-z_-]{20,}", True),
        ("npm_token", r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", True),
        ("pypi_token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}", True),
        ("sendgrid_key", r"SG\.[\w-]{22}\.[\w-]{43}(?![\w-])", True),
        ("twilio_key", r"SK[0-9a-f]{32}(?![0-9A-Za-z])", True),
        ("azure_storage_key", r"AccountKey=(?P<v>[A-Za-z0-9+/]{20,}={0,2})", False),
        ("azure_storage_key", r"SharedAccessKey=(?P<v>[A-Za-z0-9+/]{20,}={0,2})", False),
        ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}", True),
        ("slack_webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/[\w/-]{16,}", False),
        ("discord_webhook", r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}", False),
        # a token as a URL's user (Sentry DSNs, https://<token>@host)
        ("token_in_url", r"://(?P<v>[A-Za-z0-9_-]{20,})@(?=[\w\[])", False),
    )
]
_RANDOM_KINDS = frozenset({"token_in_url"})  # a match counts only if it looks random
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
    """A key shape starts a word: nothing alphanumeric before it, or a %-escape (``%3Dsk-``)."""
    if start >= 3 and text[start - 3] == "%" and _HEX2.fullmatch(text, start - 2, start):
        return True
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_-")


_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")


def _glued_key(value: str) -> bool:
    """An ``sk-`` key glued to the word before it (``xsk-...``): only a long, random-looking
    one (upper and lower case and digits), not ``task-0123...`` or ``risk-adjusted-2024``."""
    return (
        len(value) >= 35
        and any(c.isupper() for c in value[3:])
        and any(c.islower() for c in value[3:])
        and sum(c.isdigit() for c in value) >= 2
    )


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
            hits += _named(text, m)
    for patterns, haystack in ((_PATTERNS, text), (_LOWER_PATTERNS, lowered)):
        for kind, regex, boundary in patterns:
            for m in regex.finditer(haystack):
                start, end = m.span("v") if "v" in regex.groupindex else m.span()
                value = text[start:end]
                if boundary and not _boundary_ok(text, m.start()):
                    if not (kind == "openai_key" and _glued_key(value)):
                        continue
                if kind in _WORDY and not _mixed(value):
                    continue  # "sk-learn-compatible-estimator", "bearer authentication"
                if kind in _RANDOM_KINDS and not _looks_random(value):
                    continue
                if "<secret:" not in value and not _masked(value):
                    hits.append((start, end, value, kind, False))
    hits += _more_shapes(text, lowered)
    hits += key_file_hits(text, lowered, _accept)
    hits += table_hits(text, _accept, secret_name)
    if any(kind == "aws_access_key_id" for _, _, _, kind, _ in hits):
        hits += _aws_secrets_near_key_ids(text, hits)
    return hits


def _named(text: str, m: re.Match[str]) -> list[Hit]:
    """The name rule's verdict on one match: the value's span(s) (several for literals
    concatenated over lines), value and name; [] when it is no secret."""
    start = m.start()
    while start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
        start -= 1  # the regex matched from the secret word: the name may start earlier
    name = _NAME_CHARS.match(text, start).group()  # type: ignore[union-attr]
    group = m.lastgroup or "v1"
    strength = secret_name(name)
    if group in ("v2", "v5", "v8"):
        unpacked = unpacked_value(text, start, start + len(name))
        if unpacked is not None:  # user, password = "ada", "pw": the value in its position
            return [(s, e, v, name, True) for s, e, v in unpacked if _accept_literal(strength, v)]
        if group == "v8":
            return []
    if group == "v5":  # ("sk-live-abc"\n "def123"): each part, when the whole is a secret
        parts = _literals(text, m.end(group), _PARTS_IN_PARENS)
        whole = "".join(value for _, _, value in parts)
        if not _accept(strength, whole):
            return []
        return [(s, e, value, name, True) for s, e, value in parts if value]
    value_start, value_end, after = m.start(group), m.end(group), m.end()
    if group == "v9":  # """\nkey\n""": the key, also where it is printed without the newlines
        body = text[value_start:value_end]
        value_start += len(body) - len(body.lstrip())
        value_end -= len(body) - len(body.rstrip())
    delimiter = literal_delimiter(text, value_start) if group in ("v1", "v2", "v9") else None
    value_end, after = literal_end(text, delimiter, value_start, value_end, after)
    value = text[value_start:value_end]
    if group in ("v3", "v4", "v6", "v7"):
        prefix = _line_prefix(text, start)
        if prefix not in _LINE_PREFIXES:
            return []
        if (
            group in ("v3", "v7")
            and not prefix
            and not name.isupper()  # PASSWORD=s3cr3t is an env line; password=pw may be Python
            and _IDENTIFIER.fullmatch(value)
            and not _looks_random(value)
        ):
            return []  # a bare password=db_password may be Python: a variable, not a value
        if group == "v6" and re.fullmatch(r"[A-Z]?[a-z]+\.?", value):
            return []  # a word under a heading (docstrings: "api_key:\n    Required.")
        if not _accept(strength, value):
            return []
    elif not _accept_literal(
        strength, value, "{" in value and is_f_string(text, delimiter, value_start)
    ):
        return []
    hits = [(value_start, value_end, value, name, True)]
    if group in ("v1", "v2"):  # "sk-live-abc" \\\n "def123": the parts that follow too
        hits += [
            (s, e, part, name, True)
            for s, e, part in _literals(text, after, _PARTS_CONTINUED)
            if part
        ]
    return hits


def _accept_literal(strength: str | None, value: str, f_string: bool = True) -> bool:
    """:func:`_accept` for a string literal's value; of an f-string, what is not a
    replacement field decides (``f"{user}:{pw}"`` is no secret, ``f"Tr0ub{n}dor"`` is). An
    escaped newline or tab is white space: code in a string, not a random value."""
    if strength == "weak" and ("\\n" in value or "\\t" in value):
        return False
    if f_string and "{" in value:
        return _accept(strength, _FIELD.sub("", value))
    return _accept(strength, value)


_FIELD = re.compile(r"\{[^{}]*\}")


def _literals(text: str, pos: int, regex: re.Pattern[str]) -> list[tuple[int, int, str]]:
    """The string literals concatenated from ``pos`` on: (start, end, value) each."""
    parts = []
    while len(parts) < 64:
        m = regex.match(text, pos)
        if m is None:
            break
        parts.append((m.start("part"), m.end("part"), m.group("part")))
        pos = m.end()
    return parts


def _masked(value: str) -> bool:
    return value.strip("*xX.") == "" or value in ("%s", "password", "PASSWORD")


# -- secrets in connection strings, URLs' queries, command lines and call arguments -----------

# libpq / ODBC / JDBC connection strings: "host=db user=u password=s3cr3t dbname=x"
_CONN_PASSWORD_RES = [re.compile(r"password\s*=\s*"), re.compile(r"pwd\s*=\s*")]
_CONN_VALUE = re.compile(
    r"'(?P<q>[^'\n]{1,256})'|\{(?P<b>[^}\n]{1,256})\}|(?P<v>[^\s;'\"(),]{1,256})"
)
_CONN_KEY = re.compile(
    r"(?<![\w.-])(?:host|hostaddr|user|dbname|port|server|uid|database|driver|sslmode|"
    r"data source|user id|initial catalog)\s*=\s*(?!=)"
)
# a URL's query: ?access_token=..., &api_key=..., &sig=...
_QUERY = re.compile(r"[?&](?P<n>[a-z][\w.-]{0,40})=(?P<v>[^&#\s\"'<>\\`]{4,2048})")
_QUERY_STRONG = frozenset(
    "token sig signature auth x-amz-signature x-amz-security-token x-goog-signature".split()
)
# --password=pw, --api-key pw (not --secret-file path, --password-stdin)
_CLI_OPTION = re.compile(
    r"--(?P<n>[a-z][\w-]{1,40})(?:=|[ \t]+)(?P<v>\"[^\"\n]{1,256}\"|'[^'\n]{1,256}'"
    r"|[^\s\"'$`{<(\-][^\s\"'`]{0,255})"
)
_NOT_A_VALUE_OPTION = frozenset(
    "file path dir env var name stdin length len type url uri prompt store cmd command helper "
    "id ids size field fields column columns min max count".split()
)
_COMMANDS = [  # (kind, regex with the value as group v), on the original text: -p is not -P
    (
        "curl_password",
        re.compile(
            r"curl\b[^\n]{0,400}?(?<![\w-])(?:-u|-U|--user|--proxy-user)(?:[ \t]+|=)[\"']?"
            r"[^\s:\"'@]{0,100}:(?P<v>[^\s\"']{1,256})"
        ),
    ),
    (
        "mysql_password",
        re.compile(
            r"(?:mysql|mysqldump|mysqladmin|mysqlimport|mariadb)\b[^\n]{0,400}?"
            r"(?<![\w-])-p(?P<v>[^\s\"']{1,256})"
        ),
    ),
    (
        "sshpass_password",
        re.compile(r"sshpass\b[^\n]{0,400}?(?<![\w-])-p[ \t]*[\"']?(?P<v>[^\s\"']{1,256})"),
    ),
]
# a user and password as two arguments: auth=("alice", "pw"), BasicAuth(u, "pw"), .login(u, "pw")
_FIRST_ARG = (
    r"\s*(?:[rbuf]{0,2}\\?[\"'][^\"'\\\n]{0,200}\\?[\"']|[\w.]{1,100}(?:\[[^\]\n]{0,100}\])?)"
)
_SECOND_ARG = r"\s*,\s*[rbuf]{0,2}\\?[\"'](?P<v>[^\"'\\\n]{1,1024})\\?[\"']"
_ARGUMENT_PAIRS = [
    (kind, re.compile(start + _FIRST_ARG + _SECOND_ARG))
    for kind, start in (
        ("http_auth_password", r"auth\s*=\s*[(\[]"),
        ("http_auth_password", r"basicauth\("),
        ("http_auth_password", r"digestauth\("),
        ("login_password", r"login\("),
    )
]
_DUMMY_PASSWORDS = frozenset("test pass password passwd secret example dummy admin user".split())


def _more_shapes(text: str, lowered: str) -> list[Hit]:
    """Secrets the name rule does not see: a password among a connection string's pairs, a
    URL's secret query parameters, command-line passwords, and a user-password argument pair."""
    hits: list[Hit] = []
    for regex in _CONN_PASSWORD_RES:
        for m in regex.finditer(lowered):
            hit = _connection_password(text, lowered, m)
            if hit is not None:
                hits.append(hit)
    for m in _QUERY.finditer(lowered):
        name, (start, end) = text[m.start("n") : m.end("n")], m.span("v")
        strength = "strong" if name.lower() in _QUERY_STRONG else secret_name(name)
        value = text[start:end]
        if value[0] not in "{$%" and _accept(strength, value):
            hits.append((start, end, value, name, True))
    for m in _CLI_OPTION.finditer(lowered):
        name = text[m.start("n") : m.end("n")]
        if _PART_RE.findall(name)[-1].lower() in _NOT_A_VALUE_OPTION:
            continue
        start, end = m.span("v")
        if text[start] in "\"'":
            start, end = start + 1, end - 1
        value = text[start:end]
        if _accept(secret_name(name), value):
            hits.append((start, end, value, name, True))
    for kind, regex in _COMMANDS:
        for m in regex.finditer(text):
            value = m.group("v")
            if value[0] not in "{$<%" and _accept("strong", value):
                hits.append((*m.span("v"), value, kind, False))
    for kind, regex in _ARGUMENT_PAIRS:
        for m in regex.finditer(lowered):
            start, end = m.span("v")
            value = text[start:end]
            if value.lower() not in _DUMMY_PASSWORDS and _accept("strong", value):
                hits.append((start, end, value, kind, False))
    return hits


def _connection_password(text: str, lowered: str, m: re.Match[str]) -> Hit | None:
    """``password=...`` as one of a connection string's ``key=value`` pairs (separated by
    spaces or ``;``, another one a host, user, dbname...); not a Python keyword argument."""
    at = m.start()
    if at and not (lowered[at - 1].isspace() or lowered[at - 1] in ";\"'"):
        return None  # db_password=..., a URL's ?password=
    value = _CONN_VALUE.match(text, m.end())
    if value is None:
        return None
    group = value.lastgroup or "v"
    end = value.end()
    if group == "v" and end < len(text) and text[end] not in " \t\r\n;\"'":
        return None  # password=db_password) or password=pw, (Python)
    line_start = lowered.rfind("\n", 0, at) + 1
    line_end = lowered.find("\n", end)
    line = lowered[line_start : len(lowered) if line_end < 0 else line_end]
    for key in _CONN_KEY.finditer(line):
        low, high = sorted((key.start() + line_start, at))
        between = lowered[low:high]
        if not any(c in between for c in ",()"):
            secret = text[value.start(group) : value.end(group)]
            if _accept("strong", secret):
                return (value.start(group), value.end(group), secret, "password", True)
            return None
    return None


_AWS_BARE_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _aws_secrets_near_key_ids(text: str, hits: list[Hit]) -> list[Hit]:
    """A bare 40-character AWS secret key in the same text (message) as an AWS key id."""
    found: list[Hit] = []
    segments = set()
    for start, _, _, kind, _ in hits:
        if kind == "aws_access_key_id":
            low = text.rfind(_SEP, 0, start)
            high = text.find(_SEP, start)
            segments.add((0 if low < 0 else low, len(text) if high < 0 else high))
    for low, high in sorted(segments):
        for m in _AWS_BARE_SECRET.finditer(text, low, high):
            value = m.group()
            if (
                any(c.isupper() for c in value)
                and any(c.islower() for c in value)
                and any(c.isdigit() for c in value)
                and value[0] != "/"
            ):
                found.append((m.start(), m.end(), value, "aws_secret_access_key", False))
    return found


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
