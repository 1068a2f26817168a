"""The HTTP API (docs/interface.md §7): FastAPI app factory, API-key auth and thin routes over the other layers."""

from api.app import create_app

__all__ = ["create_app"]
