"""`validate(recipe, …)`: inspect the model, estimate memory, run every check.

The same function backs `cortexctl recipe validate`, `POST /admin/models/{id}/validate`
and the supervisor's pre-start check. Nothing here raises on bad input: problems come
back as FAIL checks with a fix; `ValidationReport.require_ok()` turns them into an error
for callers that must refuse a start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cortexctl.core.errors import CortexError, RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.paths import confine, outside_message, store_roots
from cortexctl.recipes.schema import Recipe
from cortexctl.validation.breakdown import Breakdown
from cortexctl.validation.checks import (
    Check,
    Status,
    UsedGpus,
    check_fits,
    check_gpus_exist,
    check_gpus_not_used,
    check_image,
    check_model_file,
    check_placement,
    check_port,
    fail,
    gpus_per_replica,
    selected_indices,
    warn,
)
from cortexctl.validation.gpus import (
    GpuInfo,
    HostMemory,
    detect_gpus,
    host_memory,
    parse_gpu_selection,
    pretend_gpus,
)
from cortexctl.validation.inspect import inspect_model
from cortexctl.validation.modelinfo import ModelInfo, ModelInspectionError

log = logging.getLogger(__name__)


class ValidationFailed(RecipeError):
    default_code = "validation_failed"


@dataclass
class ValidationReport:
    recipe: str
    engine: str
    model_path: str
    model: ModelInfo | None
    gpus: list[GpuInfo]
    pretend_gpus: bool
    breakdown: Breakdown | None
    checks: list[Check] = field(default_factory=list)
    command: list[str] | dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(c.status != Status.FAIL for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == Status.FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "engine": self.engine,
            "ok": self.ok,
            "model_path": self.model_path,
            "model": self.model.to_dict() if self.model else None,
            "gpus": [g.to_dict() for g in self.gpus],
            "pretend_gpus": self.pretend_gpus,
            "breakdown": self.breakdown.to_dict() if self.breakdown else None,
            "checks": [c.to_dict() for c in self.checks],
            "command": self.command,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def require_ok(self) -> None:
        """Raise ValidationFailed (with the whole report in details) if any check failed."""
        if self.ok:
            return
        first = self.failures[0]
        more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        raise ValidationFailed(
            f"Recipe {self.recipe} failed validation: {first.name}: {first.detail}{more}",
            fix=(first.fix or "")
            + " Run `cortexctl recipe validate` for the full report, or start with --force.",
            details=self.to_dict(),
        )


def _needed_gpus(recipe: Recipe) -> int:
    spec = recipe.spec
    if isinstance(spec.gpus, list):
        return max(spec.gpus, default=-1) + 1
    return get_engine(spec.engine).needed_gpus(spec) * (spec.replicas if gpus_per_replica(spec) else 1)


def resolve_gpus(
    recipe: Recipe, *, gpus: list[GpuInfo] | None, gpu_profile: str | None, vram: str | None
) -> tuple[list[GpuInfo], bool]:
    if gpu_profile or vram:
        return pretend_gpus(profile=gpu_profile, vram=vram, count=max(1, _needed_gpus(recipe))), True
    return (detect_gpus() if gpus is None else gpus), False


def validate(
    recipe: Recipe,
    *,
    settings: Settings,
    gpus: list[GpuInfo] | None = None,
    select_gpus: str | None = None,
    gpu_profile: str | None = None,
    vram: str | None = None,
    used_gpus: UsedGpus | None = None,
    replica_index: int | None = None,
    command: list[str] | dict[str, Any] | None = None,
    port: int | None = None,
    runtime: str | None = None,
    images: Iterable[str] | None = None,
    verify_sha256: bool = True,
    host: HostMemory | None = None,
) -> ValidationReport:
    """Validate `recipe` for this host (or pretend hardware).

    gpus: the GPUs to plan for (default: NVML); select_gpus: `--gpus` override of spec.gpus;
    gpu_profile / vram: pretend hardware; used_gpus: GPU index → the running model that holds
    it, or the tenants sharing it (the supervisor's view, checks.UsedGpus); replica_index: check
    only that replica's GPUs (the supervisor starting one replica); command: the dry-run
    argv/container spec (for llama-server argv the estimate reads its flags); port: the engine port to check;
    runtime + images: check the engine image is present for the docker runtime.
    Never raises for bad model input; raises InvalidRequest for a bad --gpu-profile,
    --vram or --gpus value.
    """
    if select_gpus is not None:  # `--gpus 0,1` overrides the recipe's spec.gpus
        spec_over = recipe.spec.model_copy(update={"gpus": parse_gpu_selection(select_gpus)})
        recipe = recipe.model_copy(update={"spec": spec_over})
    spec = recipe.spec
    endpoint_checks = getattr(get_engine(spec.engine), "endpoint_checks", None)
    if endpoint_checks is not None:  # an endpoint elsewhere (engines/remote): no file, no local memory
        return ValidationReport(
            recipe=recipe.name,
            engine=spec.engine,
            model_path="",
            model=None,
            gpus=[],
            pretend_gpus=False,
            breakdown=None,
            checks=endpoint_checks(spec, settings),
            command=command,
        )
    roots = store_roots(settings)
    confined = confine(spec.model.path, roots)
    path = confined if confined is not None else spec.model.resolve(settings.models_dir)
    gpu_list, pretend = resolve_gpus(recipe, gpus=gpus, gpu_profile=gpu_profile, vram=vram)
    report = ValidationReport(
        recipe=recipe.name,
        engine=spec.engine,
        model_path=str(path),
        model=None,
        gpus=gpu_list,
        pretend_gpus=pretend,
        breakdown=None,
        command=command,
    )
    checks = report.checks
    if confined is None:  # never opened, never stat'ed: the answer must not depend on the host's files
        checks.append(fail("model_file", outside_message(spec.model.path, roots), "Fix spec.model.path."))
        return report
    checks.append(check_model_file(path, spec.model.sha256, verify=verify_sha256))
    checks.append(check_gpus_exist(spec, gpu_list))
    checks.extend(check_placement(spec))
    checks.append(
        check_gpus_not_used(
            spec, gpu_list, dict(used_gpus or {}), replica_index=replica_index, name_of_model=recipe.name
        )
    )
    for extra in (check_port(port), check_image(spec, runtime, images)):
        if extra is not None:
            checks.append(extra)

    model: ModelInfo | None = None
    if path.exists():
        try:
            model = inspect_model(path)
        except ModelInspectionError as exc:
            checks.append(fail("model_readable", exc.message, exc.fix or "Check spec.model.path."))
    report.model = model
    if model is None:
        return report

    engine = get_engine(spec.engine)
    format_check = engine.check_model_format(spec, model)
    checks.append(format_check)
    if format_check.status == Status.FAIL:  # the engine cannot read this model at all
        return report
    known = {g.index for g in gpu_list}
    selected = [g for g in gpu_list if g.index in selected_indices(spec, gpu_list) and g.index in known]
    try:
        breakdown, engine_checks = engine.estimate(
            spec,
            model,
            selected=selected,
            # GPUs one replica sees (placement splits the list; a short list is check_placement's FAIL)
            n_selected=len(selected_indices(spec, gpu_list)) // max(1, spec.replicas)
            if gpus_per_replica(spec)
            else len(selected_indices(spec, gpu_list)),
            command=command,
        )
        checks.extend(engine_checks)
    except (CortexError, KeyError, ValueError, ZeroDivisionError) as exc:
        # Metadata we could read but not use (an exotic architecture): say so, don't crash.
        log.warning("estimate failed for %s: %s", path, exc)
        checks.append(
            fail(
                "estimate",
                f"cannot estimate memory for {model.architecture}: {exc}",
                "Report this model's metadata to the CORTEX maintainers; start with --force meanwhile.",
            )
        )
        return report
    report.breakdown = breakdown
    if guessed := breakdown.facts.get("guessed"):
        checks.append(
            warn(
                "estimate",
                "estimate: approximate; guessed: " + "; ".join(guessed),
                "Leave headroom beyond the estimate, or check the engine's own buffer log at first start.",
            )
        )
    checks.append(engine.check_context(spec, model, breakdown))
    checks.extend(check_fits(spec, breakdown, gpu_list, host or host_memory()))
    return report
