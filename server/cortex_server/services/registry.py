"""What the gateway can route to: served names → replicas, kept current by the supervisor.

The supervisor (and the health poller) are the only writers; the gateway reads.
Everything here is in-memory and per-daemon: it is rebuilt from the DB and the
engines' health on start. Until that first load (`loaded`), no model can be said not to
exist: requests get a retryable 503, never a false 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cortexctl.core.errors import NotFound, ServiceUnavailable


@dataclass
class ReplicaEndpoint:
    model_id: int
    model_name: str
    replica_index: int
    base_url: str  # e.g. http://127.0.0.1:18001 (no trailing slash, no /v1)
    healthy: bool = False
    api_key: str | None = field(default=None, repr=False)  # the engine key this replica was launched with
    # routing bookkeeping, owned by the router
    outstanding: int = 0
    consecutive_failures: int = 0
    ejected_until: float = 0.0

    auth: tuple[tuple[bytes, bytes], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        # The header the gateway adds to each request, built once per replica (hot path).
        if self.api_key:
            self.auth = ((b"authorization", b"Bearer " + self.api_key.encode()),)

    @property
    def key(self) -> str:
        return f"{self.model_name}/{self.replica_index}"


@dataclass
class ServedModel:
    """One served name. Several models may share it: their replicas are pooled."""

    served_name: str
    engine: str  # llamacpp | vllm
    state: str  # aggregate lifecycle state of the models behind it (running, loading, …)
    request_defaults: dict[str, Any] = field(default_factory=dict)
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    max_model_len: int | None = None
    created: int = 0  # unix time, for /v1/models
    recipe: str | None = None  # the recipe behind it, named in errors
    serves_embeddings: bool | None = None  # from the recipe; None: the engine decides
    embeddings_setting: str | None = None  # the recipe setting that turns embeddings on
    upstream_model: str | None = None  # the `model` the engine expects, when not served_name (remote)
    replicas: list[ReplicaEndpoint] = field(default_factory=list)

    def healthy_replicas(self) -> list[ReplicaEndpoint]:
        return [r for r in self.replicas if r.healthy]


def model_not_found(served_name: str) -> NotFound:
    return NotFound(
        f"The model '{served_name}' does not exist.",
        fix="List the available models with GET /v1/models (client.models.list()) or `cortexctl model list`.",
        param="model",
        code="model_not_found",
    )


LOADING_RETRY_AFTER_S = 1


def registry_loading() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The gateway is starting and has not loaded its models yet.",
        fix=f"Retry in {LOADING_RETRY_AFTER_S}s (see Retry-After); GET /ready turns true once it has.",
        code="models_loading",
        details={"retry_after_s": LOADING_RETRY_AFTER_S},
    )


class ModelRegistry:
    def __init__(self, *, loaded: bool = True) -> None:
        self._by_name: dict[str, ServedModel] = {}
        self.version = 0  # bumped on every change (registry_mirror.py shares it between workers)
        # False where something will fill it (the daemon's supervisor, a worker's snapshot), until
        # its first full load: before that, an absent name may be a model not loaded yet.
        self.loaded = loaded

    def get(self, served_name: str) -> ServedModel | None:
        return self._by_name.get(served_name)

    def require(self, served_name: str) -> ServedModel:
        """The model, or the 404 that tells the client how to list models (a 503 before the load)."""
        model = self._by_name.get(served_name)
        if model is None:
            raise model_not_found(served_name) if self.loaded else registry_loading()
        return model

    def all(self) -> list[ServedModel]:
        return sorted(self._by_name.values(), key=lambda m: m.served_name)

    def put(self, model: ServedModel) -> None:
        """Insert or replace. A replica that stays (same key and URL) keeps its object: requests in
        flight hold it and decrement its `outstanding` when they end, so it must not be swapped."""
        old = self._by_name.get(model.served_name)
        if old is not None:
            previous = {r.key: r for r in old.replicas}
            kept = []
            for r in model.replicas:
                p = previous.get(r.key)
                if p is None or p.base_url != r.base_url or p.api_key != r.api_key:
                    kept.append(r)
                    continue
                if r.healthy and not p.healthy:
                    p.consecutive_failures = 0  # the poller saw it come back: clear the breaker
                p.healthy = r.healthy
                kept.append(p)
            model.replicas = kept
        self._by_name[model.served_name] = model
        self.version += 1

    def remove(self, served_name: str) -> None:
        if self._by_name.pop(served_name, None) is not None:
            self.version += 1

    def mark_replica_health(self, served_name: str, replica_key: str, *, healthy: bool) -> bool:
        """The health poller's verdict on one replica; returns False if it is unknown.

        Marking a replica healthy also clears the gateway's circuit breaker for it (a
        short cooldown after an ejection still applies, so a flapping engine is not
        hammered).
        """
        model = self._by_name.get(served_name)
        if model is None:
            return False
        for r in model.replicas:
            if r.key == replica_key:
                if healthy and not r.healthy:
                    r.consecutive_failures = 0
                if r.healthy != healthy:
                    r.healthy = healthy
                    self.version += 1
                return True
        return False
