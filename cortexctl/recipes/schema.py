"""The recipe schema (`apiVersion: cortex/v1`, `kind: Recipe`), validated by pydantic.

Engine arguments are typed per engine under `spec.args`; which model validates them
is chosen by `spec.engine`, through the engine registry (each engine's package
holds its own arguments model). Unknown fields are errors everywhere (typos must not be
silently ignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator
from pydantic_core import PydanticCustomError

NO_MODEL_FILE = "-"  # spec.model.path of a recipe whose engine reads no model file (engines/remote)
NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="unique recipe name (lowercase, dns-like)")]
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class ModelSource(Strict):
    path: str = Field(
        description="GGUF file or HF-style folder; relative paths are under $CORTEX_HOME/models"
    )
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None

    def resolve(self, models_dir: Path) -> Path:
        p = Path(self.path).expanduser()
        return p if p.is_absolute() else models_dir / p


class EngineArgs(Strict):
    """`spec.args`: each engine's package defines its own subclass (`<engine>/args.py`)."""

    extra_args: list[str] = Field(default_factory=list, description="more engine flags (checked)")

    # The recipe setting that makes the engine serve /v1/embeddings (for error messages).
    EMBEDDINGS_SETTING: ClassVar[str] = ""

    def serves_embeddings(self) -> bool | None:
        """True/False when the recipe says; None when the engine decides from the model."""
        return None

    def upstream_model(self) -> str | None:
        """The `model` the engine expects when it differs from spec.served_name (engines/remote)."""
        return None


class RequestDefaults(Strict):
    """Applied to a request when the client omits them."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    repetition_penalty: float | None = Field(None, gt=0)
    stop: list[str] | None = None

    def as_body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Resources(Strict):
    memory: str | None = Field(None, description="container memory limit, e.g. 8GiB (docker runtime)")


class Timeouts(Strict):
    load_s: float = Field(600, gt=0, description="seconds a replica may take to become ready")
    request_s: float = Field(600, gt=0, description="upstream request timeout")
    connect_s: float = Field(5, gt=0)


class RecipeSpec(Strict):
    engine: str = Field(description="an engine of the registry (cortexctl/engines/registry.py)")
    served_name: Annotated[
        str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    ]
    model: ModelSource
    replicas: int = Field(1, ge=1, le=64)
    runtime: Literal["auto", "process", "docker"] | None = Field(
        None, description="override the host default"
    )
    gpus: Literal["all", "none"] | list[Annotated[int, Field(ge=0)]] = "none"
    image: str | None = Field(None, description="engine image for the docker runtime")
    # The engine's own model (its package's args.py); SerializeAsAny dumps its fields.
    args: SerializeAsAny[EngineArgs] | None = None
    request_defaults: RequestDefaults = Field(default_factory=RequestDefaults)
    resources: Resources = Field(default_factory=Resources)
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @model_validator(mode="before")
    @classmethod
    def _no_model_file(cls, data: Any) -> Any:
        # An engine that reads no model file (engines/remote) takes recipes without spec.model.
        if isinstance(data, dict) and "model" not in data and isinstance(data.get("engine"), str):
            from cortexctl.engines.registry import engine_names, get_engine

            if data["engine"] in engine_names():
                engine = get_engine(data["engine"])
                if not getattr(engine, "needs_model_file", True):
                    data = {**data, "model": {"path": NO_MODEL_FILE}}
        return data

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from cortexctl.engines.registry import engine_names

        if value not in engine_names():
            raise PydanticCustomError(
                "unknown_engine",
                "unknown engine '{engine}': use one of {known}",
                {"engine": value, "known": ", ".join(engine_names())},
            )
        return value

    @field_validator("args", mode="before")
    @classmethod
    def _args_by_engine(cls, value: Any, info: Any) -> Any:
        # Typed per engine: validate against the engine's model, so an unknown flag
        # names that engine's accepted fields. An unknown engine is reported on
        # spec.engine alone.
        from cortexctl.engines.registry import args_model

        model = args_model(info.data.get("engine"))
        if model is None:
            return None
        return model.model_validate(value or {})

    def engine_args(self) -> EngineArgs:
        if self.args is not None:
            return self.args
        model = args_model_of(self.engine)
        return model()


def args_model_of(engine: str) -> type[EngineArgs]:
    from cortexctl.engines.registry import get_engine

    return get_engine(engine).args_model


class Recipe(Strict):
    api_version: Literal["cortex/v1"] = Field(alias="apiVersion")
    kind: Literal["Recipe"]
    metadata: Metadata
    spec: RecipeSpec

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def name(self) -> str:
        return self.metadata.name
