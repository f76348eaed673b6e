"""Small readers of expressions: literal text, normalised paths, hosts, commands, keys.

They turn an argument of a call into the target of an effect, so that the same target written
two ways (``Path("a") / "b"`` and ``"a/b"``) compares equal.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from urllib.parse import urlsplit

from .tables import PATH_CTORS, PATH_METHODS, PROC_ENVIRON, SECRET, SQL_WRITE


def unparse(node) -> str:
    """``ast.unparse``, "" for a malformed tree. The most common targets (``df``, ``self.path``,
    ``'a.csv'``, ``OUT / 'a.csv'``) are written directly: the same text, ten times faster."""
    text = _simple_text(node)
    if text is not None:
        return text
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001 (a malformed tree must not crash the check)
        return ""


def _simple_text(node) -> str | None:
    """``ast.unparse`` of a name, a dotted name, a plain string literal, or a ``/`` chain of
    those ending in a string literal; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, (ast.Name, ast.Attribute)):
            base = _simple_text(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None
    if isinstance(node, ast.Constant):
        return repr(node.value) if type(node.value) is str and node.kind is None else None
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.left, (ast.Name, ast.Attribute, ast.BinOp))
        and isinstance(node.right, ast.Constant)
    ):
        left, right = _simple_text(node.left), _simple_text(node.right)
        return None if left is None or right is None else f"{left} / {right}"
    return None


def const_str(node) -> str | None:
    """A string literal, or a ``+`` of string literals, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = const_str(node.left)
        right = const_str(node.right) if left is not None else None
        if right is not None:
            return left + right
    return None


def head_str(node) -> str | None:
    """The literal text of a string, or the literal start of an f-string."""
    text = const_str(node)
    if text is None and isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return text


def last_name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def call_arg(call: ast.Call, pos: int | None, keyword: str = ""):
    if pos is not None and len(call.args) > pos and not isinstance(call.args[pos], ast.Starred):
        return call.args[pos]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return None


def path_text(node) -> str:
    """A normalised path for literals (``Path("a") / "b"`` is ``a/b``), else the source text."""
    text = const_str(node)
    if text is not None:
        return os.path.normpath(text) if text else ""
    if isinstance(node, ast.Call) and last_name(node.func) in PATH_CTORS and not node.keywords:
        parts = [const_str(a) for a in node.args]
        if len(node.args) == 1 and parts[0] is None:
            return path_text(node.args[0])
        if parts and None not in parts:
            return os.path.normpath(os.path.join(*parts))
    if isinstance(node, ast.Call) and unparse(node.func) in ("os.path.join", "osp.join"):
        parts = [const_str(a) for a in node.args]
        if parts and None not in parts:
            return os.path.normpath(os.path.join(*parts))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = path_text(node.left), const_str(node.right)
        if right is not None and literal_path(node.left):
            return os.path.normpath(os.path.join(left, right))
    return unparse(node)


def literal_path(node) -> bool:
    if const_str(node) is not None:
        return True
    if isinstance(node, ast.Call) and last_name(node.func) in PATH_CTORS:
        return all(const_str(a) is not None for a in node.args) and bool(node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return literal_path(node.left) and const_str(node.right) is not None
    return False


def host_of(text: str) -> str:
    if "://" in text:
        try:
            host = urlsplit(text.strip()).hostname
        except ValueError:
            host = None
        return (host or text.strip()).lower()
    return text.strip().lower()


def host_text(node) -> str:
    """The host of a URL or ``(host, port)`` literal, else the expression's text."""
    if isinstance(node, (ast.Tuple, ast.List)) and node.elts:
        return host_text(node.elts[0])
    text = const_str(node)
    if text is not None:
        return host_of(text)
    head = head_str(node)
    if head and re.match(r"^[a-z][\w+.-]*://[^/?#{}]+[/?#]", head, re.I):
        return host_of(head)
    return unparse(node)


def first_word(command: str) -> str:
    words = shell_words(command)
    return os.path.basename(words[0]) if words else command.strip()


def command_target(node) -> str:
    text = const_str(node)
    if text is not None:
        return first_word(text)
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        first = const_str(node.elts[0])
        return os.path.basename(first) if first else unparse(node.elts[0])
    return unparse(node)


def key_text(node) -> str:
    text = const_str(node)
    return text if text is not None else unparse(node)


def target_text(how: str, node) -> str:
    if node is None:
        return "" if how in ("path", "host", "cmd", "key", "text") else how
    if how == "path":
        return path_text(node)
    if how == "host":
        return host_text(node)
    if how == "cmd":
        return command_target(node)
    if how == "key":
        return key_text(node)
    return unparse(node)


def secret_kind(text: str) -> str | None:
    """ "secret_read" for a key-file path, "env_read" for /proc/*/environ, else None."""
    if not text:
        return None
    if "\n" not in text and len(text) < 4096:
        text = os.path.normpath(text)  # /etc/./shadow, ~/.ssh//id_rsa
    if PROC_ENVIRON.match(text):
        return "env_read"
    return "secret_read" if SECRET.search(text) else None


def sql_write(node) -> str | None:
    """``insert into t`` (lower-cased) when ``node`` is SQL text that writes, else None."""
    if isinstance(node, ast.Call) and node.args and last_name(node.func) == "text":
        node = node.args[0]
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    else:
        text = const_str(node)
    match = SQL_WRITE.search(text) if text else None
    return " ".join(match.group(1).lower().split()) if match else None


def shell_words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


def is_path_expr(node) -> bool:
    if isinstance(node, ast.Call):
        func = node.func
        if last_name(func) in PATH_CTORS:
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr in PATH_METHODS
            and (is_path_expr(func.value) or last_name(func.value) in PATH_CTORS)
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return is_path_expr(node.left)
    if isinstance(node, ast.Attribute) and node.attr in ("parent", "parents"):
        return is_path_expr(node.value)
    return False
