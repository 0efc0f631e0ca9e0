"""llama.cpp's recipe arguments (`spec.args` of an `engine: llamacpp` recipe)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cortexctl.recipes.schema import EngineArgs


class LlamaCppArgs(EngineArgs):
    """llama-server flags we understand; anything else goes in extra_args (checked)."""

    context_length: int = Field(4096, ge=16, description="-c / --ctx-size (total, shared by parallel slots)")
    parallel: int = Field(1, ge=1, le=256, description="-np / --parallel: concurrent sequences")
    gpu_layers: int | Literal["all"] = Field(0, description="-ngl / --n-gpu-layers")
    threads: int | None = Field(None, ge=1, description="-t / --threads (default: llama.cpp picks)")
    batch_size: int | None = Field(None, ge=1, description="-b / --batch-size")
    ubatch_size: int | None = Field(None, ge=1, description="-ub / --ubatch-size")
    cache_type_k: Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"] = "f16"
    cache_type_v: Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"] = "f16"
    flash_attn: Literal["auto", "on", "off"] = "auto"
    chat_template: str | None = Field(None, description="built-in template name (--chat-template)")
    chat_template_file: str | None = Field(None, description="Jinja template file (--chat-template-file)")
    embeddings: bool = Field(False, description="--embeddings: serve /v1/embeddings")
    pooling: Literal["none", "mean", "cls", "last", "rank"] | None = None
    mlock: bool = False
    jinja: bool | None = Field(
        None,
        description="--jinja / --no-jinja: Jinja chat templates, which tool calling needs (default: on, "
        "off with a named chat_template; on with chat_template_file)",
    )
    mmproj: str | None = Field(
        None, description="vision/audio projector GGUF (--mmproj); found like spec.model.path"
    )
    extra_args: list[str] = Field(default_factory=list, description="more llama-server flags (checked)")

    def serves_embeddings(self) -> bool | None:
        return self.embeddings

    EMBEDDINGS_SETTING: ClassVar[str] = "spec.args.embeddings: true"
