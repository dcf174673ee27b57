"""Opt-in file logging in the seed's layout; the library never configures logging on import.

Every component logs to ``logging.getLogger("fullon.cache.<component>")``
(``fullon.cache.tick``, ``fullon.cache.orders``, ...). Call
:func:`configure_file_logging` once in a service to write them to
``$FULLON_CACHE_LOG_DIR/fullon_cache.log`` (rotated at 10 MB, rotated files kept 7 days).

Example:
    >>> import tempfile
    >>> handler = configure_file_logging(tempfile.mkdtemp())
    >>> handler.baseFilename.endswith("fullon_cache.log")
    True
    >>> remove_file_logging(handler)
"""

from __future__ import annotations

import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from fullon_cache.config import get_settings

__all__ = ["configure_file_logging", "remove_file_logging"]

MAX_BYTES = 10 * 1024 * 1024
RETENTION_SECONDS = 7 * 24 * 3600
LOGGER_NAME = "fullon.cache"
FILE_NAME = "fullon_cache.log"


def _prune(directory: Path, now: float) -> None:
    for old in directory.glob(FILE_NAME + ".*"):
        if now - old.stat().st_mtime > RETENTION_SECONDS:
            old.unlink(missing_ok=True)


def configure_file_logging(
    log_dir: str | Path | None = None, level: int = logging.INFO
) -> RotatingFileHandler:
    """Attach a rotating file handler to the ``fullon.cache`` logger and return it.

    Rotated files older than 7 days are deleted. Calling it again for the same file
    returns the handler already attached.
    """
    directory = Path(log_dir or get_settings().log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    logger = logging.getLogger(LOGGER_NAME)
    for handler in logger.handlers:
        if isinstance(handler, RotatingFileHandler) and handler.baseFilename == str(path):
            return handler
    _prune(directory, time.time())
    handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=50, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def remove_file_logging(handler: logging.Handler) -> None:
    """Detach and close a handler returned by :func:`configure_file_logging`."""
    logging.getLogger(LOGGER_NAME).removeHandler(handler)
    handler.close()
