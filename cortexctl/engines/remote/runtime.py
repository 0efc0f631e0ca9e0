"""The remote engine's runtime: nothing to launch, stop or adopt; the endpoint is the handle.

`status` always says alive: whether the endpoint answers is the supervisor's probe's job
(a failing probe takes the replica out of rotation, so clients get 503 model_not_ready).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from cortexctl.runtimes.base import ExitInfo, RunningEngine

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings
    from cortexctl.engines.base import LaunchSpec

URL_LABEL = "cortex.url"  # the endpoint's base URL, carried by the launch spec's labels


@dataclass
class RemoteRuntime:
    name: ClassVar[str] = "remote"
    settings: Settings | None = None

    def start(self, spec: LaunchSpec) -> RunningEngine:
        url = spec.labels[URL_LABEL]
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return RunningEngine(
            runtime=self.name,
            name=spec.name,
            port=port,
            labels=dict(spec.labels),
            api_key=spec.api_key,
            url=url,
        )

    def stop(self, handle: RunningEngine, *, timeout_s: float = 20.0) -> None:
        """Nothing runs here: the endpoint is someone else's to stop."""

    def status(self, handle: RunningEngine) -> ExitInfo:
        return ExitInfo(alive=True, exit_code=None)

    def logs(self, handle: RunningEngine, *, tail: int = 200) -> str:
        return f"(remote endpoint {handle.url}: its logs are on that host)\n"

    def adopt(self) -> list[RunningEngine]:
        return []  # a new daemon simply probes the endpoint again
