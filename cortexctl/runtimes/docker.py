"""The docker runtime: engines as containers of the real Docker Engine (docker SDK).

Containers are named after the LaunchSpec (`llamacpp-model-{id}-{installation}`), labelled
`cortex.managed=true` (+ installation, model id, replica, engine, served name, port) so a new
daemon can adopt them, use host networking (the engine binds 127.0.0.1 itself),
bind-mount model files read-only, get GPUs by device request, and are never
pulled: an absent image is an error naming the bundle to import. The engine key
travels in the container's environment; the label `cortex.api-key-env` names the
variable so a new daemon can read it back from `docker inspect` when adopting.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import docker
import docker.errors
from docker.types import DeviceRequest
from docker.types import Mount as DockerMount

from cortexctl.core.errors import EngineError
from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec
from cortexctl.runtimes.base import MANAGED_LABEL, ExitInfo, RunningEngine

log = logging.getLogger(__name__)

API_KEY_ENV_LABEL = "cortex.api-key-env"
_UNREACHABLE_FIX = (
    "Start the Docker Engine (`systemctl start docker`) or set `runtime: process` in cortex.yaml."
)


class DockerRuntime:
    name: ClassVar[str] = "docker"

    def __init__(self, *, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self._settings = settings
        self._client_obj = client  # connected lazily: no I/O in constructors

    # ---- connection -------------------------------------------------------------------
    def _client(self) -> docker.DockerClient:
        if self._client_obj is None:
            try:
                self._client_obj = docker.from_env(timeout=30)
            except docker.errors.DockerException as exc:
                raise EngineError(f"the Docker Engine is not reachable: {exc}", fix=_UNREACHABLE_FIX) from exc
        return self._client_obj

    def available(self) -> bool:
        try:
            return bool(self._client().ping())
        except (EngineError, docker.errors.DockerException, OSError):
            return False

    def image_present(self, image: str) -> bool:
        try:
            self._client().images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot inspect image {image}: {exc}", fix=_UNREACHABLE_FIX) from exc

    # ---- lifecycle --------------------------------------------------------------------
    def start(self, spec: LaunchSpec) -> RunningEngine:
        if not spec.image:
            raise EngineError(
                f"cannot start {spec.name}: no engine image", fix="Set spec.image in the recipe."
            )
        if not self.image_present(spec.image):
            raise EngineError(
                f"engine image {spec.image} is not present on this host, and CORTEX never pulls images",
                fix="Import the bundle that carries it: `cortexctl bundle import FILE` "
                "(`cortexctl bundle inspect FILE` lists a bundle's images).",
            )
        client = self._client()
        self._remove_stale(spec.name)
        for m in spec.mounts:
            if not m.source.exists():
                raise EngineError(
                    f"cannot start {spec.name}: {m.source} does not exist",
                    fix="Check spec.model.path (relative paths are under $CORTEX_HOME/models).",
                )
        kwargs = container_kwargs(
            spec, log_max_bytes=self._settings.log_max_bytes, log_backups=self._settings.log_backups
        )
        try:
            container = client.containers.run(spec.image, **kwargs)
        except docker.errors.APIError as exc:
            self._remove_created(spec.name)  # `run` = create + start: a failed start leaves one behind
            explanation = str(exc.explanation or exc)
            if "could not select device driver" in explanation:
                raise EngineError(
                    f"Docker cannot give {spec.name} GPUs: {explanation}",
                    fix="Install the NVIDIA Container Toolkit and restart dockerd "
                    "(`nvidia-ctk runtime configure --runtime=docker`), or run on CPU (spec.gpus: none).",
                ) from exc
            raise EngineError(
                f"Docker could not start {spec.name}: {explanation}",
                fix=f"Check the message above and `docker logs {spec.name}`, then start the model again.",
            ) from exc
        log.info("started container %s (%s) on port %s", spec.name, container.short_id, spec.port)
        return RunningEngine(
            runtime=self.name,
            name=spec.name,
            port=spec.port,
            labels=dict(spec.labels),
            container_id=container.id,
            api_key=spec.api_key,
        )

    def stop(self, handle: RunningEngine, *, timeout_s: float = 20.0) -> None:
        container = self._get(handle)
        if container is None:
            return
        try:
            if container.status == "running":
                container.stop(timeout=max(1, int(timeout_s)))  # SIGTERM, then SIGKILL after timeout
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise EngineError(f"Docker could not stop {handle.name}: {exc.explanation or exc}") from exc

    def status(self, handle: RunningEngine) -> ExitInfo:
        container = self._get(handle)
        if container is None:
            return ExitInfo(alive=False, exit_code=None)
        state = container.attrs.get("State", {})
        if state.get("Running"):
            return ExitInfo(alive=True, exit_code=None)
        return ExitInfo(alive=False, exit_code=state.get("ExitCode"))

    def logs(self, handle: RunningEngine, *, tail: int = 200) -> str:
        container = self._get(handle)
        if container is None:
            return ""
        raw: bytes = container.logs(stdout=True, stderr=True, tail=tail)
        return raw.decode("utf-8", errors="replace")

    def adopt(self) -> list[RunningEngine]:
        try:
            containers = self._client().containers.list(filters={"label": f"{MANAGED_LABEL}=true"})
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot list containers: {exc}", fix=_UNREACHABLE_FIX) from exc
        found = []
        for c in containers:
            if c.name is None:  # every container has a name; the stubs allow None
                continue
            labels = dict(c.labels)
            found.append(
                RunningEngine(
                    runtime=self.name,
                    name=c.name,
                    port=int(labels.get("cortex.port", "0")),
                    labels=labels,
                    container_id=c.id,
                    api_key=_env_value(c.attrs, labels.get(API_KEY_ENV_LABEL)),
                )
            )
        return found

    # ---- helpers --------------------------------------------------------------------
    def _get(self, handle: RunningEngine) -> Any:
        try:
            return self._client().containers.get(handle.container_id or handle.name)
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot inspect {handle.name}: {exc}", fix=_UNREACHABLE_FIX) from exc

    def _remove_stale(self, name: str) -> None:
        """An exited container of ours blocks its name: remove it. A running one is an error."""
        try:
            old = self._client().containers.get(name)
        except docker.errors.NotFound:
            return
        if old.labels.get(MANAGED_LABEL) != "true":
            raise EngineError(
                f"a container named {name} exists and is not managed by CORTEX",
                fix=f"Remove or rename it (`docker rm -f {name}`), then start the model again.",
            )
        if old.status == "running":
            raise EngineError(f"container {name} is already running", fix="Stop it first, or adopt it.")
        old.remove(force=True)

    def _remove_created(self, name: str) -> None:
        try:
            self._client().containers.get(name).remove(force=True)
        except docker.errors.DockerException:
            pass


def container_kwargs(
    spec: LaunchSpec, *, log_max_bytes: int = 50 * 1024 * 1024, log_backups: int = 3
) -> dict[str, Any]:
    """`containers.run` keyword arguments for a LaunchSpec (everything but the image).

    The engine's log goes to Docker's json-file driver, capped like the other logs
    (settings.log_max_bytes / log_backups: the live file plus the rotated ones)."""
    env = dict(spec.env)
    if isinstance(spec.gpus, tuple):
        # The device request already limits the container to these GPUs, renumbered from 0.
        env.pop("CUDA_VISIBLE_DEVICES", None)
    labels = dict(spec.labels)
    if spec.api_key_env and spec.api_key is not None:
        labels[API_KEY_ENV_LABEL] = spec.api_key_env
    kwargs: dict[str, Any] = {
        "command": list(spec.container_argv),
        "name": spec.name,
        "labels": labels,
        "environment": env,
        "network_mode": "host",  # the engine itself binds 127.0.0.1
        "mounts": [
            DockerMount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only)
            for m in spec.mounts
        ],
        "detach": True,
    }
    if requests := _device_requests(spec.gpus):
        kwargs["device_requests"] = requests
    if spec.memory_limit_bytes is not None:
        kwargs["mem_limit"] = spec.memory_limit_bytes
    if spec.ipc_host:  # the engine's workers share memory through /dev/shm (Docker's is 64 MB)
        kwargs["ipc_mode"] = "host"
    kwargs["log_config"] = {
        "type": "json-file",
        "config": {"max-size": str(log_max_bytes), "max-file": str(log_backups + 1)},
    }
    return kwargs


def _env_value(attrs: dict[str, Any], name: str | None) -> str | None:
    """The value of one variable of a container's environment (`docker inspect` Config.Env)."""
    if not name:
        return None
    for item in (attrs.get("Config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        if key == name:
            return value
    return None


def _device_requests(gpus: str | tuple[int, ...]) -> list[DeviceRequest]:
    if gpus == "none" or gpus == ():
        return []
    if gpus == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return [DeviceRequest(device_ids=[str(i) for i in gpus], capabilities=[["gpu"]])]
