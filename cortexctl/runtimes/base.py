"""The runtime interface and the factory that picks one.

A runtime starts what an engine adapter describes (`LaunchSpec`), stops it,
reports whether it still runs, returns its log, and finds engines a previous
daemon left running (`adopt`). It never waits for readiness: that is the
supervisor's probe loop.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from cortexctl.core.errors import ConfigError

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings
    from cortexctl.engines.base import LaunchSpec
    from cortexctl.recipes.schema import Recipe

log = logging.getLogger(__name__)

RUNTIME_NAMES = ("process", "docker")
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"  # where the docker SDK connects without DOCKER_HOST
MANAGED_LABEL = "cortex.managed"  # on every container the docker runtime starts


@dataclass(frozen=True)
class RunningEngine:
    runtime: str  # "process" | "docker" | an engine's own (engines/remote: "remote")
    name: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    container_id: str | None = None
    api_key: str | None = field(default=None, repr=False)  # the engine key (see engines/base.py)
    url: str | None = None  # an endpoint elsewhere (engines/remote); None: 127.0.0.1:port

    @property
    def base_url(self) -> str:
        """Where the gateway and the probes reach the engine (no trailing /v1)."""
        return self.url or f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class ExitInfo:
    alive: bool
    exit_code: int | None


class Runtime(Protocol):
    name: ClassVar[str]

    def start(self, spec: LaunchSpec) -> RunningEngine: ...

    def stop(self, handle: RunningEngine, *, timeout_s: float = 20.0) -> None: ...

    def status(self, handle: RunningEngine) -> ExitInfo: ...

    def logs(self, handle: RunningEngine, *, tail: int = 200) -> str: ...

    def adopt(self) -> list[RunningEngine]: ...


def make_runtime(kind: str, settings: Settings) -> Runtime:
    """The runtime named `kind` ("process" | "docker"); ConfigError otherwise."""
    if kind == "process":
        from cortexctl.runtimes.process import ProcessRuntime

        return ProcessRuntime(settings=settings)
    if kind == "docker":
        from cortexctl.runtimes.docker import DockerRuntime

        return DockerRuntime(settings=settings)
    raise ConfigError(f"unknown runtime {kind!r}", fix=f"Use one of: auto, {', '.join(RUNTIME_NAMES)}.")


def docker_endpoint_present() -> bool:
    """Could a Docker Engine answer here? Asked before importing the docker SDK (4.5 MiB of
    imports, with requests and urllib3): where there is no socket, nothing can answer."""
    return bool(os.environ.get("DOCKER_HOST")) or os.path.exists(DEFAULT_DOCKER_SOCKET)


def docker_runs_containers(labels: dict[str, str], *, timeout_s: float = 5.0) -> bool:
    """Does the Docker Engine run a container carrying all these labels? Asked over its API with
    httpx (which the daemon holds anyway), so that a daemon with no container of its own to adopt
    never loads the docker SDK. False when nothing answers on the socket (nothing to adopt); True
    when it cannot tell (DOCKER_HOST is not a unix socket, an odd answer): the SDK decides then."""
    import httpx

    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_DOCKER_SOCKET}"
    if not host.startswith("unix://"):
        return True
    filters = json.dumps({"label": [f"{name}={value}" for name, value in labels.items()]})
    # verify=False: plain HTTP on a unix socket, so no TLS context (and CA bundle) to build
    transport = httpx.HTTPTransport(uds=host.removeprefix("unix://"), verify=False)
    try:  # running containers only, as the docker runtime's adopt() lists them
        with httpx.Client(transport=transport, timeout=timeout_s, trust_env=False) as client:
            answer = client.get("http://docker/containers/json", params={"filters": filters})
        answer.raise_for_status()
        return bool(answer.json())
    except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError):
        return False
    except (httpx.HTTPError, ValueError) as exc:
        log.debug("cannot list containers over the Docker API (%s); asking the docker SDK", exc)
        return True


def choose_runtime(settings: Settings, recipe: Recipe) -> Runtime:
    """recipe.spec.runtime, else settings.runtime; "auto" = docker when an engine answers and the
    recipe's image is present, else process."""
    from cortexctl.engines.registry import get_engine

    # An engine that brings its own runtime (engines/remote launches nothing) uses it.
    own = getattr(get_engine(recipe.spec.engine), "runtime", None)
    if own is not None:
        return own(settings)  # type: ignore[no-any-return]
    kind = recipe.spec.runtime or settings.runtime
    if kind != "auto":
        return make_runtime(kind, settings)
    if not docker_endpoint_present():
        log.debug("runtime auto: no Docker Engine socket; using process")
        return make_runtime("process", settings)
    from cortexctl.runtimes.docker import DockerRuntime

    image = recipe.spec.image or get_engine(recipe.spec.engine).default_image
    docker = DockerRuntime(settings=settings)
    if docker.available() and docker.image_present(image):
        return docker
    log.debug("runtime auto: docker unavailable or image %s absent; using process", image)
    return make_runtime("process", settings)
