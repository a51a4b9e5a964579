"""Laneway's web process: ``create_app()`` builds the Flask app (gunicorn serves
``service:create_app()``).

``create_app`` is imported on first use, not with the package: gunicorn's
master imports the worker class (:mod:`service.web_worker`) before it forks,
and the app's imports (redis, requests, ssl) must happen in the worker, after
gevent has monkey-patched it.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from service.app import create_app

        return create_app
    raise AttributeError(f"module 'service' has no attribute {name!r}")
