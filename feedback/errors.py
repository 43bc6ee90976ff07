"""The project's error types: each message names the thing and says what to do."""


class SupportTriageError(Exception):
    """Base for errors whose message is safe and useful to show to a person."""


class StorageError(SupportTriageError):
    """The database could not be read or written."""


class ConflictError(StorageError):
    """Another transaction wrote the same row first (a unique key); trying again sees it."""


class NotFoundError(SupportTriageError):
    """A named row (prediction, model version) does not exist."""


class InvalidInputError(SupportTriageError):
    """Input was refused; the message says why and how to fix it. `code` is the
    machine-readable reason the REST API answers with."""

    code = "invalid_input"


class NotAuthorizedError(SupportTriageError):
    """The caller may not do this: not signed in, the wrong role, or a wrong admin token."""
