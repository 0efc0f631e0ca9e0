"""The engine interface: what the supervisor needs from an inference engine.

An engine adapter is pure: it turns a recipe into a `LaunchSpec` (for either
runtime), probes readiness over HTTP, and diagnoses a failed start from its log.
It never starts processes itself; runtimes do (`cortexctl.runtimes`).

Engines answer only the gateway: the supervisor gives each replica a fresh
random key at launch (`new_engine_key`), passed in the engine's environment
(`api_key_env`: llama-server reads LLAMA_API_KEY, vLLM VLLM_API_KEY), never in
argv where `ps` would show it. The gateway sends it on every proxied request,
probe and scrape; anything else on the host calling the engine port gets 401.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import httpx

from cortexctl.core.errors import EngineError, RecipeError
from cortexctl.recipes.paths import require_in_store, store_roots

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings
    from cortexctl.core.yamldoc import Loc
    from cortexctl.engines.diagnosis import Rule
    from cortexctl.recipes.schema import EngineArgs, Recipe, RecipeSpec
    from cortexctl.validation.breakdown import Breakdown
    from cortexctl.validation.checks import Check
    from cortexctl.validation.gpus import GpuInfo
    from cortexctl.validation.modelinfo import ModelInfo

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class LaunchSpec:
    name: str  # "llamacpp-model-{id}" for replica 0, "llamacpp-model-{id}-{index}" for others
    engine: str  # an engine of the registry (engines/registry.py)
    argv: list[str]  # process runtime: full command line, argv[0] = binary
    container_argv: list[str]  # docker runtime: args after the image entrypoint, in-container paths
    image: str | None
    env: dict[str, str] = field(repr=False)  # may hold the engine key: never in logs
    host: str  # always 127.0.0.1: engines listen on loopback only
    port: int
    mounts: tuple[Mount, ...]  # model files, read-only
    gpus: str | tuple[int, ...]  # "all" | "none" | indices
    memory_limit_bytes: int | None
    labels: dict[str, str]
    log_file: Path  # $CORTEX_HOME/logs/engines/{name}.log
    api_key: str | None = field(default=None, repr=False)  # the engine key; also in env[api_key_env]
    api_key_env: str | None = None
    # What the runtimes need beyond the command, as data (they never branch on the engine):
    ipc_host: bool = False  # share the host's IPC namespace (/dev/shm) in a container
    missing_binary_fix: str = "Install the engine binary."  # the fix when argv[0] is not found


def new_engine_key() -> str:
    """A fresh per-launch engine key (256 bits)."""
    return "cortex-engine-" + secrets.token_urlsafe(32)


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class ProbeState(StrEnum):
    DOWN = "down"
    LOADING = "loading"
    READY = "ready"


@dataclass(frozen=True)
class Probe:
    state: ProbeState
    detail: str
    max_model_len: int | None = None


@dataclass(frozen=True)
class Diagnosis:
    rule: str  # e.g. "model-file-missing", "port-in-use", "oom-host", "unknown-argument"
    summary: str  # what happened, one sentence
    fix: str  # what to do
    log_lines: list[str] = field(default_factory=list)  # the matching log lines (a few)


class Engine(Protocol):
    """Everything CORTEX knows about one engine; its package's `ENGINE` implements it.

    Adapter (launch, probe, diagnose), recipe rules (arguments model, flag data,
    allow-list, semantic checks) and validation (format, estimate, fit, context):
    callers reach all of them through `engines.registry.get_engine(name)`.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]  # in messages: "llama.cpp", "vLLM"
    version: ClassVar[str]  # the pinned version (its package's pin.py)
    program: ClassVar[str]  # the command line's program, e.g. "llama-server", "vllm serve"
    default_image: ClassVar[str]
    metrics_path: ClassVar[str]
    api_key_env: ClassVar[str]  # the environment variable the engine reads its API key from
    # (text in the engine's error message, fix): answers the engine gives as a 5xx although the
    # request was at fault; the gateway turns them into 400s (services/gateway/engine_errors.py)
    client_errors: ClassVar[tuple[tuple[str, str | None], ...]]
    args_model: ClassVar[type[EngineArgs]]  # spec.args
    needs_gpu: ClassVar[bool]
    flags_dir: ClassVar[Path]  # holds `<name>-<version>.json`, the pinned version's flags
    typed_flags: ClassVar[Mapping[str, str]]  # flag → the spec.args field that owns it
    cortex_flags: ClassVar[Mapping[str, str]]  # flag → why CORTEX sets it itself
    allowed: ClassVar[Mapping[str, tuple[str, ...]]]  # allow-list: category → flags
    refused: ClassVar[Mapping[str, str]]  # flag → why a recipe may not set it
    diagnosis_rules: ClassVar[tuple[Rule, ...]]  # tried in order (engines/diagnosis.py)

    def launch_spec(
        self,
        recipe: Recipe,
        *,
        model_id: int,
        replica_index: int,
        port: int,
        settings: Settings,
        api_key: str | None = None,
    ) -> LaunchSpec: ...

    async def probe(
        self, client: httpx.AsyncClient, base_url: str, *, served_name: str, api_key: str | None = None
    ) -> Probe: ...

    def diagnose(self, log_text: str) -> Diagnosis | None: ...

    # ---- recipes -----------------------------------------------------------------------
    def shorthand_width(self, args: Sequence[str], index: int) -> int:
        """How many items at `index` of extra_args are an engine shorthand the flag data lacks (0: none)."""
        ...

    def check_recipe(
        self, spec: RecipeSpec, args: EngineArgs, roots: Sequence[Path] | None
    ) -> list[tuple[Loc, str]]:
        """Cross-field problems of this engine's arguments (recipes/semantic.py)."""
        ...

    # ---- validation --------------------------------------------------------------------
    def needed_gpus(self, spec: RecipeSpec) -> int: ...

    def check_model_format(self, spec: RecipeSpec, model: ModelInfo) -> Check:
        """A FAIL stops validation there (the engine cannot read the model at all)."""
        ...

    def estimate(
        self,
        spec: RecipeSpec,
        model: ModelInfo,
        *,
        selected: list[GpuInfo],
        n_selected: int,
        command: list[str] | dict[str, object] | None,
    ) -> tuple[Breakdown, list[Check]]:
        """The memory breakdown and the engine's own checks that come with it."""
        ...

    def check_context(self, spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check: ...

    def check_fits_gpu(
        self, spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]
    ) -> list[Check]: ...


# ---- helpers shared by the adapters --------------------------------------------------


def engine_container_name(engine: str, model_id: int, replica_index: int) -> str:
    base = f"{engine}-model-{model_id}"
    return base if replica_index == 0 else f"{base}-{replica_index}"


def engine_labels(
    *, engine: str, model_id: int, replica_index: int, served_name: str, port: int
) -> dict[str, str]:
    return {
        "cortex.managed": "true",
        "cortex.model-id": str(model_id),
        "cortex.replica": str(replica_index),
        "cortex.engine": engine,
        "cortex.served-name": served_name,
        "cortex.port": str(port),
    }


def engine_log_file(settings: Settings, name: str) -> Path:
    return settings.logs_dir / "engines" / f"{name}.log"


CONTAINER_MODELS_DIR = "/models"
CONTAINER_TEMPLATES_DIR = "/templates"


def build_launch_spec(
    *,
    engine: str,
    default_image: str,
    recipe: Recipe,
    model_id: int,
    replica_index: int,
    port: int,
    settings: Settings,
    argv_prefix: list[str],
    template: str | None,
    engine_args: Callable[..., list[str]],
    env: dict[str, str] | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    projector: str | None = None,
    ipc_host: bool = False,
    missing_binary_fix: str = "Install the engine binary.",
) -> LaunchSpec:
    """The parts every adapter shares: file placement (host paths for the process runtime,
    read-only mounts for containers), name, labels, GPUs, limits and log file.

    `engine_args(model, template)` renders the engine's own flags for one placement
    (`engine_args(model, template, projector)` when the recipe names a projector file,
    e.g. llama.cpp's mmproj, which is found and mounted like the model).
    """
    spec = recipe.spec
    if spec.engine != engine:
        raise EngineError(f"recipe {recipe.name!r} is for engine {spec.engine!r}, not {engine!r}")
    # Checked again here, not only when the recipe was applied: the store's contents (a
    # symlink swapped in) or the configured roots may have changed since.
    roots = store_roots(settings)
    model_path = require_in_store(spec.model.path, roots, param="spec.model.path")
    mounts = [Mount(model_path, f"{CONTAINER_MODELS_DIR}/{model_path.name}")]
    template_host = template_container = None
    if template is not None:
        tpl = require_in_store(template, roots, param="spec.args (chat template file)")
        template_host, template_container = str(tpl), f"{CONTAINER_TEMPLATES_DIR}/{tpl.name}"
        mounts.append(Mount(tpl, template_container))
    projector_host = projector_container = None
    if projector is not None:
        proj = require_in_store(projector, roots, param="spec.args.mmproj")  # confined as the model is
        projector_host, projector_container = str(proj), f"{CONTAINER_MODELS_DIR}/{proj.name}"
        mounts.append(Mount(proj, projector_container))

    def placed(model: str, template: str | None, proj: str | None) -> list[str]:
        return engine_args(model, template) if proj is None else engine_args(model, template, proj)

    env = dict(env or {})
    if api_key is not None:
        if api_key_env is None:
            raise EngineError(f"engine {engine} takes no API key from its environment")
        env[api_key_env] = api_key
    gpus = gpus_of(recipe)
    if isinstance(gpus, tuple):
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    name = engine_container_name(engine, model_id, replica_index)
    return LaunchSpec(
        name=name,
        engine=engine,
        argv=[*argv_prefix, *placed(str(model_path), template_host, projector_host)],
        container_argv=placed(mounts[0].target, template_container, projector_container),
        image=spec.image or default_image,
        env=env,
        host=LOOPBACK,
        port=port,
        mounts=tuple(mounts),
        gpus=gpus,
        memory_limit_bytes=parse_memory(spec.resources.memory),
        labels=engine_labels(
            engine=engine,
            model_id=model_id,
            replica_index=replica_index,
            served_name=spec.served_name,
            port=port,
        ),
        log_file=engine_log_file(settings, name),
        api_key=api_key,
        api_key_env=api_key_env if api_key is not None else None,
        ipc_host=ipc_host,
        missing_binary_fix=missing_binary_fix,
    )


def gpus_of(recipe: Recipe) -> str | tuple[int, ...]:
    g = recipe.spec.gpus
    return g if isinstance(g, str) else tuple(g)


_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}  # fmt: skip


def parse_memory(text: str | None) -> int | None:
    """'8GiB' / '512m' / '1000000' → bytes; RecipeError on nonsense."""
    if text is None:
        return None
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _SIZE_UNITS:
        raise RecipeError(
            f"invalid memory size {text!r}",
            fix="Write it as a number with a unit, e.g. 8GiB, 512MiB or 16G.",
            param="spec.resources.memory",
        )
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


async def get_json(
    client: httpx.AsyncClient, url: str, *, api_key: str | None = None
) -> tuple[int, object | None]:
    """(status, parsed JSON or None); raises httpx.TransportError when nothing answers."""
    resp = await client.get(url, headers=auth_headers(api_key))
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, None


def served_names(models_body: object) -> dict[str, dict[str, object]]:
    """OpenAI `/v1/models` body → {id: entry}."""
    if not isinstance(models_body, dict) or not isinstance(models_body.get("data"), list):
        return {}
    return {str(e.get("id")): e for e in models_body["data"] if isinstance(e, dict)}
