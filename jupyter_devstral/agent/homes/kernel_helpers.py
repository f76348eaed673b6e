"""The agent's helper modules as they are shipped into a kernel, and the calls it makes there.

The helpers (the trial sandbox and its siblings, the variable summary, the API facts) are
stdlib-only modules. A kernel the agent does not live in gets their source through
:func:`install_helpers_code` (the file home's own kernel; the browser's kernel through the
server), each registered in ``sys.modules`` under its ``__devstral_*`` name, in
:data:`HELPER_MODULES` order (a shipped module finds its siblings there). The live kernel
imports them normally and registers the same names. The calls below bind no names in the
user's namespace; each prints one JSON line.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ..context import api_facts, variables
from ..trials import (
    sandbox,
    trial_capture,
    trial_cell,
    trial_fence,
    trial_frames,
    trial_namespaces,
)

HELPER_MODULES = {  # in install order: each module's siblings before it, the sandbox last
    "__devstral_trial_namespaces": trial_namespaces,
    "__devstral_trial_fence": trial_fence,
    "__devstral_trial_capture": trial_capture,
    "__devstral_trial_cell": trial_cell,
    "__devstral_trial_frames": trial_frames,
    "__devstral_sandbox": sandbox,
    "__devstral_variables": variables,
    "__devstral_api_facts": api_facts,
}


def install_helpers_code() -> str:
    """Code that loads the self-contained helper modules into a kernel's ``sys.modules``, in
    :data:`HELPER_MODULES` order (a shipped module finds its siblings there by name)."""
    parts = ["import sys as _s, types as _t"]
    for name, module in HELPER_MODULES.items():
        source = inspect.getsource(module)
        parts.append(
            f"_m = _t.ModuleType({name!r}); _m.__file__ = '<{name}>'\n"
            f"exec(compile({source!r}, '<{name}>', 'exec'), _m.__dict__); _s.modules[{name!r}] = _m"
        )
    parts.append("del _s, _t, _m")
    return "\n".join(parts)


CAN_FORK_CALL = (
    "print(__import__('json').dumps(__import__('sys').modules['__devstral_sandbox'].can_fork()))"
)
VARIABLES_CALL = (
    "print(__import__('sys').modules['__devstral_variables'].summarize("
    "get_ipython().user_ns, {source!r}, {max_chars}))"
)
HELPERS_PRESENT_CALL = (
    "print(__import__('json').dumps("
    f"all(n in __import__('sys').modules for n in {sorted(HELPER_MODULES)!r})))"
)


def trial_options(
    after: Sequence[str], after_budget: float, names: Sequence[str]
) -> dict[str, Any]:
    """The sandbox's keyword arguments (for :func:`try_source_call` or ``sandbox.try_source``) for what a trial also runs and describes."""
    options: dict[str, Any] = {}
    if after:
        options.update(after=list(after), after_budget=after_budget)
    if names:
        options["names"] = list(names)
    return options


def try_source_call(source: str, timeout: float, **options: Any) -> str:
    """Kernel code that tries ``source`` in a fork and prints the result as JSON
    (``options``: the cells to run after it and the names to describe, see
    :meth:`~.notebook.NotebookHome.try_source`)."""
    extra = "".join(f", {k}={list(v) if isinstance(v, tuple) else v!r}" for k, v in options.items())
    return (
        f"__import__('sys').modules['__devstral_sandbox'].try_source_json("
        f"{source!r}, {timeout!r}{extra})"
    )
