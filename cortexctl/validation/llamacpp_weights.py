"""Where llama.cpp puts each weight: GPU, the host mapping/buffer, and repacked CPU copies.

llama.cpp (0.3.36, src/llama-model.cpp load_tensors + ggml-cpu/repack.cpp):
- `-ngl k` offloads the last k repeating layers; `-ngl > n_layer` also the output layer;
  input tensors (token embeddings) stay on the host.
- On the host, a weight whose op the CPU_REPACK buffer supports (2-D MUL_MAT, 3-D
  MUL_MAT_ID) and whose type/row count has a repacked layout for this CPU gets its own
  copy in a CPU_REPACK buffer (same byte size, interleaved blocks). With mmap the file
  mapping stays and its pages were read to build the copy, so both are resident.
- A tied output layer (no `output.weight`) is `token_embd` created a second time for the
  output op (TENSOR_DUPLICATED): with mmap and no repack both point at the mapping;
  repacked it is a second copy; without mmap it is loaded twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cortexctl.validation.llamacpp_arch import host_cpu_features, repack_layout
from cortexctl.validation.modelinfo import ModelInfo

_LAYER_RE = re.compile(r"^blk\.(\d+)\.")
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
    names = {t.name for t in model.tensors}
    tied = "output.weight" not in names

    def host_copy(name: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> bool:
        layout = repack_layout(name, dtype, shape, feats) if repack else None
        if layout is None:
            return False
        p.repack += _aligned(nbytes)
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
            continue
        repacked = host_copy(t.name, t.dtype, t.shape, t.nbytes)
        if mmap or not repacked:
            p.host += t.nbytes  # the mapping (always) or the loaded copy (not repacked)
        if t.name == "token_embd.weight" and tied:
            if output_on_gpu:
                p.gpu += t.nbytes  # the GPU output layer is a copy of token_embd
                p.tied_gpu_copy = True
            elif not host_copy("output.weight", t.dtype, t.shape, t.nbytes) and not mmap:
                p.host += t.nbytes  # loaded a second time as the output layer
    return p
