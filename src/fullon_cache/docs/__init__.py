"""fullon_cache documentation, inside the package: every guide is a string constant.

Modules: :mod:`~fullon_cache.docs.quickstart` (``GUIDE``),
:mod:`~fullon_cache.docs.api_reference` (generated from the code: ``TICK_CACHE``,
``ORDERS_CACHE``, ... and ``API_REFERENCE``), :mod:`~fullon_cache.docs.caching_guide`,
:mod:`~fullon_cache.docs.testing_guide`, :mod:`~fullon_cache.docs.migration` (what
differs from the original fullon_cache, and why), and
:mod:`~fullon_cache.docs.runner` (runs these docs against a server; the test suite uses
it so they cannot drift).

Example:
    >>> from fullon_cache.docs import get_all_docs
    >>> sorted(get_all_docs())[:2]
    ['api_reference', 'caching_guide']
"""

from __future__ import annotations

from fullon_cache.docs import api_reference, caching_guide, migration, quickstart, testing_guide

__all__ = [
    "API_REFERENCE",
    "CACHING_GUIDE",
    "MIGRATION",
    "QUICK_START",
    "TESTING_GUIDE",
    "api_reference",
    "caching_guide",
    "get_all_docs",
    "migration",
    "quickstart",
    "testing_guide",
]

QUICK_START = quickstart.GUIDE
API_REFERENCE = api_reference.API_REFERENCE
CACHING_GUIDE = caching_guide.GUIDE
TESTING_GUIDE = testing_guide.GUIDE
MIGRATION = migration.GUIDE


def get_all_docs() -> dict[str, str]:
    """Every guide by name: ``{"quickstart": ..., "api_reference": ..., ...}``.

    Example:
        >>> "BaseCache" in get_all_docs()["api_reference"]
        True
    """
    return {
        "quickstart": QUICK_START,
        "api_reference": API_REFERENCE,
        "caching_guide": CACHING_GUIDE,
        "testing_guide": TESTING_GUIDE,
        "migration": MIGRATION,
    }
