"""Laneway's web process: ``create_app()`` builds the Flask app (gunicorn serves
``service:create_app()``)."""

from service.app import create_app

__all__ = ["create_app"]
