"""Preflight: the exact command a start would run (dry-run) plus every validation check.

One function behind `cortexctl recipe validate`, `POST /admin/models/{name}/validate`
and the supervisor's check before a start, so all three say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.schema import Recipe
from cortexctl.validation import ValidationReport, validate


def resolved_runtime(recipe: Recipe, settings: Settings) -> str:
    """The runtime a start would use: explicit, or for `auto` what choose_runtime would pick."""
    kind = recipe.spec.runtime or settings.runtime
    if kind != "auto":
        return kind
    from cortexctl.runtimes.base import choose_runtime

    return choose_runtime(settings, recipe).name


def dry_run_command(spec: LaunchSpec, runtime: str) -> list[str] | dict[str, Any]:
    """The process argv, or the container spec (image + `containers.run` arguments)."""
    if runtime == "docker":
        from cortexctl.runtimes.docker import container_kwargs

        return {"image": spec.image, **container_kwargs(spec)}
    return list(spec.argv)


def preflight(
    recipe: Recipe,
    *,
    settings: Settings,
    model_id: int = 0,
    port: int | None = None,
    runtime: str | None = None,
    used_gpus: Mapping[int, str] | None = None,
    select_gpus: str | None = None,
    gpu_profile: str | None = None,
    vram: str | None = None,
    verify_sha256: bool = True,
) -> ValidationReport:
    runtime = runtime or resolved_runtime(recipe, settings)
    engine_port = port or settings.engine_port_range[0]
    spec = get_engine(recipe.spec.engine).launch_spec(
        recipe, model_id=model_id, replica_index=0, port=engine_port, settings=settings
    )
    images = None
    if runtime == "docker":
        from cortexctl.runtimes.docker import DockerRuntime

        docker = DockerRuntime(settings=settings)
        images = (
            [spec.image] if spec.image and docker.available() and docker.image_present(spec.image) else []
        )
    return validate(
        recipe,
        settings=settings,
        select_gpus=select_gpus,
        gpu_profile=gpu_profile,
        vram=vram,
        used_gpus=used_gpus,
        command=dry_run_command(spec, runtime),
        port=port,
        runtime=runtime,
        images=images,
        verify_sha256=verify_sha256,
    )
