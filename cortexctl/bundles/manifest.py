"""The bundle manifest (bundles/FORMAT.md): model, parsing and the safety checks on names.

Everything a bundle may install is decided here, before a byte of item data is read:
paths are plain relative names (no `..`, no absolute paths, no backslashes), every
item has one kind, one unique path and one unique destination.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import sysconfig
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cortexctl.bundles import tarstream
from cortexctl.bundles.errors import refused

# The format's constants, re-exported (`X as X`: explicit for type checkers).
from cortexctl.bundles.tarstream import FORMAT_VERSION as FORMAT_VERSION
from cortexctl.bundles.tarstream import MANIFEST_NAME as MANIFEST_NAME
from cortexctl.bundles.tarstream import MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES
from cortexctl.bundles.tarstream import MAX_SIGNATURE_BYTES as MAX_SIGNATURE_BYTES
from cortexctl.bundles.tarstream import SIGNATURE_NAME as SIGNATURE_NAME

FORMAT: Literal["cortex-bundle"] = "cortex-bundle"

Kind = Literal["image", "model", "recipe", "wheelhouse", "engine-binary"]
KINDS: tuple[str, ...] = ("image", "model", "recipe", "wheelhouse", "engine-binary")
MAX_RECIPE_BYTES = 1024 * 1024  # a recipe is read whole to be validated: a few KiB of YAML in practice
# Kinds whose bytes only run on the platform they were built for.
PLATFORM_BOUND: frozenset[str] = frozenset({"wheelhouse", "engine-binary"})

# Names are checked with fullmatch: `$` would let a trailing newline through.
_IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?")
_ENGINE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}/[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetPlatform(_Strict):
    python_tag: str = Field(description="e.g. cp311")
    platform: str = Field(description="sysconfig platform, e.g. linux-x86_64")
    machine: str = Field(description="CPU architecture, e.g. x86_64")

    @classmethod
    def current(cls) -> TargetPlatform:
        tag = f"{sys.implementation.name[:2]}{sys.version_info.major}{sys.version_info.minor}"
        return cls(python_tag=tag, platform=sysconfig.get_platform(), machine=platform.machine())


class Item(_Strict):
    kind: Kind
    name: str = Field(min_length=1, max_length=512)
    path: str = Field(min_length=1, max_length=1024, description="tar entry name inside the bundle")
    size: int = Field(ge=0)
    sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name!r} ({self.path})"


class Distribution(_Strict):
    """One distribution the wheelhouse holds, as its own metadata names it (bundles/FORMAT.md)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,199}$", description="PEP 503 normalized")]
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.!+]{1,100}$", description="as in the file name")]


class Manifest(_Strict):
    format: Literal["cortex-bundle"] = FORMAT
    format_version: Literal[1, 2] = FORMAT_VERSION
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")]
    description: str = ""
    created_at: datetime
    created_by: str = Field(max_length=256)
    cortex_version: str = Field(max_length=64)
    platform: TargetPlatform
    items: list[Item]
    # Version 2: the signed list the wheelhouse must match (None only in version 1 manifests).
    distributions: list[Distribution] | None = None

    @property
    def total_size(self) -> int:
        return sum(i.size for i in self.items)

    def to_bytes(self) -> bytes:
        # Canonical JSON: the signature and the bundle id are over these exact bytes.
        body = self.model_dump(mode="json", exclude_none=True)
        return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"


def bundle_id(manifest_bytes: bytes) -> str:
    """A bundle's identity: the sha256 of its manifest (which pins every item's sha256)."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check a manifest; raise BundleError naming the first problem.

    The bounded JSON checks (size, nesting, format version, item count) are the ones the
    bootstrap runs too (tarstream.load_manifest_json); the typed model comes after them.
    """
    try:
        raw = tarstream.load_manifest_json(data)
    except tarstream.Refused as exc:
        fix = None
        if "format version" in exc.problem:
            fix = "Use a cortexctl that supports this format version, or re-export the bundle with this one."
        raise refused(exc.what, exc.problem, fix=fix) from None
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise refused(MANIFEST_NAME, f"{where}: {err['msg']}") from None
    check_items(manifest.items)
    return manifest


def check_items(items: list[Item]) -> None:
    """Names and paths safe, unique, and destinations that cannot collide."""
    paths: set[str] = set()
    targets: set[tuple[str, str]] = set()
    for item in items:
        check_relative_path(item.path, what=f"{item.kind} {item.name!r}: path")
        if item.path in (MANIFEST_NAME, SIGNATURE_NAME):
            raise refused(item.label, "path collides with the manifest")
        check_name(item.kind, item.name)
        if item.kind == "recipe" and item.size > MAX_RECIPE_BYTES:
            raise refused(item.label, f"{item.size} bytes; a recipe may have at most {MAX_RECIPE_BYTES}")
        if item.path in paths:
            raise refused(item.label, "duplicate path in the manifest")
        key = (item.kind, item.name.lower())
        if key in targets:
            raise refused(item.label, "duplicate item name in the manifest")
        paths.add(item.path)
        targets.add(key)
    try:
        tarstream.check_wheelhouse([i.name for i in items if i.kind == "wheelhouse"])
    except tarstream.Refused as exc:
        raise refused(exc.what, exc.problem) from None
    # A model file may not sit where another model needs a folder ('a' and 'a/b').
    models = {i.name for i in items if i.kind == "model"}
    for name in models:
        parts = name.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in models:
                raise refused(
                    f"model {name!r}", f"conflicts with model {'/'.join(parts[:n])!r} (a file, not a folder)"
                )


def check_relative_path(path: str, *, what: str) -> None:
    try:
        tarstream.check_relative_path(path, what=what)
    except tarstream.Refused as exc:
        raise refused(exc.what, exc.problem) from None


def check_name(kind: str, name: str) -> None:
    what = f"{kind} {name!r}"
    if kind == "image":
        if not _IMAGE_REF.fullmatch(name) or ".." in name or "//" in name:
            raise refused(what, "not a plain image reference like 'repo/name:tag'")
    elif kind == "engine-binary":
        if not _ENGINE_NAME.fullmatch(name):
            raise refused(what, "engine binaries are named '<tool>/<version>', e.g. 'llama-server/0.3.36'")
    elif kind == "model":
        check_relative_path(name, what=what)
    else:  # recipe, wheelhouse: one file name
        check_relative_path(name, what=what)
        if "/" in name:
            raise refused(what, "must be a single file name")
        if kind == "recipe" and not name.endswith((".yaml", ".yml")):
            raise refused(what, "recipe names end in .yaml or .yml")
        if kind == "wheelhouse":
            try:
                tarstream.distribution_of(name)
            except tarstream.Refused as exc:
                raise refused(exc.what, exc.problem) from None


def item_path(kind: str, name: str) -> str:
    """The canonical entry name for an item, as the exporter writes it."""
    if kind == "image":
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return f"images/{safe}.tar"
    return {"model": "models", "recipe": "recipes", "wheelhouse": "wheelhouse", "engine-binary": "engines"}[
        kind
    ] + f"/{name}"
