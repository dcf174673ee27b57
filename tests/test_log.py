from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from fullon_cache.log import FILE_NAME, configure_file_logging, remove_file_logging


def test_file_logging_writes_rotates_prunes_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / f"{FILE_NAME}.3"
    old.write_text("old")
    eight_days = time.time() - 8 * 24 * 3600
    os.utime(old, (eight_days, eight_days))
    recent = tmp_path / f"{FILE_NAME}.1"
    recent.write_text("recent")
    monkeypatch.setenv("FULLON_CACHE_LOG_DIR", str(tmp_path))
    from fullon_cache.config import reload_settings

    reload_settings()
    handler = configure_file_logging()
    try:
        assert configure_file_logging(tmp_path) is handler
        second = configure_file_logging(tmp_path / "other")
        assert second is not handler
        remove_file_logging(second)
        assert handler.maxBytes == 10 * 1024 * 1024
        assert not old.exists()
        assert recent.exists()
        logging.getLogger("fullon.cache.tick").info("ticker updated")
        handler.flush()
        assert "fullon.cache.tick: ticker updated" in (tmp_path / FILE_NAME).read_text()
    finally:
        remove_file_logging(handler)
    assert handler not in logging.getLogger("fullon.cache").handlers


def test_the_library_configures_no_handlers_on_import() -> None:
    import fullon_cache  # noqa: F401

    assert logging.getLogger("fullon.cache").handlers == []
