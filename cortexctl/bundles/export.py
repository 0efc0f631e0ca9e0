"""`bundle export DEF.yaml -o FILE`: gather the sources, hash them, write the bundle.

Producers that must create files (docker save, model assembly, pip wheel) write into a
work directory next to the output; the bundle is written to a temporary name and renamed
into place only when complete, so a failed export never leaves a partial FILE.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cortexctl import __version__
from cortexctl.bundles import images as image_ops
from cortexctl.bundles import tarstream, wheelfiles
from cortexctl.bundles.container import CHUNK, BundleWriter
from cortexctl.bundles.definition import BundleDefinition, load_definition
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.manifest import (
    Distribution,
    Item,
    Kind,
    Manifest,
    TargetPlatform,
    bundle_id,
    check_items,
    item_path,
)
from cortexctl.bundles.progress import NullProgress, Progress
from cortexctl.bundles.recipes_adapter import load_recipe
from cortexctl.bundles.signing import load_private_key, sign

log = logging.getLogger(__name__)

WHEEL_SUFFIXES = (".whl", ".tar.gz", ".zip")


@dataclass(frozen=True)
class Source:
    kind: Kind
    name: str
    file: Path


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: Manifest
    bundle_id: str
    size: int
    signed_by: str | None


def sha256_file(path: Path, progress: Progress) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            progress.advance(len(chunk))
    return digest.hexdigest()


def export_bundle(
    definition_path: Path,
    *,
    output: Path,
    engine_cache_dir: Path,
    compression: str = "zstd",
    level: int = 3,
    sign_key: Path | None = None,
    docker_factory: image_ops.DockerFactory | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    progress = progress or NullProgress()
    definition = load_definition(definition_path)
    key = load_private_key(sign_key) if sign_key else None
    base = definition_path.resolve().parent
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cortex-export-", dir=output.parent))
    try:
        sources = gather(
            definition,
            base=base,
            work=work,
            engine_cache_dir=engine_cache_dir,
            docker_factory=docker_factory,
            progress=progress,
        )
        total = sum(s.file.stat().st_size for s in sources)
        progress.start("hashing sources", total)
        items = [
            Item(
                kind=s.kind,
                name=s.name,
                path=item_path(s.kind, s.name),
                size=s.file.stat().st_size,
                sha256=sha256_file(s.file, progress),
            )
            for s in sources
        ]
        progress.finish()
        check_items(items)
        check_recipe_pins(sources, items)
        manifest = Manifest(
            name=definition.metadata.name,
            description=definition.metadata.description,
            created_at=datetime.now(UTC).replace(microsecond=0),
            created_by=f"{getpass.getuser()}@{socket.gethostname()}",
            cortex_version=__version__,
            platform=TargetPlatform.current(),
            items=items,
            distributions=distributions(sources),
        )
        manifest_bytes = manifest.to_bytes()
        signature = sign(manifest_bytes, key) if key else None
        tmp = work / "bundle.partial"
        with tmp.open("wb") as fh:
            writer = BundleWriter(fh, compression=compression, level=level)
            writer.write_head(manifest_bytes, signature, mtime=int(manifest.created_at.timestamp()))
            progress.start(f"writing {output.name}", total)
            for source, item in zip(sources, items, strict=True):
                writer.write_item(item, source.file, progress)
            writer.close()
            progress.finish()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(
        output,
        manifest,
        bundle_id(manifest_bytes),
        output.stat().st_size,
        signature.key_id if signature else None,
    )


def gather(
    definition: BundleDefinition,
    *,
    base: Path,
    work: Path,
    engine_cache_dir: Path,
    docker_factory: image_ops.DockerFactory | None,
    progress: Progress,
) -> list[Source]:
    spec = definition.spec
    sources: list[Source] = []
    for rel in spec.recipes:
        path = _existing(base / rel, f"spec.recipes: {rel}")
        load_recipe(path)  # refuse to ship a recipe that does not validate
        sources.append(Source("recipe", path.name, path))
    for model in spec.models:
        sources += _model_sources(model.name, model.path, model.python, base=base, work=work)
    if spec.images:
        client = image_ops.connect(docker_factory, why="the definition lists images")
        (work / "images").mkdir()
        for name in spec.images:
            dest = work / "images" / item_path("image", name).rsplit("/", 1)[-1]
            progress.start(f"docker save {name}", 0)
            image_ops.save_image(client, name, dest, progress)
            progress.finish()
            sources.append(Source("image", name, dest))
    if spec.wheelhouse is not None:
        wheel_dir = _wheelhouse(spec.wheelhouse, base=base, work=work)
        for whl in sorted(wheel_dir.iterdir()):
            if whl.is_file() and whl.name.endswith(WHEEL_SUFFIXES):
                sources.append(Source("wheelhouse", whl.name, whl))
    for engine in spec.engine_binaries:
        default = engine_cache_dir / engine.name / engine.version / "bin" / engine.name
        path = _existing(base / engine.path if engine.path else default, f"engine binary {engine.name}")
        if not os.access(path, os.X_OK):
            raise BundleError(f"engine binary {path} is not executable", fix="Rebuild it, then export again.")
        sources.append(Source("engine-binary", f"{engine.name}/{engine.version}", path))
    return sources


def distributions(sources: list[Source]) -> list[Distribution]:
    """The signed list: each wheelhouse file's distribution, read from its own metadata."""
    out = []
    for source in sources:
        if source.kind != "wheelhouse":
            continue
        try:
            name, version = wheelfiles.check_file(source.file, source.name, tarstream)
        except (wheelfiles.WheelFileError, tarstream.Refused) as exc:
            raise BundleError(
                f"wheelhouse file {source.file}: {exc}",
                fix="Rebuild the wheelhouse (pip wheel / pip download), then export again.",
            ) from None
        out.append(Distribution(name=name, version=version))
    return sorted(out, key=lambda d: d.name)


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise BundleError(f"{what}: {path} does not exist", fix="Fix the path in the bundle definition.")
    return path.resolve()


def _model_sources(
    name: str, path: str | None, python: str | None, *, base: Path, work: Path
) -> list[Source]:
    if python is not None:
        module_name, _, func_name = python.partition(":")
        try:
            func = getattr(importlib.import_module(module_name), func_name or "assemble")
        except (ImportError, AttributeError) as exc:
            raise BundleError(
                f"model {name}: cannot load {python}: {exc}",
                fix=f"Install the package that provides {module_name} (pip install …) on the exporting host.",
            ) from None
        dest = work / "models" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        log.info("assembling model %s with %s", name, python)
        func(dest)
        return [Source("model", name, _existing(dest, f"model {name} (from {python})"))]
    src = _existing(base / str(path), f"model {name}")
    if src.is_file():
        return [Source("model", name, src)]
    # An HF-style folder: every regular, non-hidden file, each its own item.
    files = sorted(
        p for p in src.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts[-1:])
    )
    if not files:
        raise BundleError(f"model {name}: folder {src} holds no files", fix="Point path at the model folder.")
    return [Source("model", f"{name}/{p.relative_to(src).as_posix()}", p) for p in files]


def _wheelhouse(spec: object, *, base: Path, work: Path) -> Path:
    from cortexctl.bundles.definition import WheelhouseSpec

    assert isinstance(spec, WheelhouseSpec)
    if spec.dir is not None:
        return _existing(base / spec.dir, "spec.wheelhouse.dir")
    out = work / "wheelhouse"
    out.mkdir()
    targets = (
        [str(_existing(base / spec.project, "spec.wheelhouse.project"))] if spec.project else []
    ) + list(spec.requirements)
    if targets:
        _pip(["wheel", "--wheel-dir", str(out), *targets])
    if spec.sdists:
        _pip(["download", "--no-deps", "--no-binary", ":all:", "--dest", str(out), *spec.sdists])
    return out


def _pip(args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise BundleError(
            f"building the wheelhouse failed: pip {args[0]} exited {proc.returncode}:\n{tail}",
            fix="Check that the package index is reachable from the exporting host, then export again.",
        )


def check_recipe_pins(sources: list[Source], items: list[Item]) -> None:
    """A recipe whose model is bundled and pinned by sha256 must match the bundled bytes."""
    models = {i.name: i for i in items if i.kind == "model"}
    for source in sources:
        if source.kind != "recipe":
            continue
        recipe = load_recipe(source.file)
        model = recipe.spec.model
        bundled = models.get(model.path)
        if bundled is not None and model.sha256 and model.sha256 != bundled.sha256:
            raise BundleError(
                f"recipe {source.name}: spec.model.sha256 {model.sha256} does not match the bundled model "
                f"{model.path} ({bundled.sha256})",
                fix="Update the recipe's sha256 or bundle the model it was written for.",
            )
