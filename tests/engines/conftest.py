from tests.support.engine_fixtures import (  # noqa: F401 - fixtures
    docker_client,
    engine_image,
    engine_settings,
    gemma_gguf,
    hf_model_dir,
    llama_server_bin,
    llama_settings,
    tiny_gguf_file,
    tiny_model,
    vllm_settings,
)
