"""Model inspection: GGUF header/tensor table and HF folders, read-only."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from gguf import GGUFReader

from cortexctl.validation import ModelInspectionError, inspect_model
from cortexctl.validation.inspect_hf import derived_max_len
from tests.validation.ggufmodels import Shape, write_gguf
from tests.validation.hfmodels import QWEN25_7B_INSTRUCT_AWQ, awq_tensors, write_hf_folder


def test_gguf_matches_gguf_reader(tmp_path: Path) -> None:
    shape = Shape(
        "s",
        arch="gemma3",
        n_layer=6,
        n_embd=128,
        n_head=4,
        n_kv_head=2,
        head_dim=48,
        n_ff=256,
        n_vocab=5000,
        sliding_window=64,
        weight_type="Q8_0",
        context_length=8192,
    )
    path = write_gguf(shape, tmp_path / "s.gguf")
    m = inspect_model(path)
    reader = GGUFReader(path)  # the gguf package's own reader as the reference
    assert {t.name: int(t.n_bytes) for t in reader.tensors} == {t.name: t.nbytes for t in m.tensors}
    assert m.weight_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert m.n_params == sum(int(t.n_elements) for t in reader.tensors)
    assert (m.architecture, m.n_layers, m.n_heads, m.kv_heads(0), m.head_dim_k, m.n_embd, m.n_ff) == (
        "gemma3",
        6,
        4,
        2,
        48,
        128,
        256,
    )
    assert (m.context_length, m.vocab_size, m.sliding_window) == (8192, 5000, 64)
    assert m.swa_layers == (True, True, True, True, True, False)  # llama.cpp's gemma3 pattern: 6
    assert set(m.bytes_by_dtype) == {"Q8_0", "F32"}


def test_real_gemma3_270m(gemma3_270m: Path) -> None:
    m = inspect_model(gemma3_270m)
    assert (m.architecture, m.n_layers, m.n_heads, m.kv_heads(0), m.head_dim_k) == ("gemma3", 18, 4, 1, 256)
    assert (m.vocab_size, m.sliding_window, m.n_swa_layers, m.file_type) == (262144, 512, 15, "Q4_K_M")
    assert m.weight_bytes == 246_587_904


def test_folder_with_one_gguf(tmp_path: Path) -> None:
    write_gguf(
        Shape("x", n_layer=1, n_embd=32, n_head=2, n_kv_head=2, n_ff=64, n_vocab=300), tmp_path / "x.gguf"
    )
    assert inspect_model(tmp_path).format == "gguf"


def test_awq_side_file_quant_config(tmp_path: Path) -> None:
    cfg = dict(QWEN25_7B_INSTRUCT_AWQ)
    qc = cfg.pop("quantization_config")
    write_hf_folder(tmp_path, cfg, awq_tensors({**cfg, "quantization_config": qc}), shards=1)
    (tmp_path / "quant_config.json").write_text(
        json.dumps({"zero_point": True, "q_group_size": 128, "w_bit": 4})
    )
    q = inspect_model(tmp_path).quantization
    assert q is not None and (q.method, q.bits, q.group_size) == ("awq", 4, 128)


def test_gptq_quantize_config(tmp_path: Path) -> None:
    cfg = {k: v for k, v in QWEN25_7B_INSTRUCT_AWQ.items() if k != "quantization_config"}
    write_hf_folder(tmp_path, cfg, [("model.norm.weight", "F16", [3584])], shards=1)
    (tmp_path / "quantize_config.json").write_text(
        json.dumps({"bits": 4, "group_size": 128, "desc_act": False})
    )
    q = inspect_model(tmp_path).quantization
    assert q is not None and (q.method, q.bits) == ("gptq", 4)


def test_fp8_and_bnb_quant_configs(tmp_path: Path) -> None:
    base = {k: v for k, v in QWEN25_7B_INSTRUCT_AWQ.items() if k != "quantization_config"}
    for name, qc, expect in [
        ("fp8", {"quant_method": "fp8", "activation_scheme": "dynamic"}, ("fp8", 8)),
        ("bnb", {"quant_method": "bitsandbytes", "load_in_4bit": True}, ("bitsandbytes", 4)),
    ]:
        d = tmp_path / name
        write_hf_folder(
            d, {**base, "quantization_config": qc}, [("model.norm.weight", "F16", [3584])], shards=1
        )
        q = inspect_model(d).quantization
        assert q is not None and (q.method, q.bits) == expect


def test_rope_scaling_max_len() -> None:
    yarn = {
        "max_position_embeddings": 32768,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
    }
    assert derived_max_len(yarn) == (131072, 32768)
    llama3 = {"max_position_embeddings": 131072, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}
    assert derived_max_len(llama3) == (131072, None)
    linear = {"max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}}
    assert derived_max_len(linear) == (8192, 4096)


def test_truncated_safetensors(tmp_path: Path) -> None:
    write_hf_folder(tmp_path, QWEN25_7B_INSTRUCT_AWQ, awq_tensors(QWEN25_7B_INSTRUCT_AWQ), shards=1)
    shard = next(tmp_path.glob("*.safetensors"))
    with shard.open("r+b") as fh:
        fh.truncate(shard.stat().st_size - 1)
    with pytest.raises(ModelInspectionError, match="truncated"):
        inspect_model(tmp_path)


def test_bad_safetensors_header(tmp_path: Path) -> None:
    write_hf_folder(tmp_path, QWEN25_7B_INSTRUCT_AWQ, [("model.norm.weight", "F16", [8])], shards=1)
    shard = next(tmp_path.glob("*.safetensors"))
    shard.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(ModelInspectionError) as exc:
        inspect_model(tmp_path)
    assert exc.value.fix


def test_index_names_missing_shard(tmp_path: Path) -> None:
    write_hf_folder(tmp_path, QWEN25_7B_INSTRUCT_AWQ, awq_tensors(QWEN25_7B_INSTRUCT_AWQ), shards=2)
    next(tmp_path.glob("*00002-of*.safetensors")).unlink()
    with pytest.raises(ModelInspectionError, match="missing"):
        inspect_model(tmp_path)


def test_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ModelInspectionError) as exc:
        inspect_model(tmp_path / "readme.txt")
    assert "GGUF" in exc.value.message and exc.value.fix
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelInspectionError):
        inspect_model(empty)
