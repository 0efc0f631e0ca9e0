from pathlib import Path

import pytest

from cortexctl.core.errors import ConfigError
from cortexctl.core.settings import load_settings, redact_url


def test_defaults_live_in_cortex_home(cortex_home: Path) -> None:
    s = load_settings()
    assert s.home == cortex_home
    assert s.url == "http://127.0.0.1:8080"
    assert s.effective_database_url == f"sqlite:///{cortex_home / 'cortex.db'}"
    assert s.database_kind == "sqlite"
    assert s.redis_url is None


def test_environment_beats_yaml_file(cortex_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cortex_home / "cortex.yaml").write_text("port: 9000\nhost: 127.0.0.2\n")
    assert load_settings().port == 9000
    monkeypatch.setenv("CORTEX_PORT", "9100")
    s = load_settings()
    assert (s.port, s.host) == (9100, "127.0.0.2")
    assert load_settings(port=9200).port == 9200


def test_corrupt_yaml_names_file_and_line(cortex_home: Path) -> None:
    (cortex_home / "cortex.yaml").write_text("port: 9000\nhost: [unclosed\nlog_level: info\n")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert f"{cortex_home / 'cortex.yaml'}:3:" in exc.value.message or ":2:" in exc.value.message
    assert "invalid YAML" in exc.value.message


def test_bad_value_in_yaml_names_line_and_field(cortex_home: Path) -> None:
    (cortex_home / "cortex.yaml").write_text("host: 127.0.0.1\n\nport: not-a-number\n")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert f"{cortex_home / 'cortex.yaml'}:3: port:" in exc.value.message


def test_unknown_setting_lists_accepted_ones(cortex_home: Path) -> None:
    (cortex_home / "cortex.yaml").write_text("prot: 9000\n")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "prot: unknown setting" in exc.value.message and "port" in exc.value.message


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORTEX_PORT", "99999")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "environment variable CORTEX_PORT" in exc.value.message


def test_redact_url_hides_password_only() -> None:
    assert redact_url("postgresql+psycopg://bob:s3cret@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
