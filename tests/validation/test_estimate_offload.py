"""llama.cpp partial offload: which tensors and KV layers land on the GPU."""

from __future__ import annotations

import pytest

from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.estimate import estimate_llamacpp
from cortexctl.validation import inspect_model
from tests.validation.ggufmodels import Shape, write_gguf


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("off")
    return inspect_model(
        write_gguf(
            Shape("o", n_layer=4, n_embd=64, n_head=4, n_kv_head=2, n_ff=128, n_vocab=1000), d / "o.gguf"
        )
    )


def layer_bytes(model, il: int) -> int:  # type: ignore[no-untyped-def]
    return sum(t.nbytes for t in model.tensors if t.name.startswith(f"blk.{il}."))


def test_cpu_only(model) -> None:  # type: ignore[no-untyped-def]
    b = estimate_llamacpp(model, LlamaCppArgs(context_length=1024))
    assert b.gpu_bytes == 0 and b.get("weights") == model.weight_bytes


def test_partial_offload_last_layers(model) -> None:  # type: ignore[no-untyped-def]
    b = estimate_llamacpp(model, LlamaCppArgs(context_length=1024, gpu_layers=2))
    gpu_w = next(c.bytes for c in b.components if c.name == "weights" and c.device == "gpu")
    assert gpu_w == layer_bytes(model, 2) + layer_bytes(model, 3)
    kv_gpu = sum(c.bytes for c in b.components if c.name == "kv_full" and c.device == "gpu")
    kv_host = sum(c.bytes for c in b.components if c.name == "kv_full" and c.device == "host")
    assert kv_gpu == kv_host  # 2 of 4 layers each side
    assert any("partial offload" in n for n in b.notes)


def test_full_offload_duplicates_tied_output(model) -> None:  # type: ignore[no-untyped-def]
    b = estimate_llamacpp(model, LlamaCppArgs(context_length=1024, gpu_layers="all"))
    embd = next(t.nbytes for t in model.tensors if t.name == "token_embd.weight")
    host_w = next(c.bytes for c in b.components if c.name == "weights" and c.device == "host")
    gpu_w = next(c.bytes for c in b.components if c.name == "weights" and c.device == "gpu")
    assert host_w == embd  # token embeddings stay on the host
    assert gpu_w == model.weight_bytes - embd + embd  # + the GPU copy used as output layer


def test_context_is_total_across_slots(model) -> None:  # type: ignore[no-untyped-def]
    one = estimate_llamacpp(model, LlamaCppArgs(context_length=8192, parallel=1))
    four = estimate_llamacpp(model, LlamaCppArgs(context_length=8192, parallel=4))
    assert one.get("kv_full") == four.get("kv_full")
    assert four.facts["n_ctx_seq"] == 2048
