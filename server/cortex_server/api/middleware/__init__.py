"""Pure ASGI middleware (no BaseHTTPMiddleware: it breaks contextvars and streaming)."""
