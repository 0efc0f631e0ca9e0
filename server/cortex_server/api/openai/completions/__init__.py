"""OpenAI /v1 surface."""
