"""Errors raised by ``state/``; all derive from :class:`StateError`."""

from __future__ import annotations


class StateError(Exception):
    """Base class of every error raised by the state package."""


class ConfigError(StateError):
    """Tenant configuration is invalid or a named secret is missing.

    Attributes:
        details: one line per problem, each naming the field.
    """

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message + ("".join(f"\n  {d}" for d in details) if details else ""))
        self.message = message
        self.details = details or []


class UnknownTenantError(StateError):
    """No tenant owns the phone number, id or API key asked for."""


class VersionConflictError(StateError):
    """The stored ``version`` is not the one the commit was based on."""


class LeaseLostError(StateError):
    """The lease expired or was taken by another worker before the commit."""


class ClaimedError(StateError):
    """An operator holds the conversation's claim: a commit that carries the AI's answer is refused."""


class SchemaTooNewError(StateError):
    """The stored document's ``schema_version`` is newer than this code knows.

    A worker must not write it (rolling deploy): requeue and let a newer
    worker take the turn.
    """


class PatchError(StateError):
    """A patch operation cannot be applied; ``path`` names the JSON Pointer."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
