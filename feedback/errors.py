"""The project's error types: each message names the thing and says what to do."""


class SupportTriageError(Exception):
    """Base for errors whose message is safe and useful to show to a person."""


class StorageError(SupportTriageError):
    """The database could not be read or written."""


class NotFoundError(SupportTriageError):
    """A named row (prediction, model version) does not exist."""


class InvalidInputError(SupportTriageError):
    """Input was refused; the message says why and how to fix it."""
