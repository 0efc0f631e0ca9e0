from tests.support.engine_fixtures import (  # noqa: F401 - fixtures
    docker_client,
    engine_image,
    llama_server_bin,
)
