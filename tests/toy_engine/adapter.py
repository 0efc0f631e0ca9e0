"""The toy engine's adapter: every part of `cortexctl.engines.base.Engine`, as small as it gets."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import httpx

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
from cortexctl.recipes.schema import EngineArgs, Recipe, RecipeSpec
from cortexctl.validation.breakdown import Breakdown, Component
from cortexctl.validation.checks import Check, fail, ok
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo
from tests.toy_engine.args import ToyArgs

PROGRAM = Path(__file__).resolve().parents[1] / "doubles" / "vllm_test_double.py"
TOY_RULES = (
    diagnosis.rule(
        "model-file-missing",
        r"Invalid repository ID or local directory specified",
        "The toy server found no model folder.",
        "Point spec.model.path at a folder.",
    ),
    diagnosis.PORT_IN_USE,
)


class ToyEngine:
    name: ClassVar[str] = "toy"
    display_name: ClassVar[str] = "Toy"
    version: ClassVar[str] = "1.0"
    program: ClassVar[str] = "toy-server"
    default_image: ClassVar[str] = "cortex/toy:1.0"
    metrics_path: ClassVar[str] = "/metrics"
    api_key_env: ClassVar[str] = "VLLM_API_KEY"  # what the double reads
    client_errors: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    args_model: ClassVar[type[EngineArgs]] = ToyArgs
    needs_gpu: ClassVar[bool] = False
    flags_dir: ClassVar[Path] = Path(__file__).resolve().parent / "data"
    typed_flags: ClassVar[Mapping[str, str]] = {"--max-model-len": "max_model_len"}
    cortex_flags: ClassVar[Mapping[str, str]] = {
        "--host": "CORTEX sets this",
        "--port": "CORTEX sets this",
        "--served-model-name": "CORTEX sets this from spec.served_name",
    }
    allowed: ClassVar[Mapping[str, tuple[str, ...]]] = {"sampling": ("--seed",)}
    refused: ClassVar[Mapping[str, str]] = {"--log-file": "the daemon manages engine logs"}
    diagnosis_rules: ClassVar[tuple[diagnosis.Rule, ...]] = TOY_RULES

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
        assert isinstance(args, ToyArgs)

        def argv(model: str, template: str | None) -> list[str]:
            out = [
                model,
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--served-model-name",
                recipe.spec.served_name,
            ]
            if args.max_model_len is not None:
                out += ["--max-model-len", str(args.max_model_len)]
            return out + list(args.extra_args)

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
            argv_prefix=[sys.executable, str(PROGRAM)],
            template=None,
            engine_args=argv,
            env={"VLLM_TEST_DOUBLE_LOAD_S": "0"},
            missing_binary_fix="The toy server is tests/doubles/vllm_test_double.py.",
        )

    async def probe(
        self, client: httpx.AsyncClient, base_url: str, *, served_name: str, api_key: str | None = None
    ) -> Probe:
        try:
            status, models = await get_json(client, f"{base_url}/v1/models", api_key=api_key)
        except httpx.TransportError as exc:
            return Probe(ProbeState.DOWN, f"not answering: {type(exc).__name__}")
        listed = served_names(models)
        if status != 200 or served_name not in listed:
            return Probe(ProbeState.LOADING, f"/v1/models answered {status}")
        mml = listed[served_name].get("max_model_len")
        return Probe(ProbeState.READY, "ready", max_model_len=mml if isinstance(mml, int) else None)

    def diagnose(self, log_text: str) -> Diagnosis | None:
        return diagnosis.diagnose(log_text, self.diagnosis_rules)

    def shorthand_width(self, args: Sequence[str], index: int) -> int:
        return 0

    def check_recipe(
        self, spec: RecipeSpec, args: EngineArgs, roots: Sequence[Path] | None
    ) -> list[tuple[Loc, str]]:
        assert isinstance(args, ToyArgs)
        if args.max_model_len is not None and args.max_model_len % 16:
            return [(("spec", "args", "max_model_len"), "the toy server wants a multiple of 16")]
        return []

    def needed_gpus(self, spec: RecipeSpec) -> int:
        return 0

    def check_model_format(self, spec: RecipeSpec, model: ModelInfo) -> Check:
        if model.format == "gguf":
            return fail("model_format", "the toy server reads HF folders only", "Use an HF folder.")
        return ok("model_format", f"{model.format} {model.architecture}")

    def estimate(
        self,
        spec: RecipeSpec,
        model: ModelInfo,
        *,
        selected: list[GpuInfo],
        n_selected: int,
        command: list[str] | dict[str, object] | None,
    ) -> tuple[Breakdown, list[Check]]:
        weights = Component("weights", model.weight_bytes, "host", "the whole checkpoint, in RAM")
        return Breakdown(engine=self.name, components=(weights,)), [ok("toy", "the toy engine checked this")]

    def check_context(self, spec: RecipeSpec, model: ModelInfo, breakdown: Breakdown) -> Check:
        return ok("context_length", "the toy server takes any context")

    def check_fits_gpu(self, spec: RecipeSpec, breakdown: Breakdown, selected: list[GpuInfo]) -> list[Check]:
        return []
