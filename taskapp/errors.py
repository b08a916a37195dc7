"""Domain errors: what a service refuses, said without HTTP. The web layer maps each to
its answer in one place (``taskapp.web.errors``); the CLI prints it."""


class DomainError(Exception):
    """Base of every refusal a service can raise."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """No such object, or one the caller may not see (the two are never told apart)."""

    def __init__(self, model_name: str):
        super().__init__(f"No {model_name} matches the given query.")


class PermissionDenied(DomainError):
    """The caller may not do this."""

    def __init__(self, message: str = "You do not have permission to perform this action."):
        super().__init__(message)


class InvalidField(DomainError):
    """A value that passed the schema but breaks a rule that needs the database."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Conflict(DomainError):
    """The request clashes with the current state (e.g. a username already taken)."""
