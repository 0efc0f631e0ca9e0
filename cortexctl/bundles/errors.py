"""Bundle errors: one CortexError subclass, always naming the bundle item at fault."""

from __future__ import annotations

from cortexctl.core.errors import CortexError


class BundleError(CortexError):
    """A bundle is malformed, tampered with, untrusted, or cannot be installed."""

    status_code = 400
    openai_type = "invalid_request_error"
    default_code = "bundle_invalid"


def refused(what: str, problem: str, *, fix: str | None = None) -> BundleError:
    """`bundle refused: <item>: <problem>` — nothing has been installed when this is raised."""
    return BundleError(
        f"bundle refused: {what}: {problem}; nothing was installed",
        fix=fix or "Re-export the bundle on the connected host (or copy it again) and retry.",
    )
