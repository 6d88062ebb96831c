"""One exception tree for quantscope.

Every error raised on purpose by quantscope is a :class:`QuantscopeError`. Subclasses also
derive from the built-in exception they resemble (``NotFound`` is a ``LookupError``,
``InvalidInput`` a ``ValueError``), so generic handlers keep working. The message always says
what was wrong, where (file, field, line) and, where possible, what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CatalogError",
    "ConcurrentAccess",
    "CorruptFile",
    "IntegrityError",
    "InvalidInput",
    "NotARepository",
    "NotAuthenticated",
    "NotFound",
    "PayloadTooLarge",
    "QuantscopeError",
    "RepositoryError",
    "UnsupportedFormat",
]


class QuantscopeError(Exception):
    """Base of every error quantscope raises on purpose."""


class InvalidInput(QuantscopeError, ValueError):
    """Input (a file, a pattern, an option, a value) is malformed."""


class UnsupportedFormat(InvalidInput):
    """No installed reader handles this file."""


class CorruptFile(InvalidInput):
    """A file of a supported format is empty, truncated or otherwise unreadable."""


class PayloadTooLarge(InvalidInput):
    """An upload or a request body larger than the server accepts (HTTP 413)."""


class NotFound(QuantscopeError, LookupError):
    """A path, an image id or another named thing does not exist."""


class RepositoryError(QuantscopeError):
    """The repository on disk is missing, inconsistent or busy."""


class NotARepository(RepositoryError, NotFound):
    """The folder is not an initialized quantscope repository."""


class ConcurrentAccess(RepositoryError):
    """Another process holds the repository's write lock."""


class CatalogError(RepositoryError):
    """The catalog database cannot be opened, migrated or written."""


class IntegrityError(RepositoryError):
    """Stored data no longer match their recorded checksums."""


class AccessDenied(QuantscopeError, PermissionError):
    """The caller is known but may not do this (write a dataset it only reads, manage users)."""


class NotAuthenticated(AccessDenied):
    """The action needs a signed-in user (or a valid token), and the caller gave none."""
