"""The HTTP API: routers, dependencies and middleware."""
