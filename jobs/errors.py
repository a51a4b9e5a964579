"""Errors raised by ``jobs/``; all derive from :class:`JobError`."""


class JobError(Exception):
    """Base class of errors raised by the jobs package."""


class RetryableDeliveryError(JobError):
    """The provider asked us to try again later (HTTP 429 or 5xx, or no connection)."""
