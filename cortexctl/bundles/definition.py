"""Bundle definitions (`bundles/*.yaml`): which recipes, models, images, wheels and engine
binaries go into a bundle. Paths are relative to the definition file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cortexctl.bundles.errors import BundleError
from cortexctl.core.yamldoc import YamlSyntaxError, describe_validation_error, load_yaml_file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    name: str = Field(
        description="name in the model store ($CORTEX_HOME/models/NAME), as recipes refer to it"
    )
    path: str | None = Field(None, description="a file or an HF-style folder on the exporting host")
    python: str | None = Field(
        None,
        description="'module:function' that writes the file to the path it is given (pip-packaged models)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.python is None):
            raise ValueError("give exactly one of path or python")
        return self


class WheelhouseSpec(_Strict):
    project: str | None = Field(
        None, description="the CORTEX source tree: `pip wheel` it with all its dependencies"
    )
    requirements: list[str] = Field(default_factory=list, description="more requirements to `pip wheel`")
    sdists: list[str] = Field(
        default_factory=list, description="source distributions to keep (e.g. for rebuilds)"
    )
    dir: str | None = Field(None, description="take an existing directory of wheels instead of building")


class EngineBinarySpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]
    path: str | None = Field(
        None, description="default: the engine cache, <cache>/cortex/NAME/VERSION/bin/NAME"
    )


class DefinitionSpec(_Strict):
    recipes: list[str] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    wheelhouse: WheelhouseSpec | None = None
    engine_binaries: list[EngineBinarySpec] = Field(default_factory=list)


class DefinitionMetadata(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")]
    description: str = ""


class BundleDefinition(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["cortex/v1"] = Field(alias="apiVersion")
    kind: Literal["BundleDefinition"]
    metadata: DefinitionMetadata
    spec: DefinitionSpec


def load_definition(path: Path) -> BundleDefinition:
    try:
        doc = load_yaml_file(path)
    except OSError as exc:
        raise BundleError(
            f"cannot read bundle definition {path}: {exc.strerror}", fix="Check the path."
        ) from None
    except YamlSyntaxError as exc:
        raise BundleError(str(exc), fix="Fix the YAML syntax of the bundle definition.") from None
    try:
        return BundleDefinition.model_validate(doc.data)
    except ValidationError as exc:
        raise BundleError(
            "invalid bundle definition: " + "; ".join(describe_validation_error(exc, doc)),
            fix="Fix the definition (see bundles/FORMAT.md, 'Bundle definitions').",
        ) from None
