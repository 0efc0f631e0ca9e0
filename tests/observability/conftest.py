from tests.support.engine_fixtures import llama_server_bin, tiny_gguf_file  # noqa: F401 - fixtures
