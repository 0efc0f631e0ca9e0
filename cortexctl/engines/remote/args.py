"""The remote engine's `spec.args`: where the endpoint is, how to authenticate, which model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from cortexctl.engines.remote.endpoint import check_key_file_name, check_url_form
from cortexctl.recipes.schema import EngineArgs


class RemoteArgs(EngineArgs):
    url: str = Field(
        description="base URL of the OpenAI-compatible endpoint, e.g. http://10.0.0.5:8000/v1 "
        "(its host must be in the daemon's remote_engine_hosts)"
    )
    key_file: str | None = Field(
        None,
        description="file name under $CORTEX_HOME/secrets holding the endpoint's API key "
        "(mode 0600, one line); sent as `Authorization: Bearer`",
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="the model name the endpoint serves; default: spec.served_name",
    )
    extra_args: list[str] = Field(default_factory=list, max_length=0, description="none: nothing is launched")

    EMBEDDINGS_SETTING: ClassVar[str] = "(a remote endpoint decides what it serves)"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url_form(value)

    @field_validator("key_file")
    @classmethod
    def _key_file(cls, value: str | None) -> str | None:
        return None if value is None else check_key_file_name(value)

    def upstream_model(self) -> str | None:
        return self.model
