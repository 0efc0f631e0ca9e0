"""Where llama.cpp puts each weight: GPU, the host mapping/buffer, and repacked CPU copies.

llama.cpp (0.3.36, src/llama-model.cpp load_tensors + ggml-cpu/repack.cpp):
- `-ngl k` offloads the last k repeating layers; `-ngl > n_layer` also the output layer;
  input tensors (token embeddings) stay on the host.
- On the host, a weight whose op the CPU_REPACK buffer supports (2-D MUL_MAT, 3-D
  MUL_MAT_ID) and whose type/row count has a repacked layout for this CPU gets its own
  copy in a CPU_REPACK buffer (same byte size, interleaved blocks). With mmap, the
  CPU_Mapped buffer spans the first to the last tensor it serves (repacked ones inside
  that range were read through it and stay resident); without mmap only the tensors
  that were not repacked are loaded into the CPU buffer.
- A tied output layer (no `output.weight`) is `token_embd` created a second time for the
  output op (TENSOR_DUPLICATED): unrepacked it shares token_embd's memory; repacked it
  is a second copy (measured on the matrix, mmap and no-mmap alike). Where the loader creates
  that duplicate before tok_embd itself (data `tied_output_first`: gemma3n, gemma4), loading
  without mmap reads it into a second, unrepacked copy too (measured: token_embd's bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cortexctl.engines.llamacpp.arch import (
    has_output_tensor,
    host_cpu_features,
    repack_layout,
    tied_output_first,
)
from cortexctl.validation.modelinfo import ModelInfo

_LAYER_RE = re.compile(r"^(?:enc\.|dec\.)?blk\.(\d+)\.")  # t5's encoder/decoder layers too
TENSOR_ALIGN = 32  # ggml tensor alignment inside a backend buffer (TENSOR_ALIGNMENT)


def _layer_of(name: str) -> int | None:
    m = _LAYER_RE.match(name)
    return int(m.group(1)) if m else None


def _aligned(n: int) -> int:
    return (n + TENSOR_ALIGN - 1) // TENSOR_ALIGN * TENSOR_ALIGN


@dataclass
class WeightPlacement:
    gpu: int = 0
    host: int = 0  # mapped (mmap) or loaded (no mmap) host bytes
    repack: int = 0  # CPU_REPACK copies
    tied_gpu_copy: bool = False
    largest_repacked: int = 0  # without mmap, read through a heap buffer of this size
    repacked: dict[str, int] = field(default_factory=dict)  # layout → bytes


def place_weights(
    model: ModelInfo,
    *,
    gpu_layers: int,
    mmap: bool,
    repack: bool,
    features: frozenset[str] | None = None,
) -> WeightPlacement:
    feats = host_cpu_features() if features is None else features
    n_layer = model.n_layers
    first_gpu_layer = n_layer - min(gpu_layers, n_layer)
    output_on_gpu = gpu_layers > n_layer
    p = WeightPlacement()
    # architectures whose loader creates no LM head tensor have no output layer to tie to
    # token_embd (data output_tensor: bert-like encoders, bitnet); gemma-embedding, an
    # encoder too, does create one
    tied = has_output_tensor(model.architecture) and "output.weight" not in {t.name for t in model.tensors}
    mapped: list[tuple[int, int]] = []  # (offset, end) of host tensors served from the mapping

    def host_copy(name: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> bool:
        layout = repack_layout(name, dtype, shape, feats) if repack else None
        if layout is None:
            return False
        p.repack += _aligned(nbytes)
        p.largest_repacked = max(p.largest_repacked, nbytes)
        p.repacked[layout] = p.repacked.get(layout, 0) + nbytes
        return True

    for t in model.tensors:
        layer = _layer_of(t.name)
        if layer is not None:
            on_gpu = layer >= first_gpu_layer
        elif t.name.startswith(("output.", "output_norm.")):
            on_gpu = output_on_gpu
        else:
            on_gpu = False  # token_embd and other input tensors stay on the host
        if on_gpu:
            p.gpu += t.nbytes
        elif not host_copy(t.name, t.dtype, t.shape, t.nbytes):
            mapped.append((t.offset, t.offset + t.nbytes))
            p.host += t.nbytes
        if t.name == "token_embd.weight" and tied:
            if output_on_gpu:
                p.gpu += t.nbytes  # the GPU output layer is a copy of token_embd
                p.tied_gpu_copy = True
            elif not host_copy("output.weight", t.dtype, t.shape, t.nbytes) and not mmap:
                if tied_output_first(model.architecture):
                    p.host += t.nbytes  # created before tok_embd: loaded a second time
    if mmap and mapped and all(end for _, end in mapped):
        # one CPU_Mapped buffer spans the first to the last mapped tensor (get_mapping_range);
        # repacked tensors inside that range were read through it and stay resident too
        p.host = max(end for _, end in mapped) - min(off for off, _ in mapped)
    return p
