"""The one error type users see: what went wrong, and what to do about it."""

from __future__ import annotations


class ModelTrainerError(Exception):
    """A problem the user can fix; carries a remediation so no traceback is needed."""

    def __init__(self, message: str, remediation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.remediation = remediation

    def __str__(self) -> str:
        if self.remediation:
            return f"{self.message} Fix: {self.remediation}"
        return self.message


class DataValidationError(ModelTrainerError):
    """The input table cannot be trained on as given."""


class ConfigurationError(ModelTrainerError):
    """A configuration key or value is unknown or out of range."""


class UnverifiedModelError(ModelTrainerError):
    """A model file that does not match the SHA-256 recorded when it was trained, or has none."""


def find_model_trainer_error(exc: BaseException | None) -> ModelTrainerError | None:
    """Kedro wraps node and dataset errors; walk the chain to the user-facing one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ModelTrainerError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class TrackingServerLost(ModelTrainerError):
    """The MLflow tracking server stopped answering during a run."""
