"""The remote engine: an endpoint that already runs, probed, routed, metered and limited
like a local replica, with no process launched (runtime.py) and no local memory to fit.

Ready = `GET {url}/v1/models` answers 200 with a model list, sent with the key file's key.
Anything else is "loading" with the reason (the endpoint is someone else's process: nothing
here can restart it, so the replica waits out of rotation and `model show` says why).
The key travels as the replica's engine key, so the gateway sends it as `Authorization:
Bearer` on every proxied request, exactly as it sends a local engine its per-launch key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import httpx

from cortexctl.core.errors import EngineError, RecipeError
from cortexctl.core.settings import Settings
from cortexctl.core.yamldoc import Loc
from cortexctl.engines import diagnosis
from cortexctl.engines.base import (
    Diagnosis,
    LaunchSpec,
    Probe,
    ProbeState,
    engine_container_name,
    engine_labels,
    engine_log_file,
    get_json,
    served_names,
)
from cortexctl.engines.remote.args import RemoteArgs
from cortexctl.engines.remote.endpoint import base_url, read_key, require_allowed
from cortexctl.engines.remote.runtime import URL_LABEL, RemoteRuntime
from cortexctl.recipes.schema import NO_MODEL_FILE, EngineArgs, Recipe, RecipeSpec
from cortexctl.validation.breakdown import Breakdown
from cortexctl.validation.checks import Check, fail, ok
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo

NO_LOCAL_MEMORY = "remote: no local memory"


def remote_args(spec: RecipeSpec) -> RemoteArgs:
    args = spec.engine_args()
    if not isinstance(args, RemoteArgs):
        raise EngineError(f"engine {spec.engine!r} is not the remote engine")
    return args


class RemoteEngine:
    name: ClassVar[str] = "remote"
    display_name: ClassVar[str] = "remote endpoint"
    version: ClassVar[str] = "1"
    program: ClassVar[str] = "(none: an endpoint that already runs)"
    default_image: ClassVar[str] = ""
    metrics_path: ClassVar[str] = ""  # another host's metrics are not ours to scrape
    api_key_env: ClassVar[str] = ""
    client_errors: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    args_model: ClassVar[type[EngineArgs]] = RemoteArgs
    needs_gpu: ClassVar[bool] = False
    needs_model_file: ClassVar[bool] = False  # recipes name the endpoint, not a file
    runtime: ClassVar[type[RemoteRuntime]] = RemoteRuntime  # runtimes/base.choose_runtime uses it
    flags_dir: ClassVar[Path] = Path(__file__).resolve().parent / "data"
    typed_flags: ClassVar[Mapping[str, str]] = {}
    cortex_flags: ClassVar[Mapping[str, str]] = {}
    allowed: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    refused: ClassVar[Mapping[str, str]] = {}
    diagnosis_rules: ClassVar[tuple[diagnosis.Rule, ...]] = ()

    def launch_spec(
        self,
        recipe: Recipe,
        *,
        model_id: int,
        replica_index: int,
        port: int,
        settings: Settings,
        api_key: str | None = None,  # a local engine's fresh key; an endpoint has its own (key_file)
    ) -> LaunchSpec:
        args = remote_args(recipe.spec)
        require_allowed(args.url, settings.remote_engine_hosts)  # checked again at each start
        key = read_key(settings.home, args.key_file) if args.key_file else None
        url = base_url(args.url)
        parts = urlsplit(url)
        name = engine_container_name(self.name, model_id, replica_index)
        endpoint_port = parts.port or (443 if parts.scheme == "https" else 80)
        labels = engine_labels(
            engine=self.name,
            model_id=model_id,
            replica_index=replica_index,
            served_name=recipe.spec.served_name,
            port=endpoint_port,
        )
        return LaunchSpec(
            name=name,
            engine=self.name,
            argv=[],
            container_argv=[],
            image=None,
            env={},
            host=parts.hostname or "",
            port=endpoint_port,
            mounts=(),
            gpus="none",
            memory_limit_bytes=None,
            labels={**labels, URL_LABEL: url},
            log_file=engine_log_file(settings, name),
            api_key=key,
        )

    async def probe(
        self, client: httpx.AsyncClient, base_url: str, *, served_name: str, api_key: str | None = None
    ) -> Probe:
        try:
            status, body = await get_json(client, f"{base_url}/v1/models", api_key=api_key)
        except httpx.TransportError as exc:
            return Probe(ProbeState.LOADING, f"endpoint not answering: {type(exc).__name__}")
        if status in (401, 403):
            return Probe(ProbeState.LOADING, f"endpoint refused the key ({status}): check spec.args.key_file")
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return Probe(ProbeState.LOADING, f"endpoint's /v1/models answered {status} without a model list")
        entry = served_names(body).get(served_name, {})
        mml = entry.get("max_model_len")
        return Probe(ProbeState.READY, "ready", max_model_len=mml if isinstance(mml, int) else None)

    def diagnose(self, log_text: str) -> Diagnosis | None:
        return None  # no log here: the probe's detail says what is wrong

    # ---- recipes -----------------------------------------------------------------------
    def shorthand_width(self, args: Sequence[str], index: int) -> int:
        return 0

    def check_recipe(
        self, spec: RecipeSpec, args: EngineArgs, roots: Sequence[Path] | None
    ) -> list[tuple[Loc, str]]:
        out: list[tuple[Loc, str]] = []
        if spec.model.path != NO_MODEL_FILE:
            out.append(
                (("spec", "model"), "a remote endpoint reads no model file: remove spec.model "
                 "(name the endpoint's model in spec.args.model)")
            )  # fmt: skip
        if spec.gpus != "none":
            out.append((("spec", "gpus"), "a remote endpoint uses no local GPU: write gpus: none"))
        if spec.replicas != 1:
            out.append(
                (("spec", "replicas"), "a remote endpoint is one replica: write one recipe per endpoint "
                 "with the same served_name to pool them")
            )  # fmt: skip
        return out

    # ---- validation --------------------------------------------------------------------
    def endpoint_checks(self, spec: RecipeSpec, settings: Settings) -> list[Check]:
        """The whole validation of a remote recipe (validation/report.py asks for it instead of
        inspecting a model): host allowed, key file usable, and nothing to fit locally."""
        args = remote_args(spec)
        checks: list[Check] = []
        try:
            require_allowed(args.url, settings.remote_engine_hosts)
            checks.append(ok("endpoint", f"{base_url(args.url)} (host allowed)"))
        except RecipeError as exc:
            checks.append(fail("endpoint", exc.message, exc.fix or ""))
        if args.key_file is not None:
            try:
                read_key(settings.home, args.key_file)
                checks.append(ok("key_file", f"{args.key_file}: usable (mode 0600, one line)"))
            except RecipeError as exc:
                checks.append(fail("key_file", exc.message, exc.fix or ""))
        checks.append(ok("fit", NO_LOCAL_MEMORY))
        return checks

    def needed_gpus(self, spec: RecipeSpec) -> int:
        return 0

    def check_model_format(self, spec: RecipeSpec, model: ModelInfo) -> Check:
        return ok("model_format", "remote: the endpoint serves its own model")

    def estimate(
        self,
        spec: RecipeSpec,
        model: ModelInfo,
        *,
        selected: list[GpuInfo],
        n_selected: int,
        command: list[str] | dict[str, object] | None,
    ) -> tuple[Breakdown, list[Check]]:
        return Breakdown(engine=self.name, components=(), notes=(NO_LOCAL_MEMORY,)), []

    def check_context(self, spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
        return ok("context_length", "remote: the endpoint decides")

    def check_fits_gpu(self, spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
        return [ok("fit", NO_LOCAL_MEMORY)]
