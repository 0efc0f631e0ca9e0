"""The generated fit matrix: synthetic models × llama-server flags, and the real-engine oracle.

Cases are generated, not picked: every architecture that is in the generated llama.cpp
architecture data, in the `gguf` package's table and known to our writer
(ggufmodels.WRITABLE), crossed with context size, parallel slots, KV cache types, flash
attention, batch/ubatch, weight type (including the CPU-repacked Q4_0/Q4_K), mode
(generation, embeddings, reranking) and load mode. The selection is a deterministic
greedy all-pairs cover (every pair of values of any two dimensions appears in some
case), so the CI profile stays small
while touching every value; the long profile covers all pairs per architecture.

The oracle for each case is llama-server itself: the buffer sizes it logs at `-lv 4`
and its RSS (/proc/<pid>/status) after a first request that fills one ubatch.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cortexctl.engines.llamacpp.arch import known_archs
from cortexctl.engines.llamacpp.checks import ONE_SLOT_ONLY
from tests.validation.ggufmodels import WRITABLE, Shape
from tests.validation.llamalog import LlamaBuffers, MiB, parse_log

DIMENSIONS: dict[str, tuple[Any, ...]] = {
    "ctx": (512, 4096, 16384),
    "parallel": (1, 2, 4),
    "kv": (("f16", "f16"), ("q8_0", "q8_0"), ("q4_0", "f16")),
    "fa": ("on", "off"),
    "batch": ((2048, 512), (512, 128), (256, 256)),
    "weights": ("F16", "Q8_0", "Q4_0", "Q4_K"),
    "mode": ("generate", "embeddings", "rerank"),
    "load": ("mmap", "no-repack", "no-mmap"),
}


def valid(case: dict[str, Any]) -> bool:
    # llama.cpp refuses a quantized V cache without flash attention
    return not (case.get("kv", ("f16", "f16"))[1] != "f16" and case.get("fa") == "off")


# Architectures the writer knows that the matrix leaves out, and why (each has its own test).
NOT_IN_MATRIX: dict[str, str] = {}


def archs() -> list[str]:
    data = known_archs()
    return [a for a in WRITABLE if a in data and a not in NOT_IN_MATRIX]


def all_pairs(dims: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Deterministic greedy all-pairs cover of `dims` (honouring `valid`)."""
    keys = list(dims)
    combos = [c for c in itertools.product(*(range(len(v)) for v in dims.values()))]
    combos = [c for c in combos if valid({k: dims[k][i] for k, i in zip(keys, c, strict=True)})]
    key_pairs = list(itertools.combinations(range(len(keys)), 2))
    pair_sets = [frozenset((a, c[a], b, c[b]) for a, b in key_pairs) for c in combos]
    uncovered = set().union(*pair_sets)
    chosen: list[dict[str, Any]] = []
    while uncovered:
        best = max(range(len(combos)), key=lambda i: len(pair_sets[i] & uncovered))
        uncovered -= pair_sets[best]
        chosen.append({k: dims[k][i] for k, i in zip(keys, combos[best], strict=True)})
    return chosen


# MoE architectures: experts expert_feed_forward_length wide (those with a dense leading
# layer get it from their required keys in ggufmodels._KEYS), or n_ff wide
MOE_EXP_WIDTH = ("qwen3moe", "qwen2moe", "qwen3vlmoe", "qwen35moe", "qwen3next", "bailingmoe", "bailingmoe2",
                 "smallthinker", "ernie4_5-moe", "deepseek", "glm4moe", "dots1", "exaone-moe",
                 "llama4", "lfm2moe", "llada-moe", "rnd1", "mimo2", "step35", "afmoe",
                 "grovemoe", "deepseek2-ocr")  # fmt: skip
MOE_FF_WIDTH = ("granitemoe", "olmoe", "phimoe", "dbrx", "grok", "arctic")


def base_shape(arch: str, weights: str) -> Shape:
    """One shape per architecture: sized so the buffers, not the process, dominate its RSS.

    Every shape carries a `sliding_window` key, so each case also checks that the
    architecture's loader honours, ignores or disables it the way the data says.
    """
    common: dict[str, Any] = dict(
        arch=arch, n_layer=8, n_embd=512, n_head=8, n_kv_head=2, n_ff=1536, n_vocab=32000,
        context_length=32768, sliding_window=256, weight_type=weights,
    )  # fmt: skip
    if arch in MOE_EXP_WIDTH:
        common.update(n_expert=8, n_expert_used=2, n_ff_exp=512)
    if arch in MOE_FF_WIDTH:
        common.update(n_expert=8, n_expert_used=2, n_ff=512)
    if arch in ("hunyuan-moe", "minimax-m2"):  # experts n_ff wide, but expert_feed_forward_length required
        common.update(n_expert=8, n_expert_used=2, n_ff=512, n_ff_exp=512)
    if arch in ("olmoe", "dots1"):  # q/k norms span n_embd (olmoe), K and V as wide as Q (dots1)
        common.update(n_kv_head=8)
    if arch == "gemma3":
        common.update(n_vocab=65536, head_dim=128)  # gemma-like: wide vocabulary, wide heads
    if arch == "gpt-oss":
        common.update(n_expert=8, n_expert_used=2, n_ff_exp=512, head_dim=64, n_layer=6)
    if arch in ("phi3", "qwen", "cogvlm", "minicpm3", "plm", "deepseek2-ocr"):  # K/V as wide as Q
        common.update(n_kv_head=8)
    if arch == "granite":  # granite requires its four scales
        common.update(extra_keys={"logit_scale": 1.0, "residual_scale": 1.0, "embedding_scale": 1.0,
                                  "attention.scale": 0.125})  # fmt: skip
    if arch in ("rwkv6", "rwkv7", "rwkv6qwen2", "arwkv7"):  # no attention: time-mix (WKV) layers
        common.update(n_head=0, n_kv_head=0, head_dim=64)
    if arch in ("mamba", "mamba2"):
        common.update(n_ff=0, n_head=0, n_kv_head=0, head_dim=64)  # no attention: SSM layers
    if arch == "jamba":  # a Jamba-like hybrid: attention on two of eight layers, experts on every second
        common.update(attention_layers=(3, 7), n_expert=8, n_expert_used=2, n_ff=512)
    if arch == "plamo2":  # a PLaMo-2-like hybrid: attention on two of eight, mamba with 16 dt heads
        common.update(attention_layers=(3, 7), ssm=(4, 1024, 64, 16))
    if arch == "granitehybrid":  # mamba2 layers with attention on two of eight (as granite-4.0-h)
        common.update(attention_layers=(3, 7))
    if arch in ("nemotron_h", "nemotron_h_moe"):  # mamba2 mixers, attention on one layer, MLPs on three
        common.update(attention_layers=(3,), mlp_layers=(1, 4, 6))
    if arch == "nemotron_h_moe":  # its MLP layers: 8 gate-less experts (2 used) and a shared one
        common.update(n_expert=8, n_expert_used=2, n_ff_exp=512)
    if arch in (
        "lfm2",
        "lfm2moe",
    ):  # an LFM2-like hybrid: short-convolution layers, attention on three of eight
        common.update(attention_layers=(2, 5, 7), head_dim=64)
    if arch in (
        "qwen35",
        "qwen35moe",
        "qwen3next",
    ):  # a Qwen3.5-like hybrid: 6 gated-delta-net layers, 2 attention
        common.update(head_dim=64)
    if arch in ("mimo2", "step35", "gemma4"):  # the window's layers as an array: 3 of every 4 slide
        common.update(sliding_window_pattern=(True, True, True, False) * 2)
    if arch == "gemma4":  # gemma-like: wide vocabulary, 64-wide heads on every layer
        common.update(n_vocab=65536, head_dim=64)
    if arch == "t5encoder":  # a T5-encoder-like model: K/V as wide as Q
        common.update(n_kv_head=8)
    if arch == "modern-bert":  # a ModernBERT-base-like encoder (GeGLU: up 2 · n_ff wide)
        common.update(n_kv_head=8, n_ff=1536, context_length=8192)
    if arch == "nomic-bert-moe":  # a nomic-embed-text-v2-moe-like encoder: 8 experts n_ff wide, 2 used
        common.update(n_kv_head=8, n_ff=2048, context_length=8192, n_expert=8, n_expert_used=2)
    if arch in ("nomic-bert", "jina-bert-v2", "jina-bert-v3"):  # n_ff = 4 · n_embd (nomic's gated: 3 ·)
        common.update(n_kv_head=8, n_ff=2048 if arch == "jina-bert-v2" else 1536, context_length=8192)
    if arch == "bert":  # a bge-like encoder: learned positions, so a shorter trained context
        common.update(n_kv_head=8, n_ff=2048, context_length=16384)  # BERT's n_ff = 4 · n_embd
    if arch == "glm-dsa":  # deepseek2's shape with an 8-head lightning indexer, 128 wide
        common.update(n_layer=4, n_expert=8, n_expert_used=2, n_ff_exp=256, indexer=(8, 128))
    if arch == "kimi-linear":  # KDA layers (8 heads, 64 wide) with MLA on two of four, experts after layer 0
        common.update(n_layer=4, n_expert=8, n_expert_used=2, n_ff_exp=256, attention_layers=(1, 3))
    if arch in ("deepseek2", "mistral4"):  # MLA attention; one dense layer, then experts with a shared expert
        common.update(n_layer=4, n_expert=8, n_expert_used=2, n_ff_exp=256)
    return Shape(name=f"{arch}-{weights.lower()}", **common)


def llama_moe_shape(weights: str) -> Shape:
    """A mixtral-like model: the llama architecture with experts."""
    return Shape(name=f"llama-moe-{weights.lower()}", arch="llama", n_layer=4, n_embd=512, n_head=8,
                 n_kv_head=2, n_ff=1024, n_vocab=32000, context_length=32768, weight_type=weights,
                 n_expert=8, n_expert_used=2)  # fmt: skip


def llama4_no_window_shape(weights: str) -> Shape:
    """llama4 without a `sliding_window` key: its loader still turns on the 8192-token chunked
    window (only an explicit 0 turns it off), so -c 16384 keeps a chunked cache on 3 of 4 layers."""
    return replace(base_shape("llama4", weights), name=f"llama4-nokey-{weights.lower()}", sliding_window=None)


def gemma4_shared_kv_shape(weights: str) -> Shape:
    """gemma4 whose last 4 of 8 layers reuse the KV cache of layers 2 (sliding) and 3 (full), as
    its E-size models do (`attention.shared_kv_layers`; create_memory's `reuse`): half the KV."""
    shared = {"attention.shared_kv_layers": 4}
    return replace(base_shape("gemma4", weights), name=f"gemma4-shared-{weights.lower()}", extra_keys=shared)


# models beside the one base shape per architecture: a variant and its shape
VARIANTS = {
    "llama-moe": llama_moe_shape,
    "llama4-nokey": llama4_no_window_shape,
    "gemma4-shared": gemma4_shared_kv_shape,
}


@dataclass(frozen=True)
class Case:
    model: str  # base shape key: an architecture, or llama-moe
    ctx: int
    parallel: int
    kv: tuple[str, str]
    fa: str
    batch: tuple[int, int]
    weights: str
    mode: str  # generate | embeddings | rerank
    load: str

    @property
    def embeddings(self) -> bool:
        """Embeddings and reranking both run llama.cpp in embeddings mode (--reranking sets it)."""
        return self.mode != "generate"

    @property
    def id(self) -> str:
        suffix = {"generate": "", "embeddings": "-emb", "rerank": "-rerank"}[self.mode]
        return (
            f"{self.model}-{self.weights}-c{self.ctx}-np{self.parallel}-{self.kv[0]}.{self.kv[1]}-fa{self.fa}"
            f"-b{self.batch[0]}.{self.batch[1]}{suffix}-{self.load}"
        )

    def shape(self) -> Shape:
        variant = VARIANTS.get(self.model)
        return variant(self.weights) if variant else base_shape(self.model, self.weights)

    def server_flags(self) -> list[str]:
        args = ["-c", str(self.ctx), "-np", str(self.parallel), "-ctk", self.kv[0], "-ctv", self.kv[1],
                "-fa", self.fa, "-b", str(self.batch[0]), "-ub", str(self.batch[1])]  # fmt: skip
        if self.mode == "embeddings":
            args += ["--embeddings", "--pooling", "mean"]
        elif self.mode == "rerank":
            args += ["--reranking"]
        if self.load == "no-repack":
            args += ["--no-repack"]
        elif self.load == "no-mmap":
            args += ["--load-mode", "none"]
        return args


def cases(long: bool) -> list[Case]:
    """CI: one all-pairs cover of the flags, the models taken in turn (each at least once).

    Long: an all-pairs cover of the flags for every model.
    """
    models = [*archs(), *VARIANTS]
    cover = all_pairs(DIMENSIONS)
    if long:
        out = [_case(m, c) for m in models for c in cover]
    else:
        n = max(len(cover), len(models))
        out = [_case(models[i % len(models)], cover[i % len(cover)]) for i in range(n)]
    return list({c.id: c for c in out}.values())


# embedding-only models: no generation, so their generate cases embed instead. Diffusion
# models (no KV cache) too: generating, llama-server aborts in llama_context::decode
# (GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max)); llama.cpp runs them with
# llama-diffusion-cli, and llama-server only in embeddings mode.
ENCODERS = ("bert", "nomic-bert", "jina-bert-v2", "jina-bert-v3", "gemma-embedding", "eurobert",
            "neo-bert", "nomic-bert-moe", "dream", "llada", "llada-moe", "rnd1", "llama-embed",
            "modern-bert", "t5encoder")  # fmt: skip


# llama.cpp refuses K and V cache types that differ under MLA
MLA = ("deepseek2", "mistral4", "glm-dsa", "kimi-linear")
NO_FLASH_ATTN = ("grok",)  # flash attention forced off, so a quantized V cache is refused
# llama-server aborts with -fa on for plm's synthetic model (ggml.c GGML_ASSERT(a->ne[0] ==
# b->ne[0]) in llama_kv_cache::cpy_v at the reserve): its cases run with flash attention off
FA_ABORTS = ("plm",)
# llama-server aborts loading t5encoder with -np > 1: its warm-up decode (common_context_can_seq_rm)
# splits the batch into equal sequences, which the relative-position bucket input refuses
# (llama-graph.cpp llm_graph_input_pos_bucket::set_input GGML_ASSERT(!ubatch->equal_seqs())); the
# recipe check refuses it too (checks.ONE_SLOT_ONLY; test_llamacpp_arch proves the abort is real)
NP_ABORTS = ONE_SLOT_ONLY


def _case(model: str, values: dict[str, Any]) -> Case:
    if model in ENCODERS and values["mode"] == "generate":
        values = {**values, "mode": "embeddings"}
    if model in MLA and values["kv"][0] != values["kv"][1]:
        values = {
            **values,
            "kv": (values["kv"][0], values["kv"][0]) if values["fa"] == "on" else ("f16", "f16"),
        }
    if model in FA_ABORTS:
        values = {**values, "fa": "off"}
    if model in NP_ABORTS:
        values = {**values, "parallel": 1}
    if model in NO_FLASH_ATTN + FA_ABORTS and values["kv"][1] != "f16":
        values = {**values, "kv": (values["kv"][0], "f16")}
    return Case(model=model, **values)


# ---- the oracle: the real llama-server ---------------------------------------------------

_RS = re.compile(r"llama_memory_recurrent:\s+(\S+) RS buffer size =\s+([\d.]+) MiB")


@dataclass
class Measured:
    buffers: LlamaBuffers
    rss_before: int  # bytes, after load (health OK), before any request
    rss_after: int  # bytes, after the first request
    recurrent: float = 0.0  # MiB
    n_prompt: int = 0  # tokens the first request evaluated
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0


def _post(port: int, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback only)
        data: dict[str, Any] = json.loads(r.read())
        return data


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def prompt_tokens(case: Case, n_ctx_seq: int, n_vocab: int) -> list[int]:
    """A first request that fills one ubatch (the worst-case graph), within the slot's context."""
    n = min(case.batch[1], n_ctx_seq - 8) if not case.embeddings else min(case.batch[1], n_ctx_seq) - 2
    return [300 + (i * 7919) % (n_vocab - 400) for i in range(max(1, n))]


def run_case(
    binary: Path,
    model: Path,
    case: Case,
    n_ctx_seq: int,
    n_vocab: int,
    log_path: Path,
    timeout_s: float = 120,
) -> Measured:
    port = free_port()
    argv = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-lv", "4",
            "-t", "2", "--chat-template", "chatml", *case.server_flags()]  # fmt: skip
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while not _healthy(port):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"llama-server exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama-server not healthy in {timeout_s}s")
                time.sleep(0.02)  # a tiny model loads in well under a second: poll often
            before = _rss(proc.pid)
            tokens = prompt_tokens(case, n_ctx_seq, n_vocab)
            n_prompt = len(tokens)
            if case.mode == "rerank":
                # /rerank takes text only: query + document. With the synthetic vocabularies a
                # word " a" is 4 byte-fallback tokens (1 with bert's); the server counts them.
                doc = " ".join(["a"] * max(1, (len(tokens) - 12) // 4))
                answer = _post(port, "/rerank", {"query": "q", "documents": [doc]}, timeout_s)
                n_prompt = int(answer["usage"]["prompt_tokens"])
            elif case.embeddings:
                _post(port, "/embeddings", {"input": [tokens]}, timeout_s)
            else:
                _post(
                    port, "/completion", {"prompt": tokens, "n_predict": 2, "cache_prompt": False}, timeout_s
                )
            time.sleep(0.05)  # the response comes after the decode and the checkpoint: RSS is settled
            after = _rss(proc.pid)
        finally:
            proc.kill()
            proc.wait()
    text = log_path.read_text(errors="replace")
    rs = sum(float(m.group(2)) for m in _RS.finditer(text))
    return Measured(
        buffers=parse_log(text), rss_before=before, rss_after=after, recurrent=rs, n_prompt=n_prompt
    )


def measured_buffers_mib(m: Measured) -> float:
    b = m.buffers
    return sum(b.model.values()) + b.kv_full + b.kv_swa + m.recurrent + b.output + b.compute_total


def iter_ids(cs: Sequence[Case]) -> Iterator[str]:
    return (c.id for c in cs)


__all__ = ["DIMENSIONS", "MiB", "Case", "Measured", "all_pairs", "cases", "run_case", "valid"]


def summarize(lines: Sequence[str]) -> str:
    """README table from CORTEX_FIT_REPORT lines: per model, case count and worst ratios."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if line.strip():
            r = json.loads(line)
            rows.setdefault(r["model"], []).append(r)

    def ratio(r: dict[str, Any], key: str) -> float:
        ours, real = r[key]
        if key == "rss":  # a range [low - staging, ours]: compute touched, the read buffer glibc may keep
            low = r.get("rss_low", ours) - r.get("staging", 0)
            return float(ours / real) if real > ours else max(1.0, low / real)
        return float(ours / real)

    def worst(rs: list[dict[str, Any]], key: str) -> float:
        return max((ratio(r, key) for r in rs), key=lambda x: abs(x - 1))

    out = ["| model | cases | worst buffers ratio | worst RSS ratio |", "|---|---|---|---|"]
    for model, rs in sorted(rows.items()):
        out.append(f"| {model} | {len(rs)} | {worst(rs, 'buffers'):.3f} | {worst(rs, 'rss'):.3f} |")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(summarize(Path(sys.argv[1]).read_text().splitlines()))
