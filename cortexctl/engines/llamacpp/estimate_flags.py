"""The allocation-relevant llama-server flags, from a recipe or from the exact command line.

When the engine adapter hands us the dry-run argv, we read the flags from it, so the
estimate describes exactly what would run (including llama-server's own defaults for
flags the command leaves out: no `-np` means 4 slots with a unified KV cache, no `-c`
means the model's trained context).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cortexctl.engines.llamacpp.arch import flash_attn_allowed
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.validation.modelinfo import ModelInfo

DEFAULT_BATCH = 2048
DEFAULT_UBATCH = 512
AUTO_PARALLEL = 4  # llama-server without -np: 4 slots, kv_unified on (server.cpp)

_VALUE_FLAGS = {
    "-c": "ctx", "--ctx-size": "ctx",
    "-np": "parallel", "--parallel": "parallel",
    "-ngl": "ngl", "--gpu-layers": "ngl", "--n-gpu-layers": "ngl",
    "-b": "batch", "--batch-size": "batch",
    "-ub": "ubatch", "--ubatch-size": "ubatch",
    "-ctk": "ctk", "--cache-type-k": "ctk",
    "-ctv": "ctv", "--cache-type-v": "ctv",
    "-fa": "fa", "--flash-attn": "fa",
    "-lm": "load_mode", "--load-mode": "load_mode",
    "-cram": "cache_ram", "--cache-ram": "cache_ram",
    "--pooling": "pooling",
    "-ctxcp": "ctx_checkpoints", "--ctx-checkpoints": "ctx_checkpoints",
    "--swa-checkpoints": "ctx_checkpoints",
}  # fmt: skip
DEFAULT_CACHE_RAM_MIB = 8192  # common.h: cache_ram_mib, the server's prompt cache limit
DEFAULT_CTX_CHECKPOINTS = 32  # common.h: n_ctx_checkpoints, context checkpoints kept per slot
_NO_MMAP_MODES = {"none", "mlock", "dio"}


@dataclass(frozen=True)
class LlamaCppFlags:
    n_ctx: int
    parallel: int
    gpu_layers: int  # resolved: 0..n_layer+1
    batch: int
    ubatch: int
    cache_type_k: str
    cache_type_v: str
    flash_attn: bool  # "auto" resolves to on for CPU and CUDA builds
    kv_unified: bool
    swa_full: bool
    kv_offload: bool
    embeddings: bool
    mmap: bool = True  # --load-mode auto/mmap/mmap+mlock map the file; none/mlock/dio load it
    repack: bool = True  # --no-repack turns CPU weight repacking off
    pooling: str | None = None
    rerank: bool = False
    cache_ram_mib: int = DEFAULT_CACHE_RAM_MIB  # -1: no limit, 0: prompt cache off
    ctx_checkpoints: int = DEFAULT_CTX_CHECKPOINTS  # per slot; 0: none

    @classmethod
    def from_args(cls, args: LlamaCppArgs, model: ModelInfo) -> LlamaCppFlags:
        extra = set(args.extra_args)
        values = _values(args.extra_args)
        batch = args.batch_size or DEFAULT_BATCH
        rerank = bool(extra & {"--rerank", "--reranking"})
        load_mode = values.get("load_mode", "mmap+mlock" if args.mlock else "auto")
        return cls(
            n_ctx=args.context_length,
            parallel=args.parallel,
            gpu_layers=_ngl(args.gpu_layers, model),
            batch=batch,
            ubatch=min(batch, args.ubatch_size or DEFAULT_UBATCH),
            cache_type_k=args.cache_type_k,
            cache_type_v=args.cache_type_v,
            flash_attn=args.flash_attn != "off" and flash_attn_allowed(model.architecture),
            kv_unified=bool(extra & {"-kvu", "--kv-unified"}),
            swa_full="--swa-full" in extra,
            kv_offload=not extra & {"-nkvo", "--no-kv-offload"},
            embeddings=args.embeddings or rerank or bool(extra & {"--embedding", "--embeddings"}),
            mmap=load_mode not in _NO_MMAP_MODES,
            repack=not extra & {"-nr", "--no-repack"},
            pooling="rank" if rerank else values.get("pooling", args.pooling),
            rerank=rerank,
            cache_ram_mib=int(values.get("cache_ram", DEFAULT_CACHE_RAM_MIB)),
            ctx_checkpoints=max(0, int(values.get("ctx_checkpoints", DEFAULT_CTX_CHECKPOINTS))),
        )

    @classmethod
    def from_command(cls, argv: Sequence[str], model: ModelInfo) -> LlamaCppFlags:
        """Flags from a llama-server argv; what the argv omits takes llama-server's default."""
        # with or without the binary name in front (engines.llamacpp.llama_server_args has none)
        argv = list(argv[1:] if argv and not argv[0].startswith("-") else argv)
        values = _values(argv)
        switches = set(argv)
        base = LlamaCppArgs.model_validate({})
        flags = cls.from_args(base, model)
        ctx = int(values.get("ctx", "0") or 0) or model.context_length
        parallel = int(values.get("parallel", "-1") or -1)
        unified = bool(switches & {"-kvu", "--kv-unified"})
        if parallel < 0:
            parallel, unified = AUTO_PARALLEL, True
        if switches & {"-no-kvu", "--no-kv-unified"}:
            unified = False
        batch = int(values.get("batch", DEFAULT_BATCH))
        ngl_raw = values.get("ngl", "0")
        return replace(
            flags,
            n_ctx=ctx,
            parallel=parallel,
            kv_unified=unified,
            gpu_layers=_ngl("all" if ngl_raw in ("all", "auto", "-1") else int(ngl_raw), model),
            batch=batch,
            ubatch=min(batch, int(values.get("ubatch", DEFAULT_UBATCH))),
            cache_type_k=values.get("ctk", "f16"),
            cache_type_v=values.get("ctv", "f16"),
            flash_attn=values.get("fa", "auto") not in ("off", "0", "false")
            and flash_attn_allowed(model.architecture),
            swa_full="--swa-full" in switches,
            kv_offload=not switches & {"-nkvo", "--no-kv-offload"},
            embeddings=bool(switches & {"--embedding", "--embeddings", "--rerank", "--reranking"}),
            mmap=values.get("load_mode", "auto") not in _NO_MMAP_MODES,
            repack=not switches & {"-nr", "--no-repack"},
            pooling="rank" if switches & {"--rerank", "--reranking"} else values.get("pooling"),
            rerank=bool(switches & {"--rerank", "--reranking"}),
            cache_ram_mib=int(values.get("cache_ram", DEFAULT_CACHE_RAM_MIB)),
            ctx_checkpoints=max(0, int(values.get("ctx_checkpoints", DEFAULT_CTX_CHECKPOINTS))),
        )

    @property
    def n_batch(self) -> int:
        """llama-server caps n_batch at n_ubatch in embeddings mode (server.cpp): one ubatch per input."""
        return min(self.batch, self.ubatch) if self.embeddings else self.batch


def _values(argv: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    it = iter(argv)
    for arg in it:
        name, eq, inline = arg.partition("=")
        key = _VALUE_FLAGS.get(name)
        if key is not None:
            values[key] = inline if eq else next(it, "")
    return values


def _ngl(value: int | str, model: ModelInfo) -> int:
    if value == "all":
        return model.n_layers + 1
    return max(0, min(int(value), model.n_layers + 1))
