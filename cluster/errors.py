"""One small exception hierarchy for the whole project.

Every error a person may see carries a readable ``detail``; serve maps the class to an
HTTP status in one place (``serve.errors``), and the pipeline stores ``detail`` as a
failed job's reason.
"""

from __future__ import annotations


class VodError(Exception):
    """Base of every error vodray raises on purpose."""

    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ClientError(VodError):
    """The caller asked for something wrong; retrying the same request will not help."""

    status_code = 400


class BadRequest(ClientError):
    status_code = 400


class Unauthorized(ClientError):
    status_code = 401


class Forbidden(ClientError):
    status_code = 403


class NotFound(ClientError):
    status_code = 404


class Conflict(ClientError):
    status_code = 409


class PreconditionFailed(ClientError):
    """A header the request depends on is missing or not one this server speaks (``Tus-Resumable``)."""

    status_code = 412


class PayloadTooLarge(ClientError):
    status_code = 413


class UnsupportedMediaType(ClientError):
    status_code = 415


class Locked(ClientError):
    """Another request is changing the same thing right now (a PATCH of the same upload)."""

    status_code = 423


class ChecksumMismatch(ClientError):
    """tus's 460: the bytes received do not have the checksum the client sent with them."""

    status_code = 460


class InvalidMedia(ClientError):
    """The upload is not something vodray can turn into a stream (not a video, truncated...)."""

    status_code = 422


class TooManyRequests(ClientError):
    status_code = 429

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ServerError(VodError):
    """Something on our side failed; the request may succeed later."""

    status_code = 500


class Unavailable(ServerError):
    """A service behind the API is away for now (the API answers 503 with ``Retry-After``)."""

    status_code = 503
    retry_after_s = 2


class CatalogUnavailable(Unavailable):
    """The catalog actor did not answer within the caller's bound (it is restarting, or gone).

    A job that meets it stays unfinished (it is run again), never failed."""
