"""The recipe schema (`apiVersion: cortex/v1`, `kind: Recipe`), validated by pydantic.

Engine arguments are typed per engine under `spec.args`; which model validates them
is chosen by `spec.engine`. Unknown fields are errors everywhere (typos must not be
silently ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="unique recipe name (lowercase, dns-like)")]
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class ModelSource(Strict):
    path: str = Field(
        description="GGUF file or HF-style folder; relative paths are under $CORTEX_HOME/models"
    )
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    def resolve(self, models_dir: Path) -> Path:
        p = Path(self.path).expanduser()
        return p if p.is_absolute() else models_dir / p


class LlamaCppArgs(Strict):
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


class VllmArgs(Strict):
    """`vllm serve` flags we understand; anything else goes in extra_args (checked)."""

    max_model_len: int | None = Field(None, ge=16, description="--max-model-len (default: the model's)")
    tensor_parallel_size: int = Field(1, ge=1, description="--tensor-parallel-size")
    pipeline_parallel_size: int = Field(1, ge=1, description="--pipeline-parallel-size")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="--gpu-memory-utilization")
    max_num_seqs: int | None = Field(None, ge=1, description="--max-num-seqs")
    max_num_batched_tokens: int | None = Field(None, ge=1)
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = "auto"
    quantization: str | None = Field(None, description="--quantization (awq, gptq, fp8, awq_marlin, …)")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    enforce_eager: bool = False
    enable_prefix_caching: bool | None = None
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="--chat-template (file path)")
    task: Literal["generate", "embed", "classify", "score", "reward"] | None = Field(
        None, description="--task / --runner for embedding models"
    )
    swap_space_gib: float | None = Field(None, ge=0)
    extra_args: list[str] = Field(default_factory=list, description="more `vllm serve` flags (checked)")

    def serves_embeddings(self) -> bool | None:
        """None when vLLM decides from the model itself (no task set)."""
        return None if self.task is None else self.task == "embed"

    EMBEDDINGS_SETTING: ClassVar[str] = "spec.args.task: embed"


class RequestDefaults(Strict):
    """Applied to a request when the client omits them."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    stop: list[str] | None = None

    def as_body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Resources(Strict):
    memory: str | None = Field(None, description="container memory limit, e.g. 8GiB (docker runtime)")


class Timeouts(Strict):
    load_s: float = Field(600, gt=0, description="seconds a replica may take to become ready")
    request_s: float = Field(600, gt=0, description="upstream request timeout")
    connect_s: float = Field(5, gt=0)


class RecipeSpec(Strict):
    engine: Literal["llamacpp", "vllm"]
    served_name: Annotated[
        str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    ]
    model: ModelSource
    replicas: int = Field(1, ge=1, le=64)
    runtime: Literal["auto", "process", "docker"] | None = Field(
        None, description="override the host default"
    )
    gpus: Literal["all", "none"] | list[Annotated[int, Field(ge=0)]] = "none"
    image: str | None = Field(None, description="engine image for the docker runtime")
    args: LlamaCppArgs | VllmArgs | None = None
    request_defaults: RequestDefaults = Field(default_factory=RequestDefaults)
    resources: Resources = Field(default_factory=Resources)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("args", mode="before")
    @classmethod
    def _args_by_engine(cls, value: Any, info: Any) -> Any:
        # Typed per engine: validate against the engine's model, so an unknown flag
        # names that engine's accepted fields.
        engine = info.data.get("engine")
        model = {"llamacpp": LlamaCppArgs, "vllm": VllmArgs}.get(engine or "")
        if model is None:
            return value
        return model.model_validate(value or {})

    @property
    def llamacpp(self) -> LlamaCppArgs:
        assert isinstance(self.args, LlamaCppArgs)
        return self.args

    @property
    def vllm(self) -> VllmArgs:
        assert isinstance(self.args, VllmArgs)
        return self.args

    def engine_args(self) -> LlamaCppArgs | VllmArgs:
        if self.args is not None:
            return self.args
        return LlamaCppArgs() if self.engine == "llamacpp" else VllmArgs()


class Recipe(Strict):
    api_version: Literal["cortex/v1"] = Field(alias="apiVersion")
    kind: Literal["Recipe"]
    metadata: Metadata
    spec: RecipeSpec

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def name(self) -> str:
        return self.metadata.name


ENGINE_ARG_MODELS: dict[str, type[Strict]] = {"llamacpp": LlamaCppArgs, "vllm": VllmArgs}
