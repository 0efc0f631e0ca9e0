"""The daemon app on a temporary SQLite home, with the local admin token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cortex_server.app import create_app
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import Settings, load_settings


@dataclass
class Daemon:
    client: TestClient
    settings: Settings
    token: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    settings = load_settings(home=tmp_path / "home")
    prepare_database(settings)
    token = settings.admin_token_file.read_text().strip()
    with TestClient(create_app(settings)) as client:
        yield Daemon(client=client, settings=settings, token=token)
