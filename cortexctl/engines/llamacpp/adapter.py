"""llama.cpp's `llama-server`: recipe → command line, readiness probe, diagnosis.

Flag spellings are those of the llama.cpp tree vendored in llama-cpp-python
0.3.36 (`common/arg.cpp`). `/health` answers 503 while the model loads and 200
once it is ready; the served name is the `--alias`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, TypeGuard

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
from cortexctl.engines.llamacpp import checks, flags, pin
from cortexctl.engines.llamacpp import diagnosis as rules
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.binary import MISSING_BINARY_FIX, find_llama_server
from cortexctl.engines.llamacpp.estimate import estimate_llamacpp
from cortexctl.recipes.schema import EngineArgs, Recipe, RecipeSpec
from cortexctl.validation.breakdown import Breakdown
from cortexctl.validation.checks import Check
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo

_TOOLS_FIX = (
    "This model's recipe runs without Jinja chat templates, which tool calling needs: the operator can "
    "set spec.args.jinja: true (with chat_template: chatml) or a Jinja chat_template_file "
    "(recipes/README.md, 'Tool calling')."
)
_MEDIA_FIX = (
    "This model has no multimodal projector: send text only, or use a vision model "
    "(its recipe names the projector in spec.args.mmproj)."
)
# llama-server 0.3.36 raises these as std::runtime_error while it parses a request, which
# it answers as 500 "server_error" (tools/server/server-common.cpp); they are the client's.
CLIENT_ERRORS: tuple[tuple[str, str | None], ...] = (
    ("tools param requires --jinja flag", _TOOLS_FIX),
    ("tool_choice param requires --jinja flag", _TOOLS_FIX),
    ("image input is not supported", _MEDIA_FIX),
    ("audio input is not supported", _MEDIA_FIX),
    ("video input is not supported", _MEDIA_FIX),
    ("Multimodal data provided, but model does not support multimodal requests", _MEDIA_FIX),
    ("Failed to load image or audio file", "Send a valid PNG/JPEG image or WAV/MP3 audio."),
    ("Invalid base64 value", "Send the image as a data: URI with valid base64."),
    ("Cannot use both json_schema and grammar", "Give response_format or grammar, not both."),
    ("Cannot specify grammar with tools", "Give tools or grammar, not both."),
    ('"prompt" must not be empty', None),
    ('"prompt" is required', None),
    ('"prompt" elements must be', None),
    ("Only no echo is supported", "Leave out `echo` or set it to false."),
    ("Unsupported param: ", None),
)


def llama_server_args(
    args: LlamaCppArgs,
    *,
    model: str,
    port: int,
    served_name: str,
    template_file: str | None,
    projector: str | None = None,
) -> list[str]:
    """Everything after the binary name; `model`/`template_file` as the engine will see them."""
    argv = [
        "-m", model,
        "--host", LOOPBACK,
        "--port", str(port),
        "--alias", served_name,
        "-c", str(args.context_length),
        "-np", str(args.parallel),
        "-ngl", str(args.gpu_layers),
        "-fa", args.flash_attn,
        "-ctk", args.cache_type_k,
        "-ctv", args.cache_type_v,
        "--metrics",
        "--no-webui",
    ]  # fmt: skip
    if args.threads is not None:
        argv += ["-t", str(args.threads)]
    if args.batch_size is not None:
        argv += ["-b", str(args.batch_size)]
    if args.ubatch_size is not None:
        argv += ["-ub", str(args.ubatch_size)]
    if args.chat_template is not None:
        # A built-in template name: with Jinja on (this version's default) llama-server would
        # take the name itself as the template text (all but `chatml`), so Jinja is off before
        # the flag unless the recipe asks for it (`jinja: true` with `chatml` or an inline template).
        argv += ["--jinja" if args.jinja else "--no-jinja", "--chat-template", args.chat_template]
    elif template_file is not None:
        # A Jinja file: said explicitly, and before the flag (llama.cpp checks it against Jinja then).
        argv += ["--no-jinja" if args.jinja is False else "--jinja", "--chat-template-file", template_file]
    elif args.jinja is not None:
        argv.append("--jinja" if args.jinja else "--no-jinja")
    if projector is not None:
        argv += ["--mmproj", projector]
    if args.embeddings:
        argv.append("--embeddings")
    if args.pooling is not None:
        argv += ["--pooling", args.pooling]
    if args.mlock:
        argv += ["--load-mode", "mmap+mlock"]  # 0.3.36 dropped --mlock
    return argv + list(args.extra_args)


class LlamaCppEngine:
    name: ClassVar[str] = "llamacpp"
    display_name: ClassVar[str] = "llama.cpp"
    version: ClassVar[str] = pin.VERSION
    program: ClassVar[str] = pin.PROGRAM
    default_image: ClassVar[str] = pin.DEFAULT_IMAGE
    metrics_path: ClassVar[str] = "/metrics"
    api_key_env: ClassVar[str] = "LLAMA_API_KEY"  # read by the pinned version as --api-key
    client_errors: ClassVar[tuple[tuple[str, str | None], ...]] = CLIENT_ERRORS
    args_model: ClassVar[type[EngineArgs]] = LlamaCppArgs
    needs_gpu: ClassVar[bool] = False
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
        if not isinstance(args, LlamaCppArgs):
            raise EngineError(
                f"recipe {recipe.name!r} is for engine {recipe.spec.engine!r}, not {self.name!r}"
            )
        try:
            binary = str(find_llama_server(settings))
        except EngineError:
            binary = "llama-server"  # docker-only hosts; the process runtime reports it at start
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
            argv_prefix=[binary],
            template=args.chat_template_file,
            projector=args.mmproj,
            missing_binary_fix=MISSING_BINARY_FIX,
            engine_args=lambda model, template, projector=None: llama_server_args(
                args,
                model=model,
                template_file=template,
                projector=projector,
                port=port,
                served_name=recipe.spec.served_name,
            ),
        )

    async def probe(
        self, client: httpx.AsyncClient, base_url: str, *, served_name: str, api_key: str | None = None
    ) -> Probe:
        try:
            status, body = await get_json(client, f"{base_url}/health", api_key=api_key)
        except httpx.TransportError as exc:
            return Probe(ProbeState.DOWN, f"not answering: {type(exc).__name__}")
        if status == 503:
            return Probe(ProbeState.LOADING, "loading model")
        if status != 200:
            return Probe(ProbeState.DOWN, f"/health answered {status}")
        try:
            status, models = await get_json(client, f"{base_url}/v1/models", api_key=api_key)
            _, props = await get_json(client, f"{base_url}/props", api_key=api_key)
        except httpx.TransportError as exc:
            return Probe(ProbeState.DOWN, f"not answering: {type(exc).__name__}")
        listed = served_names(models)
        if served_name not in listed:
            return Probe(
                ProbeState.LOADING, f"/v1/models does not list {served_name!r} yet ({sorted(listed)})"
            )
        return Probe(ProbeState.READY, "ready", max_model_len=_slot_context(props, listed[served_name]))

    def diagnose(self, log_text: str) -> Diagnosis | None:
        return diagnosis.diagnose(log_text, self.diagnosis_rules)

    # ---- recipes -----------------------------------------------------------------------
    def shorthand_width(self, args: Sequence[str], index: int) -> int:
        return 0

    def check_recipe(
        self, spec: RecipeSpec, args: EngineArgs, roots: Sequence[Path] | None
    ) -> list[tuple[Loc, str]]:
        assert isinstance(args, LlamaCppArgs)
        return checks.check_recipe(spec, args, roots)

    # ---- validation --------------------------------------------------------------------
    def needed_gpus(self, spec: RecipeSpec) -> int:
        return 1

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
        args = checks.llamacpp_args(spec)
        argv = command if _is_llama_server_argv(command) else None
        breakdown = estimate_llamacpp(model, args, command=argv)
        flags_check = checks.check_flags(args, model)
        return breakdown, [flags_check] if flags_check is not None else []

    def check_context(self, spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
        return checks.check_context(spec, model, breakdown)

    def check_fits_gpu(self, spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
        return checks.check_fits_gpu(spec, breakdown, selected)


def _is_llama_server_argv(command: object) -> TypeGuard[list[str]]:
    """A dry-run argv (the estimate reads its flags), not a container spec."""
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        return False
    return "llama-server" in command[0] or command[0].startswith("-")


def _slot_context(props: object, model_entry: dict[str, object]) -> int | None:
    """Context one request can use: the per-slot n_ctx from /props, else the model's n_ctx_train."""
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        if isinstance(settings, dict) and isinstance(settings.get("n_ctx"), int):
            return int(settings["n_ctx"])
    meta = model_entry.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
        return int(meta["n_ctx_train"])
    return None
