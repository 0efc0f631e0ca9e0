"""vLLM's OpenAI server (`vllm serve`): recipe → command line / container spec, probe, diagnosis.

Pinned to vLLM `pin.VERSION`; the image `vllm/vllm-openai:v<version>` has
`vllm serve` as its entrypoint, so `container_argv` starts with the model path.
vLLM opens its port only once the model is loaded: a DOWN probe while the
process lives means "still loading" to the supervisor. Ready = `/health` 200 and
the served name listed by `/v1/models` (which also carries `max_model_len`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import httpx

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.core.yamldoc import Loc
from cortexctl.engines import diagnosis
from cortexctl.engines.base import (
    LOOPBACK,
    Diagnosis,
    LaunchSpec,
    Probe,
    ProbeState,
    build_launch_spec,
    get_json,
    served_names,
)
from cortexctl.engines.vllm import checks, flags, pin
from cortexctl.engines.vllm import diagnosis as rules
from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.engines.vllm.binary import MISSING_BINARY_FIX, find_vllm
from cortexctl.engines.vllm.capability import check_capability
from cortexctl.engines.vllm.estimate import estimate_vllm
from cortexctl.recipes.schema import EngineArgs, Recipe, RecipeSpec
from cortexctl.validation.breakdown import Breakdown
from cortexctl.validation.checks import Check
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo

# `--task` gave way to `--runner` / `--convert` (vLLM ≥ 0.10); recipes keep the task words.
_TASK_FLAGS: dict[str, list[str]] = {
    "generate": ["--runner", "generate"],
    "embed": ["--runner", "pooling", "--convert", "embed"],
    "classify": ["--runner", "pooling", "--convert", "classify"],
    "score": ["--runner", "pooling", "--convert", "classify"],
    "reward": ["--runner", "pooling"],
}

# Air-gapped hosts: never let vLLM / transformers / huggingface_hub reach out.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def vllm_serve_args(
    args: VllmArgs, *, model: str, port: int, served_name: str, template: str | None
) -> list[str]:
    """Everything after `vllm serve`, with paths as the engine will see them."""
    argv = [
        model,
        "--host", LOOPBACK,
        "--port", str(port),
        "--served-model-name", served_name,
        "--tensor-parallel-size", str(args.tensor_parallel_size),
        "--gpu-memory-utilization", str(args.gpu_memory_utilization),
        "--dtype", args.dtype,
        "--kv-cache-dtype", args.kv_cache_dtype,
    ]  # fmt: skip
    if args.pipeline_parallel_size != 1:
        argv += ["--pipeline-parallel-size", str(args.pipeline_parallel_size)]
    if args.max_model_len is not None:
        argv += ["--max-model-len", str(args.max_model_len)]
    if args.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(args.max_num_seqs)]
    if args.max_num_batched_tokens is not None:
        argv += ["--max-num-batched-tokens", str(args.max_num_batched_tokens)]
    if args.quantization is not None:
        argv += ["--quantization", args.quantization]
    if args.enforce_eager:
        argv.append("--enforce-eager")
    if args.enable_prefix_caching is not None:
        argv.append("--enable-prefix-caching" if args.enable_prefix_caching else "--no-enable-prefix-caching")
    if args.trust_remote_code:
        argv.append("--trust-remote-code")
    if template is not None:
        argv += ["--chat-template", template]
    if args.task is not None:
        argv += _TASK_FLAGS[args.task]
    if args.swap_space_gib is not None:
        argv += ["--swap-space", f"{args.swap_space_gib:g}"]
    return argv + list(args.extra_args)


class VllmEngine:
    name: ClassVar[str] = "vllm"
    display_name: ClassVar[str] = "vLLM"
    version: ClassVar[str] = pin.VERSION
    program: ClassVar[str] = pin.PROGRAM
    default_image: ClassVar[str] = pin.DEFAULT_IMAGE
    metrics_path: ClassVar[str] = "/metrics"
    api_key_env: ClassVar[str] = "VLLM_API_KEY"  # read by the pinned version as --api-key
    client_errors: ClassVar[tuple[tuple[str, str | None], ...]] = ()  # vLLM answers 400 itself
    args_model: ClassVar[type[EngineArgs]] = VllmArgs
    needs_gpu: ClassVar[bool] = True
    flags_dir: ClassVar[Path] = Path(__file__).resolve().parent / "data"
    typed_flags: ClassVar[Mapping[str, str]] = flags.TYPED_FLAGS
    cortex_flags: ClassVar[Mapping[str, str]] = flags.CORTEX_FLAGS
    allowed: ClassVar[Mapping[str, tuple[str, ...]]] = flags.ALLOWED
    refused: ClassVar[Mapping[str, str]] = flags.REFUSED
    diagnosis_rules: ClassVar[tuple[diagnosis.Rule, ...]] = rules.RULES

    def launch_spec(
        self,
        recipe: Recipe,
        *,
        model_id: int,
        replica_index: int,
        port: int,
        settings: Settings,
        api_key: str | None = None,
    ) -> LaunchSpec:
        args = recipe.spec.engine_args()
        if not isinstance(args, VllmArgs):
            raise EngineError(
                f"recipe {recipe.name!r} is for engine {recipe.spec.engine!r}, not {self.name!r}"
            )
        try:
            binary = str(find_vllm(settings))
        except EngineError:
            binary = "vllm"  # docker-only hosts; the process runtime reports it at start
        return build_launch_spec(
            engine=self.name,
            default_image=self.default_image,
            recipe=recipe,
            model_id=model_id,
            replica_index=replica_index,
            port=port,
            settings=settings,
            api_key=api_key,
            api_key_env=self.api_key_env,
            argv_prefix=[binary, "serve"],
            template=args.chat_template,
            engine_args=lambda model, template: vllm_serve_args(
                args, model=model, template=template, port=port, served_name=recipe.spec.served_name
            ),
            env=dict(OFFLINE_ENV),
            ipc_host=True,  # vLLM's workers share tensors through /dev/shm; Docker's 64 MB is far too small
            missing_binary_fix=MISSING_BINARY_FIX,
        )

    async def probe(
        self, client: httpx.AsyncClient, base_url: str, *, served_name: str, api_key: str | None = None
    ) -> Probe:
        try:
            status, _ = await get_json(client, f"{base_url}/health", api_key=api_key)
            if status != 200:
                return Probe(ProbeState.LOADING, f"/health answered {status}")
            status, models = await get_json(client, f"{base_url}/v1/models", api_key=api_key)
        except httpx.TransportError as exc:
            return Probe(ProbeState.DOWN, f"not answering: {type(exc).__name__}")
        listed = served_names(models)
        if served_name not in listed:
            return Probe(ProbeState.LOADING, f"/v1/models does not list {served_name!r} ({sorted(listed)})")
        mml = listed[served_name].get("max_model_len")
        return Probe(ProbeState.READY, "ready", max_model_len=mml if isinstance(mml, int) else None)

    def diagnose(self, log_text: str) -> Diagnosis | None:
        return diagnosis.diagnose(log_text, self.diagnosis_rules)

    # ---- recipes -----------------------------------------------------------------------
    def shorthand_width(self, args: Sequence[str], index: int) -> int:
        # `-O3`, `-O=2`: shorthand for --optimization-level; `-O` alone takes the next item
        token = str(args[index])
        if re.fullmatch(r"-O=?\w+", token):
            return 1
        if token == "-O" and index + 1 < len(args):
            return 2
        return 0

    def check_recipe(
        self, spec: RecipeSpec, args: EngineArgs, roots: Sequence[Path] | None
    ) -> list[tuple[Loc, str]]:
        assert isinstance(args, VllmArgs)
        return checks.check_recipe(spec, args, roots)

    # ---- validation --------------------------------------------------------------------
    def needed_gpus(self, spec: RecipeSpec) -> int:
        args = checks.vllm_args(spec)
        return args.tensor_parallel_size * args.pipeline_parallel_size

    def check_model_format(self, spec: RecipeSpec, model: ModelInfo) -> Check:
        return checks.check_model_format(spec, model)

    def estimate(
        self,
        spec: RecipeSpec,
        model: ModelInfo,
        *,
        selected: list[GpuInfo],
        n_selected: int,
        command: list[str] | dict[str, object] | None,
    ) -> tuple[Breakdown, list[Check]]:
        args = checks.vllm_args(spec)
        total = min((g.total_bytes for g in selected), default=None)
        breakdown = estimate_vllm(model, args, gpu_total_bytes=total)
        return breakdown, [
            checks.check_tensor_parallel(model, args, n_selected),
            *check_capability(model, args, selected),
        ]

    def check_context(self, spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
        return checks.check_context(spec, model, breakdown)

    def check_fits_gpu(self, spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
        return checks.check_fits_gpu(spec, breakdown, selected)
