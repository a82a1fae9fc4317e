"""The HTTP API: a Litestar app (``create_app``) run as a Ray Serve deployment (``deploy_api``).

Both are imported on first use, so ``serve.auth_tokens`` (pure functions) stays importable without
loading Litestar and Ray Serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serve.app import create_app
    from serve.deployment import deploy_api

__all__ = ["create_app", "deploy_api"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from serve.app import create_app

        return create_app
    if name == "deploy_api":
        from serve.deployment import deploy_api

        return deploy_api
    raise AttributeError(f"module 'serve' has no attribute {name!r}")
