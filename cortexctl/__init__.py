"""CORTEX: self-hosted LLM inference appliance. `cortexctl` is its CLI and host-side core."""

__version__ = "0.1.0"
