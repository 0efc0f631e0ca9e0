"""`inspect_model(path)`: GGUF file or HF folder, chosen by what the path is."""

from __future__ import annotations

from pathlib import Path

from cortexctl.validation.inspect_gguf import inspect_gguf, is_gguf
from cortexctl.validation.inspect_hf import inspect_hf
from cortexctl.validation.modelinfo import ModelInfo, ModelInspectionError


def inspect_model(path: Path | str) -> ModelInfo:
    p = Path(path).expanduser()
    if p.is_dir():
        ggufs = sorted(p.glob("*.gguf"))
        if not (p / "config.json").is_file() and len(ggufs) == 1:
            return inspect_gguf(ggufs[0])
        return inspect_hf(p)
    if p.is_file():
        if is_gguf(p):
            return inspect_gguf(p)
        if p.name == "config.json":
            return inspect_hf(p.parent)
        raise ModelInspectionError(
            f"{p} is neither a GGUF file nor an HF model folder",
            fix="Point spec.model.path at a .gguf file (llamacpp) or a folder with config.json and "
            "*.safetensors "
            "(vllm).",
        )
    raise ModelInspectionError(
        f"Model not found: {p}",
        fix="Import the model (cortexctl bundle import) or correct spec.model.path in the recipe.",
    )
