from tests.support.cortexctl_cli import cortexctl  # noqa: F401 - fixture
