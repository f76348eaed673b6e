"""IPython magics: ``%%devstral fix``, ``%devstral explain | ask | status | models``.

``%load_ext jupyter_devstral`` registers them (see :class:`.core.DevstralMagics` for the
user help, ``%devstral?`` in a notebook). This package runs in the kernel: it never imports
jupyter_server, and the local model runs in the shared worker process, not here.
"""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ip: Any) -> None:
    from .core import DevstralMagics

    if ip.magics_manager.registry.get("DevstralMagics") is not None:
        return  # loaded already
    magics = DevstralMagics(ip)
    ip.register_magics(magics)
    magics.tracker.register()


def unload_ipython_extension(ip: Any) -> None:
    magics = ip.magics_manager.registry.pop("DevstralMagics", None)
    if magics is None:
        return
    magics.tracker.unregister()
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("devstral", None)
    if magics.devstral_config in ip.configurables:
        ip.configurables.remove(magics.devstral_config)
