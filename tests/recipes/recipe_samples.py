"""Recipe texts shared by the recipe tests (a module, since conftest is not importable)."""

from __future__ import annotations

LLAMACPP_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: tiny-llama
spec:
  engine: llamacpp
  served_name: tiny
  model:
    path: tiny.gguf
  args:
    context_length: 2048
    parallel: 2
{args}
"""

VLLM_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: big-vllm
spec:
  engine: vllm
  served_name: big
  model:
    path: Big-Model
  gpus: [0, 1]
  args:
    tensor_parallel_size: 2
{args}
"""
