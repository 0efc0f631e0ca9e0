"""Where a recipe's files may live: inside the model store, or folders the operator lists.

A recipe names files the engine opens with the daemon's rights (model weights,
chat templates, projectors, adapters). Left free, `model.path: ../../etc/shadow`
or a template symlinked to a secret would hand host files to an engine whose
answers reach tenants. So every such path resolves inside the model store
(`$CORTEX_HOME/models`) or one of the `model_roots` from the settings:
relative paths are taken from the store, then symlinks and `..` are resolved
(`Path.resolve`) before the containment check, so a link inside the store that
points out is refused like the path it points to.

A refusal never says whether the path exists: the message depends only on the
text of the recipe and the configured roots, so refusals cannot be used to
probe the host's files (no existence oracle). Existence is checked only for
paths that passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cortexctl.core.errors import RecipeError

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings


def store_roots(settings: Settings) -> tuple[Path, ...]:
    """The model store first (relative paths resolve there), then the operator's extra roots."""
    return (settings.models_dir, *settings.model_roots)


def confine(value: str, roots: Sequence[Path]) -> Path | None:
    """The resolved path of `value` when it lies inside one of `roots`, else None."""
    if not roots or "\x00" in value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    for root in roots:
        try:
            base = root.expanduser().resolve()
        except (OSError, RuntimeError):
            continue
        if resolved == base or resolved.is_relative_to(base):
            return resolved
    return None


def outside_message(value: str, roots: Sequence[Path]) -> str:
    """The refusal: the same words whether or not anything exists at `value`."""
    listed = ", ".join(str(r) for r in roots) or "(none configured)"
    return (
        f"{value!r} is outside the model store: files a recipe names must resolve (symlinks "
        f"followed) inside {listed}; relative paths start in {roots[0] if roots else 'the model store'}. "
        "Copy the file into the model store, or ask the operator to add its folder to model_roots "
        "in cortex.yaml"
    )


def require_in_store(value: str, roots: Sequence[Path], *, param: str) -> Path:
    """`confine` or RecipeError (for launch time: a stored recipe is checked again before it runs)."""
    path = confine(value, roots)
    if path is None:
        raise RecipeError(
            f"{param}: {outside_message(value, roots)}.",
            fix="Fix the recipe and apply it again.",
            param=param,
        )
    return path
