"""The project's error types: each message names the thing and says what to do."""


class SupportTriageError(Exception):
    """Base for errors whose message is safe and useful to show to a person.

    `code` (machine-readable, stable) and `http_status` are the one map from an error to
    what the REST API and a batch's error column say; each subclass sets its own.
    """

    code = "error"
    http_status = 500


class StorageError(SupportTriageError):
    """The database could not be read or written."""

    code = "storage_unavailable"
    http_status = 503


class ConflictError(StorageError):
    """Another transaction wrote the same row first (a unique key); trying again sees it."""


class NotFoundError(SupportTriageError):
    """A named row (prediction, model version) does not exist."""

    code = "not_found"
    http_status = 404


class InvalidInputError(SupportTriageError):
    """Input was refused; the message says why and how to fix it. `code` is the
    machine-readable reason the REST API answers with."""

    code = "invalid_input"
    http_status = 422


class NotAuthorizedError(SupportTriageError):
    """The caller may not do this: not signed in, the wrong role, or a wrong admin token."""

    code = "not_authorized"
    http_status = 403
