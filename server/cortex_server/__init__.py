"""The CORTEX gateway daemon: OpenAI-compatible API, admin API, supervisor."""

from cortexctl import __version__

__all__ = ["__version__"]
