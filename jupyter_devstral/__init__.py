"""jupyter-devstral: Mistral's Devstral as a notebook-scoped coding agent."""

__version__ = "0.1.0"


def load_ipython_extension(ip):
    """``%load_ext jupyter_devstral``: the magics (imported only then)."""
    from .magics import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip):
    from .magics import unload_ipython_extension as unload

    unload(ip)


def _jupyter_server_extension_points():
    """The server extension behind the sidebar (imported only by the Jupyter server)."""
    from .server.app import DevstralServerApp

    return [{"module": "jupyter_devstral.server.app", "app": DevstralServerApp}]


def _jupyter_labextension_paths():
    """The built JupyterLab extension (``labextension/`` compiles into here)."""
    return [{"src": "labextension", "dest": "jupyter-devstral"}]
