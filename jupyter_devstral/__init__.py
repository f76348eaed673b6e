"""jupyter-devstral: Mistral's Devstral as a notebook-scoped coding agent."""

__version__ = "0.1.0"
