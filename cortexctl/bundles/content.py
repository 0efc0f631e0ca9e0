"""What a bundle may install, judged like content from an operator — a signature proves origin, not safety.

Why: signed and `--allow-unsigned` bundles used to install recipes with shell tools and
model paths outside the store, wheels that shadow CORTEX's own dependencies, engine
binaries replacing the cached `llama-server`, and models silently overwriting a
different file that another recipe pins. Each rule below is checked before a byte is
moved into place (the file checks before staging, the recipe checks on the staged
bytes), and each refusal names the item and the way out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cortexctl.bundles import tarstream, wheelfiles
from cortexctl.bundles.errors import refused
from cortexctl.bundles.manifest import Item
from cortexctl.bundles.signing import SignatureStatus
from cortexctl.core.settings import Settings
from cortexctl.recipes.loader import check_recipe_text
from cortexctl.recipes.paths import store_roots
from cortexctl.recipes.schema import Recipe

INSTALLED_DISTRIBUTION = "cortex-appliance"
FREE_SPACE_MARGIN = 64 * 1024 * 1024  # plus 2% of the declared bytes


@dataclass
class Plan:
    """What the file checks found: which destinations hold other bytes today."""

    replaced_models: dict[Path, Item] = field(default_factory=dict)
    replaced_engines: dict[Path, Item] = field(default_factory=dict)
    written_models: dict[Path, Item] = field(default_factory=dict)


def _same_bytes(path: Path, item: Item) -> bool:
    try:
        if path.stat().st_size != item.size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == item.sha256


def check_files(
    items: list[Item], finals: dict[str, Path], *, status: SignatureStatus, replace: bool
) -> Plan:
    """Models and engine binaries that would replace different bytes; wheels that would shadow."""
    plan = Plan()
    for item in items:
        final = finals.get(item.path)
        if final is None:
            continue
        if item.kind == "model":
            plan.written_models[final] = item
        exists = final.exists() or final.is_symlink()
        if not exists or _same_bytes(final, item):
            continue
        if item.kind == "model":
            if not replace:
                raise refused(
                    item.label,
                    f"a different file with this name is already in the model store ({final})",
                    fix="Pass --replace to replace it (recipes pinning the old file's sha256 are still "
                    "protected), or rename the model in the bundle definition.",
                )
            plan.replaced_models[final] = item
        elif item.kind == "engine-binary":
            if status.state != "trusted":
                raise refused(
                    item.label,
                    f"would replace the engine binary in the cache ({final}), and only a bundle signed by "
                    f"a trusted key may do that (this one is {status.state})",
                    fix="Sign the bundle on the exporting host (`cortexctl bundle sign`) and trust its key "
                    "here.",
                )
            plan.replaced_engines[final] = item
        elif not replace:
            raise refused(
                item.label,
                f"a different file is already installed at {final}",
                fix="Pass --replace to replace it.",
            )
    check_wheels([i for i in items if i.kind == "wheelhouse"])
    return plan


def installed_closure(root: str = INSTALLED_DISTRIBUTION) -> dict[str, str]:
    """Normalized name → installed version of `root` and everything it requires (extras it asks for too)."""
    out: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        raw, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", raw).lower()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        out[name] = dist.version
        for req in dist.requires or []:
            marker = req.partition(";")[2].replace('"', "'")
            wanted = re.findall(r"extra\s*==\s*'([^']+)'", marker)
            if wanted and not set(wanted) & extras:
                continue
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
            if m:
                asked = frozenset(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
                todo.append((m.group(1), asked))
    return out


def check_wheels(items: list[Item], closure: dict[str, str] | None = None) -> None:
    """No wheel may shadow CORTEX or one of its dependencies with another version."""
    installed = installed_closure() if closure is None else closure
    for item in items:
        try:
            dist, version = tarstream.distribution_of(item.name)
        except tarstream.Refused as exc:
            raise refused(exc.what, exc.problem) from None
        have = installed.get(dist)
        if have is not None and have != version:
            raise refused(
                item.label,
                f"would shadow the installed {dist} {have} (CORTEX or one of its dependencies) "
                f"with {version}",
                fix=f"Export the bundle from a host running {INSTALLED_DISTRIBUTION} "
                f"{installed.get(INSTALLED_DISTRIBUTION, '?')}, or install the bundle's CORTEX with "
                "`install.sh --bundle FILE`.",
            )


def check_wheel_files(items: list[Item], staged: dict[str, Path]) -> None:
    """Each staged wheelhouse file holds the distribution its name (and the signed list) says."""
    for item in items:
        if item.kind != "wheelhouse":
            continue
        try:
            wheelfiles.check_file(staged[item.path], item.name, tarstream)
        except wheelfiles.WheelFileError as exc:
            raise refused(
                item.label, str(exc), fix="Re-export the bundle from the wheelhouse pip built."
            ) from None


def check_free_space(items: list[Item], roots: dict[str, Path]) -> None:
    """Every filesystem must hold what the manifest declares for it, plus a margin, before staging."""
    need: dict[int, tuple[int, Path]] = {}
    for item in items:
        root = roots[item.path]
        probe = root
        while not probe.exists():
            probe = probe.parent
        dev = probe.stat().st_dev
        total, _ = need.get(dev, (0, probe))
        need[dev] = (total + item.size, probe)
    for total, probe in need.values():
        wanted = total + total // 50 + FREE_SPACE_MARGIN
        st = os.statvfs(probe)
        free = st.f_bavail * st.f_frsize
        if free < wanted:
            raise refused(
                "bundle",
                f"not enough free space under {probe}: the manifest declares {total} bytes to stage there "
                f"(with margin {wanted}), {free} are free",
                fix=f"Free at least {wanted - free} bytes under {probe}, then retry.",
            )


def check_recipe(
    text: str, *, final: Path, settings: Settings, item: Item, models: dict[str, Item]
) -> Recipe:
    """The recipe validator `cortexctl recipe validate` runs, then the bundle's own model rules."""
    report = check_recipe_text(text, source=str(final), roots=store_roots(settings))
    if not report.ok or report.recipe is None:
        problems = "; ".join(str(p) for p in report.problems)
        raise refused(
            item.label, f"invalid recipe: {problems}", fix="Fix the recipe and re-export the bundle."
        )
    recipe = report.recipe
    model = recipe.spec.model
    store = os.path.normpath(settings.models_dir.absolute())
    target = os.path.normpath(os.path.join(store, os.path.expanduser(model.path)))
    if Path(model.path).is_absolute() or not target.startswith(store + os.sep):
        raise refused(
            item.label,
            f"spec.model.path {model.path!r} points outside the model store ({store}); a bundle's "
            "recipes name models by a path relative to it",
            fix="Name the model by its file name in the model store and re-export the bundle.",
        )
    bundled = models.get(os.path.relpath(target, store))
    if bundled is not None and model.sha256 and model.sha256 != bundled.sha256:
        raise refused(
            item.label,
            f"spec.model.sha256 {model.sha256} does not match the bundled model {bundled.name} "
            f"({bundled.sha256})",
        )
    return recipe
