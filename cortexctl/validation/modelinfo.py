"""What validation knows about a model, read from its own metadata (never its name)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cortexctl.core.errors import RecipeError


class ModelInspectionError(RecipeError):
    """The model at the recipe's path cannot be read (missing, not a model, truncated)."""

    default_code = "model_unreadable"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # GGML type name (Q4_K, F16 …) or safetensors dtype (BF16, I32 …)
    shape: tuple[int, ...]
    nbytes: int
    offset: int = 0  # GGUF: absolute file offset of the data (llama.cpp maps a range of these)


@dataclass(frozen=True)
class QuantInfo:
    """Quantization as declared by the model (HF quantization_config or a GGUF file type)."""

    method: str  # awq, gptq, fp8, bitsandbytes, compressed-tensors, gguf …
    bits: int | None = None
    group_size: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    path: str
    format: Literal["gguf", "hf"]
    architecture: str
    n_params: int
    n_layers: int
    n_heads: int
    n_kv_heads: tuple[int, ...]  # per layer (most models: the same value repeated)
    head_dim_k: int
    head_dim_v: int
    n_embd: int
    context_length: int  # the model's maximum (trained context, rope scaling applied for HF)
    vocab_size: int
    weight_bytes: int  # exact: sum of the tensor byte sizes in the file(s)
    bytes_by_dtype: dict[str, int]
    n_ff: int | None = None
    sliding_window: int | None = None
    swa_layers: tuple[bool, ...] = ()  # True for a sliding-window layer
    n_experts: int | None = None
    n_experts_used: int | None = None
    torch_dtype: str | None = None
    quantization: QuantInfo | None = None
    rope_scaling: dict[str, Any] | None = None
    original_context_length: int | None = None  # before rope scaling
    tensors: tuple[TensorInfo, ...] = ()
    file_type: str | None = None  # GGUF general.file_type name
    n_ff_exp: int | None = None  # per-expert FFN width (MoE; GGUF expert_feed_forward_length)
    n_expert_shared: int = 0
    memory: str = "kv"  # llama.cpp's memory module: kv, recurrent, hybrid, none
    causal: bool = True
    recurrent: dict[str, int] = field(default_factory=dict)  # r/s floats per sequence and layer
    recurrent_layers: tuple[bool, ...] = ()  # hybrids: True for a layer with recurrent state
    v_cache: bool = True  # False with multi-head latent attention (V is read from the K cache)
    head_dim_k_mla: int = 0  # MLA: the decompressed q/k head (nope + rope); 0 without MLA
    n_dense_lead: int = 0  # MoE models whose first layers have a dense FFN (deepseek2 …)
    approximate: tuple[str, ...] = ()  # what about this model's llama.cpp behaviour is a guess
    mla: tuple[int, int] | None = None  # multi-head latent attention: (kv_lora_rank, qk_rope_head_dim)
    kv_layers: int | None = None  # only the first N layers own a KV cache (gemma3n, gemma4); None: all
    indexer_layers: tuple[bool, ...] = ()  # DSA (glm-dsa): layers with an indexer key cache
    indexer_head_dim: int = 0  # the indexer cache's one key head (attention.indexer.key_length)
    indexer_heads: int = 0  # the lightning indexer's query heads (attention.indexer.head_count)
    indexer_top_k: int = 0  # the cells each token attends to (attention.indexer.top_k)

    def owns_kv(self, layer: int) -> bool:
        """Whether the layer has its own KV cache (llama_hparams::has_kv), not another's."""
        return self.kv_layers is None or layer < self.kv_layers

    @property
    def n_swa_layers(self) -> int:
        return sum(self.swa_layers)

    def kv_heads(self, layer: int) -> int:
        return self.n_kv_heads[layer] if layer < len(self.n_kv_heads) else self.n_kv_heads[-1]

    def to_dict(self, *, with_tensors: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_tensors:
            data.pop("tensors")
        return data
