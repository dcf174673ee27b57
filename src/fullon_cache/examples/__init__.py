"""Runnable examples: each module has ``async def main(settings=None)`` that prints a
readable account of what it does and returns what it found.

Run one with ``python -m fullon_cache.examples.<name>`` or all of them with
``python -m fullon_cache.examples.run_all`` (``make demo`` does that, starting its own
server when none answers). Their source is here as strings too:
:func:`get_all_examples` (``{"basic_usage": "...source..."}``) and one constant per
example (``BASIC_USAGE``, ``TRADING_FLOW``, ...).

Namespaces: an example never touches the library's real keys. It runs under its own
namespace, ``<FULLON_CACHE_NAMESPACE>.<example>`` (``fullon.basic_usage`` by default),
and clears only that namespace, before and after (``prepare_cache``: SCAN + UNLINK of
that prefix, never FLUSHDB).

Example:
    >>> from fullon_cache.examples import EXAMPLES, get_all_examples
    >>> "trading_flow" in EXAMPLES
    True
    >>> "async def main" in get_all_examples()["basic_usage"]
    True
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import msgspec

from fullon_cache.config import Settings, get_settings
from fullon_cache.connection import ConnectionPool

__all__ = [
    "BASIC_USAGE",
    "BOT_COORDINATION",
    "EXAMPLES",
    "PERFORMANCE_TEST",
    "PUBSUB_EXAMPLE",
    "QUEUE_PATTERNS",
    "TRADING_FLOW",
    "example_settings",
    "get_all_examples",
    "run",
]

EXAMPLES = (
    "basic_usage",
    "trading_flow",
    "pubsub_example",
    "queue_patterns",
    "bot_coordination",
    "performance_test",
)
"""Every example, in the order ``run_all`` runs them."""


def _source(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")


def get_all_examples() -> dict[str, str]:
    """The source text of every example, by name.

    Example:
        >>> sorted(get_all_examples()) == sorted(EXAMPLES)
        True
    """
    return {name: _source(name) for name in EXAMPLES}


BASIC_USAGE = _source("basic_usage")
TRADING_FLOW = _source("trading_flow")
PUBSUB_EXAMPLE = _source("pubsub_example")
QUEUE_PATTERNS = _source("queue_patterns")
BOT_COORDINATION = _source("bot_coordination")
PERFORMANCE_TEST = _source("performance_test")


def example_settings(name: str, base: Settings | None = None) -> Settings:
    """The settings an example runs with: ``base`` (default: the environment's) under
    the namespace ``<base namespace>.<name>``.

    Example:
        >>> example_settings("basic_usage", Settings(namespace="fullon")).namespace
        'fullon.basic_usage'
    """
    base = base or get_settings()
    return msgspec.structs.replace(base, namespace=f"{base.namespace}.{name}")


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run an example's ``main`` in a new event loop and close the loop's connections
    afterwards (what ``python -m fullon_cache.examples.<name>`` does).

    Example:
        >>> async def main() -> int:
        ...     return 42
        >>> run(main)
        42
    """

    async def wrapper() -> Any:
        try:
            return await main()
        finally:
            await ConnectionPool.close_loop()

    return asyncio.run(wrapper())
