from tests.support.cortexctl_cli import cortexctl  # noqa: F401 - fixture
from tests.support.engine_fixtures import (  # noqa: F401 - fixtures
    docker_client,
    engine_image,
    llama_server_bin,
    tiny_gguf_file,
)
