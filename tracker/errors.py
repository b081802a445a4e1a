"""One error tree for the core. Every error carries a stable snake_case ``code``.

Only the web error handler and each CLI ``main`` catch ``TrackerError`` wholesale; everything
else lets it travel so callers see the one rule that failed.
"""
from __future__ import annotations

__all__ = [
    "TrackerError",
    "InvalidInput",
    "InvalidIdentifier",
    "InvalidStatement",
    "VerificationError",
    "Rejected",
    "NotFound",
    "KeyFileError",
    "IntegrityError",
]


class TrackerError(Exception):
    """Base of every error the core raises on purpose."""

    code: str = "error"
    http_status: int = 400

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInput(TrackerError):
    code = "invalid_input"


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"


class InvalidStatement(InvalidInput):
    code = "invalid_statement"


class VerificationError(TrackerError):
    """A signature, proof or checkpoint did not verify."""

    code = "verification_failed"


class Rejected(TrackerError):
    """A well-formed statement the ledger refuses (signature, role, unknown item...)."""

    code = "rejected"
    http_status = 422


class NotFound(TrackerError):
    code = "not_found"
    http_status = 404


class KeyFileError(TrackerError):
    code = "key_file_error"


class IntegrityError(TrackerError):
    """The stored ledger does not match what was signed: edited, deleted or reordered rows."""

    code = "ledger_integrity_failure"
    http_status = 500
