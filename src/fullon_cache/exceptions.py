"""The library's errors: one family under :class:`CacheError`.

A miss is never an error (it returns the documented default: None, 0.0, [] or {}).
An unreachable Redis is: after bounded retries it raises :class:`CacheConnectionError`,
which is also a builtin :class:`ConnectionError`, so "missing" and "Redis down" never
look the same. Bad input raises the builtin ValueError or TypeError before anything
is written.

Example:
    >>> issubclass(CacheConnectionError, ConnectionError)
    True
    >>> issubclass(CircuitOpenError, CacheConnectionError)
    True
"""

from __future__ import annotations

__all__ = [
    "CacheConnectionError",
    "CacheDataError",
    "CacheError",
    "CachePermissionError",
    "CacheTimeoutError",
    "CircuitOpenError",
]


class CacheError(Exception):
    """Base of every error the library raises about Redis or the data in it."""


class CacheConnectionError(CacheError, ConnectionError):
    """Redis could not be reached (after the bounded retries with back-off)."""


class CacheTimeoutError(CacheConnectionError, TimeoutError):
    """Redis did not answer within the socket timeout (after retries)."""


class CircuitOpenError(CacheConnectionError):
    """Calls fail fast: Redis failed repeatedly and the cool-down has not passed."""


class CachePermissionError(CacheError, PermissionError):
    """Redis refused the command for this user (ACL)."""


class CacheDataError(CacheError, ValueError):
    """A stored value could not be decoded into the expected model."""
