"""vLLM's recipe arguments (`spec.args` of an `engine: vllm` recipe)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cortexctl.recipes.schema import EngineArgs


class VllmArgs(EngineArgs):
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
