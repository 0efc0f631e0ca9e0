#!/usr/bin/env bash
# The vLLM path on a real GPU host with the pinned vLLM image, in under 10 minutes, one report file.
#
#   scripts/gpu-check.sh --models /srv/models [--report gpu-check-report.txt] [--image vllm/vllm-openai:vX]
#
# Needs: the NVIDIA driver and container toolkit, Docker with the pinned image loaded
# (`cortexctl bundle import gpu-vllm…` or `docker load`), this checkout installed (`./install.sh --dev`),
# and in the model store (--models) the folders Qwen2.5-0.5B-Instruct, Qwen2.5-0.5B-Instruct-AWQ and
# bge-small-en-v1.5 (HF layout; other names via GPU_CHECK_CHAT / GPU_CHECK_AWQ / GPU_CHECK_EMBED).
# Steps and what each verifies: scripts/gpu_check.py and the README ("vLLM: verified on hardware").
# `--self-test` runs the same flow here with VllmTestDouble (no GPU; the figures are the double's).
#
# On a GPU machine WITHOUT vLLM (nvcc, CMake, PyTorch, NVML; no registry): `--steps inventory`
# runs the NVML inventory; build llama-server with CUDA (scripts/build-llama-server.sh) and run
# tests/validation/test_estimate_llamacpp.py with CORTEX_LLAMA_SERVER pointing at it for -ngl fits.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${ROOT}/.venv/bin/python"
[[ -x "$PY" ]] || { echo "gpu-check: no venv at $ROOT/.venv; run ./install.sh --dev first" >&2; exit 2; }
# the whole run stays under 10 minutes: the script budgets 570 s for its steps, this is the backstop
exec timeout --kill-after=20 590 "$PY" "$HERE/gpu_check.py" "$@"
