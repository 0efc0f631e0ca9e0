"""The one pin of vLLM: `vllm serve` flag data and the default vllm/vllm-openai image tag."""

VERSION = "0.33.0"
PROGRAM = "vllm serve"
DEFAULT_IMAGE = f"vllm/vllm-openai:v{VERSION}"
