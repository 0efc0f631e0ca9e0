"""The OpenAI-compatible gateway: routing, proxying and streaming to engine replicas."""
